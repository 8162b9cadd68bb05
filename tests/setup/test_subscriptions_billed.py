"""A subscription made through the console API is billed by `flask invoice-run` as computed
by hand: flat, per unit, graduated metered usage posted through the API, and a mid-period
quantity change with its proration."""

from __future__ import annotations

import calendar
import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
import sqlalchemy as sa

from portal.extensions import db
from portal.invoices.models import Invoice
from tests.api_console.conftest import ConsoleClient, admin_token
from tests.setup.subs_support import Shop

TODAY = dt.date.today()
START = TODAY.replace(day=1)
DAYS = calendar.monthrange(START.year, START.month)[1]
CENT = Decimal("0.01")


@pytest.fixture
def console(client, world) -> ConsoleClient:
    return ConsoleClient(client, admin_token())


def _cents(value: Decimal) -> int:
    return int((value * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_api_subscription_is_billed_by_the_invoice_run(console, world, runner):
    shop = Shop(world.a.tenant.seller)
    tenant = shop.company()  # a DE business without VAT ID: 19 % VAT
    db.session.commit()
    answer = console.post(
        f"/{tenant.public_id}/billing/subscriptions",
        json={
            "items": [
                {"priceUid": str(shop.flat.public_id), "quantity": "1"},  # 30.00 flat
                {"priceUid": str(shop.seat.public_id), "quantity": "3"},  # 10.00 per seat
                {"priceUid": str(shop.api.public_id)},  # 1,000 free, then 0.002 per call
            ],
            "startDate": START.isoformat(),
        },
    )
    assert answer.status_code == 201, answer.get_json()
    uid = answer.get_json()["data"]["instanceUid"]
    events = [
        {
            "idempotencyKey": f"e{n}",
            "metric": "api_calls",
            "quantity": "1250",
            "timestamp": f"{START + dt.timedelta(days=n):%Y-%m-%d}T09:30:00Z",
        }
        for n in range(4)
    ]
    events.append(dict(events[0]))  # a retry: counted once
    usage = console.post(f"/{tenant.public_id}/billing/usage", json={"events": events})
    assert usage.get_json()["data"]["created"] == 4
    # 3 → 5 seats from the 11th.
    change = {
        "priceUid": str(shop.seat.public_id),
        "quantity": "5",
        "effectiveDate": (START + dt.timedelta(days=10)).isoformat(),
    }
    previewed = console.post(
        f"/{tenant.public_id}/billing/subscriptions/{uid}/preview", json={"change": change}
    ).get_json()["data"]
    assert (
        console.patch(
            f"/{tenant.public_id}/billing/subscriptions/{uid}", json={"change": change}
        ).status_code
        == 200
    )
    result = runner.invoke(args=["invoice-run", "--period", f"{START:%Y-%m}"])
    assert result.exit_code == 0, result.output
    invoice = db.session.scalars(sa.select(Invoice).where(Invoice.tenant_id == tenant.id)).one()
    # By hand: 30.00 + 5 × 10.00 + 0 (first 1,000 calls) + 4,000 × 0.002 = 8.00; the 10 days
    # before the change on 3 seats and not on 5: ±seats × 10.00 × 10/DAYS, each line rounded.
    day_price = (Decimal(10) * 10 / DAYS).quantize(Decimal("1e-10"), rounding=ROUND_HALF_UP)
    expected_lines = [3000, 5000, 0, 800, _cents(3 * day_price), -_cents(5 * day_price)]
    assert [line.net_amount_minor for line in invoice.lines] == expected_lines
    net = sum(expected_lines)
    vat = _cents(Decimal(net) / 100 * Decimal("0.19"))
    assert (invoice.tax_exclusive_minor, invoice.tax_minor) == (net, vat)
    assert invoice.amount_due_minor == net + vat
    if DAYS == 31:  # e.g. December: 10/31 of 10.00 = 3.2258064516 per seat
        assert expected_lines[4:] == [968, -1613] and invoice.amount_due_minor == 9704
    # The preview said so before the change was made.
    assert previewed["totals"]["amountDueMinor"] == invoice.amount_due_minor
    assert [line["netAmountMinor"] for line in previewed["lines"]] == expected_lines
