"""Invoice use cases: create drafts, compute totals, finalize, send, pay, void, write off.

Services flush and never commit; the caller (a view, a job, the CLI) commits once.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from portal.catalog.models import CompanyBillingSettings
from portal.db import utcnow
from portal.domain.money import Money
from portal.domain.totals import AllowanceCharge, LineInput, compute_totals, line_net
from portal.invoices.errors import InvoiceHasNoLines, InvoiceNotDraft
from portal.invoices.models import (
    DocumentSequence,
    Invoice,
    InvoiceAllowanceCharge,
    InvoiceLine,
    InvoiceVatBreakdown,
)
from portal.invoices.numbering import next_number
from portal.invoices.states import (
    DocumentType,
    InvoiceKind,
    InvoiceStatus,
    LineKind,
    VatCategory,
    check_transition,
)
from portal.ledger.models import LedgerMovement, MovementKind
from portal.ledger.services import record_movement
from portal.payments.models import Payment, PaymentStatus
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


@dataclass(frozen=True)
class DraftLine:
    """A line to put on a draft invoice."""

    description: str
    quantity: Decimal
    unit_price: Decimal
    kind: LineKind = LineKind.SUBSCRIPTION
    vat_category: VatCategory = VatCategory.STANDARD
    vat_rate: Decimal = Decimal(0)
    vat_exemption_reason: str | None = None
    vat_exemption_code: str | None = None
    unit_code: str = "C62"
    price_id: int | None = None
    subscription_item_id: int | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    details: dict = field(default_factory=dict)


def find_invoice(
    session: Session, tenant: Tenant, kind: InvoiceKind, period_start: dt.date, period_end: dt.date
) -> Invoice | None:
    """The tenant's invoice of ``kind`` for exactly this period, if it exists."""
    return session.scalars(
        sa.select(Invoice).where(
            Invoice.tenant_id == tenant.id,
            Invoice.kind == kind,
            Invoice.period_start == period_start,
            Invoice.period_end == period_end,
        )
    ).first()


def create_draft(
    session: Session,
    tenant: Tenant,
    *,
    kind: InvoiceKind,
    period_start: dt.date,
    period_end: dt.date,
    lines: list[DraftLine],
    subscription_id: int | None = None,
    discount_percent: Decimal = Decimal(0),
    known_new: bool = False,
    flush: bool = True,
) -> Invoice:
    """A draft invoice with ``lines`` and its totals; idempotent per tenant, kind and period.

    If the invoice already exists it is returned unchanged, whatever its state.

    :param known_new: the caller has already looked for the invoice (in bulk) and found
        none, so the lookup is skipped; the unique constraint still refuses a duplicate.
    :param flush: False leaves the insert to the caller's next flush (one for a batch).
    """
    if not known_new:
        existing = find_invoice(session, tenant, kind, period_start, period_end)
        if existing is not None:
            return existing
    invoice = Invoice(
        tenant_id=tenant.id,
        seller_id=tenant.seller_id,
        kind=kind,
        status=InvoiceStatus.DRAFT,
        currency=tenant.currency,
        subscription_id=subscription_id,
        period_start=period_start,
        period_end=period_end,
    )
    for position, line in enumerate(lines, start=1):
        invoice.lines.append(
            InvoiceLine(
                tenant_id=tenant.id,
                position=position,
                kind=line.kind,
                description=line.description,
                quantity=line.quantity,
                unit_code=line.unit_code,
                unit_price=line.unit_price,
                net_amount_minor=0,
                vat_category=line.vat_category,
                vat_rate=line.vat_rate,
                vat_exemption_reason=line.vat_exemption_reason,
                vat_exemption_code=line.vat_exemption_code,
                price_id=line.price_id,
                subscription_item_id=line.subscription_item_id,
                period_start=line.period_start or period_start,
                period_end=line.period_end or period_end,
                details=dict(line.details),
            )
        )
    if discount_percent:
        invoice.allowance_charges = discount_allowances(
            invoice.lines, discount_percent, tenant.currency
        )
    recompute_totals(invoice)
    session.add(invoice)
    if flush:
        session.flush()
    return invoice


def discount_allowances(
    lines: Iterable[InvoiceLine | DraftLine], percent: Decimal, currency: str
) -> list[InvoiceAllowanceCharge]:
    """A percentage discount as one document allowance per VAT category and rate (BG-20).

    EN 16931 needs a VAT category on every allowance, so the discount is split by the
    VAT groups it reduces; each part is rounded half-up to the minor unit, once, here.
    """
    bases: dict[tuple, int] = {}
    for line in lines:
        key = (line.vat_category, line.vat_rate)
        net = line_net(
            LineInput(line.quantity, line.unit_price, line.vat_category.value, line.vat_rate),
            currency,
        )
        bases[key] = bases.get(key, 0) + net.minor
    return [
        InvoiceAllowanceCharge(
            is_charge=False,
            amount_minor=int(
                (Decimal(base) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
            ),
            base_minor=base,
            percent=percent,
            reason="Discount",
            reason_code="95",  # UNCL5189: discount
            vat_category=category,
            vat_rate=rate,
        )
        for (category, rate), base in bases.items()
        if base > 0
    ]


def recompute_totals(invoice: Invoice) -> None:
    """Recompute line nets, VAT breakdown and totals of a draft from its lines.

    :raise InvoiceNotDraft: when the invoice is issued (issued invoices are frozen).
    """
    if invoice.status != InvoiceStatus.DRAFT:
        raise InvoiceNotDraft(invoice.number)
    totals = compute_totals(
        [
            LineInput(li.quantity, li.unit_price, li.vat_category.value, li.vat_rate)
            for li in invoice.lines
        ],
        invoice.currency,
        [
            AllowanceCharge(
                ac.is_charge,
                Money(ac.amount_minor, invoice.currency),
                ac.vat_category.value,
                ac.vat_rate,
            )
            for ac in invoice.allowance_charges
        ],
    )
    exemptions = {
        (li.vat_category.value, li.vat_rate): (li.vat_exemption_reason, li.vat_exemption_code)
        for li in reversed(invoice.lines)
    }
    for line, net in zip(invoice.lines, totals.line_nets, strict=True):
        line.net_amount_minor = net.minor
    invoice.lines_total_minor = totals.lines_total.minor
    invoice.allowance_total_minor = totals.allowance_total.minor
    invoice.charge_total_minor = totals.charge_total.minor
    invoice.tax_exclusive_minor = totals.tax_exclusive.minor
    invoice.tax_minor = totals.tax.minor
    invoice.tax_inclusive_minor = totals.tax_inclusive.minor
    invoice.prepaid_minor = totals.prepaid.minor
    invoice.rounding_minor = totals.rounding.minor
    invoice.amount_due_minor = totals.amount_due.minor
    invoice.vat_breakdown = [
        InvoiceVatBreakdown(
            category=VatCategory(group.category),
            rate=group.rate,
            taxable_minor=group.taxable.minor,
            tax_minor=group.tax.minor,
            exemption_reason=exemptions.get((group.category, group.rate), (None, None))[0],
            exemption_code=exemptions.get((group.category, group.rate), (None, None))[1],
        )
        for group in totals.vat_breakdown
    ]


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
    tenant_ids = {invoice.tenant_id for invoice in invoices}
    tenants = {t.id: t for t in session.scalars(sa.select(Tenant).where(Tenant.id.in_(tenant_ids)))}
    sellers = {
        s.id: s
        for s in session.scalars(
            sa.select(Seller).where(Seller.id.in_({invoice.seller_id for invoice in invoices}))
        )
    }
    profiles = {
        p.tenant_id: p
        for p in session.scalars(
            sa.select(BillingProfile)
            .where(BillingProfile.tenant_id.in_(tenant_ids))
            .order_by(BillingProfile.id.desc())  # the first one wins, as .first() did
        )
    }
    settings = {
        s.tenant_id: s
        for s in session.scalars(
            sa.select(CompanyBillingSettings)
            .where(CompanyBillingSettings.tenant_id.in_(tenant_ids))
            .order_by(CompanyBillingSettings.id.desc())
        )
    }
    by_seller: dict[int, list[Invoice]] = defaultdict(list)
    for invoice in invoices:
        by_seller[invoice.seller_id].append(invoice)
    numbers: dict[int, str] = {}
    for seller_id, group in by_seller.items():
        taken = _take_numbers(
            session, sellers[seller_id], DocumentType.INVOICE, issue_date.year, len(group)
        )
        numbers.update(zip((id(invoice) for invoice in group), taken, strict=True))
    seller_snapshots = {
        seller_id: _snapshot(seller, SELLER_SNAPSHOT_FIELDS)
        for seller_id, seller in sellers.items()
    }
    finalized_at = utcnow()
    for invoice in invoices:
        tenant = tenants[invoice.tenant_id]
        seller = sellers[invoice.seller_id]
        profile = profiles.get(tenant.id)
        company = settings.get(tenant.id)
        if company is not None and company.payment_terms_days is not None:
            terms = company.payment_terms_days  # the operator's terms for this company win
        elif profile is not None:
            terms = profile.payment_terms_days
        else:
            terms = seller.default_payment_terms_days
        invoice.number = numbers[id(invoice)]
        invoice.issue_date = issue_date
        invoice.due_date = issue_date + dt.timedelta(days=terms)
        invoice.seller_snapshot = dict(seller_snapshots[seller.id])
        invoice.buyer_snapshot = _snapshot(profile, BUYER_SNAPSHOT_FIELDS) or {
            "company_name": tenant.name
        }
        invoice.language = profile.language if profile else "en"
        if profile:
            invoice.buyer_reference = invoice.buyer_reference or profile.buyer_reference
            invoice.purchase_order = invoice.purchase_order or profile.purchase_order
        invoice.status = InvoiceStatus.FINALIZED
        invoice.finalized_at = finalized_at
        # The same columns in every UPDATE, so the flush sends the batch as one executemany.
        loaded = sa.inspect(invoice).dict
        for name in ("language", "buyer_reference", "purchase_order"):
            if name in loaded:
                flag_modified(invoice, name)
        if invoice.amount_due_minor:
            # What record_movement() writes, added for one flush for the whole batch.
            session.add(
                LedgerMovement(
                    tenant_id=tenant.id,
                    kind=MovementKind.INVOICE,
                    amount_minor=invoice.amount_due_minor,
                    currency=invoice.currency,
                    description=f"Invoice {invoice.number}",
                    occurred_at=finalized_at,
                    invoice_id=invoice.id,
                )
            )
    if len(invoices) > 1:
        assign_ids(session, session.new)
    session.flush()
    return list(invoices)


def assign_ids(session: Session, objects: Iterable[object]) -> None:
    """Give new rows their primary keys from the sequences, one query per table (PostgreSQL).

    With its key known, the ORM inserts a batch as one prepared executemany (psycopg
    pipelines it) instead of INSERT … RETURNING statements of thousands of parameters
    that the driver parses row by row. Elsewhere this does nothing.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    by_table: dict[sa.Table, list] = defaultdict(list)
    for obj in objects:
        if getattr(obj, "id", None) is None:
            by_table[sa.inspect(obj).mapper.local_table].append(obj)
    for table, rows in by_table.items():
        ids = session.scalars(
            sa.select(
                sa.func.nextval(sa.func.pg_get_serial_sequence(table.name, "id"))
            ).select_from(sa.func.generate_series(1, len(rows)))
        ).all()
        for obj, new_id in zip(rows, ids, strict=True):
            obj.id = new_id


def _take_numbers(
    session: Session, seller: Seller, document_type: DocumentType, year: int, count: int
) -> list[str]:
    """``count`` consecutive numbers in the caller's transaction (see numbering.next_number).

    One locked sequence row per seller and year, raised by ``count`` at once: the numbers
    stay gapless (a rollback gives them all back) and take three statements, not 3 × count.
    """
    first = next_number(session, seller, document_type, year)  # locks the row, takes one
    if count == 1:
        return [first]
    sequence = session.scalars(
        sa.select(DocumentSequence).where(
            DocumentSequence.seller_id == seller.id,
            DocumentSequence.document_type == document_type,
            DocumentSequence.year == year,
        )
    ).one()  # the row locked above, from the identity map
    taken = sequence.last_number
    sequence.last_number += count - 1
    return [first] + [
        _format_number(seller, document_type, year, taken + k) for k in range(1, count)
    ]


def _format_number(seller: Seller, document_type: DocumentType, year: int, seq: int) -> str:
    pattern = (
        seller.invoice_number_format
        if document_type == DocumentType.INVOICE
        else seller.credit_note_number_format
    )
    return pattern.format(year=year, seq=seq)


def mark_sent(session: Session, invoice: Invoice, *, at: dt.datetime | None = None) -> Invoice:
    """Record that the invoice was delivered to the buyer."""
    check_transition(invoice.status, InvoiceStatus.SENT)
    invoice.status = InvoiceStatus.SENT
    invoice.sent_at = at or utcnow()
    session.flush()
    return invoice


def mark_paid(
    session: Session, invoice: Invoice, *, at: dt.datetime | None = None, provider: str = "manual"
) -> Payment:
    """Record full payment of the open amount (e.g. a bank transfer seen by an admin)."""
    check_transition(invoice.status, InvoiceStatus.PAID)
    at = at or utcnow()
    tenant = session.get(Tenant, invoice.tenant_id)
    amount = Money(invoice.amount_due_minor - invoice.amount_paid_minor, invoice.currency)
    payment = Payment(
        tenant_id=tenant.id,
        invoice_id=invoice.id,
        provider=provider,
        amount_minor=amount.minor,
        currency=amount.currency,
        status=PaymentStatus.SUCCEEDED,
        succeeded_at=at,
    )
    session.add(payment)
    session.flush()
    if amount.minor:
        record_movement(
            session,
            tenant,
            kind=MovementKind.PAYMENT,
            amount=-amount,
            description=f"Payment of invoice {invoice.number}",
            occurred_at=at,
            invoice_id=invoice.id,
            payment_id=payment.id,
        )
    invoice.amount_paid_minor = invoice.amount_due_minor
    invoice.status = InvoiceStatus.PAID
    invoice.paid_at = at
    session.flush()
    return payment


def _close_unpaid(
    session: Session, invoice: Invoice, target: InvoiceStatus, kind: MovementKind, at: dt.datetime
) -> None:
    check_transition(invoice.status, target)
    open_minor = invoice.amount_due_minor - invoice.amount_paid_minor
    if open_minor and invoice.status in (InvoiceStatus.FINALIZED, InvoiceStatus.SENT):
        record_movement(
            session,
            session.get(Tenant, invoice.tenant_id),
            kind=kind,
            amount=Money(-open_minor, invoice.currency),
            description=f"{kind.value.replace('_', ' ').capitalize()} of invoice {invoice.number}",
            occurred_at=at,
            invoice_id=invoice.id,
        )
    invoice.status = target


def void_invoice(session: Session, invoice: Invoice, *, at: dt.datetime | None = None) -> Invoice:
    """Cancel an issued, unpaid invoice; its number stays used."""
    at = at or utcnow()
    _close_unpaid(session, invoice, InvoiceStatus.VOID, MovementKind.VOID, at)
    invoice.voided_at = at
    session.flush()
    return invoice


def mark_uncollectible(
    session: Session, invoice: Invoice, *, at: dt.datetime | None = None
) -> Invoice:
    """Write an unpaid invoice off."""
    at = at or utcnow()
    _close_unpaid(session, invoice, InvoiceStatus.UNCOLLECTIBLE, MovementKind.WRITE_OFF, at)
    invoice.uncollectible_at = at
    session.flush()
    return invoice


def delete_draft(session: Session, invoice: Invoice) -> None:
    """Delete a draft; issued invoices are voided or credited instead.

    :raise InvoiceNotDraft: when the invoice has been finalized.
    """
    if invoice.status != InvoiceStatus.DRAFT:
        raise InvoiceNotDraft(f"invoice {invoice.number} is {invoice.status}; void or credit it")
    session.delete(invoice)
    session.flush()


def mark_unpaid(session: Session, invoice: Invoice, *, at: dt.datetime | None = None) -> Invoice:
    """Undo "paid" (e.g. a bank transfer that bounced): payments are reversed in the ledger.

    :raise InvalidTransition: unless the invoice is paid.
    """
    check_transition(invoice.status, InvoiceStatus.SENT)
    at = at or utcnow()
    tenant = session.get(Tenant, invoice.tenant_id)
    payments = session.scalars(
        sa.select(Payment).where(
            Payment.invoice_id == invoice.id, Payment.status == PaymentStatus.SUCCEEDED
        )
    ).all()
    for payment in payments:
        payment.status = PaymentStatus.CANCELED
        open_minor = payment.amount_minor - payment.refunded_minor
        if open_minor:
            record_movement(
                session,
                tenant,
                kind=MovementKind.ADJUSTMENT,
                amount=Money(open_minor, payment.currency),
                description=f"Payment of invoice {invoice.number} reversed",
                occurred_at=at,
                invoice_id=invoice.id,
                payment_id=payment.id,
            )
    invoice.amount_paid_minor = 0
    invoice.paid_at = None
    invoice.status = InvoiceStatus.SENT
    session.flush()
    return invoice
