"""Invoice generation: what a tenant owes for a billing period, as lines, and the draft.

One planner serves the invoice run and the upcoming estimate, so they cannot disagree:
licensed prices for the period (less any trial), metered usage summed in SQL, proration
for mid-period changes, the company's discount, and one VAT decision per invoice.
Periods are half-open [start, end); invoices store the inclusive last day (BT-74).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from portal.bulk import among, assign_ids
from portal.catalog.models import (
    BillingInterval,
    CompanyBillingSettings,
    Price,
    PriceTier,
    Subscription,
    SubscriptionChange,
    SubscriptionItem,
    SubscriptionStatus,
    UsageKind,
)
from portal.domain.pricing import (
    PriceSpec,
    Tier,
    chargeable_fraction,
    period_containing,
    price_lines,
    scale_price,
)
from portal.domain.tax import Party, VatDecision, decide_vat
from portal.invoices.drafts import DraftLine, create_draft
from portal.invoices.issuing import NewInvoice, Parties, finalize_invoices, insert_invoices
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceKind, InvoiceStatus, LineKind
from portal.tenancy.models import BillingProfile, Seller, Tenant
from portal.usage.queries import usage_totals

PRICE_QUANTUM = Decimal("1e-10")
QUANTITY_QUANTUM = Decimal("1e-6")


@dataclass(frozen=True)
class BillingContext:
    """What the planner needs of a tenant, loaded in bulk for a batch of tenants."""

    tenant: Tenant
    seller: Seller
    profile: BillingProfile | None
    settings: CompanyBillingSettings | None
    subscriptions: list[PlannedSubscription]
    usage: dict[str, Decimal]  # metric → quantity in the period
    changes: list[SubscriptionChange]


@dataclass
class InvoicePlan:
    """The lines an invoice for ``period`` would have, and the VAT decision behind them."""

    tenant: Tenant
    period_start: dt.date
    period_end: dt.date  # exclusive
    issue_date: dt.date
    vat: VatDecision
    subscription_id: int | None
    discount_percent: Decimal
    lines: list[DraftLine] = field(default_factory=list)

    @property
    def period_last_day(self) -> dt.date:
        return self.period_end - dt.timedelta(days=1)

    def new_invoice(self, *, finalize: bool = False) -> NewInvoice:
        """The subscription invoice of this plan, as the services create it."""
        return NewInvoice(
            tenant=self.tenant,
            kind=InvoiceKind.SUBSCRIPTION,
            period_start=self.period_start,
            period_end=self.period_last_day,
            lines=self.lines,
            subscription_id=self.subscription_id,
            discount_percent=self.discount_percent,
            finalize=finalize,
        )


def month_period(month: str) -> tuple[dt.date, dt.date]:
    """[first day, first day of next month) of "YYYY-MM".

    :raise ValueError: when ``month`` is not of that form.
    """
    try:
        start = dt.datetime.strptime(month, "%Y-%m").date()
    except ValueError as exc:
        raise ValueError(f"period must look like 2026-10, not {month!r}") from exc
    end = dt.date(start.year + start.month // 12, start.month % 12 + 1, 1)
    return start, end


def billed_period(
    subscription: Subscription | PlannedSubscription, month_start: dt.date, month_end: dt.date
):
    """The subscription's period that the run for this month bills, or None.

    That is the period containing the month's first day, if it ends by the month's end, so
    every period is billed by exactly one monthly run (monthly, quarterly or yearly).
    """
    start, end = period_containing(
        subscription.started_on,
        subscription.interval.value,
        subscription.interval_count,
        month_start,
    )
    if end > month_end:
        return None
    return start, end


def price_spec(price: Price) -> PriceSpec:
    """The domain view of a catalog price."""
    return PriceSpec(
        model=price.model.value,
        currency=price.currency,
        unit_amount=price.unit_amount,
        tiers=tuple(Tier(t.up_to, t.unit_amount, t.flat_amount) for t in price.tiers),
        package_size=price.package_size,
        name=price.nickname,
    )


def vat_for(context: BillingContext, on: dt.date) -> VatDecision:
    """The invoice's VAT decision: seller and buyer locations, VAT ID, exemption, date."""
    seller = Party(country=context.seller.country, vat_id=context.seller.vat_id)
    profile = context.profile
    if profile is None:
        buyer = Party(country=context.seller.country, is_business=False)
    else:
        buyer = Party(
            country=profile.country,
            vat_id=profile.vat_id,
            is_business=bool(profile.vat_id),
            tax_exempt=profile.tax_exempt,
            exemption_reason=profile.tax_exemption_reason,
        )
    return decide_vat(seller=seller, buyer=buyer, on=on)


def _line(
    plan: InvoicePlan,
    kind: LineKind,
    description: str,
    quantity: Decimal,
    unit_price: Decimal,
    price: Price,
    item: PlannedItem | None,
    details: dict,
) -> DraftLine:
    return DraftLine(
        description=description,
        quantity=quantity,
        unit_price=unit_price,
        kind=kind,
        vat_category=plan.vat.category,
        vat_rate=plan.vat.rate,
        vat_exemption_reason=plan.vat.exemption_reason,
        vat_exemption_code=plan.vat.exemption_code,
        unit_code=price.unit_code,
        price_id=price.id,
        subscription_item_id=item.id if item else None,
        period_start=plan.period_start,
        period_end=plan.period_last_day,
        details=details,
    )


def _item_lines(
    plan: InvoicePlan,
    context: BillingContext,
    subscription: PlannedSubscription,
    item: PlannedItem,
    usage_scale: Fraction,
    specs: dict[int, PriceSpec] | None = None,
) -> list[DraftLine]:
    price = item.price
    known = specs.get(price.id) if specs is not None else None
    spec = known if known is not None else price_spec(price)
    if specs is not None and known is None:
        specs[price.id] = spec
    if price.usage_kind == UsageKind.METERED:
        used = context.usage.get(price.metric or "", Decimal(0))
        quantity = (used * Decimal(usage_scale.numerator) / usage_scale.denominator).quantize(
            QUANTITY_QUANTUM, rounding=ROUND_HALF_UP
        )
        kind, scale = LineKind.USAGE, Fraction(1)
    else:
        quantity = item.quantity
        kind = LineKind.SUBSCRIPTION
        scale = chargeable_fraction(plan.period_start, plan.period_end, subscription.trial_end)
    if scale == 0:
        return []  # the trial covers the whole period
    lines = []
    for priced in price_lines(spec, quantity):
        unit_price = priced.unit_price if scale == 1 else scale_price(priced.unit_price, scale)
        description = priced.description
        details = dict(priced.details)
        if scale != 1:
            description += f" (from {subscription.trial_end:%d %b %Y}, after the trial)"
            details["charged_fraction"] = str(scale)
        lines.append(
            _line(plan, kind, description, priced.quantity, unit_price, price, item, details)
        )
    return lines


def _proration_lines(plan: InvoicePlan, change: SubscriptionChange) -> list[DraftLine]:
    """Correct the full-period charge at today's terms for the days before ``change``.

    The invoice charges each licensed item at its terms on the last day for the whole
    period; a change on day D from A to B adds "A for the days before D" and "minus B for
    the days before D". Chained changes telescope to the right total.
    """
    before = Fraction(
        (change.effective_on - plan.period_start).days, (plan.period_end - plan.period_start).days
    )
    if before <= 0 or before >= 1:
        return []
    lines = []
    day = change.effective_on - dt.timedelta(days=1)
    for price, quantity, sign, wording in (
        (change.old_price, change.old_quantity, 1, "used until"),
        (change.new_price, change.new_quantity, -1, "not used until"),
    ):
        for priced in price_lines(price_spec(price), quantity):
            lines.append(
                _line(
                    plan,
                    LineKind.PRORATION,
                    f"{priced.description}: {priced.quantity.normalize():f} × {wording} "
                    f"{day:%d %b %Y}",
                    sign * priced.quantity,
                    scale_price(priced.unit_price, before),
                    price,
                    None,
                    {"proration": str(before), "change_on": change.effective_on.isoformat()},
                )
            )
    return lines


def plan_invoice(
    context: BillingContext,
    period_start: dt.date,
    period_end: dt.date,
    *,
    issue_date: dt.date | None = None,
    usage_scale: Fraction = Fraction(1),
    specs: dict[int, PriceSpec] | None = None,
) -> InvoicePlan:
    """Plan the invoice of ``context.tenant`` for [period_start, period_end).

    :param usage_scale: multiplies metered usage; the estimate passes the projection factor.
    :param specs: price specs by price id, shared by the plans of one batch (filled here).
    """
    issue_date = issue_date or period_end
    settings = context.settings
    plan = InvoicePlan(
        tenant=context.tenant,
        period_start=period_start,
        period_end=period_end,
        issue_date=issue_date,
        vat=vat_for(context, issue_date),
        subscription_id=context.subscriptions[0].id if context.subscriptions else None,
        discount_percent=settings.discount_percent if settings else Decimal(0),
    )
    for subscription in context.subscriptions:
        for item in subscription.items:
            plan.lines.extend(_item_lines(plan, context, subscription, item, usage_scale, specs))
    for change in sorted(context.changes, key=lambda c: (c.effective_on, c.id)):
        plan.lines.extend(_proration_lines(plan, change))
    return plan


@dataclass(frozen=True, slots=True)
class PlannedItem:
    """What planning reads of a subscription item, loaded without an ORM object."""

    id: int
    subscription_id: int
    price_id: int
    quantity: Decimal
    price: Price


@dataclass(frozen=True, slots=True)
class PlannedSubscription:
    """What planning reads of a subscription, with its items (ordered by id, as the
    relationship is), loaded without ORM objects: a batch of a run has thousands."""

    id: int
    tenant_id: int
    status: SubscriptionStatus
    currency: str
    interval: BillingInterval
    interval_count: int
    started_on: dt.date
    trial_end: dt.date | None
    items: tuple[PlannedItem, ...]


def _subscriptions(
    session: Session, tenant_ids: list[int], period_end: dt.date
) -> list[PlannedSubscription]:
    """The tenants' subscriptions that may bill before ``period_end``, in id order, with
    their items, the items' prices and the prices' tiers, in four queries that each take
    one array of ids on PostgreSQL (see :func:`among`)."""
    rows = session.execute(
        sa.select(
            Subscription.id,
            Subscription.tenant_id,
            Subscription.status,
            Subscription.currency,
            Subscription.interval,
            Subscription.interval_count,
            Subscription.started_on,
            Subscription.trial_end,
        )
        .where(
            among(session, Subscription.tenant_id, tenant_ids),
            Subscription.status != SubscriptionStatus.CANCELED,
            Subscription.started_on < period_end,
        )
        .order_by(Subscription.id)
    ).all()
    item_rows = session.execute(
        sa.select(
            SubscriptionItem.id,
            SubscriptionItem.subscription_id,
            SubscriptionItem.price_id,
            SubscriptionItem.quantity,
        )
        .where(among(session, SubscriptionItem.subscription_id, [row.id for row in rows]))
        .order_by(SubscriptionItem.id)  # the relationship's order
    ).all()
    price_ids = {row.price_id for row in item_rows}
    prices = {
        price.id: price
        for price in session.scalars(sa.select(Price).where(among(session, Price.id, price_ids)))
    }
    tiers = defaultdict(list)
    for tier in session.scalars(
        sa.select(PriceTier)
        .where(among(session, PriceTier.price_id, price_ids))
        .order_by(PriceTier.position)  # the relationship's order
    ):
        tiers[tier.price_id].append(tier)
    for price in prices.values():
        set_committed_value(price, "tiers", tiers.get(price.id, []))
    items: defaultdict[int, list[PlannedItem]] = defaultdict(list)
    for row in item_rows:
        items[row.subscription_id].append(PlannedItem(**row._asdict(), price=prices[row.price_id]))
    return [
        PlannedSubscription(**row._asdict(), items=tuple(items.get(row.id, ()))) for row in rows
    ]


def load_contexts(
    session: Session,
    tenants: list[Tenant],
    period_start: dt.date,
    period_end: dt.date,
    *,
    usage_until: dt.datetime | None = None,
) -> list[BillingContext]:
    """Billing contexts for a batch of tenants, in a fixed number of queries (no N+1)."""
    ids = [t.id for t in tenants]
    sellers = {
        s.id: s
        for s in session.scalars(
            sa.select(Seller).where(among(session, Seller.id, {t.seller_id for t in tenants}))
        )
    }
    profiles = {
        p.tenant_id: p
        for p in session.scalars(
            sa.select(BillingProfile).where(among(session, BillingProfile.tenant_id, ids))
        )
    }
    settings = {
        s.tenant_id: s
        for s in session.scalars(
            sa.select(CompanyBillingSettings).where(
                among(session, CompanyBillingSettings.tenant_id, ids)
            )
        )
    }
    subscriptions = defaultdict(list)
    for subscription in _subscriptions(session, ids, period_end):
        subscriptions[subscription.tenant_id].append(subscription)
    start = dt.datetime.combine(period_start, dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(period_end, dt.time(), tzinfo=dt.UTC)
    if usage_until is not None:
        end = min(end, usage_until)
    usage: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for (tenant_id, metric), total in usage_totals(session, ids, start, end).items():
        usage[tenant_id][metric] = total
    changes = defaultdict(list)
    for change in session.scalars(
        sa.select(SubscriptionChange)
        .where(
            among(session, SubscriptionChange.tenant_id, ids),
            SubscriptionChange.effective_on > period_start,
            SubscriptionChange.effective_on < period_end,
        )
        .options(
            selectinload(SubscriptionChange.old_price).selectinload(Price.tiers),
            selectinload(SubscriptionChange.new_price).selectinload(Price.tiers),
        )
    ):
        changes[change.tenant_id].append(change)
    return [
        BillingContext(
            t,
            sellers[t.seller_id],
            profiles.get(t.id),
            settings.get(t.id),
            subscriptions.get(t.id, []),
            usage.get(t.id, {}),
            changes.get(t.id, []),
        )
        for t in tenants
    ]


def draft_from_plan(session: Session, plan: InvoicePlan, **options: Any) -> Invoice:
    """The draft invoice of a plan; idempotent per tenant, kind and period.

    ``options`` go to :func:`create_draft` (``known_new``, ``flush``).
    """
    new = plan.new_invoice()
    return create_draft(session, new.tenant, **new.draft_fields(), **options)


def billing_plans(
    session: Session, tenants: Iterable[Tenant], month: str, *, issue_date: dt.date | None = None
) -> list[tuple[InvoicePlan, Invoice | None, BillingContext]]:
    """The plans of ``tenants``' invoices for the month's billed periods (those with lines),
    each with the invoice that already exists for it, if any, and the tenant's context.

    The batch's existing invoices are looked up in one query and its billing contexts
    loaded in bulk, so a batch costs a fixed number of statements.
    """
    month_start, month_end = month_period(month)
    tenants = list(tenants)
    # Every billed period ends (inclusive) within the month: see billed_period().
    existing = {
        (i.tenant_id, i.period_start, i.period_end): i
        for i in session.scalars(
            sa.select(Invoice).where(
                among(session, Invoice.tenant_id, [t.id for t in tenants]),
                Invoice.kind == InvoiceKind.SUBSCRIPTION,
                Invoice.period_end >= month_start,
                Invoice.period_end < month_end,
            )
        )
    }
    plans = []
    specs: dict[int, PriceSpec] = {}  # a price's spec, once per batch
    for context in load_contexts(session, tenants, month_start, month_end):
        by_period: dict[tuple, list[PlannedSubscription]] = defaultdict(list)
        for subscription in context.subscriptions:
            if (period := billed_period(subscription, month_start, month_end)) is not None:
                by_period[period].append(subscription)
        for (start, end), subscriptions in by_period.items():
            period_context = context
            if (start, end) != (month_start, month_end):  # quarterly, yearly, odd anchors
                period_context = load_contexts(session, [context.tenant], start, end)[0]
            item_ids = {item.id for s in subscriptions for item in s.items}
            scoped_context = BillingContext(
                context.tenant,
                context.seller,
                context.profile,
                context.settings,
                subscriptions,
                period_context.usage,
                [c for c in period_context.changes if c.subscription_item_id in item_ids],
            )
            plan = plan_invoice(scoped_context, start, end, issue_date=issue_date, specs=specs)
            if plan.lines:
                found = existing.get((context.tenant.id, start, plan.period_last_day))
                plans.append((plan, found, context))
    return plans


def generate_invoices(
    session: Session, tenants: Iterable[Tenant], month: str, *, issue_date: dt.date | None = None
) -> list[Invoice]:
    """Draft invoices of ``tenants`` for the month's billed periods; existing ones are kept.

    The batch's existing invoices are looked up in one query and the new drafts are
    inserted in one flush, so a batch costs a fixed number of statements.
    """
    invoices = []
    for plan, found, _ in billing_plans(session, tenants, month, issue_date=issue_date):
        if found is None:
            found = draft_from_plan(session, plan, known_new=True, flush=False)
        invoices.append(found)
    assign_ids(session, list(session.new))
    session.flush()
    return invoices


def issue_invoices(
    session: Session,
    tenants: Iterable[Tenant],
    month: str,
    *,
    issue_date: dt.date,
    keep_drafts: Collection[int] = (),
) -> tuple[int, int]:
    """:func:`generate_invoices` and the finalization of the new drafts, for an invoice run.

    The new invoices are created finalized, except those of tenants in ``keep_drafts``
    (companies that finalize by hand), which stay drafts; all are written in bulk
    (:func:`insert_invoices`), not as ORM objects. An existing draft of another tenant is
    finalized too. Returns how many invoices there are for the tenants' periods and how
    many were finalized now.
    """
    plans = billing_plans(session, tenants, month, issue_date=issue_date)
    new = [
        plan.new_invoice(finalize=plan.tenant.id not in keep_drafts)
        for plan, found, _ in plans
        if found is None
    ]
    drafts = [
        found
        for plan, found, _ in plans
        if found is not None
        and found.status == InvoiceStatus.DRAFT
        and found.tenant_id not in keep_drafts
    ]
    contexts = [context for _, _, context in plans]
    parties = Parties(
        tenants={c.tenant.id: c.tenant for c in contexts},
        sellers={c.seller.id: c.seller for c in contexts},
        profiles={c.tenant.id: c.profile for c in contexts if c.profile is not None},
        settings={c.tenant.id: c.settings for c in contexts if c.settings is not None},
    )
    _, finalized = insert_invoices(session, new, issue_date=issue_date, parties=parties)
    finalize_invoices(session, drafts, issue_date=issue_date)
    return len(plans), len(finalized) + len(drafts)
