"""Invoice use cases: create drafts, compute totals, finalize, send, pay, void, write off.

Services flush and never commit; the caller (a view, a job, the CLI) commits once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from portal.catalog.models import CompanyBillingSettings
from portal.db import lock, utcnow
from portal.domain.money import Money
from portal.domain.totals import AllowanceCharge, LineInput, compute_totals, line_net
from portal.invoices.errors import InvoiceHasNoLines, InvoiceNotDraft
from portal.invoices.models import (
    Invoice,
    InvoiceAllowanceCharge,
    InvoiceLine,
    InvoiceVatBreakdown,
)
from portal.invoices.numbering import take_numbers
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
    return [InvoiceAllowanceCharge(**row) for row in discount_rows(lines, percent, currency)]


def discount_rows(
    lines: Iterable[InvoiceLine | DraftLine], percent: Decimal, currency: str
) -> list[dict]:
    """The column values of :func:`discount_allowances`, without ORM objects."""
    bases: dict[tuple, int] = {}
    for line in lines:
        key = (line.vat_category, line.vat_rate)
        net = line_net(
            LineInput(line.quantity, line.unit_price, line.vat_category.value, line.vat_rate),
            currency,
        )
        bases[key] = bases.get(key, 0) + net.minor
    return [
        {
            "is_charge": False,
            "amount_minor": int(
                (Decimal(base) * percent / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)
            ),
            "base_minor": base,
            "percent": percent,
            "reason": "Discount",
            "reason_code": "95",  # UNCL5189: discount
            "vat_category": category,
            "vat_rate": rate,
        }
        for (category, rate), base in bases.items()
        if base > 0
    ]


@dataclass
class DraftTotals:
    """What :func:`recompute_totals` writes: line nets, document totals, VAT breakdown."""

    line_nets: list[int]
    columns: dict[str, int]  # lines_total_minor … amount_due_minor
    vat_rows: list[dict]  # InvoiceVatBreakdown column values, in breakdown order


def draft_totals(lines: Sequence, allowance_charges: Sequence[dict], currency: str) -> DraftTotals:
    """Totals of lines (InvoiceLine or DraftLine) and allowances/charges (dicts with
    ``is_charge``, ``amount_minor``, ``vat_category`` and ``vat_rate``)."""
    totals = compute_totals(
        [LineInput(li.quantity, li.unit_price, li.vat_category.value, li.vat_rate) for li in lines],
        currency,
        [
            AllowanceCharge(
                ac["is_charge"],
                Money(ac["amount_minor"], currency),
                VatCategory(ac["vat_category"]).value,
                ac["vat_rate"],
            )
            for ac in allowance_charges
        ],
    )
    exemptions = {
        (li.vat_category.value, li.vat_rate): (li.vat_exemption_reason, li.vat_exemption_code)
        for li in reversed(lines)
    }
    return DraftTotals(
        line_nets=[net.minor for net in totals.line_nets],
        columns={
            "lines_total_minor": totals.lines_total.minor,
            "allowance_total_minor": totals.allowance_total.minor,
            "charge_total_minor": totals.charge_total.minor,
            "tax_exclusive_minor": totals.tax_exclusive.minor,
            "tax_minor": totals.tax.minor,
            "tax_inclusive_minor": totals.tax_inclusive.minor,
            "prepaid_minor": totals.prepaid.minor,
            "rounding_minor": totals.rounding.minor,
            "amount_due_minor": totals.amount_due.minor,
        },
        vat_rows=[
            {
                "category": VatCategory(group.category),
                "rate": group.rate,
                "taxable_minor": group.taxable.minor,
                "tax_minor": group.tax.minor,
                "exemption_reason": exemptions.get((group.category, group.rate), (None, None))[0],
                "exemption_code": exemptions.get((group.category, group.rate), (None, None))[1],
            }
            for group in totals.vat_breakdown
        ],
    )


def recompute_totals(invoice: Invoice) -> None:
    """Recompute line nets, VAT breakdown and totals of a draft from its lines.

    :raise InvoiceNotDraft: when the invoice is issued (issued invoices are frozen).
    """
    if invoice.status != InvoiceStatus.DRAFT:
        raise InvoiceNotDraft(invoice.number)
    totals = draft_totals(
        invoice.lines,
        [
            {
                "is_charge": ac.is_charge,
                "amount_minor": ac.amount_minor,
                "vat_category": ac.vat_category,
                "vat_rate": ac.vat_rate,
            }
            for ac in invoice.allowance_charges
        ],
        invoice.currency,
    )
    for line, net in zip(invoice.lines, totals.line_nets, strict=True):
        line.net_amount_minor = net
    for name, value in totals.columns.items():
        setattr(invoice, name, value)
    invoice.vat_breakdown = [InvoiceVatBreakdown(**row) for row in totals.vat_rows]


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
            "seller_snapshot": dict(self.seller_snapshots[seller.id]),
            "buyer_snapshot": _snapshot(profile, BUYER_SNAPSHOT_FIELDS)
            or {"company_name": tenant.name},
            "language": profile.language if profile else "en",
            "buyer_reference": buyer_reference,
            "purchase_order": purchase_order,
            "status": InvoiceStatus.FINALIZED,
            "finalized_at": finalized_at,
        }


#: Told ``(session, invoice_ids)`` when :func:`insert_invoices` finalizes invoices: that
#: bypasses the ORM, so the before_flush listeners that act on a finalization (automatic
#: sending, collection) register here as well.
bulk_finalized_listeners: list[Callable[[Session, list[int]], None]] = []


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
    rows, line_rows, ac_rows, vat_rows = [], [], [], []
    for new in invoices:
        tenant = new.tenant
        allowances = (
            discount_rows(new.lines, new.discount_percent, tenant.currency)
            if new.discount_percent
            else []
        )
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
    movements = []
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
    ids = _insert_rows(session, Invoice.__table__, rows)
    for child in (*line_rows, *ac_rows, *vat_rows):
        child["invoice_id"] = ids[child["invoice_id"]]
    for model, child_rows in (
        (InvoiceLine, line_rows),
        (InvoiceAllowanceCharge, ac_rows),
        (InvoiceVatBreakdown, vat_rows),
    ):
        _write_rows(session, model.__table__, child_rows)
    finalized = [row["id"] for row in to_finalize]
    if movements:
        _write_rows(
            session,
            LedgerMovement.__table__,
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
    if finalized:
        for listener in bulk_finalized_listeners:
            listener(session, finalized)
    return ids, finalized


def _issue_time(session: Session) -> dt.datetime:
    """``finalized_at`` of invoices that :func:`insert_invoices` issues with their lines.

    On PostgreSQL the transaction's start time: the freeze trigger (migration 0009) lets
    lines be inserted under a finalized invoice only in the transaction that finalized it,
    recognized by that time; elsewhere now.
    """
    if session.get_bind().dialect.name == "postgresql":
        return session.scalar(sa.select(sa.func.transaction_timestamp()))
    return utcnow()


def _insert_rows(session: Session, table: sa.Table, rows: list[dict]) -> list[int]:
    """Insert ``rows`` (each given its ``id``) and return their ids, in order.

    PostgreSQL: ids from the sequence in one query, then :func:`_write_rows`; elsewhere
    INSERT … RETURNING in parameter order.
    """
    if session.get_bind().dialect.name == "postgresql":
        ids = session.scalars(
            sa.select(
                sa.func.nextval(sa.func.pg_get_serial_sequence(table.name, "id"))
            ).select_from(sa.func.generate_series(1, len(rows)))
        ).all()
        for row, new_id in zip(rows, ids, strict=True):
            row["id"] = new_id
        _write_rows(session, table, rows)
        return list(ids)
    ids = session.scalars(
        sa.insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
    ).all()
    for row, new_id in zip(rows, ids, strict=True):
        row["id"] = new_id
    return list(ids)


def _write_rows(session: Session, table: sa.Table, rows: list[dict]) -> None:
    """Insert ``rows`` (dicts with the same keys): COPY on PostgreSQL with psycopg, else an
    executemany INSERT.

    COPY costs the server and the client a fraction of one INSERT per row; the values go
    through the columns' own bind processors first, so they are checked and converted
    exactly as an INSERT would (exact decimals, UTC times, enums by value, JSONB). Row
    triggers (the freeze guard) and column defaults apply to COPY as to INSERT.
    """
    if not rows:
        return
    connection = session.connection()
    dialect = connection.dialect
    if dialect.name != "postgresql" or dialect.driver != "psycopg":
        session.execute(sa.insert(table), rows)
        return
    names = list(rows[0])
    processors = [table.c[name].type._cached_bind_processor(dialect) for name in names]
    converters = [(name, processor) for name, processor in zip(names, processors, strict=True)]
    quote = dialect.identifier_preparer.quote
    sql = f"COPY {quote(table.name)} ({', '.join(quote(name) for name in names)}) FROM STDIN"
    cursor = connection.connection.driver_connection.cursor()
    try:
        with cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(
                    [
                        row[name]
                        if processor is None or row[name] is None
                        else processor(row[name])
                        for name, processor in converters
                    ]
                )
    finally:
        cursor.close()


def among(session: Session, column: sa.ColumnElement, ids: Iterable[int]) -> sa.ColumnElement:
    """``column IN ids`` for a batch of integer keys.

    On PostgreSQL ``column = ANY(:ids)``: one array parameter, so the statement's text is
    the same for every batch (cached by SQLAlchemy and psycopg, prepared by the server)
    instead of hundreds of placeholders parsed again for each batch.
    """
    ids = list(ids)
    if session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, ids, type_=postgresql.ARRAY(sa.BigInteger)))
    return column.in_(ids)


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


def mark_sent(session: Session, invoice: Invoice, *, at: dt.datetime | None = None) -> Invoice:
    """Record that the invoice was delivered to the buyer."""
    lock(session, invoice)
    check_transition(invoice.status, InvoiceStatus.SENT)
    invoice.status = InvoiceStatus.SENT
    invoice.sent_at = at or utcnow()
    session.flush()
    return invoice


def mark_paid(
    session: Session, invoice: Invoice, *, at: dt.datetime | None = None, provider: str = "manual"
) -> Payment:
    """Record payment of what is open (e.g. a bank transfer seen by an admin).

    The payment covers what is neither paid nor credited yet, so an invoice is never paid
    beyond its total. A written-off invoice that is paid after all gets its write-off
    reversed first, so the ledger owes the invoice again before the payment settles it.

    :raise InvalidTransition: unless the invoice is issued and unpaid (checked under lock).
    """
    lock(session, invoice)
    check_transition(invoice.status, InvoiceStatus.PAID)
    at = at or utcnow()
    tenant = session.get(Tenant, invoice.tenant_id)
    owed = invoice.amount_due_minor - invoice.amount_paid_minor - invoice.amount_credited_minor
    amount = Money(max(owed, 0), invoice.currency)
    reverse_write_off(session, invoice, at=at)
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
    invoice.amount_paid_minor += amount.minor
    invoice.status = InvoiceStatus.PAID
    invoice.paid_at = at
    session.flush()
    return payment


def reverse_write_off(session: Session, invoice: Invoice, *, at: dt.datetime) -> None:
    """Before a written-off invoice is paid after all: the ledger owes it again.

    The caller holds the invoice's lock; nothing happens unless it is uncollectible.
    """
    if invoice.status != InvoiceStatus.UNCOLLECTIBLE:
        return
    # Written off less what earlier reversals gave back (an invoice may be written off,
    # paid, marked unpaid and written off again); a write-off is negative, its reversal not.
    outstanding = -int(
        session.scalar(
            sa.select(sa.func.coalesce(sa.func.sum(LedgerMovement.amount_minor), 0)).where(
                LedgerMovement.invoice_id == invoice.id,
                LedgerMovement.payment_id.is_(None),
                LedgerMovement.kind.in_((MovementKind.WRITE_OFF, MovementKind.ADJUSTMENT)),
            )
        )
    )
    if outstanding > 0:
        record_movement(
            session,
            session.get(Tenant, invoice.tenant_id),
            kind=MovementKind.ADJUSTMENT,
            amount=Money(outstanding, invoice.currency),
            description=f"Write-off of invoice {invoice.number} reversed",
            occurred_at=at,
            invoice_id=invoice.id,
        )


def _close_unpaid(
    session: Session, invoice: Invoice, target: InvoiceStatus, kind: MovementKind, at: dt.datetime
) -> None:
    """Void or write off: what the ledger still holds as owed on the invoice is reversed."""
    lock(session, invoice)
    check_transition(invoice.status, target)
    # What the tenant still owes on this invoice: its total less payments and credit notes
    # (nothing once it has been written off, so voiding a written-off invoice books nothing).
    open_minor = (
        invoice.amount_due_minor - invoice.amount_paid_minor - invoice.amount_credited_minor
    )
    if open_minor > 0 and invoice.status in (InvoiceStatus.FINALIZED, InvoiceStatus.SENT):
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

    :raise InvoiceNotDraft: when the invoice has been finalized (checked under lock).
    """
    lock(session, invoice)
    if invoice.status != InvoiceStatus.DRAFT:
        raise InvoiceNotDraft(f"invoice {invoice.number} is {invoice.status}; void or credit it")
    session.delete(invoice)
    session.flush()


def mark_unpaid(session: Session, invoice: Invoice, *, at: dt.datetime | None = None) -> Invoice:
    """Undo "paid" (e.g. a bank transfer that bounced): payments are reversed in the ledger.

    :raise InvalidTransition: unless the invoice is paid (checked under lock).
    """
    lock(session, invoice)
    check_transition(invoice.status, InvoiceStatus.SENT)
    at = at or utcnow()
    tenant = session.get(Tenant, invoice.tenant_id)
    payments = session.scalars(
        sa.select(Payment)
        .where(Payment.invoice_id == invoice.id, Payment.status == PaymentStatus.SUCCEEDED)
        .with_for_update()
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
