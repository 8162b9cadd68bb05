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
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import set_committed_value

from portal.bulk import among, assign_ids
from portal.catalog.models import (
    BillingInterval,
    ChargeTiming,
    CompanyBillingSettings,
    Coupon,
    CouponDuration,
    OneOffCharge,
    Price,
    PriceTier,
    Subscription,
    SubscriptionChange,
    SubscriptionCoupon,
    SubscriptionItem,
    SubscriptionStatus,
    UsageKind,
)
from portal.domain.money import Money
from portal.domain.pricing import (
    PriceSpec,
    Tier,
    chargeable_fraction,
    period_containing,
    price_lines,
    scale_price,
)
from portal.domain.tax import Party, VatDecision, decide_vat
from portal.invoices.drafts import DraftLine, create_draft, discount_rows
from portal.invoices.issuing import NewInvoice, Parties, finalize_invoices, insert_invoices
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceKind, InvoiceStatus, LineKind, VatCategory
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
    #: The subscriptions' coupons that discount this invoice, in the order they were added.
    coupons: list[PlannedCoupon] = field(default_factory=list)
    #: End of the full period when the invoice's period ends early (cancellation at once);
    #: licensed prices are then charged for the share of the full period billed.
    full_period_end: dt.date | None = None
    #: One-off charges (ids) billed on the invoice's last lines; see :func:`attach_charges`.
    charge_ids: list[int] = field(default_factory=list)

    @property
    def period_last_day(self) -> dt.date:
        return self.period_end - dt.timedelta(days=1)

    def coupon_rows(self) -> list[dict]:
        """The coupons' document allowances (BG-20), after the company discount."""
        return coupon_allowance_rows(
            self.lines, self.discount_percent, self.coupons, self.tenant.currency
        )

    def allowance_rows(self) -> list[dict]:
        """Every document allowance of the invoice: the company discount, then coupons."""
        currency = self.tenant.currency
        discount = (
            discount_rows(self.lines, self.discount_percent, currency)
            if self.discount_percent
            else []
        )
        return discount + self.coupon_rows()

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
            allowances=tuple(self.coupon_rows()),
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
    every period is billed by exactly one monthly run (monthly, quarterly or yearly). A
    subscription anchored after the month's first day has no period containing it: its
    first period is the one it starts, billed by the run of the month that period ends in.
    A period that starts on or after the end of a pending cancellation is not billed.
    """
    start, end = period_containing(
        subscription.started_on,
        subscription.interval.value,
        subscription.interval_count,
        max(month_start, subscription.started_on),
    )
    if end > month_end:
        return None
    if isinstance(subscription, PlannedSubscription):
        ends_on = subscription.ends_on
    else:
        ends_on = subscription.current_period_end if subscription.cancel_at_period_end else None
    if ends_on is not None and start >= ends_on:
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


def vat_for(
    context: BillingContext, on: dt.date, supply: Literal["services", "goods"] = "services"
) -> VatDecision:
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
    return decide_vat(seller=seller, buyer=buyer, on=on, supply=supply)


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
        scale = _licensed_fraction(plan, subscription.trial_end)
    if scale == 0:
        return []  # the trial covers the whole period
    lines = []
    for priced in price_lines(spec, quantity):
        unit_price = priced.unit_price if scale == 1 else scale_price(priced.unit_price, scale)
        description = priced.description
        details = dict(priced.details)
        if scale != 1:
            description += _scaled_wording(plan, subscription.trial_end)
            details["charged_fraction"] = str(scale)
        lines.append(
            _line(plan, kind, description, priced.quantity, unit_price, price, item, details)
        )
    return lines


def _licensed_fraction(plan: InvoicePlan, trial_end: dt.date | None) -> Fraction:
    """Share of the (full) period a licensed price is charged for: after the trial, and
    until the invoice's period ends when it ends early."""
    if plan.full_period_end is None:
        return chargeable_fraction(plan.period_start, plan.period_end, trial_end)
    first_paid = min(max(trial_end or plan.period_start, plan.period_start), plan.period_end)
    return Fraction(
        (plan.period_end - first_paid).days, (plan.full_period_end - plan.period_start).days
    )


def _scaled_wording(plan: InvoicePlan, trial_end: dt.date | None) -> str:
    """What a licensed line charged for part of its period says about it."""
    if plan.full_period_end is None:
        return f" (from {trial_end:%d %b %Y}, after the trial)"
    last_day = plan.period_end - dt.timedelta(days=1)
    if trial_end is not None and trial_end > plan.period_start:
        return f" (from {trial_end:%d %b %Y}, after the trial, until {last_day:%d %b %Y})"
    return f" (until {last_day:%d %b %Y}, canceled)"


def _proration_lines(plan: InvoicePlan, change: SubscriptionChange) -> list[DraftLine]:
    """Correct the full-period charge at today's terms for the days before ``change``.

    The invoice charges each licensed item at its terms on the last day for the whole
    period; a change on day D from A to B adds "A for the days before D" and "minus B for
    the days before D". Chained changes telescope to the right total.
    """
    full_end = plan.full_period_end or plan.period_end
    # A period that ends early (an immediate cancellation) bills the old terms at most
    # until its end: a change dated later never took effect.
    effective_on = min(change.effective_on, plan.period_end)
    before = Fraction((effective_on - plan.period_start).days, (full_end - plan.period_start).days)
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
    ends_on: dt.date | None = None,
) -> InvoicePlan:
    """Plan the invoice of ``context.tenant`` for [period_start, period_end).

    :param usage_scale: multiplies metered usage; the estimate passes the projection factor.
    :param specs: price specs by price id, shared by the plans of one batch (filled here).
    :param ends_on: the period ends early, on this day (exclusive): the invoice covers
        [period_start, ends_on), licensed prices are charged for that share of the period
        and the context's usage should be loaded up to that day.
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
    if ends_on is not None and period_start < ends_on < period_end:
        plan.period_end, plan.full_period_end = ends_on, period_end
    for subscription in context.subscriptions:
        for item in subscription.items:
            plan.lines.extend(_item_lines(plan, context, subscription, item, usage_scale, specs))
    for change in sorted(context.changes, key=lambda c: (c.effective_on, c.id)):
        plan.lines.extend(_proration_lines(plan, change))
    plan.coupons = plan_coupons(context.subscriptions, context.tenant.currency)
    return plan


# Coupons ---------------------------------------------------------------------------------------

#: UNCL 5189 allowance reason code of coupon allowances (BT-98): "Discount".
COUPON_REASON_CODE = "95"


@dataclass(frozen=True, slots=True)
class PlannedCoupon:
    """A coupon on a subscription, as planning reads it."""

    subscription_coupon_id: int
    code: str
    name: str
    percent_off: Decimal | None
    amount_off_minor: int | None
    currency: str | None
    applied_at: dt.datetime

    @property
    def reason(self) -> str:
        return coupon_reason(self.code, self.name)


def coupon_reason(code: str, name: str) -> str:
    """The allowance reason (BT-97) a coupon prints as: its name and code."""
    return f"{name} ({code})"


def coupon_applies(coupon: Coupon, subscription_coupon: SubscriptionCoupon) -> bool:
    """Whether the coupon still discounts invoices: not removed, and for ``once`` and
    ``repeating`` fewer finalized invoices used it than it allows."""
    if subscription_coupon.removed_at is not None:
        return False
    used = subscription_coupon.periods_used
    if coupon.duration == CouponDuration.ONCE:
        return used < 1
    if coupon.duration == CouponDuration.REPEATING:
        return used < (coupon.duration_periods or 0)
    return True


def _active_coupons(
    session: Session, subscription_ids: list[int]
) -> dict[int, tuple[PlannedCoupon, ...]]:
    """The coupons that still apply to each subscription, in the order they were added."""
    if not subscription_ids:
        return {}
    found: dict[int, list[PlannedCoupon]] = defaultdict(list)
    for applied, coupon in session.execute(
        sa.select(SubscriptionCoupon, Coupon)
        .join(Coupon, Coupon.id == SubscriptionCoupon.coupon_id)
        .where(
            among(session, SubscriptionCoupon.subscription_id, subscription_ids),
            SubscriptionCoupon.removed_at.is_(None),
        )
        .order_by(SubscriptionCoupon.id)
    ).all():
        if coupon_applies(coupon, applied):
            found[applied.subscription_id].append(
                PlannedCoupon(
                    applied.id,
                    coupon.code,
                    coupon.name,
                    coupon.percent_off,
                    coupon.amount_off_minor,
                    coupon.currency,
                    applied.applied_at,
                )
            )
    return {key: tuple(value) for key, value in found.items()}


def plan_coupons(
    subscriptions: Iterable[PlannedSubscription], currency: str
) -> list[PlannedCoupon]:
    """The coupons that discount the invoice planned now: every coupon still applying to
    the subscriptions (a coupon discounts the invoices created after it was added; periods
    already invoiced keep their invoices), fixed amounts only in the invoice's currency."""
    coupons = [
        coupon
        for subscription in subscriptions
        for coupon in subscription.coupons
        if coupon.amount_off_minor is None or coupon.currency == currency
    ]
    return sorted(coupons, key=lambda c: c.subscription_coupon_id)


def coupon_allowance_rows(
    lines: Iterable[DraftLine],
    discount_percent: Decimal,
    coupons: Iterable[PlannedCoupon],
    currency: str,
) -> list[dict]:
    """Coupons as document allowances (BG-20), one per coupon and VAT category and rate.

    Coupons apply in the order they were added, each to what the company discount and the
    coupons before it left of each VAT group: a percentage of each group (half-up to the
    minor unit), or a fixed amount split across the groups in proportion to what is left of
    them (:meth:`Money.allocate`, so the parts add up), capped at what is left, so an
    invoice never goes below zero.
    """
    coupons = list(coupons)
    if not coupons:
        return []
    lines = list(lines)
    left: dict[tuple, int] = {}
    for row in discount_rows(lines, Decimal(100), currency):  # the groups' bases
        left[(row["vat_category"], row["vat_rate"])] = row["base_minor"]
    if discount_percent:
        for row in discount_rows(lines, discount_percent, currency):
            left[(row["vat_category"], row["vat_rate"])] -= row["amount_minor"]
    rows = []
    for coupon in coupons:
        groups = [(key, base) for key, base in left.items() if base > 0]
        if not groups:
            break
        if coupon.percent_off is not None:
            amounts = [
                int(
                    (Decimal(base) * coupon.percent_off / 100).quantize(
                        Decimal(1), rounding=ROUND_HALF_UP
                    )
                )
                for _, base in groups
            ]
        else:
            total = sum(base for _, base in groups)
            off = Money(min(coupon.amount_off_minor or 0, total), currency)
            amounts = [part.minor for part in off.allocate([base for _, base in groups])]
        for ((category, rate), base), amount in zip(groups, amounts, strict=True):
            amount = min(amount, base)
            if amount <= 0:
                continue
            left[(category, rate)] = base - amount
            rows.append(
                {
                    "is_charge": False,
                    "amount_minor": amount,
                    "base_minor": base if coupon.percent_off is not None else None,
                    "percent": coupon.percent_off,
                    "reason": coupon.reason,
                    "reason_code": COUPON_REASON_CODE,
                    "vat_category": category,
                    "vat_rate": rate,
                }
            )
    return rows


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
    #: End of the period a pending cancellation takes effect at (no period after it bills).
    ends_on: dt.date | None
    items: tuple[PlannedItem, ...]
    #: Its coupons that still apply (see :func:`_active_coupons`).
    coupons: tuple[PlannedCoupon, ...] = ()


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
            sa.case(
                (Subscription.cancel_at_period_end.is_(True), Subscription.current_period_end),
                else_=None,
            ).label("ends_on"),
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
    coupons = _active_coupons(session, [row.id for row in rows])
    return [
        PlannedSubscription(
            **row._asdict(), items=tuple(items.get(row.id, ())), coupons=coupons.get(row.id, ())
        )
        for row in rows
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
    attach_charges(session, plans)
    return plans


class ChargeAlreadyBilled(RuntimeError):
    """A one-off charge was billed by another invoice meanwhile (a concurrent run)."""


def charge_line(
    context: BillingContext, charge: OneOffCharge, on: dt.date, period: tuple[dt.date, dt.date]
) -> DraftLine:
    """The invoice line of a one-off charge: its own VAT decision by what it sells, or
    exempt with the reason it carries; the period is the invoice's (inclusive last day)."""
    if charge.vat_exemption_reason:
        reason = charge.vat_exemption_reason
        code = reason.upper() if reason.upper().startswith("VATEX") else "VATEX-EU-132"
        vat = VatDecision(VatCategory.EXEMPT, Decimal(0), reason, code, "exempt")
    else:
        vat = vat_for(context, on, charge.tax_treatment.value)
    return DraftLine(
        description=charge.description,
        quantity=charge.quantity,
        unit_price=charge.unit_price,
        kind=LineKind.MANUAL,
        vat_category=vat.category,
        vat_rate=vat.rate,
        vat_exemption_reason=vat.exemption_reason,
        vat_exemption_code=vat.exemption_code,
        period_start=period[0],
        period_end=period[1],
        details={"one_off_charge": str(charge.public_id)},
    )


def attach_charges(
    session: Session, plans: list[tuple[InvoicePlan, Invoice | None, BillingContext]]
) -> None:
    """Put each company's pending one-off charges (timing ``next_invoice``, not billed yet)
    on the first new invoice of its plans, in one query for the batch.

    The charges are only read here; :func:`claim_charges` marks them billed once the
    invoice exists.
    """
    first: dict[int, tuple[InvoicePlan, BillingContext]] = {}
    for plan, found, context in plans:
        if found is None and plan.tenant.id not in first:
            first[plan.tenant.id] = (plan, context)
    if not first:
        return
    for charge in session.scalars(
        sa.select(OneOffCharge)
        .where(
            among(session, OneOffCharge.tenant_id, list(first)),
            OneOffCharge.timing == ChargeTiming.NEXT_INVOICE,
            OneOffCharge.invoice_id.is_(None),
        )
        .order_by(OneOffCharge.id)
    ):
        plan, context = first[charge.tenant_id]
        period = (plan.period_start, plan.period_last_day)
        plan.lines.append(charge_line(context, charge, plan.issue_date, period))
        plan.charge_ids.append(charge.id)


def claim_charges(session: Session, billed: Iterable[tuple[list[int], int]]) -> None:
    """Mark one-off charges billed by an invoice: ``(charge ids, invoice id)`` pairs.

    Each charge's ``invoice_id`` is set exactly once: the UPDATE only takes charges still
    unbilled (on PostgreSQL a concurrent claim waits for the row and then finds it taken),
    and a charge taken meanwhile fails the batch, which rolls back and bills it nowhere.

    :raise ChargeAlreadyBilled: when a charge was billed by another invoice meanwhile.
    """
    for charge_ids, invoice_id in billed:
        if not charge_ids:
            continue
        claimed = session.execute(  # an UPDATE: a CursorResult, with its rowcount
            sa.update(OneOffCharge)
            .where(OneOffCharge.id.in_(charge_ids), OneOffCharge.invoice_id.is_(None))
            .values(invoice_id=invoice_id)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if claimed != len(charge_ids):
            raise ChargeAlreadyBilled(f"charges {charge_ids} were billed meanwhile")


def generate_invoices(
    session: Session, tenants: Iterable[Tenant], month: str, *, issue_date: dt.date | None = None
) -> list[Invoice]:
    """Draft invoices of ``tenants`` for the month's billed periods; existing ones are kept.

    The batch's existing invoices are looked up in one query and the new drafts are
    inserted in one flush, so a batch costs a fixed number of statements.
    """
    invoices = []
    billed = []
    for plan, found, _ in billing_plans(session, tenants, month, issue_date=issue_date):
        if found is None:
            found = draft_from_plan(session, plan, known_new=True, flush=False)
            billed.append((plan.charge_ids, found))
        invoices.append(found)
    assign_ids(session, list(session.new))
    session.flush()
    claim_charges(session, [(charge_ids, invoice.id) for charge_ids, invoice in billed])
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
    new_plans = [plan for plan, found, _ in plans if found is None]
    new = [plan.new_invoice(finalize=plan.tenant.id not in keep_drafts) for plan in new_plans]
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
    ids, finalized = insert_invoices(session, new, issue_date=issue_date, parties=parties)
    claim_charges(
        session, [(plan.charge_ids, id_) for plan, id_ in zip(new_plans, ids, strict=True)]
    )
    finalize_invoices(session, drafts, issue_date=issue_date)
    return len(plans), len(finalized) + len(drafts)


def plan_ended_period(
    session: Session,
    tenant: Tenant,
    subscription_id: int,
    period: tuple[dt.date, dt.date],
    ends_on: dt.date,
    *,
    issue_date: dt.date,
) -> InvoicePlan | None:
    """The final invoice of a subscription whose ``period`` ends early, on ``ends_on``
    (exclusive; an immediate cancellation): licensed prices for the share of the period
    until then, usage until then, and the proration of its changes; None when the
    subscription is not billable (canceled already, or not started).

    The company's pending one-off charges wait for its next periodic invoice.
    """
    start, end = period
    context = load_contexts(
        session,
        [tenant],
        start,
        end,
        usage_until=dt.datetime.combine(ends_on, dt.time(), tzinfo=dt.UTC),
    )[0]
    subscriptions = [s for s in context.subscriptions if s.id == subscription_id]
    if not subscriptions:
        return None
    item_ids = {item.id for item in subscriptions[0].items}
    scoped_context = BillingContext(
        context.tenant,
        context.seller,
        context.profile,
        context.settings,
        subscriptions,
        context.usage,
        [c for c in context.changes if c.subscription_item_id in item_ids],
    )
    return plan_invoice(scoped_context, start, end, issue_date=issue_date, ends_on=ends_on)
