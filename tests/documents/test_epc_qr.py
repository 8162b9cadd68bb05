"""The EPC QR code ("GiroCode") on EUR invoices that ask for a bank transfer."""

from __future__ import annotations

import datetime as dt

import pytest

from portal.documents.epc import epc_payload, epc_qr_data_uri
from portal.documents.pdf import render_invoice_html
from portal.invoices.issuing import finalize_invoice
from tests.factories.invoices import make_invoice


def test_payload_follows_epc069_12():
    payload = epc_payload(
        name="Northwind Cloud GmbH",
        iban="DE89 3704 0044 0532 0130 00",
        bic="COBADEFFXXX",
        amount_minor=9708,
        currency="EUR",
        reference="NW-2026-00043",
    )
    assert payload.split("\n") == [
        "BCD", "002", "1", "SCT", "COBADEFFXXX", "Northwind Cloud GmbH",
        "DE89370400440532013000", "EUR97.08", "", "", "NW-2026-00043",
    ]  # fmt: skip
    assert epc_qr_data_uri(payload).startswith("data:image/svg+xml")


@pytest.mark.parametrize(
    "change",
    [{"currency": "JPY"}, {"amount_minor": 0}, {"amount_minor": 10**12}, {"iban": ""}],
)
def test_no_code_when_the_transfer_cannot_be_encoded(change):
    values = {
        "name": "Seller",
        "iban": "DE89370400440532013000",
        "amount_minor": 100,
        "currency": "EUR",
        "reference": "X-1",
    }
    assert epc_payload(**{**values, **change}) is None


def test_the_invoice_shows_the_code_only_when_it_asks_for_a_transfer(app, world, session):
    seller = world.a.tenant.seller
    seller.iban, seller.bic = "DE89370400440532013000", "COBADEFFXXX"
    invoice = make_invoice(
        world.a.tenant, period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 10, 31)
    )
    session.commit()
    html = render_invoice_html(invoice, locale="en")
    assert 'alt="QR code of this bank transfer"' in html
    assert "Scan with your banking app to pay" in html

    collected = make_invoice(
        world.a.tenant,
        period_start=dt.date(2026, 8, 1),
        period_end=dt.date(2026, 8, 31),
        finalize=False,
    )
    collected.auto_collect = True  # paid from the saved method: no transfer, no code
    finalize_invoice(session, collected, issue_date=dt.date(2026, 9, 1))
    assert 'class="epc"' not in render_invoice_html(collected, locale="en")
