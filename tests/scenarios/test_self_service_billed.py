"""Hand-computed: a company raises its seats on the subscription page; the preview it was
shown is, line for line and in total, the invoice `flask invoice-run` then issues."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa

from portal.catalog.subscriptions import NewItem, create_subscription
from portal.domain.money import Money
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.tenancy.roles import Role
from portal.web.formatting import money
from tests.factories.tenancy import MembershipFactory, UserFactory
from tests.setup.subs_support import Shop
from tests.web.selfserve_support import ANCHOR, OPERATOR, TODAY


def _cents(value: Decimal) -> int:
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _add_month(day: dt.date) -> dt.date:
    month = day.month % 12 + 1
    year = day.year + day.month // 12
    for last in (31, 30, 29, 28):  # the anchor's day, or the month's last day
        try:
            return day.replace(year=year, month=month, day=min(day.day, last))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def test_seats_raised_on_the_page_are_billed_as_previewed(client, auth, world, runner):
    shop = Shop(world.a.tenant.seller)
    tenant = shop.company()  # a DE business without a VAT ID: 19 % VAT
    owner = MembershipFactory(tenant=tenant, role=Role.OWNER, user=UserFactory()).user
    subscription = create_subscription(
        db.session,
        tenant,
        OPERATOR,
        items=[NewItem(shop.flat, Decimal(1)), NewItem(shop.seat, Decimal(3))],
        start=ANCHOR,
    )
    db.session.commit()
    auth.login(owner.email)
    url = f"/subscription/{subscription.public_id}/change?item={shop.seat.public_id}"
    page = client.post(url, data={"quantity": "5"}).get_data(as_text=True)
    table = page[
        page.index('id="preview-lines"') : page.index("</table>", page.index("preview-lines"))
    ]
    shown_lines = re.findall(r'<td class="num">([^<]+)</td>', table.split("<tfoot>")[0])
    shown_due = re.search(r'id="preview-total"><strong>([^<]+)</strong>', page).group(1)
    confirmed = client.post(url, data={"quantity": "5", "confirmed": "yes"})
    assert confirmed.status_code == 303

    # The period runs from the anchor (ten days before today) for one month: N days. The
    # invoice bills the licensed items at their terms on its last day, and corrects the ten
    # days before the change (proration, each line rounded to the cent, half up):
    #   base                     1 × 30.00                  = 30.00
    #   seats                    5 × 10.00                  = 50.00
    #   3 seats used, 10 days   +3 × (10.00 × 10 / N)       = +_cents(3 × day_price)
    #   5 seats not used        −5 × (10.00 × 10 / N)       = −_cents(5 × day_price)
    # e.g. N = 30: day_price = 3.3333333333, +10.00 and −16.67; net 73.33,
    # VAT 19 % = 13.93 (rounded once on the net), amount due 87.26.
    period_end = _add_month(ANCHOR)
    days = (period_end - ANCHOR).days
    assert (TODAY - ANCHOR).days == 10
    day_price = (Decimal(10) * 10 / days).quantize(Decimal("1e-10"), rounding=ROUND_HALF_UP)
    expected_lines = [3000, 5000, _cents(3 * day_price), -_cents(5 * day_price)]
    net = sum(expected_lines)
    vat = _cents(Decimal(net) / 100 * Decimal("0.19"))
    if days == 30:
        assert (expected_lines[2:], net, vat) == ([1000, -1667], 7333, 1393)

    last_day = period_end - dt.timedelta(days=1)
    result = runner.invoke(args=["invoice-run", "--period", f"{last_day:%Y-%m}"])
    assert result.exit_code == 0, result.output
    invoice = db.session.scalars(sa.select(Invoice).where(Invoice.tenant_id == tenant.id)).one()
    assert (invoice.period_start, invoice.period_end) == (ANCHOR, last_day)
    assert [line.net_amount_minor for line in invoice.lines] == expected_lines
    assert (invoice.tax_exclusive_minor, invoice.tax_minor) == (net, vat)
    assert invoice.amount_due_minor == net + vat

    # What the page showed before the change was confirmed.
    with client.application.test_request_context():
        assert shown_lines == [money(Money(minor, "EUR")) for minor in expected_lines]
        assert shown_due == money(Money(net + vat, "EUR"))
