"""Read-side queries over invoices, always scoped to one tenant.

No Flask here: the pages and the JSON API share these functions.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload
from werkzeug.exceptions import NotFound

from portal.catalog.models import CompanyBillingSettings
from portal.db import parse_public_id, scoped
from portal.domain.money import Money
from portal.invoices.models import CreditNote, Invoice
from portal.invoices.states import OPEN_STATUSES, CreditNoteStatus, InvoiceStatus
from portal.memo import in_transaction
from portal.payments.models import Payment
from portal.tenancy.models import BillingProfile, Seller, Tenant


@dataclass(frozen=True)
class OpenAmounts:
    """What a tenant owes now, and how much of it is past due."""

    open: Money
    overdue: Money
    open_count: int
    overdue_count: int


def open_amounts(session: Session, tenant: Tenant, today: dt.date) -> OpenAmounts:
    """Sum of unpaid amounts of issued invoices, computed in SQL in one query."""
    outstanding = (
        Invoice.amount_due_minor - Invoice.amount_paid_minor - Invoice.amount_credited_minor
    )
    overdue = Invoice.due_date < today
    row = session.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(outstanding), 0),
            sa.func.coalesce(sa.func.sum(sa.case((overdue, outstanding), else_=0)), 0),
            sa.func.count(),
            sa.func.coalesce(sa.func.sum(sa.case((overdue, 1), else_=0)), 0),
        ).where(
            Invoice.tenant_id == tenant.id,
            Invoice.status.in_(OPEN_STATUSES),
            Invoice.currency == tenant.currency,
        )
    ).one()
    return OpenAmounts(
        open=Money(int(row[0]), tenant.currency),
        overdue=Money(int(row[1]), tenant.currency),
        open_count=int(row[2]),
        overdue_count=int(row[3]),
    )


def drafts_visible(session: Session, tenant: Tenant) -> bool:
    """Whether the seller shows draft invoices to this tenant (asked once per transaction)."""
    query = sa.select(CompanyBillingSettings.show_drafts_to_tenant).where(
        CompanyBillingSettings.tenant_id == tenant.id
    )
    return in_transaction(
        session, ("drafts_visible", tenant.id), lambda: bool(session.scalar(query))
    )


def visible_invoices(session: Session, tenant: Tenant) -> sa.Select:
    """The tenant's invoices it may see: drafts only when the seller shows them."""
    query = scoped(Invoice, tenant)
    if not drafts_visible(session, tenant):
        query = query.where(Invoice.status != InvoiceStatus.DRAFT)
    return query


def recent_invoices(session: Session, tenant: Tenant, limit: int = 5) -> list[Invoice]:
    """The latest invoices the tenant may see, newest first."""
    query = visible_invoices(session, tenant).order_by(
        Invoice.issue_date.desc().nulls_first(), Invoice.id.desc()
    )
    return list(session.scalars(query.limit(limit)))


# -- the invoice list: filter, sort, paginate ------------------------------------------------

#: Status tabs of the list, in display order; "draft" only where drafts are shown.
TABS = ("all", "open", "overdue", "paid", "draft")
#: Sortable columns.
SORT_FIELDS = ("number", "issue_date", "due_date", "total")
DIRECTIONS = ("asc", "desc")
DEFAULT_PAGE_SIZE = 25
MAX_PAGE_SIZE = 100
#: Longest number search accepted; longer input is cut (numbers are at most 40 characters).
MAX_SEARCH_LENGTH = 40


@dataclass(frozen=True)
class FilterError:
    """One unusable list parameter, replaced by its default.

    ``code`` is one of ``invalid_choice``, ``invalid_date``, ``date_range_reversed``,
    ``not_an_integer`` and ``out_of_range``; callers turn it into words.
    """

    field: str
    code: str
    value: str


def _arg(args: Mapping[str, Any], name: str) -> str:
    value = args.get(name)
    if value is None:
        return ""
    return str(value).strip()


def _parse_date(args: Mapping[str, Any], name: str, errors: list[FilterError]) -> dt.date | None:
    raw = _arg(args, name)
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        errors.append(FilterError(name, "invalid_date", raw))
        return None


def _parse_choice(
    args: Mapping[str, Any],
    name: str,
    choices: tuple[str, ...],
    default: str,
    errors: list[FilterError],
) -> str:
    raw = _arg(args, name).lower()
    if not raw:
        return default
    if raw not in choices:
        errors.append(FilterError(name, "invalid_choice", _arg(args, name)))
        return default
    return raw


@dataclass(frozen=True)
class InvoiceFilter:
    """What the invoice list shows and in which order."""

    #: Status tab: "all", "open" (finalized or sent), "overdue", "paid" or "draft".
    status: str = "all"
    #: Issued on or after this day.
    issued_from: dt.date | None = None
    #: Issued on or before this day.
    issued_to: dt.date | None = None
    #: Case-insensitive part of the invoice number.
    number: str = ""
    #: One of SORT_FIELDS.
    sort: str = "issue_date"
    #: "asc" or "desc".
    direction: str = "desc"

    @classmethod
    def from_args(
        cls, args: Mapping[str, Any], *, allow_drafts: bool = False
    ) -> tuple[InvoiceFilter, list[FilterError]]:
        """Parse query arguments; never raises.

        Unusable values are reported in the error list and replaced by their defaults. The
        "draft" tab is refused like an unknown tab unless ``allow_drafts`` (see
        :func:`drafts_visible`). A reversed date range is reported and swapped.
        """
        errors: list[FilterError] = []
        tabs = TABS if allow_drafts else tuple(t for t in TABS if t != "draft")
        status = _parse_choice(args, "status", tabs, cls.status, errors)
        issued_from = _parse_date(args, "issued_from", errors)
        issued_to = _parse_date(args, "issued_to", errors)
        if issued_from and issued_to and issued_from > issued_to:
            errors.append(FilterError("issued_to", "date_range_reversed", issued_to.isoformat()))
            issued_from, issued_to = issued_to, issued_from
        sort = _parse_choice(args, "sort", SORT_FIELDS, cls.sort, errors)
        direction = _parse_choice(args, "direction", DIRECTIONS, cls.direction, errors)
        # Printable characters only: PostgreSQL refuses NUL in a string literal.
        number = "".join(ch for ch in _arg(args, "number") if ch.isprintable())
        number = number.strip()[:MAX_SEARCH_LENGTH]
        flt = cls(status, issued_from, issued_to, number, sort, direction)
        return flt, errors

    def to_args(self) -> dict[str, str]:
        """The query arguments that differ from the defaults (for links and canonical URLs)."""
        defaults = InvoiceFilter()
        args: dict[str, str] = {}
        for name in ("status", "number", "sort", "direction"):
            if getattr(self, name) != getattr(defaults, name):
                args[name] = getattr(self, name)
        if self.issued_from:
            args["issued_from"] = self.issued_from.isoformat()
        if self.issued_to:
            args["issued_to"] = self.issued_to.isoformat()
        return args

    def with_changes(self, **changes: Any) -> InvoiceFilter:
        """A copy with some fields changed."""
        return replace(self, **changes)


def parse_paging(args: Mapping[str, Any]) -> tuple[int, int, list[FilterError]]:
    """``page`` and ``page_size`` from query arguments; never raises.

    Non-numbers fall back to page 1 and the default size; numbers out of range are
    reported and clamped (page >= 1, 1 <= page_size <= MAX_PAGE_SIZE).
    """
    errors: list[FilterError] = []
    values = {"page": 1, "page_size": DEFAULT_PAGE_SIZE}
    bounds = {"page": (1, None), "page_size": (1, MAX_PAGE_SIZE)}
    for name in values:
        raw = _arg(args, name)
        if not raw:
            continue
        try:
            number = int(raw)
        except ValueError:
            errors.append(FilterError(name, "not_an_integer", raw))
            continue
        low, high = bounds[name]
        clamped = max(low, number if high is None else min(number, high))
        if clamped != number:
            errors.append(FilterError(name, "out_of_range", raw))
        values[name] = clamped
    return values["page"], values["page_size"], errors


@dataclass(frozen=True)
class InvoicePage:
    """One page of the invoice list."""

    items: list[Invoice]
    #: Invoices matching the filter, on all pages.
    total: int
    #: This page, from 1 (a page past the end is the last page).
    page: int
    page_size: int
    #: Number of pages; at least 1.
    pages: int

    @property
    def first_index(self) -> int:
        """Position of the first item in the whole list, from 1 (0 when empty)."""
        return (self.page - 1) * self.page_size + 1 if self.items else 0

    @property
    def last_index(self) -> int:
        return (self.page - 1) * self.page_size + len(self.items)


def _status_condition(tab: str, today: dt.date) -> sa.ColumnElement[bool] | None:
    if tab == "open":
        return Invoice.status.in_(OPEN_STATUSES)
    if tab == "overdue":
        return sa.and_(Invoice.status.in_(OPEN_STATUSES), Invoice.due_date < today)
    if tab == "paid":
        return Invoice.status == InvoiceStatus.PAID
    if tab == "draft":
        return Invoice.status == InvoiceStatus.DRAFT
    return None


def _filtered(query: sa.Select, flt: InvoiceFilter) -> sa.Select:
    """Apply every part of the filter except the status tab."""
    if flt.issued_from:
        query = query.where(Invoice.issue_date >= flt.issued_from)
    if flt.issued_to:
        query = query.where(Invoice.issue_date <= flt.issued_to)
    if flt.number:
        query = query.where(
            sa.func.lower(Invoice.number).contains(flt.number.lower(), autoescape=True)
        )
    return query


_SORT_COLUMNS = {
    "number": Invoice.number,
    "issue_date": Invoice.issue_date,
    "due_date": Invoice.due_date,
    "total": Invoice.tax_inclusive_minor,
}


def _ordering(flt: InvoiceFilter) -> list[sa.ColumnElement]:
    column = _SORT_COLUMNS[flt.sort]
    # Drafts have no number, issue or due date: the same NULL order on every database
    # (last ascending, first descending, as if NULL were the largest value).
    if flt.direction == "asc":
        return [column.asc().nulls_last(), Invoice.id.asc()]
    return [column.desc().nulls_first(), Invoice.id.desc()]


def list_invoices(
    session: Session,
    tenant: Tenant,
    flt: InvoiceFilter,
    page: int = 1,
    page_size: int = DEFAULT_PAGE_SIZE,
    *,
    today: dt.date,
    past_end: str = "last",
    total: int | None = None,
) -> InvoicePage:
    """One page of the tenant's visible invoices, filtered and sorted in SQL.

    The id breaks ties so pages never overlap; ``page_size`` is bounded to 1..100. A page
    past the end gives the last page (``past_end="last"``, for people following a stale
    link) or no items (``"empty"``, for API clients that page until the list runs out).
    ``total``, when the caller already counted the filtered invoices (the tab counts do),
    saves counting them again.
    """
    page_size = max(1, min(int(page_size), MAX_PAGE_SIZE))
    query = _filtered(visible_invoices(session, tenant), flt)
    condition = _status_condition(flt.status, today)
    if condition is not None:
        query = query.where(condition)
    if total is None:
        counting = query.with_only_columns(sa.func.count(), maintain_column_froms=True)
        total = session.scalar(counting) or 0
    pages = max(1, math.ceil(total / page_size))
    page = max(1, int(page) if past_end == "empty" else min(int(page), pages))
    items = list(
        session.scalars(
            query.order_by(*_ordering(flt))
            .limit(page_size)
            .offset((page - 1) * page_size)
            # A list shows no parties: their snapshots (JSON) are not read for 25 rows.
            .options(sa.orm.defer(Invoice.seller_snapshot), sa.orm.defer(Invoice.buyer_snapshot))
        )
    )
    return InvoicePage(items=items, total=total, page=page, page_size=page_size, pages=pages)


def count_by_tab(
    session: Session, tenant: Tenant, flt: InvoiceFilter, *, today: dt.date
) -> dict[str, int]:
    """How many visible invoices each status tab holds under the rest of the filter.

    One query; "draft" is only present when the tenant may see drafts.
    """
    show_drafts = drafts_visible(session, tenant)
    tabs = [t for t in TABS if t != "all" and (show_drafts or t != "draft")]
    columns: list[sa.ColumnElement[int]] = [sa.func.count()]
    for tab in tabs:
        condition = _status_condition(tab, today)
        assert condition is not None  # only "all" has none, and it is not counted here
        columns.append(sa.func.coalesce(sa.func.sum(sa.case((condition, 1), else_=0)), 0))
    query = _filtered(sa.select(*columns).where(Invoice.tenant_id == tenant.id), flt)
    if not show_drafts:
        query = query.where(Invoice.status != InvoiceStatus.DRAFT)
    row = session.execute(query).one()
    return {"all": int(row[0]), **{tab: int(n) for tab, n in zip(tabs, row[1:], strict=True)}}


# -- one invoice ------------------------------------------------------------------------------


def load_invoice(session: Session, tenant: Tenant, public_id: Any) -> Invoice:
    """The tenant's invoice with its lines, VAT breakdown and allowances loaded.

    :raise NotFound: for another tenant's invoice, an unknown or malformed id, and a draft
        the tenant may not see: the answer never tells whether the invoice exists.
    """
    uid = parse_public_id(public_id)
    if uid is None or tenant is None:
        raise NotFound()
    invoice = session.scalars(
        visible_invoices(session, tenant)
        .where(Invoice.public_id == uid)
        .options(
            selectinload(Invoice.lines),
            selectinload(Invoice.vat_breakdown),
            selectinload(Invoice.allowance_charges),
        )
    ).one_or_none()
    if invoice is None:
        raise NotFound()
    return invoice


@dataclass(frozen=True)
class InvoiceDetail:
    """Everything the invoice page shows, loaded in a fixed number of queries."""

    invoice: Invoice
    #: Payments and payment attempts for the invoice, oldest first.
    payments: list[Payment] = field(default_factory=list)
    #: Issued (and voided) credit notes against the invoice, oldest first.
    credit_notes: list[CreditNote] = field(default_factory=list)
    #: Seller data as printed (the snapshot; the live seller for drafts).
    seller: dict = field(default_factory=dict)
    #: Buyer data as printed (the snapshot; the live billing profile for drafts).
    buyer: dict = field(default_factory=dict)


def invoice_detail(session: Session, tenant: Tenant, public_id: Any) -> InvoiceDetail:
    """The tenant's invoice with lines, breakdown, allowances, payments and credit notes.

    :raise NotFound: as :func:`load_invoice`.
    """
    invoice = load_invoice(session, tenant, public_id)
    payments = list(
        session.scalars(
            sa.select(Payment)
            .where(Payment.tenant_id == tenant.id, Payment.invoice_id == invoice.id)
            .options(selectinload(Payment.payment_method))
            .order_by(Payment.created_at, Payment.id)
        )
    )
    credit_notes = list(
        session.scalars(
            sa.select(CreditNote)
            .where(
                CreditNote.tenant_id == tenant.id,
                CreditNote.invoice_id == invoice.id,
                CreditNote.status != CreditNoteStatus.DRAFT,
            )
            .order_by(CreditNote.issue_date, CreditNote.id)
        )
    )
    seller, buyer = invoice_parties(session, invoice)
    return InvoiceDetail(invoice, payments, credit_notes, seller, buyer)


def invoice_parties(session: Session, invoice: Invoice | CreditNote) -> tuple[dict, dict]:
    """Seller and buyer as the invoice prints them.

    Issued invoices use the data frozen at finalization; drafts have none yet and show the
    live seller and billing profile (the data finalization would freeze).
    """
    # Imported here: services imports the ledger and numbering, which pages do not need.
    from portal.invoices.issuing import BUYER_SNAPSHOT_FIELDS, SELLER_SNAPSHOT_FIELDS

    seller = invoice.seller_snapshot
    if seller is None:
        live = session.get_one(Seller, invoice.seller_id)
        seller = {name: getattr(live, name) for name in SELLER_SNAPSHOT_FIELDS} if live else {}
    buyer = invoice.buyer_snapshot
    if buyer is None:
        profile = session.scalars(
            sa.select(BillingProfile).where(BillingProfile.tenant_id == invoice.tenant_id)
        ).first()
        if profile is not None:
            buyer = {name: getattr(profile, name) for name in BUYER_SNAPSHOT_FIELDS}
        else:
            tenant = session.get_one(Tenant, invoice.tenant_id)
            buyer = {"company_name": tenant.name if tenant else ""}
    return dict(seller), dict(buyer)


# -- across companies (admin console, console API) --------------------------------------------

#: The day an invoice is listed by across companies: its issue date, a draft's period start.
LIST_DAY = sa.func.coalesce(Invoice.issue_date, Invoice.period_start)


def find_invoice(session: Session, public_id: Any, tenant: Tenant | None = None) -> Invoice | None:
    """The invoice with ``public_id`` in any state (drafts too), or None.

    :param tenant: only this tenant's invoice; None for any company's (admin reads).
    """
    uid = parse_public_id(public_id)
    if uid is None:
        return None
    query = sa.select(Invoice) if tenant is None else scoped(Invoice, tenant)
    return session.scalars(query.where(Invoice.public_id == uid)).first()


def invoice_public_ids(session: Session, ids: set[int]) -> dict[int, str]:
    """Public ids of the invoices with these row ids (row id -> public id as text)."""
    if not ids:
        return {}
    rows = session.execute(sa.select(Invoice.id, Invoice.public_id).where(Invoice.id.in_(ids)))
    return {row_id: str(public_id) for row_id, public_id in rows}


def admin_invoice_list(
    session: Session,
    *,
    tenant_id: int | None = None,
    day_from: dt.date | None = None,
    day_to: dt.date | None = None,
    drafts_by_period_start: bool = True,
    status: InvoiceStatus | None = None,
    company: str = "",
    where: sa.ColumnElement[bool] | None = None,
    order_by: list[sa.ColumnElement] | tuple[sa.ColumnElement, ...] = (),
    limit: int,
    offset: int = 0,
) -> tuple[list[sa.Row[tuple[Invoice, Tenant]]], int]:
    """One page of invoices of every company (or one), with their companies, and the total.

    Filtering, counting, sorting and paging run in SQL. Rows are ``(Invoice, Tenant)``; the
    total counts every matching invoice, not only the page.

    :param tenant_id: only this company's invoices; None for every company.
    :param day_from: the first day listed (inclusive); None for no lower bound.
    :param day_to: the last day listed (inclusive); None for no upper bound.
    :param drafts_by_period_start: the day a range applies to: True for :data:`LIST_DAY`
        (the issue date, a draft's period start); False for the issue date alone (an
        invoice without one, a draft, is then outside every range).
    :param status: only invoices in this state.
    :param company: only companies whose name or slug contains this text (any case).
    :param where: a further condition over ``Invoice`` and ``Tenant`` columns (e.g. the
        console's filter parameter).
    :param order_by: sort terms; empty sorts by :data:`LIST_DAY`, newest first. The
        invoice id, newest first, always breaks ties, so pages are stable.
    :param limit: rows of the page.
    :param offset: rows skipped before the page.
    """
    query = sa.select(Invoice, Tenant).join(Tenant, Tenant.id == Invoice.tenant_id)
    day = LIST_DAY if drafts_by_period_start else Invoice.issue_date
    if tenant_id is not None:
        query = query.where(Invoice.tenant_id == tenant_id)
    if day_from is not None:
        query = query.where(day >= day_from)
    if day_to is not None:
        query = query.where(day <= day_to)
    if status is not None:
        query = query.where(Invoice.status == status)
    if company:
        needle = f"%{company.lower()}%"
        query = query.where(
            sa.or_(sa.func.lower(Tenant.name).like(needle), sa.func.lower(Tenant.slug).like(needle))
        )
    if where is not None:
        query = query.where(where)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    order = list(order_by) or [LIST_DAY.desc()]
    rows = session.execute(
        query.order_by(*order, Invoice.id.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), int(total)
