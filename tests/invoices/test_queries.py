"""Invoice list and detail queries: parsing, filtering, sorting, paging, scoping."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import NotFound

from portal.catalog.models import CompanyBillingSettings
from portal.extensions import db
from portal.invoices.credit_notes import issue_credit_note
from portal.invoices.drafts import DraftLine
from portal.invoices.lifecycle import mark_paid, mark_sent, void_invoice
from portal.invoices.queries import (
    DEFAULT_PAGE_SIZE,
    MAX_PAGE_SIZE,
    SORT_FIELDS,
    TABS,
    FilterError,
    InvoiceFilter,
    count_by_tab,
    invoice_detail,
    invoice_parties,
    list_invoices,
    load_invoice,
    parse_paging,
)
from portal.invoices.states import InvoiceKind, InvoiceStatus
from portal.tenancy.models import Tenant
from tests.factories.invoices import make_invoice
from tests.factories.tenancy import BillingProfileFactory, SellerFactory, TenantFactory

TODAY = dt.date(2026, 6, 15)

# -- parsing (pure) --------------------------------------------------------------------------


def test_defaults():
    flt, errors = InvoiceFilter.from_args({})
    assert flt == InvoiceFilter()
    assert (flt.status, flt.sort, flt.direction) == ("all", "issue_date", "desc")
    assert errors == [] and flt.to_args() == {}


def test_parses_every_field():
    flt, errors = InvoiceFilter.from_args(
        MultiDict(
            {
                "status": "Overdue",
                "issued_from": "2026-01-01",
                "issued_to": "2026-03-31",
                "number": "  inv-2026  ",
                "sort": "total",
                "direction": "ASC",
            }
        )
    )
    assert errors == []
    assert flt == InvoiceFilter(
        "overdue", dt.date(2026, 1, 1), dt.date(2026, 3, 31), "inv-2026", "total", "asc"
    )
    assert flt.to_args() == {
        "status": "overdue",
        "number": "inv-2026",
        "sort": "total",
        "direction": "asc",
        "issued_from": "2026-01-01",
        "issued_to": "2026-03-31",
    }


@pytest.mark.parametrize(
    ("args", "error"),
    [
        ({"status": "archived"}, FilterError("status", "invalid_choice", "archived")),
        ({"status": "draft"}, FilterError("status", "invalid_choice", "draft")),
        ({"issued_from": "2026-02-30"}, FilterError("issued_from", "invalid_date", "2026-02-30")),
        ({"issued_to": "tomorrow"}, FilterError("issued_to", "invalid_date", "tomorrow")),
        ({"sort": "tenant_id"}, FilterError("sort", "invalid_choice", "tenant_id")),
        ({"direction": "up"}, FilterError("direction", "invalid_choice", "up")),
    ],
)
def test_bad_values_are_reported_and_replaced_by_defaults(args, error):
    flt, errors = InvoiceFilter.from_args(args)
    assert errors == [error]
    assert flt == InvoiceFilter()


def test_drafts_tab_only_when_allowed():
    assert InvoiceFilter.from_args({"status": "draft"}, allow_drafts=True) == (
        InvoiceFilter(status="draft"),
        [],
    )


def test_reversed_range_is_swapped_and_reported():
    flt, errors = InvoiceFilter.from_args({"issued_from": "2026-05-01", "issued_to": "2026-01-01"})
    assert (flt.issued_from, flt.issued_to) == (dt.date(2026, 1, 1), dt.date(2026, 5, 1))
    assert [e.code for e in errors] == ["date_range_reversed"]


def test_long_search_is_cut():
    flt, errors = InvoiceFilter.from_args({"number": "x" * 500})
    assert flt.number == "x" * 40 and errors == []


@pytest.mark.parametrize(
    ("args", "page", "page_size", "codes"),
    [
        ({}, 1, DEFAULT_PAGE_SIZE, []),
        ({"page": "3", "page_size": "10"}, 3, 10, []),
        ({"page": "abc"}, 1, DEFAULT_PAGE_SIZE, ["not_an_integer"]),
        ({"page": "0"}, 1, DEFAULT_PAGE_SIZE, ["out_of_range"]),
        ({"page": "-5"}, 1, DEFAULT_PAGE_SIZE, ["out_of_range"]),
        ({"page_size": "10000"}, 1, MAX_PAGE_SIZE, ["out_of_range"]),
        ({"page_size": "0"}, 1, 1, ["out_of_range"]),
        ({"page_size": "1.5"}, 1, DEFAULT_PAGE_SIZE, ["not_an_integer"]),
        ({"page": "", "page_size": " "}, 1, DEFAULT_PAGE_SIZE, []),
    ],
)
def test_parse_paging(args, page, page_size, codes):
    parsed_page, parsed_size, errors = parse_paging(args)
    assert (parsed_page, parsed_size) == (page, page_size)
    assert [e.code for e in errors] == codes


NAMES = ["status", "issued_from", "issued_to", "number", "sort", "direction", "page", "page_size"]


@given(st.dictionaries(st.sampled_from(NAMES), st.text(max_size=30)), st.booleans())
def test_parsing_never_raises(args, allow_drafts):
    flt, errors = InvoiceFilter.from_args(args, allow_drafts=allow_drafts)
    page, page_size, paging_errors = parse_paging(args)
    assert flt.status in TABS and flt.sort in SORT_FIELDS and flt.direction in {"asc", "desc"}
    assert page >= 1 and 1 <= page_size <= MAX_PAGE_SIZE
    assert all(isinstance(e, FilterError) for e in [*errors, *paging_errors])


@given(
    st.builds(
        InvoiceFilter,
        status=st.sampled_from(TABS),
        issued_from=st.none() | st.dates(dt.date(2000, 1, 1), dt.date(2030, 1, 1)),
        issued_to=st.none() | st.dates(dt.date(2030, 1, 2), dt.date(2040, 1, 1)),
        number=st.text(alphabet="INV-0123456789", max_size=20).map(str.strip),
        sort=st.sampled_from(SORT_FIELDS),
        direction=st.sampled_from(["asc", "desc"]),
    )
)
def test_to_args_round_trips(flt):
    assert InvoiceFilter.from_args(flt.to_args(), allow_drafts=True) == (flt, [])


# -- listing ---------------------------------------------------------------------------------


def _line(price: str) -> list[DraftLine]:
    return [DraftLine("Service", Decimal(1), Decimal(price), vat_rate=Decimal(0))]


def _issue(tenant, month: int, issue: dt.date, price: str = "10.00", **kwargs):
    start = dt.date(2025, month, 1)
    return make_invoice(
        tenant,
        period_start=start,
        period_end=start + dt.timedelta(days=20),
        issue_date=issue,
        lines=_line(price),
        **kwargs,
    )


@pytest.fixture
def tenant(app, session):
    tenant = TenantFactory()
    BillingProfileFactory(tenant=tenant, payment_terms_days=10)
    session.commit()
    return tenant


@pytest.fixture
def book(tenant, session):
    """Invoices of one tenant on TODAY = 2026-06-15 (due 10 days after issue)."""
    invoices = {
        "overdue": _issue(tenant, 1, dt.date(2026, 5, 1), "40.00"),  # due 05-11
        "due_today": _issue(tenant, 2, dt.date(2026, 6, 5), "20.00"),  # due 06-15
        "sent": _issue(tenant, 3, dt.date(2026, 6, 10), "30.00"),  # due 06-20
        "paid": _issue(tenant, 4, dt.date(2026, 4, 1), "50.00"),
        "void": _issue(tenant, 5, dt.date(2026, 3, 1), "60.00"),
        "draft": _issue(tenant, 6, None, "70.00", finalize=False),
    }
    mark_sent(session, invoices["sent"])
    mark_paid(session, invoices["paid"])
    void_invoice(session, invoices["void"])
    session.commit()
    return invoices


def _listed(session, tenant, flt=None, page=1, page_size=25):
    result = list_invoices(session, tenant, flt or InvoiceFilter(), page, page_size, today=TODAY)
    return result, [i.id for i in result.items]


def _ids(book, *names):
    return [book[name].id for name in names]


@pytest.mark.parametrize(
    ("status", "names"),
    [
        ("all", ["sent", "due_today", "overdue", "paid", "void"]),
        ("open", ["sent", "due_today", "overdue"]),
        ("overdue", ["overdue"]),  # due today is not overdue yet
        ("paid", ["paid"]),
        ("draft", []),  # drafts stay hidden even if asked for
    ],
)
def test_status_tabs(session, tenant, book, status, names):
    _, ids = _listed(session, tenant, InvoiceFilter(status=status))
    assert ids == _ids(book, *names)


def test_drafts_listed_when_the_seller_shows_them(session, tenant, book):
    session.add(CompanyBillingSettings(tenant_id=tenant.id, show_drafts_to_tenant=True))
    session.commit()
    _, ids = _listed(session, tenant, InvoiceFilter(status="draft"))
    assert ids == _ids(book, "draft")
    _, all_ids = _listed(session, tenant)
    assert all_ids[0] == book["draft"].id  # no issue date: first when newest first
    _, ascending = _listed(session, tenant, InvoiceFilter(direction="asc"))
    assert ascending[-1] == book["draft"].id  # and last when oldest first
    assert count_by_tab(session, tenant, InvoiceFilter(), today=TODAY)["draft"] == 1


def test_counts_per_tab_follow_the_other_filters(session, tenant, book):
    counts = count_by_tab(session, tenant, InvoiceFilter(status="paid"), today=TODAY)
    assert counts == {"all": 5, "open": 3, "overdue": 1, "paid": 1}
    ranged = InvoiceFilter(issued_from=dt.date(2026, 5, 1), issued_to=dt.date(2026, 6, 5))
    counts = count_by_tab(session, tenant, ranged, today=TODAY)
    assert counts == {"all": 2, "open": 2, "overdue": 1, "paid": 0}


def test_date_range_is_inclusive(session, tenant, book):
    flt = InvoiceFilter(issued_from=dt.date(2026, 5, 1), issued_to=dt.date(2026, 6, 5))
    _, ids = _listed(session, tenant, flt)
    assert ids == _ids(book, "due_today", "overdue")


def test_number_search(session, tenant, book):
    number = book["sent"].number  # INV-2026-0000n
    _, ids = _listed(session, tenant, InvoiceFilter(number=number.lower()[-7:]))
    assert ids == _ids(book, "sent")
    _, ids = _listed(session, tenant, InvoiceFilter(number="%"))
    assert ids == []


@pytest.mark.parametrize(
    ("sort", "direction", "names"),
    [
        ("total", "asc", ["due_today", "sent", "overdue", "paid", "void"]),
        ("total", "desc", ["void", "paid", "overdue", "sent", "due_today"]),
        ("due_date", "asc", ["void", "paid", "overdue", "due_today", "sent"]),
        ("number", "asc", ["overdue", "due_today", "sent", "paid", "void"]),
    ],
)
def test_sorting(session, tenant, book, sort, direction, names):
    _, ids = _listed(session, tenant, InvoiceFilter(sort=sort, direction=direction))
    assert ids == _ids(book, *names)


def test_ties_are_broken_by_id_so_pages_never_overlap(session, tenant):
    invoices = [
        _issue(tenant, month, dt.date(2026, 1, 1), "10.00", kind=InvoiceKind.USAGE)
        for month in range(1, 10)
    ]
    session.commit()
    flt = InvoiceFilter(sort="total", direction="asc")
    pages = [_listed(session, tenant, flt, page, 4)[1] for page in (1, 2, 3)]
    assert sum(pages, []) == [i.id for i in invoices]
    flt = InvoiceFilter(sort="issue_date", direction="desc")
    pages = [_listed(session, tenant, flt, page, 4)[1] for page in (1, 2, 3)]
    assert sum(pages, []) == [i.id for i in reversed(invoices)]


def test_pagination_bounds(session, tenant, book):
    result, ids = _listed(session, tenant, page=2, page_size=2)
    assert (result.total, result.page, result.pages, len(ids)) == (5, 2, 3, 2)
    assert (result.first_index, result.last_index) == (3, 4)
    past_end, ids = _listed(session, tenant, page=99, page_size=2)
    assert (past_end.page, ids) == (3, _ids(book, "void"))
    huge, _ = _listed(session, tenant, page_size=10_000)
    assert huge.page_size == MAX_PAGE_SIZE
    tiny, ids = _listed(session, tenant, page=0, page_size=0)
    assert (tiny.page, tiny.page_size, len(ids)) == (1, 1, 1)


def test_empty_list_has_one_page(session, tenant):
    result, ids = _listed(session, tenant, page=5)
    assert (result.total, result.page, result.pages, ids) == (0, 1, 1, [])
    assert result.first_index == 0


def test_another_tenants_invoices_never_show(session, tenant, book):
    other = TenantFactory(seller=tenant.seller)
    foreign = _issue(other, 1, dt.date(2026, 5, 1))
    session.commit()
    _, ids = _listed(session, tenant)
    assert foreign.id not in ids
    assert count_by_tab(session, other, InvoiceFilter(), today=TODAY)["all"] == 1


# -- one invoice -----------------------------------------------------------------------------


def test_load_invoice_scopes_to_the_tenant(session, tenant, book):
    other = TenantFactory(seller=tenant.seller)
    session.commit()
    invoice = book["sent"]
    assert load_invoice(session, tenant, str(invoice.public_id)).id == invoice.id
    for tenant_, public_id in [
        (other, invoice.public_id),
        (tenant, "not-a-uuid"),
        (tenant, None),
        (tenant, "00000000-0000-0000-0000-000000000000"),
        (None, invoice.public_id),
        (tenant, book["draft"].public_id),  # drafts hidden
    ]:
        with pytest.raises(NotFound):
            load_invoice(session, tenant_, public_id)


def test_load_invoice_eager_loads_its_children(session, tenant, book):
    with Session(db.engine) as fresh:
        invoice = load_invoice(fresh, fresh.get(Tenant, tenant.id), book["sent"].public_id)
        unloaded = sa.inspect(invoice).unloaded
    assert not {"lines", "vat_breakdown", "allowance_charges"} & unloaded
    assert len(invoice.lines) == 1  # usable after the session closed


def test_detail_has_payments_credit_notes_and_frozen_parties(session, tenant, book):
    invoice = book["paid"]
    issue_credit_note(session, invoice, reason="Goodwill")
    tenant.seller.legal_name = "Renamed Seller AG"  # after issue: the invoice keeps its data
    session.commit()
    detail = invoice_detail(session, tenant, invoice.public_id)
    assert [p.amount_minor for p in detail.payments] == [5000]
    assert [n.reason for n in detail.credit_notes] == ["Goodwill"]
    assert detail.seller["legal_name"] != "Renamed Seller AG"
    assert detail.buyer["company_name"] == tenant.billing_profile.company_name


def test_drafts_use_the_live_seller_and_profile(session, tenant, book):
    draft = book["draft"]
    tenant.seller.legal_name = "Renamed Seller AG"
    session.commit()
    seller, buyer = invoice_parties(session, draft)
    assert seller["legal_name"] == "Renamed Seller AG"
    assert buyer["company_name"] == tenant.billing_profile.company_name
    bare = TenantFactory(seller=SellerFactory(), name="No Profile Ltd")
    draft_without_profile = _issue(bare, 1, None, finalize=False)
    session.commit()
    assert invoice_parties(session, draft_without_profile)[1] == {"company_name": "No Profile Ltd"}
    assert draft_without_profile.status == InvoiceStatus.DRAFT
