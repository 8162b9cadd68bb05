"""Invoice pages: the list (tabs, dates, search, sorting, pages), detail, PDF and sending."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa

from portal.catalog.models import CompanyBillingSettings
from portal.extensions import db
from portal.invoices.credit_notes import issue_credit_note
from portal.invoices.drafts import DraftLine
from portal.invoices.lifecycle import mark_paid, mark_sent, void_invoice
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceKind, InvoiceStatus, VatCategory
from portal.notifications.models import OutboxEmail, OutboxStatus
from portal.tenancy.models import BillingProfile
from portal.tenancy.roles import Role
from tests.factories.invoices import make_invoice

FAR_FUTURE = dt.date(2099, 3, 1)  # issued then, due long after any test run: never overdue
LONG_AGO = dt.date(2021, 3, 1)  # due long before any test run: overdue while open


def _invoice_for(tenant, month: int, *, issue: dt.date, price: str = "10.00", **kwargs):
    start = dt.date(2020, month, 1)
    end = dt.date(2020, month, 28)
    lines = [
        DraftLine(
            f"Service month {month}",
            Decimal(1),
            Decimal(price),
            vat_category=VatCategory.STANDARD,
            vat_rate=Decimal(19),
        )
    ]
    return make_invoice(
        tenant,
        period_start=start,
        period_end=end,
        issue_date=issue,
        lines=lines,
        kind=kwargs.pop("kind", InvoiceKind.USAGE),
        **kwargs,
    )


@pytest.fixture
def spread(world, session):
    """Tenant A's invoices in every state: open, overdue, paid, void and a draft.

    With the world's own invoice (issued 2026-10-01, due 2026-10-15: overdue) that is
    six, of which five are issued.
    """
    tenant = world.a.tenant
    invoices = {
        "open": _invoice_for(tenant, 1, issue=FAR_FUTURE, price="30.00"),
        "overdue": _invoice_for(tenant, 2, issue=LONG_AGO, price="20.00"),
        "paid": _invoice_for(tenant, 3, issue=dt.date(2021, 5, 10), price="50.00"),
        "void": _invoice_for(tenant, 4, issue=dt.date(2021, 6, 10), price="5.00"),
        "draft": _invoice_for(tenant, 5, issue=None, price="7.00", finalize=False),
    }
    mark_paid(session, invoices["paid"])
    void_invoice(session, invoices["void"])
    mark_sent(session, invoices["open"])
    session.commit()
    return invoices


def _numbers_in(html: str) -> list[str]:
    return re.findall(r'<th scope="row">\s*<a href="/invoices/[^"]+">([^<]+)</a>', html)


def _show_drafts(session, tenant, show: bool = True) -> None:
    session.add(CompanyBillingSettings(tenant_id=tenant.id, show_drafts_to_tenant=show))
    session.commit()


# -- list ------------------------------------------------------------------------------------


def test_list_is_a_full_page_or_a_fragment_for_htmx(client, auth, world):
    auth.login(world.a.owner.email)
    full = client.get("/invoices")
    assert full.status_code == 200
    html = full.get_data(as_text=True)
    assert "<html" in html and world.a.invoice.number in html
    assert 'id="invoice-results"' in html
    assert "HX-Request" in full.headers["Vary"]

    fragment = client.get("/invoices?status=open", headers={"HX-Request": "true"})
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200
    assert "<html" not in body and world.a.invoice.number in body
    assert "HX-Request" in fragment.headers["Vary"]
    assert fragment.headers["HX-Push-Url"] == "/invoices?status=open"
    # The links and the form swap the results and push the URL.
    assert 'hx-target="#invoice-results"' in body and 'hx-push-url="true"' in body

    restore = client.get(
        "/invoices?status=open",
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in restore.get_data(as_text=True)


def test_list_shows_only_the_tenants_invoices(client, auth, world):
    auth.login(world.a.viewer.email)
    html = client.get("/invoices").get_data(as_text=True)
    assert world.a.invoice.number in html
    assert world.b.invoice.number not in html
    assert world.b.tenant.name not in html


@pytest.mark.parametrize(
    ("tab", "expected"),
    [
        ("all", {"world", "open", "overdue", "paid", "void"}),
        ("open", {"world", "open", "overdue"}),
        ("overdue", {"world", "overdue"}),
        ("paid", {"paid"}),
    ],
)
def test_status_tabs(client, auth, world, spread, tab, expected):
    auth.login(world.a.owner.email)
    html = client.get(f"/invoices?status={tab}").get_data(as_text=True)
    names = {"world": world.a.invoice.number} | {k: v.number for k, v in spread.items()}
    shown = {name for name, number in names.items() if number and number in _numbers_in(html)}
    assert shown == expected
    assert "Draft" not in _numbers_in(html)
    # Counts on every tab, the active one marked.
    assert re.search(rf'id="tab-{tab}"[^>]*aria-current="page"', html)
    counts = dict(re.findall(r'id="tab-(\w+)".*?class="invoice-tabs__count">(\d+)<', html, re.S))
    assert counts == {"all": "5", "open": "3", "overdue": "2", "paid": "1"}


def test_date_range_filters_by_issue_date(client, auth, world, spread):
    auth.login(world.a.owner.email)
    html = client.get("/invoices?issued_from=2021-01-01&issued_to=2021-05-31").get_data(
        as_text=True
    )
    assert set(_numbers_in(html)) == {spread["overdue"].number, spread["paid"].number}
    assert 'value="2021-01-01"' in html and 'value="2021-05-31"' in html
    only_from = client.get("/invoices?issued_from=2026-01-01").get_data(as_text=True)
    assert set(_numbers_in(only_from)) == {world.a.invoice.number, spread["open"].number}


def test_number_search_is_a_case_insensitive_substring(client, auth, world, spread):
    auth.login(world.a.owner.email)
    html = client.get("/invoices?number=inv-2099").get_data(as_text=True)
    assert _numbers_in(html) == [spread["open"].number]
    # LIKE wildcards are searched for literally.
    assert _numbers_in(client.get("/invoices?number=%25").get_data(as_text=True)) == []
    assert _numbers_in(client.get("/invoices?number=_").get_data(as_text=True)) == []
    empty = client.get("/invoices?number=nothing-like-this").get_data(as_text=True)
    assert "No invoices match these filters." in empty


@pytest.mark.parametrize(
    ("query", "order"),
    [
        ("sort=total&direction=asc", ["void", "overdue", "open", "paid", "world"]),
        ("sort=total&direction=desc", ["world", "paid", "open", "overdue", "void"]),
        ("sort=issue_date&direction=asc", ["overdue", "paid", "void", "world", "open"]),
        ("sort=due_date&direction=desc", ["open", "world", "void", "paid", "overdue"]),
        ("", ["open", "world", "void", "paid", "overdue"]),  # newest first by default
    ],
)
def test_sorting(client, auth, world, spread, query, order):
    auth.login(world.a.owner.email)
    html = client.get(f"/invoices?{query}").get_data(as_text=True)
    names = {"world": world.a.invoice.number} | {k: v.number for k, v in spread.items()}
    assert _numbers_in(html) == [names[name] for name in order]


def test_sorting_by_number_and_header_links(client, auth, world, spread):
    auth.login(world.a.owner.email)
    html = client.get("/invoices?sort=number&direction=asc").get_data(as_text=True)
    numbers = _numbers_in(html)
    assert numbers == sorted(numbers)
    # The active column says so and links to the other direction.
    assert re.search(r'aria-sort="ascending">\s*<a id="sort-number"', html)
    assert 'href="/invoices?sort=number"' in html  # desc is the default direction


def test_pagination_and_its_bounds(client, auth, world, spread):
    auth.login(world.a.owner.email)
    first = client.get("/invoices?page_size=2&sort=total&direction=asc").get_data(as_text=True)
    assert _numbers_in(first) == [spread["void"].number, spread["overdue"].number]
    assert "1–2 of 5" in first
    second = client.get("/invoices?page_size=2&sort=total&direction=asc&page=2")
    html = second.get_data(as_text=True)
    assert _numbers_in(html) == [spread["open"].number, spread["paid"].number]
    assert re.search(r'id="page-2"[^>]*aria-current="page"', html)
    # Past the end: the last page, without complaint.
    last = client.get("/invoices?page_size=2&sort=total&direction=asc&page=99")
    assert last.status_code == 200
    assert _numbers_in(last.get_data(as_text=True)) == [world.a.invoice.number]
    pushed = client.get(
        "/invoices?page_size=2&sort=total&direction=asc&page=99", headers={"HX-Request": "true"}
    ).headers["HX-Push-Url"]
    assert pushed == "/invoices?sort=total&direction=asc&page_size=2&page=3"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("issued_from=2021-13-45", "“2021-13-45” is not a date"),
        ("issued_to=yesterday", "“yesterday” is not a date"),
        ("status=archived", "There is no “archived” tab"),
        ("status=draft", "There is no “draft” tab"),
        ("page=abc", "“abc” is not a page number"),
        ("page=-3", "There is no page “-3”"),
        ("page_size=10000", "Between 1 and 100 invoices fit on a page"),
        ("page_size=many", "“many” is not a number of invoices per page"),
        ("sort=password_hash", "cannot be sorted by “password_hash”"),
        ("direction=sideways", "“sideways” is not an order"),
        ("issued_from=2026-12-31&issued_to=2021-01-01", "the two dates were swapped"),
    ],
)
def test_bad_filter_input_shows_a_message_not_an_error(client, auth, world, query, message):
    auth.login(world.a.owner.email)
    for headers in ({}, {"HX-Request": "true"}):
        response = client.get(f"/invoices?{query}", headers=headers)
        assert response.status_code == 200
        html = response.get_data(as_text=True)
        assert message in html.replace("&#34;", '"')
        assert 'class="flash flash--error invoice-filter-errors" role="alert"' in html
        assert world.a.invoice.number in html  # the list still shows, with defaults


def test_control_characters_in_the_search_are_dropped(client, auth, world):
    auth.login(world.a.owner.email)
    response = client.get("/invoices?number=%00INV%0A-2026")
    assert response.status_code == 200
    assert _numbers_in(response.get_data(as_text=True)) == [world.a.invoice.number]


def test_bad_input_is_escaped(client, auth, world):
    auth.login(world.a.owner.email)
    html = client.get("/invoices?status=<script>alert(1)</script>").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html


def test_page_size_is_capped_at_100(client, auth, world, session):
    for n in range(104):  # with the world's invoice, 105
        start = dt.date(2000, 1, 1) + dt.timedelta(days=n)
        make_invoice(world.a.tenant, period_start=start, period_end=start, kind=InvoiceKind.MANUAL)
    session.commit()
    auth.login(world.a.owner.email)
    html = client.get("/invoices?page_size=10000").get_data(as_text=True)
    assert len(_numbers_in(html)) == 100
    assert "1–100 of 105" in html


# -- drafts ----------------------------------------------------------------------------------


def test_drafts_are_hidden_unless_the_seller_shows_them(client, auth, world, spread, session):
    draft = spread["draft"]
    auth.login(world.a.owner.email)
    html = client.get("/invoices").get_data(as_text=True)
    assert 'id="tab-draft"' not in html
    assert str(draft.public_id) not in html
    assert client.get(f"/invoices/{draft.public_id}").status_code == 404
    assert client.get(f"/invoices/{draft.public_id}/pdf").status_code == 404
    assert client.post(f"/invoices/{draft.public_id}/send").status_code == 404

    _show_drafts(session, world.a.tenant)
    html = client.get("/invoices").get_data(as_text=True)
    assert 'id="tab-draft"' in html
    assert str(draft.public_id) in html
    drafts = client.get("/invoices?status=draft").get_data(as_text=True)
    assert _numbers_in(drafts) == ["Draft"]
    assert "invoice-filter-errors" not in drafts


def test_draft_detail_uses_the_live_seller_and_profile(client, auth, world, spread, session):
    _show_drafts(session, world.a.tenant)
    profile = session.scalars(
        sa.select(BillingProfile).where(BillingProfile.tenant_id == world.a.tenant.id)
    ).one()
    profile.address_line1 = "Neuer Weg 9"
    session.commit()
    auth.login(world.a.owner.email)
    draft = spread["draft"]
    html = client.get(f"/invoices/{draft.public_id}").get_data(as_text=True)
    assert "Draft invoice" in html and "This invoice is a draft" in html
    assert "Neuer Weg 9" in html
    assert world.a.tenant.seller.legal_name in html
    assert "Send by e-mail" not in html  # drafts are not sent
    pdf = client.get(f"/invoices/{draft.public_id}/pdf")
    assert pdf.status_code == 200
    assert f"filename=draft-{draft.public_id}.pdf" in pdf.headers["Content-Disposition"]


def test_sending_a_draft_is_refused_with_a_message(client, auth, world, spread, session, mailbox):
    _show_drafts(session, world.a.tenant)
    auth.login(world.a.owner.email)
    draft = spread["draft"]
    response = client.post(f"/invoices/{draft.public_id}/send")
    assert response.status_code == 303
    page = client.get(response.location).get_data(as_text=True)
    assert "A draft cannot be sent" in page
    session.expire_all()
    assert session.get(Invoice, draft.id).status == InvoiceStatus.DRAFT
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 0


# -- detail ----------------------------------------------------------------------------------


def test_detail_shows_parties_lines_vat_and_totals(client, auth, world):
    auth.login(world.a.owner.email)
    invoice = world.a.invoice
    response = client.get(f"/invoices/{invoice.public_id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert f"Invoice {invoice.number}" in html
    assert invoice.seller_snapshot["legal_name"] in html
    assert invoice.buyer_snapshot["company_name"] in html
    assert "DE811907980" in html  # seller VAT ID
    for text in ("Platform", "Seats", "Standard rate (S)", "19%", "€12.50"):
        assert text in html
    # Net 86.50, VAT 16.44, total 102.94, nothing paid or credited.
    for amount in ("€86.50", "€16.44", "€102.94", "€0.00"):
        assert amount in html
    assert "Sep 1, 2026 – Sep 30, 2026" in html
    assert "Oct 1, 2026" in html and "Oct 15, 2026" in html
    assert 'class="badge badge--overdue"' in html  # due 2026-10-15, open
    assert "Download PDF" in html and "Send by e-mail" in html
    assert "No payments recorded" in html


def test_detail_shows_payments_and_credit_notes(client, auth, world, spread, session):
    paid = spread["paid"]
    issue_credit_note(session, paid, reason="Goodwill for the outage")
    session.commit()
    auth.login(world.a.viewer.email)
    html = client.get(f"/invoices/{paid.public_id}").get_data(as_text=True)
    assert "Bank transfer" in html and "Succeeded" in html
    assert "Goodwill for the outage" in html and "CN-" in html
    assert "badge--overdue" not in html
    assert "Send by e-mail" not in html  # paid


def test_viewers_do_not_see_the_send_button(client, auth, world):
    auth.login(world.a.viewer.email)
    html = client.get(f"/invoices/{world.a.invoice.public_id}").get_data(as_text=True)
    assert "Download PDF" in html
    assert "Send by e-mail" not in html


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("GET", "/pdf"), ("POST", "/send")])
def test_another_tenants_invoice_is_not_found(client, auth, world, method, suffix):
    auth.login(world.a.owner.email)
    response = client.open(f"/invoices/{world.b.invoice.public_id}{suffix}", method=method)
    assert response.status_code == 404
    assert world.b.invoice.number not in response.get_data(as_text=True)


@pytest.mark.parametrize("invoice_id", ["not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_unknown_invoice_is_not_found(client, auth, world, invoice_id):
    auth.login(world.a.owner.email)
    assert client.get(f"/invoices/{invoice_id}").status_code == 404
    assert client.get(f"/invoices/{invoice_id}/pdf").status_code == 404


def test_pages_require_login(client, world):
    for path in ("/invoices", f"/invoices/{world.a.invoice.public_id}"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.location


def test_detail_loads_in_a_fixed_number_of_queries(client, auth, world, session, app):
    small = _invoice_for(world.a.tenant, 6, issue=LONG_AGO)
    many_lines = [
        DraftLine(f"Item {n}", Decimal(1), Decimal(n), vat_rate=Decimal(n % 3 * 7))
        for n in range(1, 16)
    ]
    big = make_invoice(
        world.a.tenant,
        period_start=dt.date(2020, 7, 1),
        period_end=dt.date(2020, 7, 31),
        lines=many_lines,
        kind=InvoiceKind.USAGE,
        issue_date=LONG_AGO,
    )
    mark_paid(session, big)
    issue_credit_note(session, big, reason="Refund one")
    mark_paid(session, small)  # the same state, so the pages differ only in their lines
    session.commit()
    auth.login(world.a.owner.email)

    def count(invoice) -> int:
        statements = []

        def record(*args):
            statements.append(args[2])

        # Each request starts as a fresh one does: nothing already loaded in the identity
        # map (the test shares the request's session, and each request commits at its end).
        db.session.expire_all()
        sa.event.listen(db.engine, "before_cursor_execute", record)
        try:
            assert client.get(f"/invoices/{invoice.public_id}").status_code == 200
        finally:
            sa.event.remove(db.engine, "before_cursor_execute", record)
        return len(statements)

    assert count(big) == count(small)


# -- PDF -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", list(Role))
def test_pdf_download(client, auth, world, role):
    auth.login(world.a.user(role).email)
    response = client.get(f"/invoices/{world.a.invoice.public_id}/pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.data.startswith(b"%PDF")
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert f"filename={world.a.invoice.number}.pdf" in disposition
    assert "no-store" in response.headers["Cache-Control"]


# -- sending ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.OWNER, Role.BILLING_ADMIN])
def test_send_emails_the_pdf_and_marks_sent(client, auth, world, session, mailbox, role):
    profile = session.scalars(
        sa.select(BillingProfile).where(BillingProfile.tenant_id == world.a.tenant.id)
    ).one()
    profile.cc_emails = ["accounts@buyer.example", "cfo@buyer.example"]
    session.commit()
    invoice = world.a.invoice
    auth.login(world.a.user(role).email)

    response = client.post(f"/invoices/{invoice.public_id}/send")
    assert response.status_code == 303
    assert response.location == f"/invoices/{invoice.public_id}"
    page = client.get(response.location).get_data(as_text=True)
    assert f"Invoice {invoice.number} is on its way to {profile.billing_email}" in page

    session.expire_all()
    stored = session.get(Invoice, invoice.id)
    assert stored.status == InvoiceStatus.SENT and stored.sent_at is not None
    [message] = mailbox.wait_for(1)
    assert message["To"] == profile.billing_email
    assert message["Cc"] == "accounts@buyer.example, cfo@buyer.example"
    assert set(message["X-Envelope-To"].split(", ")) == {
        profile.billing_email,
        "accounts@buyer.example",
        "cfo@buyer.example",
    }
    assert invoice.number in message["Subject"]
    assert "€102.94" in message.get_body(("plain",)).get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == f"{invoice.number}.pdf"
    assert attachment.get_content().startswith(b"%PDF")
    assert session.scalar(sa.select(OutboxEmail.status)) == OutboxStatus.SENT


def test_resending_sends_again_and_stays_sent(client, auth, world, session, mailbox):
    invoice = world.a.invoice
    auth.login(world.a.owner.email)
    assert client.post(f"/invoices/{invoice.public_id}/send").status_code == 303
    mailbox.wait_for(1)
    assert client.post(f"/invoices/{invoice.public_id}/send").status_code == 303
    assert len(mailbox.wait_for(2)) == 2
    session.expire_all()
    assert session.get(Invoice, invoice.id).status == InvoiceStatus.SENT
    keys = session.scalars(sa.select(OutboxEmail.dedupe_key).order_by(OutboxEmail.id)).all()
    assert keys == [f"invoice-sent:{invoice.public_id}:1", f"invoice-sent:{invoice.public_id}:2"]


def test_email_goes_out_in_the_profiles_language(client, auth, world, session, mailbox):
    profile = session.scalars(
        sa.select(BillingProfile).where(BillingProfile.tenant_id == world.a.tenant.id)
    ).one()
    profile.language = "de"
    session.commit()
    auth.login(world.a.owner.email)
    client.post(f"/invoices/{world.a.invoice.public_id}/send")
    [message] = mailbox.wait_for(1)
    body = message.get_body(("plain",)).get_content()
    assert "102,94\xa0€" in body and "01.10.2026" in body  # Babel's German formats


def test_viewer_cannot_send(client, auth, world, session, mailbox):
    auth.login(world.a.viewer.email)
    response = client.post(f"/invoices/{world.a.invoice.public_id}/send")
    assert response.status_code == 403
    session.expire_all()
    assert session.get(Invoice, world.a.invoice.id).status == InvoiceStatus.FINALIZED
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 0


def test_paid_invoice_is_not_sent(client, auth, world, spread, session):
    auth.login(world.a.owner.email)
    response = client.post(f"/invoices/{spread['paid'].public_id}/send")
    assert response.status_code == 303
    page = client.get(response.location).get_data(as_text=True)
    assert "Only issued invoices that are not yet paid can be sent" in page
    assert session.scalar(sa.select(sa.func.count()).select_from(OutboxEmail)) == 0


def test_send_without_billing_email_is_refused(client, auth, world, session):
    session.execute(sa.delete(BillingProfile).where(BillingProfile.tenant_id == world.a.tenant.id))
    session.commit()
    auth.login(world.a.owner.email)
    response = client.post(f"/invoices/{world.a.invoice.public_id}/send")
    assert response.status_code == 303
    page = client.get(response.location).get_data(as_text=True)
    assert "no billing e-mail address" in page
    session.expire_all()
    assert session.get(Invoice, world.a.invoice.id).status == InvoiceStatus.FINALIZED


def test_detail_offers_every_e_invoice_and_downloads_match_the_api(client, auth, world, session):
    from tests.api.conftest import ApiClient, write_token

    profile = session.scalars(
        sa.select(BillingProfile).filter_by(tenant_id=world.a.tenant.id)
    ).one()
    profile.vat_id = "DE136695976"
    world.a.tenant.seller.phone = "+49 40 1234567"
    invoice = make_invoice(
        world.a.tenant, period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 10, 31)
    )
    session.commit()
    auth.login(world.a.viewer.email)  # downloading is reading: viewers may
    page = client.get(f"/invoices/{invoice.public_id}").get_data(as_text=True)
    for fmt in ("ubl", "xrechnung", "cii", "zugferd", "facturx"):
        assert f"/invoices/{invoice.public_id}/download?format={fmt}" in page

    ubl = client.get(f"/invoices/{invoice.public_id}/download?format=ubl")
    assert ubl.status_code == 200 and ubl.mimetype == "application/xml"
    assert f"{invoice.number}-ubl.xml" in ubl.headers["Content-Disposition"]
    api = ApiClient(client, write_token(world.a.tenant))
    assert api.get(f"/invoices/{invoice.public_id}/download?format=ubl").data == ubl.data
    pdf = client.get(f"/invoices/{invoice.public_id}/pdf")
    assert pdf.data == api.get(f"/invoices/{invoice.public_id}/pdf").data


def test_a_document_the_invoice_cannot_have_is_a_message(client, auth, world):
    auth.login(world.a.owner.email)
    url = f"/invoices/{world.a.invoice.public_id}"
    missing = client.get(f"{url}/download?format=xrechnung")  # no Leitweg-ID
    assert missing.status_code == 303 and missing.headers["Location"].endswith(url)
    unknown = client.get(f"{url}/download?format=docx")
    assert unknown.status_code == 303
    page = client.get(url).get_data(as_text=True)
    assert "not available" in page and "Unknown format" in page


def test_drafts_offer_no_e_invoice(client, auth, world, session):
    _show_drafts(session, world.a.tenant)
    draft = make_invoice(
        world.a.tenant,
        finalize=False,
        period_start=dt.date(2026, 11, 1),
        period_end=dt.date(2026, 11, 30),
    )
    session.commit()
    auth.login(world.a.owner.email)
    page = client.get(f"/invoices/{draft.public_id}").get_data(as_text=True)
    assert "format=ubl" not in page
    assert client.get(f"/invoices/{draft.public_id}/download?format=ubl").status_code == 303
