"""Issuing invoices: number, date, snapshot and freeze drafts, one or thousands at a time.

Finalizing assigns the next number of the seller's gapless sequence, takes a snapshot of
seller and buyer, freezes the invoice and records what the tenant owes in the ledger.
Services flush and never commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from portal.bulk import _insert_rows, _write_rows, assign_ids
from portal.catalog.models import CompanyBillingSettings
from portal.db import table_of, utcnow
from portal.invoices.drafts import DraftLine, discount_rows, draft_totals
from portal.invoices.errors import InvoiceHasNoLines
from portal.invoices.models import (
    Invoice,
    InvoiceAllowanceCharge,
    InvoiceLine,
    InvoiceVatBreakdown,
)
from portal.invoices.numbering import take_numbers
from portal.invoices.signals import invoices_finalized
from portal.invoices.states import (
    DocumentType,
    InvoiceKind,
    InvoiceStatus,
    check_transition,
)
from portal.ledger.models import LedgerMovement, MovementKind
from portal.tenancy.models import BillingProfile, Seller, Tenant

SELLER_SNAPSHOT_FIELDS = (
    "legal_name",
    "trading_name",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "region",
    "country",
    "vat_id",
    "tax_number",
    "registration",
    "email",
    "phone",
    "website",
    "iban",
    "bic",
    "bank_name",
    "invoice_footer",
    # The logo's fingerprint: the PDF prints the logo only while it is still this one.
    "logo_sha256",
)


BUYER_SNAPSHOT_FIELDS = (
    "company_name",
    "address_line1",
    "address_line2",
    "postal_code",
    "city",
    "region",
    "country",
    "vat_id",
    "tax_exempt",
    "tax_exemption_reason",
    "billing_email",
    "cc_emails",
    "contact_name",
    "phone",
    "buyer_reference",
    "purchase_order",
    "peppol_endpoint_id",
    "peppol_endpoint_scheme",
    "language",
)


def _snapshot(obj: object | None, fields: tuple[str, ...]) -> dict | None:
    if obj is None:
        return None
    return {name: getattr(obj, name) for name in fields}


def finalize_invoice(session: Session, invoice: Invoice, *, issue_date: dt.date) -> Invoice:
    """Number, date, snapshot and freeze a draft; record what the tenant owes.

    :raise InvoiceHasNoLines: when the draft is empty.
    :raise InvalidTransition: when the invoice is not a draft.
    """
    return finalize_invoices(session, [invoice], issue_date=issue_date)[0]


def finalize_invoices(
    session: Session, invoices: Sequence[Invoice], *, issue_date: dt.date
) -> list[Invoice]:
    """Finalize drafts together, in a fixed number of queries however many there are.

    Each invoice is numbered (in list order, per seller), dated, snapshotted and frozen,
    and what the tenant owes goes to the ledger, exactly as :func:`finalize_invoice` does
    one at a time; nothing changes unless every invoice may be finalized.

    :raise InvoiceHasNoLines: when a draft is empty.
    :raise InvalidTransition: when an invoice is not a draft.
    """
    for invoice in invoices:
        check_transition(invoice.status, InvoiceStatus.FINALIZED)
        if not invoice.lines:
            raise InvoiceHasNoLines(str(invoice.public_id))
    if not invoices:
        return []
    issuing = _Issuing.load(session, invoices, issue_date)
    finalized_at = utcnow()
    for invoice in invoices:
        values = issuing.values(
            invoice.tenant_id,
            invoice.seller_id,
            id(invoice),
            buyer_reference=invoice.buyer_reference,
            purchase_order=invoice.purchase_order,
            finalized_at=finalized_at,
        )
        for name, value in values.items():
            setattr(invoice, name, value)
        # The same columns in every UPDATE, so the flush sends the batch as one executemany.
        loaded = sa.inspect(invoice).dict
        for name in ("language", "buyer_reference", "purchase_order"):
            if name in loaded:
                flag_modified(invoice, name)
        if invoice.amount_due_minor:
            # What record_movement() writes, added for one flush for the whole batch.
            session.add(
                LedgerMovement(
                    **_invoice_movement(
                        invoice.tenant_id,
                        invoice.id,
                        invoice.amount_due_minor,
                        invoice.currency,
                        values,
                    )
                )
            )
    if len(invoices) > 1:
        assign_ids(session, session.new)
    session.flush()
    return list(invoices)


def _invoice_movement(
    tenant_id: int, invoice_id: int | None, amount_minor: int, currency: str, values: dict
) -> dict:
    """The ledger movement of an invoice's finalization: what record_movement() writes."""
    return {
        "tenant_id": tenant_id,
        "kind": MovementKind.INVOICE,
        "amount_minor": amount_minor,
        "currency": currency,
        "description": f"Invoice {values['number']}",
        "occurred_at": values["finalized_at"],
        "invoice_id": invoice_id,
    }


@dataclass
class Parties:
    """Tenants, sellers, billing profiles and company settings by id (profiles and settings
    by tenant id; at most one each): who an invoice is from and to."""

    tenants: dict[int, Tenant]
    sellers: dict[int, Seller]
    profiles: dict[int, BillingProfile]
    settings: dict[int, CompanyBillingSettings]

    @classmethod
    def load(cls, session: Session, tenant_ids: set[int], seller_ids: set[int]) -> Parties:
        """In four queries."""
        return cls(
            {t.id: t for t in session.scalars(sa.select(Tenant).where(Tenant.id.in_(tenant_ids)))},
            {s.id: s for s in session.scalars(sa.select(Seller).where(Seller.id.in_(seller_ids)))},
            {
                p.tenant_id: p
                for p in session.scalars(
                    sa.select(BillingProfile)
                    .where(BillingProfile.tenant_id.in_(tenant_ids))
                    .order_by(BillingProfile.id.desc())  # the first one wins, as .first() did
                )
            },
            {
                s.tenant_id: s
                for s in session.scalars(
                    sa.select(CompanyBillingSettings)
                    .where(CompanyBillingSettings.tenant_id.in_(tenant_ids))
                    .order_by(CompanyBillingSettings.id.desc())
                )
            },
        )


@dataclass
class _Issuing:
    """What finalizing a batch needs, loaded in a fixed number of queries, and the numbers
    taken for it (one locked sequence row per seller, in list order)."""

    issue_date: dt.date
    tenants: dict[int, Tenant]
    sellers: dict[int, Seller]
    profiles: dict[int, BillingProfile]
    settings: dict[int, CompanyBillingSettings]
    seller_snapshots: dict[int, dict | None]
    numbers: dict[object, str]

    @classmethod
    def load(
        cls,
        session: Session,
        documents: Sequence,
        issue_date: dt.date,
        parties: Parties | None = None,
    ) -> _Issuing:
        """For ``documents`` (objects or dicts with ``tenant_id`` and ``seller_id``), whose
        numbers are keyed by ``id(document)``; ``parties`` saves loading them again."""

        def get(doc, name):
            return doc[name] if isinstance(doc, dict) else getattr(doc, name)

        if parties is None:
            parties = Parties.load(
                session,
                {get(doc, "tenant_id") for doc in documents},
                {get(doc, "seller_id") for doc in documents},
            )
        tenants, sellers = parties.tenants, parties.sellers
        profiles, settings = parties.profiles, parties.settings
        by_seller: dict[int, list] = defaultdict(list)
        for doc in documents:
            by_seller[get(doc, "seller_id")].append(doc)
        numbers: dict[object, str] = {}
        for seller_id, group in by_seller.items():
            taken = take_numbers(
                session, sellers[seller_id], DocumentType.INVOICE, issue_date.year, len(group)
            )
            numbers.update(zip((id(doc) for doc in group), taken, strict=True))
        seller_snapshots = {
            seller_id: _snapshot(seller, SELLER_SNAPSHOT_FIELDS)
            for seller_id, seller in sellers.items()
        }
        return cls(issue_date, tenants, sellers, profiles, settings, seller_snapshots, numbers)

    def values(
        self,
        tenant_id: int,
        seller_id: int,
        key: object,
        *,
        buyer_reference: str | None,
        purchase_order: str | None,
        finalized_at: dt.datetime,
    ) -> dict:
        """The columns finalization sets on one invoice: number, dates, snapshots, status."""
        tenant = self.tenants[tenant_id]
        seller = self.sellers[seller_id]
        profile = self.profiles.get(tenant_id)
        company = self.settings.get(tenant_id)
        if company is not None and company.payment_terms_days is not None:
            terms = company.payment_terms_days  # the operator's terms for this company win
        elif profile is not None:
            terms = profile.payment_terms_days
        else:
            terms = seller.default_payment_terms_days
        if profile:
            buyer_reference = buyer_reference or profile.buyer_reference
            purchase_order = purchase_order or profile.purchase_order
        return {
            "number": self.numbers[key],
            "issue_date": self.issue_date,
            "due_date": self.issue_date + dt.timedelta(days=terms),
            "seller_snapshot": dict(self.seller_snapshots[seller.id] or {}),
            "buyer_snapshot": _snapshot(profile, BUYER_SNAPSHOT_FIELDS)
            or {"company_name": tenant.name},
            "language": profile.language if profile else "en",
            "buyer_reference": buyer_reference,
            "purchase_order": purchase_order,
            "status": InvoiceStatus.FINALIZED,
            "finalized_at": finalized_at,
        }


@dataclass(frozen=True)
class NewInvoice:
    """An invoice for :func:`insert_invoices`: what :func:`create_draft` takes."""

    tenant: Tenant
    kind: InvoiceKind
    period_start: dt.date
    period_end: dt.date  # inclusive
    lines: list[DraftLine]
    subscription_id: int | None = None
    discount_percent: Decimal = Decimal(0)
    #: Further document allowances after the discount (coupons): InvoiceAllowanceCharge values.
    allowances: tuple[dict, ...] = ()
    finalize: bool = False

    def draft_fields(self) -> dict:
        """The keyword arguments of :func:`create_draft` for this invoice."""
        return {
            "kind": self.kind,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "lines": self.lines,
            "subscription_id": self.subscription_id,
            "discount_percent": self.discount_percent,
            "allowances": self.allowances,
        }


def insert_invoices(
    session: Session,
    invoices: Sequence[NewInvoice],
    *,
    issue_date: dt.date,
    parties: Parties | None = None,
) -> tuple[list[int], list[int]]:
    """Create many invoices in a fixed number of statements, without ORM objects.

    Writes the rows :func:`create_draft` would (lines, allowances, VAT breakdown, totals)
    and, for those marked ``finalize``, what :func:`finalize_invoices` adds (number in list
    order per seller, dates, snapshots, status, ledger movement), for an invoice run that
    creates thousands. Every invoice must be new (the unique key refuses a duplicate).
    Returns the ids of the invoices created and of those finalized.

    :param parties: the invoices' tenants, sellers, profiles and settings, if the caller
        has them (else they are loaded).

    :raise InvoiceHasNoLines: when an invoice to finalize has no lines.
    """
    if not invoices:
        return [], []
    for new in invoices:
        if new.finalize and not new.lines:
            raise InvoiceHasNoLines(f"{new.tenant.id}: {new.period_start}–{new.period_end}")
    now = utcnow()
    rows: list[dict[str, Any]] = []
    line_rows: list[dict[str, Any]] = []
    ac_rows: list[dict[str, Any]] = []
    vat_rows: list[dict[str, Any]] = []
    for new in invoices:
        tenant = new.tenant
        allowances = (
            discount_rows(new.lines, new.discount_percent, tenant.currency)
            if new.discount_percent
            else []
        ) + [dict(row) for row in new.allowances]
        totals = draft_totals(new.lines, allowances, tenant.currency)
        rows.append(
            {
                "public_id": uuid.uuid4(),
                "tenant_id": tenant.id,
                "seller_id": tenant.seller_id,
                "kind": new.kind,
                "status": InvoiceStatus.DRAFT,
                "currency": tenant.currency,
                "subscription_id": new.subscription_id,
                "period_start": new.period_start,
                "period_end": new.period_end,
                **totals.columns,
                "amount_paid_minor": 0,
                "amount_credited_minor": 0,
                "auto_collect": False,
                "attempt_count": 0,
                "language": "en",
                "created_at": now,
                "updated_at": now,
                # set below for invoices to finalize
                "number": None,
                "issue_date": None,
                "due_date": None,
                "seller_snapshot": None,
                "buyer_snapshot": None,
                "buyer_reference": None,
                "purchase_order": None,
                "finalized_at": None,
            }
        )
        for position, (line, net) in enumerate(zip(new.lines, totals.line_nets, strict=True), 1):
            line_rows.append(
                {
                    "tenant_id": tenant.id,
                    "position": position,
                    "kind": line.kind,
                    "description": line.description,
                    "quantity": line.quantity,
                    "unit_code": line.unit_code,
                    "unit_price": line.unit_price,
                    "net_amount_minor": net,
                    "vat_category": line.vat_category,
                    "vat_rate": line.vat_rate,
                    "vat_exemption_reason": line.vat_exemption_reason,
                    "vat_exemption_code": line.vat_exemption_code,
                    "price_id": line.price_id,
                    "subscription_item_id": line.subscription_item_id,
                    "period_start": line.period_start or new.period_start,
                    "period_end": line.period_end or new.period_end,
                    "details": dict(line.details),
                    "invoice_id": len(rows) - 1,  # the index, replaced by the id below
                }
            )
        ac_rows.extend({**ac, "invoice_id": len(rows) - 1} for ac in allowances)
        vat_rows.extend({**vat, "invoice_id": len(rows) - 1} for vat in totals.vat_rows)
    to_finalize = [row for row, new in zip(rows, invoices, strict=True) if new.finalize]
    movements: list[tuple[dict[str, Any], dict[str, Any]]] = []
    if to_finalize:
        issuing = _Issuing.load(session, to_finalize, issue_date, parties)
        finalized_at = _issue_time(session)
        for row in to_finalize:
            values = issuing.values(
                row["tenant_id"],
                row["seller_id"],
                id(row),
                buyer_reference=None,
                purchase_order=None,
                finalized_at=finalized_at,
            )
            row.update(values)  # inserted finalized; its lines follow (see _issue_time)
            if row["amount_due_minor"]:
                movements.append((row, values))
    ids = _insert_rows(session, table_of(Invoice), rows)
    for child in (*line_rows, *ac_rows, *vat_rows):
        child["invoice_id"] = ids[child["invoice_id"]]
    for model, child_rows in (
        (InvoiceLine, line_rows),
        (InvoiceAllowanceCharge, ac_rows),
        (InvoiceVatBreakdown, vat_rows),
    ):
        _write_rows(session, table_of(model), child_rows)
    finalized = [row["id"] for row in to_finalize]
    if movements:
        _write_rows(
            session,
            table_of(LedgerMovement),
            [
                {
                    "public_id": uuid.uuid4(),
                    "created_at": now,
                    "payment_id": None,
                    "refund_id": None,
                    "credit_note_id": None,
                    **_invoice_movement(
                        row["tenant_id"],
                        row["id"],
                        row["amount_due_minor"],
                        row["currency"],
                        values,
                    ),
                }
                for row, values in movements
            ],
        )
    if finalized:  # bypassing the ORM, these are not seen by the flush listener
        invoices_finalized.send(session, invoice_ids=finalized)
    return ids, finalized


def _issue_time(session: Session) -> dt.datetime:
    """``finalized_at`` of invoices that :func:`insert_invoices` issues with their lines.

    On PostgreSQL the transaction's start time: the freeze trigger (migration 0009) lets
    lines be inserted under a finalized invoice only in the transaction that finalized it,
    recognized by that time; elsewhere now.
    """
    if session.get_bind().dialect.name == "postgresql":
        return session.execute(sa.select(sa.func.transaction_timestamp())).scalar_one()
    return utcnow()
