"""Admin use cases: the one place admin writes happen, for the pages and the console API.

Every service takes the acting :class:`Actor`, records an audit entry, flushes and never
commits: the caller (a view, an API handler) commits once. Refusals carry a stable
``code`` for the API and an English ``message`` that pages translate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.admin import tasks
from portal.admin.billing import bill_month
from portal.catalog.models import CompanyBillingSettings
from portal.db import lock
from portal.invoices.credit_notes import CreditLine, CreditNoteRefused, issue_credit_note
from portal.invoices.delivery import InvoiceNotSendable, send_invoice
from portal.invoices.generation import month_period
from portal.invoices.models import CreditNote, Invoice
from portal.invoices.run import tenants_to_bill
from portal.invoices.services import delete_draft, mark_paid, mark_unpaid, void_invoice
from portal.invoices.states import TRANSITIONS, InvoiceStatus
from portal.notifications.models import OutboxEmail
from portal.ops.after_commit import after_commit
from portal.ops.models import AuditLogEntry, Job, JobStatus
from portal.tenancy.models import Tenant


def N_(message: str) -> str:  # noqa: N802 (the gettext "no-op" marker babel extracts)
    """Mark English text for extraction; pages translate it when they show it."""
    return message


@dataclass(frozen=True)
class Actor:
    """Who acts: a person (user id) or a machine (token id), with the request's origin."""

    label: str
    user_id: int | None = None
    token_id: int | None = None
    ip_address: str | None = None
    request_id: str | None = None


class AdminActionRefused(Exception):
    """An admin action that the invoice's state (or the data) does not allow."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        #: Stable machine-readable reason, e.g. ``not_a_draft``.
        self.code = code
        #: English sentence for people; pages show its translation.
        self.message = message


class SettingsInvalid(Exception):
    """Company settings that fail validation; nothing was written."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        #: Field name → English message.
        self.errors = errors


# -- audit --------------------------------------------------------------------------------


def record_audit(
    session: Session,
    actor: Actor,
    action: str,
    target_type: str,
    target_id: str | None,
    *,
    tenant_id: int | None,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditLogEntry:
    """Append one audit entry (the table refuses UPDATE and DELETE)."""
    data: dict[str, Any] = {}
    if before is not None:
        data["before"] = before
    if after is not None:
        data["after"] = after
    entry = AuditLogEntry(
        actor_user_id=actor.user_id,
        actor_token_id=actor.token_id,
        actor_label=actor.label[:254],
        action=action,
        target_type=target_type,
        target_id=target_id,
        tenant_id=tenant_id,
        data=data,
        ip_address=actor.ip_address,
        request_id=actor.request_id,
    )
    session.add(entry)
    session.flush()
    return entry


# -- company billing settings ---------------------------------------------------------------

#: Editable settings and their Python types (``int | None``: the field may be empty).
SETTINGS_FIELDS: dict[str, Any] = {
    "billing_day": int,
    "payment_terms_days": int | None,
    "auto_finalize": bool,
    "auto_send": bool,
    "auto_collect": bool,
    "show_drafts_to_tenant": bool,
    "discount_percent": Decimal,
    "notes": str | None,
}

#: Longest internal note accepted.
NOTES_MAX = 2000
_PERCENT_QUANTUM = Decimal("0.0001")


def _decimal_text(value: Decimal) -> str:
    return format(value.normalize(), "f")


def settings_dict(settings: CompanyBillingSettings) -> dict[str, Any]:
    """The editable settings as JSON-safe values (the discount as a decimal string)."""
    values: dict[str, Any] = {name: getattr(settings, name) for name in SETTINGS_FIELDS}
    values["discount_percent"] = _decimal_text(Decimal(values["discount_percent"] or 0))
    return values


def company_settings(session: Session, tenant: Tenant) -> CompanyBillingSettings:
    """The company's stored settings, or a new unsaved row holding the defaults."""
    settings = session.scalars(
        sa.select(CompanyBillingSettings).where(CompanyBillingSettings.tenant_id == tenant.id)
    ).first()
    if settings is not None:
        return settings
    return CompanyBillingSettings(
        tenant_id=tenant.id,
        billing_day=1,
        payment_terms_days=None,
        auto_finalize=True,
        auto_send=False,
        auto_collect=True,
        show_drafts_to_tenant=False,
        discount_percent=Decimal(0),
        notes=None,
    )


def _int(value: Any, low: int, high: int, *, optional: bool) -> int | None:
    """An int in [low, high] from an int or digit string; raises ValueError with a message."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if optional:
            return None
        raise ValueError(N_("This field is required."))
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(N_("Enter a whole number."))
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(N_("Enter a whole number.")) from None
    if not isinstance(value, int):
        raise ValueError(N_("Enter a whole number."))
    if not low <= value <= high:
        raise ValueError(N_("Out of range."))
    return value


def _percent(value: Any) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise ValueError(N_("Enter a percentage between 0 and 100."))
    try:
        # A float from JSON goes through its shortest text form, never its binary value.
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(N_("Enter a percentage between 0 and 100.")) from None
    if not number.is_finite() or not Decimal(0) <= number <= Decimal(100):
        raise ValueError(N_("Enter a percentage between 0 and 100."))
    if number != number.quantize(_PERCENT_QUANTUM):
        raise ValueError(N_("Use at most four decimal places."))
    return number.quantize(_PERCENT_QUANTUM)


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(N_("Enter true or false."))
    return value


def _notes(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(N_("Enter text."))
    if len(value) > NOTES_MAX:
        raise ValueError(N_("The note is too long (at most 2000 characters)."))
    if any(char == "\x00" or "\ud800" <= char <= "\udfff" for char in value):
        # No text column stores a NUL (PostgreSQL refuses it) or a lone surrogate.
        raise ValueError(N_("Remove the NUL character from the note."))
    return value.strip() or None


def validate_settings(values: Mapping[str, Any]) -> dict[str, Any]:
    """Check and convert a complete settings dict.

    :raise SettingsInvalid: with one message per wrong, missing or unknown field.
    """
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name in values:
        if name not in SETTINGS_FIELDS:
            errors[name] = N_("Unknown setting.")
    checks = {
        "billing_day": lambda v: _int(v, 1, 28, optional=False),
        "payment_terms_days": lambda v: _int(v, 0, 365, optional=True),
        "auto_finalize": _bool,
        "auto_send": _bool,
        "auto_collect": _bool,
        "show_drafts_to_tenant": _bool,
        "discount_percent": _percent,
        "notes": _notes,
    }
    for name, check in checks.items():
        if name not in values:
            errors[name] = N_("This field is required.")
            continue
        try:
            clean[name] = check(values[name])
        except ValueError as exc:
            errors[name] = str(exc)
    if errors.get("billing_day") == N_("Out of range."):
        errors["billing_day"] = N_("Choose a day between 1 and 28.")
    if errors.get("payment_terms_days") == N_("Out of range."):
        errors["payment_terms_days"] = N_("Enter between 0 and 365 days, or leave it empty.")
    if errors:
        raise SettingsInvalid(errors)
    return clean


def update_company_settings(
    session: Session, tenant: Tenant, values: Mapping[str, Any], actor: Actor
) -> CompanyBillingSettings:
    """Replace the company's settings with ``values`` (every field), audited before/after.

    :raise SettingsInvalid: when any field is wrong; nothing is written then.
    """
    clean = validate_settings(values)
    settings = company_settings(session, tenant)
    before = settings_dict(settings) if settings.id is not None else None
    for name, value in clean.items():
        setattr(settings, name, value)
    session.add(settings)
    session.flush()
    record_audit(
        session,
        actor,
        "settings.update",
        "company_billing_settings",
        str(tenant.public_id),
        tenant_id=tenant.id,
        before=before,
        after=settings_dict(settings),
    )
    return settings


# -- invoices -------------------------------------------------------------------------------


def _invoice_state(invoice: Invoice) -> dict[str, Any]:
    return {
        "status": str(invoice.status),
        "number": invoice.number,
        "amount_paid_minor": invoice.amount_paid_minor,
        "amount_credited_minor": invoice.amount_credited_minor,
    }


def _audit_invoice(
    session: Session, actor: Actor, action: str, invoice: Invoice, before: dict, **extra: Any
) -> None:
    after = {**_invoice_state(invoice), **extra}
    record_audit(
        session,
        actor,
        action,
        "invoice",
        str(invoice.public_id),
        tenant_id=invoice.tenant_id,
        before=before,
        after=after,
    )


def change_paid_state(session: Session, invoice: Invoice, paid: bool, actor: Actor) -> Invoice:
    """Mark an issued invoice paid (a manual payment) or a paid one unpaid (reversed).

    Both record ledger movements (the payment, or its reversal) and an audit entry.

    :raise AdminActionRefused: ``already_paid``, ``not_paid`` or ``invalid_state``.
    """
    lock(session, invoice)
    before = _invoice_state(invoice)
    if paid:
        if invoice.status == InvoiceStatus.PAID:
            raise AdminActionRefused("already_paid", N_("This invoice is already paid."))
        if InvoiceStatus.PAID not in TRANSITIONS[invoice.status]:
            raise AdminActionRefused(
                "invalid_state", N_("Only finalized, sent or written-off invoices can be paid.")
            )
        mark_paid(session, invoice)
        _audit_invoice(session, actor, "invoice.mark_paid", invoice, before)
    else:
        if invoice.status != InvoiceStatus.PAID:
            raise AdminActionRefused("not_paid", N_("Only a paid invoice can be marked unpaid."))
        mark_unpaid(session, invoice)
        _audit_invoice(session, actor, "invoice.mark_unpaid", invoice, before)
    return invoice


def delete_draft_invoice(session: Session, invoice: Invoice, actor: Actor) -> None:
    """Delete a draft invoice; an issued one must be voided or credited instead.

    :raise AdminActionRefused: ``not_a_draft``.
    """
    lock(session, invoice)
    if invoice.status != InvoiceStatus.DRAFT:
        raise AdminActionRefused(
            "not_a_draft",
            N_("A finalized invoice cannot be deleted; void it or issue a credit note."),
        )
    before = _invoice_state(invoice)
    record_audit(
        session,
        actor,
        "invoice.delete_draft",
        "invoice",
        str(invoice.public_id),
        tenant_id=invoice.tenant_id,
        before=before,
    )
    delete_draft(session, invoice)


def void(session: Session, invoice: Invoice, actor: Actor) -> Invoice:
    """Void an issued, unpaid invoice (its number stays used; the ledger is reversed).

    :raise AdminActionRefused: ``is_draft`` or ``invalid_state``.
    """
    lock(session, invoice)
    if invoice.status == InvoiceStatus.DRAFT:
        raise AdminActionRefused("is_draft", N_("A draft cannot be voided; delete it instead."))
    if InvoiceStatus.VOID not in TRANSITIONS[invoice.status]:
        raise AdminActionRefused(
            "invalid_state", N_("Paid or void invoices cannot be voided; issue a credit note.")
        )
    before = _invoice_state(invoice)
    void_invoice(session, invoice)
    _audit_invoice(session, actor, "invoice.void", invoice, before)
    return invoice


#: Why an invoice cannot be sent, by the delivery module's reason.
_NOT_SENDABLE = {
    "draft": ("not_finalized", N_("A draft cannot be sent; finalize it first.")),
    "closed": ("closed", N_("Paid, void or written-off invoices are not sent again.")),
    "no_recipient": ("no_recipient", N_("The company has no billing e-mail address.")),
    "einvoice_unavailable": (
        "einvoice_unavailable",
        N_("The company's preferred e-invoice cannot be made for this invoice."),
    ),
}


def send(session: Session, invoice: Invoice, actor: Actor) -> OutboxEmail:
    """E-mail the invoice to the company (queued after commit); finalized becomes sent.

    :raise AdminActionRefused: ``not_finalized``, ``closed``, ``no_recipient`` or
        ``einvoice_unavailable``.
    """
    lock(session, invoice)
    before = _invoice_state(invoice)
    try:
        email = send_invoice(session, invoice)
    except InvoiceNotSendable as exc:
        code, message = _NOT_SENDABLE.get(exc.reason, ("not_sendable", str(exc)))
        raise AdminActionRefused(code, message) from exc
    _audit_invoice(session, actor, "invoice.send", invoice, before, to=list(email.to_addrs or []))
    return email


def credit(
    session: Session,
    invoice: Invoice,
    actor: Actor,
    *,
    reason: str,
    lines: Mapping[int, Decimal] | None = None,
) -> CreditNote:
    """Issue a credit note: the whole invoice (``lines`` None) or quantities by line position.

    :param lines: quantity to credit per invoice line position (1, 2, … as printed).
    :raise AdminActionRefused: ``credit_refused`` (with the reason) or ``unknown_line``.
    """
    lock(session, invoice)
    credit_lines = None
    if lines is not None:
        by_position = {line.position: line for line in invoice.lines}
        credit_lines = []
        for position, quantity in lines.items():
            if position not in by_position:
                raise AdminActionRefused("unknown_line", N_("The invoice has no such line."))
            credit_lines.append(CreditLine(by_position[position], Decimal(quantity)))
    before = _invoice_state(invoice)
    try:
        note = issue_credit_note(session, invoice, reason=reason, lines=credit_lines)
    except CreditNoteRefused as exc:
        raise AdminActionRefused("credit_refused", str(exc)) from exc
    _audit_invoice(
        session,
        actor,
        "invoice.credit",
        invoice,
        before,
        credit_note=note.number,
        credit_amount_minor=note.amount_due_minor,
        reason=note.reason,
    )
    return note


def _check_month(month: str) -> None:
    try:
        month_period(month)
    except ValueError:
        raise AdminActionRefused("invalid_month", N_("Enter a month as YYYY-MM.")) from None


def generate_now(session: Session, tenant: Tenant, month: str, actor: Actor) -> Invoice:
    """Generate the company's invoice for ``month`` now and, per its settings, finalize it.

    Idempotent: an existing invoice of that month is returned unchanged.

    :raise AdminActionRefused: ``invalid_month`` or ``nothing_to_bill``.
    """
    _check_month(month)
    invoices = bill_month(session, tenant, month)
    if not invoices:
        raise AdminActionRefused(
            "nothing_to_bill", N_("The company has nothing to bill for this month.")
        )
    invoice = invoices[0]
    record_audit(
        session,
        actor,
        "invoice.generate",
        "invoice",
        str(invoice.public_id),
        tenant_id=tenant.id,
        after={"month": month, **_invoice_state(invoice)},
    )
    return invoice


# -- jobs -------------------------------------------------------------------------------------


def _new_job(
    session: Session, kind: str, tenant: Tenant | None, params: dict, total: int, actor: Actor
) -> Job:
    job = Job(
        kind=kind,
        tenant_id=tenant.id if tenant else None,
        status=JobStatus.QUEUED,
        params=params,
        progress_done=0,
        progress_total=total,
        created_by=actor.label[:254],
    )
    session.add(job)
    session.flush()
    record_audit(
        session,
        actor,
        f"job.{kind}",
        "job",
        str(job.public_id),
        tenant_id=job.tenant_id,
        after={"params": params},
    )
    return job


def start_invoice_generation(session: Session, tenant: Tenant, month: str, actor: Actor) -> Job:
    """Queue the generation of one company's invoice for ``month`` (runs after commit).

    :raise AdminActionRefused: ``invalid_month``.
    """
    _check_month(month)
    params = {"month": month, "company": str(tenant.public_id), "tenant_ids": [tenant.id]}
    job = _new_job(session, tasks.INVOICE_GENERATION, tenant, params, 1, actor)
    job_id, tenant_id = job.id, tenant.id
    after_commit(session, lambda: tasks.invoice_generation_task(job_id, tenant_id))
    return job


def start_invoice_run(session: Session, month: str, actor: Actor) -> Job:
    """Queue invoice generation for every company still to bill in ``month``, one task per
    company, so several workers share the run.

    :raise AdminActionRefused: ``invalid_month``.
    """
    _check_month(month)
    tenant_ids, _ = tenants_to_bill(session, month)
    params = {"month": month, "company": None, "tenant_ids": tenant_ids}
    job = _new_job(session, tasks.INVOICE_GENERATION, None, params, len(tenant_ids), actor)
    job_id = job.id
    if not tenant_ids:
        job.status = JobStatus.SUCCEEDED
        job.finished_at = job.started_at = job.created_at
        job.result = tasks.invoice_run_result(session, job)
        session.flush()
        return job

    def enqueue() -> None:
        for tenant_id in tenant_ids:
            tasks.invoice_generation_task(job_id, tenant_id)

    after_commit(session, enqueue)
    return job


def start_quota_report(
    session: Session, tenant: Tenant, start: dt.date, end: dt.date, actor: Actor
) -> Job:
    """Queue the company's quota usage report for the days ``start`` to ``end`` inclusive.

    :raise AdminActionRefused: ``invalid_range`` when end is before start or the range
        spans more than a year.
    """
    if end < start or (end - start).days > 366:
        raise AdminActionRefused(
            "invalid_range", N_("Choose an end date after the start, at most one year later.")
        )
    params = {"company": str(tenant.public_id), "start": start.isoformat(), "end": end.isoformat()}
    job = _new_job(session, tasks.QUOTA_REPORT, tenant, params, 1, actor)
    job_id = job.id
    after_commit(session, lambda: tasks.quota_report_task(job_id))
    return job


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value else None


def job_dict(job: Job) -> dict[str, Any]:
    """A job as JSON-safe values, for the jobs page and the console API."""
    total = job.progress_total
    percent = job.percent
    if percent is None and job.status == JobStatus.SUCCEEDED:
        percent = 100
    params = {k: v for k, v in (job.params or {}).items() if k != "tenant_ids"}
    return {
        "id": str(job.public_id),
        "kind": job.kind,
        "status": str(job.status),
        "progress": {"done": job.progress_done or 0, "total": total, "percent": percent},
        "params": params,
        "result": job.result,
        "error": job.error,
        "created_by": job.created_by,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
    }
