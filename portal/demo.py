"""Demo data for ``flask seed-demo``: idempotent, relative to the day it runs.

Every object is found by a natural key before it is created, and generated invoices are
keyed by tenant, kind and period, so running the seed again changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.catalog.models import (
    BillingInterval,
    CompanyBillingSettings,
    Plan,
    Price,
    PriceModel,
    PriceTier,
    Subscription,
    SubscriptionItem,
    SubscriptionStatus,
    UsageKind,
)
from portal.invoices.generation import generate_invoices
from portal.invoices.issuing import finalize_invoice
from portal.invoices.lifecycle import mark_paid, mark_sent, mark_uncollectible, void_invoice
from portal.invoices.states import InvoiceStatus
from portal.tenancy.models import BillingProfile, Seller, Tenant, User
from portal.tenancy.roles import Role
from portal.tenancy.services import (
    add_membership,
    create_user,
    get_user_by_email,
    make_platform_admin,
)
from portal.usage.models import Quota, UsageRecord

DEMO_PASSWORD = "demo-billing-2026"  # noqa: S105 (public demo login, printed by seed-demo)
ADMIN_PASSWORD = "admin-billing-2026"  # noqa: S105
SELLER_NAME = "Northwind Cloud GmbH"


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


M = TypeVar("M")


def _get_or_create(session: Session, model: type[M], lookup: dict, /, **values: Any) -> M:
    obj = session.scalars(sa.select(model).filter_by(**lookup)).first()
    if obj is None:
        obj = model(**lookup, **values)
        session.add(obj)
        session.flush()
    return obj


def month_start(day: dt.date, months_back: int) -> dt.date:
    """First day of the month ``months_back`` months before ``day``'s month."""
    index = day.year * 12 + (day.month - 1) - months_back
    return dt.date(index // 12, index % 12 + 1, 1)


def _seller(session: Session) -> Seller:
    return _get_or_create(
        session,
        Seller,
        {"legal_name": SELLER_NAME},
        address_line1="Friedrichstraße 68",
        postal_code="10117",
        city="Berlin",
        country="DE",
        vat_id="DE811907980",
        tax_number="30/123/45678",
        registration="HRB 201234, Amtsgericht Charlottenburg",
        email="billing@northwind.example",
        phone="+49 30 1234567",
        website="https://northwind.example",
        iban="DE89370400440532013000",
        bic="COBADEFFXXX",
        bank_name="Commerzbank",
        invoice_number_format="NW-{year}-{seq:05d}",
        credit_note_number_format="NW-CN-{year}-{seq:05d}",
        default_currency="EUR",
        default_payment_terms_days=14,
        invoice_footer="Northwind Cloud GmbH · Geschäftsführung: Jana Weber",
    )


def _catalog(session: Session, seller: Seller) -> dict[tuple[str, str], Price]:
    """Plans and prices in EUR and JPY, keyed by (role, currency)."""
    plans = {
        code: _get_or_create(
            session, Plan, {"seller_id": seller.id, "code": code}, name=name, description=text
        )
        for code, name, text in PLANS
    }
    prices: dict[tuple[str, str], Price] = {}
    for currency, book in PRICE_BOOK.items():
        code = currency.lower()
        prices[("platform", currency)] = _get_or_create(
            session,
            Price,
            {"plan_id": plans["platform"].id, "code": f"platform-monthly-{code}"},
            nickname="Cloud Platform (monthly)",
            currency=currency,
            model=PriceModel.FLAT,
            interval=BillingInterval.MONTH,
            unit_amount=book["platform"],
        )
        prices[("seat", currency)] = _get_or_create(
            session,
            Price,
            {"plan_id": plans["seats"].id, "code": f"seats-monthly-{code}"},
            nickname="User seats",
            currency=currency,
            model=PriceModel.PER_UNIT,
            interval=BillingInterval.MONTH,
            unit_amount=book["seat"],
        )
        api_price = _get_or_create(
            session,
            Price,
            {"plan_id": plans["api"].id, "code": f"api-calls-{code}"},
            nickname="API calls",
            currency=currency,
            model=PriceModel.GRADUATED,
            usage_kind=UsageKind.METERED,
            metric="api_calls",
            interval=BillingInterval.MONTH,
        )
        if not api_price.tiers:
            api_price.tiers = [
                PriceTier(position=i, up_to=up_to, unit_amount=amount)
                for i, (up_to, amount) in enumerate(book["tiers"])
            ]
        prices[("api", currency)] = api_price
    session.flush()
    return prices


def _tenant(session: Session, seller: Seller, spec: DemoTenant) -> Tenant:
    tenant = _get_or_create(
        session,
        Tenant,
        {"slug": spec.slug},
        seller_id=seller.id,
        name=spec.name,
        currency=spec.currency,
    )
    _get_or_create(
        session,
        BillingProfile,
        {"tenant_id": tenant.id},
        company_name=spec.name,
        address_line1=spec.street,
        postal_code=spec.postal_code,
        city=spec.city,
        country=spec.country,
        vat_id=spec.vat_id,
        billing_email=f"invoices@{spec.slug}.example",
        cc_emails=[f"finance@{spec.slug}.example"],
        contact_name="Accounts Payable",
        language=spec.language,
        currency=spec.currency,
        payment_terms_days=14,
        purchase_order=f"PO-{spec.slug.upper()}-2026",
    )
    _get_or_create(
        session,
        CompanyBillingSettings,
        {"tenant_id": tenant.id},
        billing_day=1,
        auto_finalize=True,
        auto_collect=False,
        show_drafts_to_tenant=spec.slug == "acme",
    )
    _get_or_create(
        session,
        Quota,
        {"tenant_id": tenant.id, "metric": "api_calls"},
        limit=Decimal(150000),
        is_hard=False,
    )
    return tenant


def _subscription(session, tenant, spec, prices, today) -> Subscription:
    period_start = month_start(today, 0)
    subscription = session.scalars(
        sa.select(Subscription).where(Subscription.tenant_id == tenant.id)
    ).first()
    if subscription is None:
        subscription = Subscription(
            tenant_id=tenant.id,
            status=SubscriptionStatus.ACTIVE,
            currency=spec.currency,
            started_on=month_start(today, 12),
            current_period_start=period_start,
            current_period_end=month_start(today, -1),
        )
        for role, quantity in (("platform", 1), ("seat", spec.seats), ("api", 0)):
            subscription.items.append(
                SubscriptionItem(
                    tenant_id=tenant.id,
                    price_id=prices[(role, spec.currency)].id,
                    quantity=Decimal(quantity),
                )
            )
        session.add(subscription)
        session.flush()
    return subscription


def api_calls_in_month(slug: str, months_back: int) -> int:
    """A deterministic, growing usage figure for a past month."""
    base = {"acme": 60000, "lumiere": 18000, "kaffeehaus": 9000, "sakura": 140000}[slug]
    return base + (12 - months_back) * base // 20


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


def _invoice_for_month(session, tenant, spec, today, months_back) -> None:
    """Generate the month's invoice with the billing engine and take it to its demo state."""
    start = month_start(today, months_back)
    if months_back > 0:  # past months: one usage record for the month's API calls
        key = f"demo-api-calls-{start:%Y-%m}"
        exists = session.scalar(
            sa.select(UsageRecord.id).where(
                UsageRecord.tenant_id == tenant.id, UsageRecord.idempotency_key == key
            )
        )
        if exists is None:
            session.add(
                UsageRecord(
                    tenant_id=tenant.id,
                    metric="api_calls",
                    quantity=Decimal(api_calls_in_month(spec.slug, months_back)),
                    occurred_at=dt.datetime.combine(
                        start.replace(day=15), dt.time(12), tzinfo=dt.UTC
                    ),
                    idempotency_key=key,
                    properties={"source": "demo"},
                )
            )
            session.flush()
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


def _usage(session, tenant, spec, today) -> None:
    """Daily API-call records for the current month up to today."""
    existing = set(
        session.scalars(
            sa.select(UsageRecord.idempotency_key).where(UsageRecord.tenant_id == tenant.id)
        )
    )
    daily = api_calls_in_month(spec.slug, 0) // 30
    day = month_start(today, 0)
    while day <= today:
        key = f"demo-api-calls-{day.isoformat()}"
        if key not in existing:
            session.add(
                UsageRecord(
                    tenant_id=tenant.id,
                    metric="api_calls",
                    quantity=Decimal(daily + day.day * 37),
                    occurred_at=dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
                    idempotency_key=key,
                    properties={"source": "demo"},
                )
            )
        day += dt.timedelta(days=1)
    session.flush()


def _user(session, email: str, name: str, password: str) -> User:
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
    subscribed = []
    for spec in TENANTS:
        tenant = _tenant(session, seller, spec)
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
