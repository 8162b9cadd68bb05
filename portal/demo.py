"""Demo data for ``flask seed-demo``: idempotent, relative to the day it runs.

The seed is an operator with an empty database: every seller, company, product, price,
quota, subscription and usage event goes through the service the admin console and the
admin API call (audited as the actor "seed-demo"), so the demo shows nothing an operator
could not make. Each is looked up by its natural key first (seller by legal name, company
by slug, product and price by code, quota by metric, usage by idempotency key), and
generated invoices are keyed by tenant, kind and period, so running the seed again on the
same day changes nothing. ``tests/structure/test_demo_services.py`` keeps model classes out
of this module.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from portal.catalog.models import BillingInterval, PriceModel, SubscriptionStatus, UsageKind
from portal.catalog.products import create_price, create_product, find_products
from portal.catalog.subscriptions import NewItem, company_subscriptions, create_subscription
from portal.invoices.actions import delete_draft_invoice
from portal.invoices.drafts import find_period_invoice
from portal.invoices.generation import generate_invoices
from portal.invoices.issuing import finalize_invoice
from portal.invoices.lifecycle import mark_paid, mark_sent, mark_uncollectible, void_invoice
from portal.invoices.states import InvoiceKind, InvoiceStatus
from portal.ops.audit import Actor
from portal.tenancy.companies import create_company, list_companies
from portal.tenancy.roles import Role
from portal.tenancy.sellers import create_seller, list_sellers
from portal.tenancy.services import (
    add_membership,
    create_user,
    get_user_by_email,
    make_platform_admin,
)
from portal.usage.quotas import find_quota, set_quota
from portal.usage.services import UsageBatchRefused, UsageEvent, ingest_usage

DEMO_PASSWORD = "demo-billing-2026"  # noqa: S105 (public demo login, printed by seed-demo)
ADMIN_PASSWORD = "admin-billing-2026"  # noqa: S105
SELLER_NAME = "Northwind Cloud GmbH"
#: Who the audit log names for what the seed creates.
ACTOR = Actor(label="seed-demo")


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    name: str
    currency: str
    country: str
    city: str
    postal_code: str
    street: str
    vat_id: str | None
    seats: int
    language: str
    demo_role: Role | None  # demo@example.com's role; None: not a member


TENANTS = (
    DemoTenant(
        "acme",
        "Acme Analytics GmbH",
        "EUR",
        "DE",
        "Hamburg",
        "20095",
        "Mönckebergstraße 7",
        "DE136695976",
        8,
        "de",
        Role.OWNER,
    ),
    DemoTenant(
        "lumiere",
        "Bistro Lumière SARL",
        "EUR",
        "FR",
        "Lyon",
        "69002",
        "12 Rue de la République",
        "FR40303265045",
        3,
        "en",
        Role.BILLING_ADMIN,
    ),
    DemoTenant(
        "kaffeehaus",
        "Kaffeehaus am Ring",
        "EUR",
        "AT",
        "Wien",
        "1010",
        "Schottenring 14",
        None,
        2,
        "de",
        Role.VIEWER,
    ),
    DemoTenant(
        "sakura",
        "Sakura Systems K.K.",
        "JPY",
        "JP",
        "Tokyo",
        "100-0005",
        "1-1 Marunouchi, Chiyoda-ku",
        None,
        12,
        "en",
        None,
    ),
)

PLANS = (
    ("platform", "Cloud Platform", "Hosting, backups and support"),
    ("seats", "User seats", "Named users"),
    ("api", "API calls", "Metered API usage"),
)

# Unit prices per currency: flat platform fee, per seat, and API-call tiers.
PRICE_BOOK: dict[str, dict[str, Any]] = {
    "EUR": {
        "platform": Decimal("49.00"),
        "seat": Decimal("12.00"),
        "tiers": (
            (Decimal(10000), Decimal("0")),
            (Decimal(100000), Decimal("0.002")),
            (None, Decimal("0.001")),
        ),
    },
    "JPY": {
        "platform": Decimal("7000"),
        "seat": Decimal("1500"),
        "tiers": (
            (Decimal(10000), Decimal("0")),
            (Decimal(100000), Decimal("0.3")),
            (None, Decimal("0.15")),
        ),
    },
}


#: The seller as the admin console's form or ``POST …/sellers`` would send it.
SELLER = {
    "legal_name": SELLER_NAME,
    "address_line1": "Friedrichstraße 68",
    "postal_code": "10117",
    "city": "Berlin",
    "country": "DE",
    "vat_id": "DE811907980",
    "tax_number": "30/123/45678",
    "registration": "HRB 201234, Amtsgericht Charlottenburg",
    "email": "billing@northwind.example",
    "phone": "+49 30 1234567",
    "website": "https://northwind.example",
    "iban": "DE89370400440532013000",
    "bic": "COBADEFFXXX",
    "bank_name": "Commerzbank",
    "invoice_number_format": "NW-{year}-{seq:05d}",
    "credit_note_number_format": "NW-CN-{year}-{seq:05d}",
    "default_currency": "EUR",
    "default_payment_terms_days": 14,
    "invoice_footer": "Northwind Cloud GmbH · Geschäftsführung: Jana Weber",
}
METRIC = "api_calls"
QUOTA_LIMIT = Decimal(150000)


def month_start(day: dt.date, months_back: int) -> dt.date:
    """First day of the month ``months_back`` months before ``day``'s month."""
    index = day.year * 12 + (day.month - 1) - months_back
    return dt.date(index // 12, index % 12 + 1, 1)


def _seller(session: Session) -> Any:
    """The demo seller, by legal name."""
    found = [seller for seller in list_sellers(session) if seller.legal_name == SELLER_NAME]
    return found[0] if found else create_seller(session, SELLER, ACTOR)


def _price_values(role: str, currency: str, book: dict[str, Any]) -> dict[str, Any]:
    """A price of ``role`` in ``currency`` as the catalog form or API would send it."""
    code = currency.lower()
    if role == "platform":
        return {
            "code": f"platform-monthly-{code}",
            "nickname": "Cloud Platform (monthly)",
            "currency": currency,
            "model": PriceModel.FLAT.value,
            "interval": BillingInterval.MONTH.value,
            "unit_amount": book["platform"],
        }
    if role == "seat":
        return {
            "code": f"seats-monthly-{code}",
            "nickname": "User seats",
            "currency": currency,
            "model": PriceModel.PER_UNIT.value,
            "interval": BillingInterval.MONTH.value,
            "unit_amount": book["seat"],
        }
    return {
        "code": f"api-calls-{code}",
        "nickname": "API calls",
        "currency": currency,
        "model": PriceModel.GRADUATED.value,
        "usage_kind": UsageKind.METERED.value,
        "metric": METRIC,
        "interval": BillingInterval.MONTH.value,
        "tiers": [{"up_to": up_to, "unit_amount": amount} for up_to, amount in book["tiers"]],
    }


def _catalog(session: Session, seller: Any) -> dict[tuple[str, str], Any]:
    """Products and their prices in EUR and JPY, keyed by (role, currency)."""
    prices: dict[tuple[str, str], Any] = {}
    for (code, name, text), role in zip(PLANS, ("platform", "seat", "api"), strict=True):
        matches, _ = find_products(session, search=code, seller_id=seller.id, limit=100)
        plan = next((plan for plan in matches if plan.code == code), None)
        if plan is None:
            plan = create_product(
                session, seller, {"code": code, "name": name, "description": text}, ACTOR
            )
        # Read once, before this product gets prices: the lookup cannot go stale.
        existing = {price.code: price for price in plan.prices}
        for currency, book in PRICE_BOOK.items():
            values = _price_values(role, currency, book)
            price = existing.get(values["code"]) or create_price(session, plan, values, ACTOR)
            prices[(role, currency)] = price
    return prices


def _company(session: Session, seller: Any, spec: DemoTenant, known: dict[str, Any]) -> Any:
    """The demo company ``spec`` (with its billing profile, settings and quota), by slug."""
    tenant = known.get(spec.slug)
    if tenant is None:
        tenant = create_company(
            session,
            {
                "name": spec.name,
                "slug": spec.slug,
                "seller": str(seller.public_id),
                "currency": spec.currency,
                "language": spec.language,
                "billing_profile": {
                    "company_name": spec.name,
                    "address_line1": spec.street,
                    "postal_code": spec.postal_code,
                    "city": spec.city,
                    "country": spec.country,
                    "vat_id": spec.vat_id,
                    "billing_email": f"invoices@{spec.slug}.example",
                    "cc_emails": [f"finance@{spec.slug}.example"],
                    "contact_name": "Accounts Payable",
                    "purchase_order": f"PO-{spec.slug.upper()}-2026",
                },
                "billing_settings": {
                    "billing_day": 1,
                    "auto_finalize": True,
                    "auto_collect": False,
                    "show_drafts_to_tenant": spec.slug == "acme",
                },
            },
            ACTOR,
        )
    if find_quota(session, tenant, METRIC) is None:
        set_quota(session, tenant, {"metric": METRIC, "limit": QUOTA_LIMIT}, ACTOR)
    return tenant


def _subscription(
    session: Session, tenant: Any, spec: DemoTenant, prices: dict, today: dt.date
) -> Any:
    """The company's subscription, started 12 months ago so that a year is billed."""
    for subscription in company_subscriptions(session, tenant):
        if subscription.status != SubscriptionStatus.CANCELED:
            return subscription
    return create_subscription(
        session,
        tenant,
        ACTOR,
        items=[
            NewItem(prices[("platform", spec.currency)], Decimal(1)),
            NewItem(prices[("seat", spec.currency)], Decimal(spec.seats)),
            NewItem(prices[("api", spec.currency)]),  # metered: billed by usage
        ],
        start=month_start(today, 12),
        today=today,
    )


def api_calls_in_month(slug: str, months_back: int) -> int:
    """A deterministic, growing usage figure for a past month."""
    base = {"acme": 60000, "lumiere": 18000, "kaffeehaus": 9000, "sakura": 140000}[slug]
    return base + (12 - months_back) * base // 20


def _report(session: Session, tenant: Any, events: list[UsageEvent]) -> bool:
    """Send usage as the console's usage API does; False when it is refused because its
    period has an invoice (each event is recorded once per key, repeats are duplicates)."""
    try:
        ingest_usage(session, tenant, events)
    except UsageBatchRefused as exc:
        refused = {result.status for result in exc.results if not result.accepted}
        if refused <= {"period_invoiced", "not_written"}:
            return False
        raise
    return True


def _event(key: str, quantity: int, at: dt.datetime) -> UsageEvent:
    return UsageEvent(key, METRIC, Decimal(quantity), at, {"source": "demo"})


def _usage(session: Session, tenant: Any, spec: DemoTenant, today: dt.date) -> None:
    """Daily API calls of the current month up to today.

    Run again on a later day, the new days fall in the month's draft, which the usage API
    refuses ("delete the draft and generate it again"): the seed does just that, and the
    invoice loop drafts the month again with them.
    """
    daily = api_calls_in_month(spec.slug, 0) // 30
    start = month_start(today, 0)
    events = [
        _event(
            f"demo-api-calls-{day.isoformat()}",
            daily + day.day * 37,
            dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
        )
        for day in _days(start, today)
    ]
    if _report(session, tenant, events):
        return
    last_day = month_start(today, -1) - dt.timedelta(days=1)
    draft = find_period_invoice(session, tenant, InvoiceKind.SUBSCRIPTION, start, last_day)
    if draft is None or draft.status != InvoiceStatus.DRAFT:
        return  # issued by hand meanwhile: the new days would need a credit note
    delete_draft_invoice(session, draft, ACTOR)
    _report(session, tenant, events)


def _days(first: dt.date, last: dt.date) -> Iterable[dt.date]:
    day = first
    while day <= last:
        yield day
        day += dt.timedelta(days=1)


def _status_for(months_back: int, slug: str) -> InvoiceStatus:
    """Which state a demo invoice of that age ends in: every state appears."""
    if months_back == 0:
        return InvoiceStatus.DRAFT
    if months_back == 1:
        return InvoiceStatus.FINALIZED
    if months_back == 2:
        return InvoiceStatus.SENT
    if months_back == 7 and slug == "lumiere":
        return InvoiceStatus.VOID
    if months_back == 9 and slug == "kaffeehaus":
        return InvoiceStatus.UNCOLLECTIBLE
    return InvoiceStatus.PAID


def _invoice_for_month(
    session: Session, tenant: Any, spec: DemoTenant, today: dt.date, months_back: int
) -> None:
    """Generate the month's invoice with the billing engine and take it to its demo state."""
    start = month_start(today, months_back)
    if months_back > 0:
        # Past months: one event for the month's API calls. On a later run the month may
        # be billed already (from daily events while it was the current month): then the
        # usage API refuses it, and the month keeps what it billed.
        _report(
            session,
            tenant,
            [
                _event(
                    f"demo-api-calls-{start:%Y-%m}",
                    api_calls_in_month(spec.slug, months_back),
                    dt.datetime.combine(start.replace(day=15), dt.time(12), tzinfo=dt.UTC),
                )
            ],
        )
    invoices = generate_invoices(session, [tenant], f"{start:%Y-%m}")
    target = _status_for(months_back, spec.slug)
    for invoice in invoices:
        if invoice.status != InvoiceStatus.DRAFT or target == InvoiceStatus.DRAFT:
            continue  # done on an earlier run, or meant to stay a draft
        assert invoice.period_end is not None  # generated invoices have their period
        issued = invoice.period_end + dt.timedelta(days=1)
        finalize_invoice(session, invoice, issue_date=issued)
        at = dt.datetime.combine(issued, dt.time(9), tzinfo=dt.UTC)
        if target in (InvoiceStatus.SENT, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE):
            mark_sent(session, invoice, at=at)
        if target == InvoiceStatus.PAID:
            mark_paid(session, invoice, at=at + dt.timedelta(days=6))
        elif target == InvoiceStatus.VOID:
            void_invoice(session, invoice, at=at + dt.timedelta(days=2))
        elif target == InvoiceStatus.UNCOLLECTIBLE:
            mark_uncollectible(session, invoice, at=at + dt.timedelta(days=60))


def _user(session: Session, email: str, name: str, password: str) -> Any:
    return get_user_by_email(session, email) or create_user(
        session, email=email, name=name, password=password
    )


def seed_demo(session: Session, today: dt.date) -> dict[str, str]:
    """Create the demo data; returns the demo logins (e-mail → password)."""
    seller = _seller(session)
    prices = _catalog(session, seller)
    demo = _user(session, "demo@example.com", "Dana Demo", DEMO_PASSWORD)
    admin = _user(session, "admin@example.com", "Alex Admin", ADMIN_PASSWORD)
    make_platform_admin(session, admin)
    known = {tenant.slug: tenant for tenant in list_companies(session)}
    subscribed = []
    for spec in TENANTS:
        tenant = _company(session, seller, spec, known)
        _subscription(session, tenant, spec, prices, today)
        subscribed.append((spec, tenant))
        _usage(session, tenant, spec, today)
        if spec.demo_role is not None:
            add_membership(session, user=demo, tenant=tenant, role=spec.demo_role)
        else:
            owner = _user(
                session, f"owner@{spec.slug}.example", f"{spec.name} Owner", DEMO_PASSWORD
            )
            add_membership(session, user=owner, tenant=tenant, role=Role.OWNER)
    # Month by month across tenants, so invoice numbers follow issue dates.
    for months_back in range(12, -1, -1):
        for spec, tenant in subscribed:
            _invoice_for_month(session, tenant, spec, today, months_back)
    session.flush()
    return {"demo@example.com": DEMO_PASSWORD, "admin@example.com": ADMIN_PASSWORD}
