"""Subscription use cases for operators: subscribe, change, preview, cancel and resume."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from portal.catalog.models import (
    CompanyBillingSettings,
    Plan,
    Price,
    Subscription,
    SubscriptionChange,
    SubscriptionItem,
    SubscriptionStatus,
    UsageKind,
)
from portal.catalog.services import SubscriptionChangeRefused, change_subscription_item
from portal.db import lock, parse_public_id, utcnow
from portal.domain.pricing import QUANTITY_PLACES, add_interval, period_containing
from portal.invoices.credit_notes import CreditLine, issue_credit_note
from portal.invoices.drafts import delete_draft, find_period_invoice
from portal.invoices.generation import (
    billing_plans,
    draft_from_plan,
    plan_ended_period,
)
from portal.invoices.issuing import finalize_invoice
from portal.invoices.models import CreditNote, Invoice
from portal.invoices.states import InvoiceKind, InvoiceStatus, LineKind
from portal.ops.audit import N_, Actor, AdminActionRefused, record_audit
from portal.tenancy.models import Tenant

#: Longest cancellation reason kept (the column's length).
REASON_LENGTH = 500
#: Largest licensed quantity accepted (the Quantity column holds 14 digits before the point).
MAX_QUANTITY = Decimal("1e12")


class SubscriptionRefused(AdminActionRefused):
    """A subscription request the catalog, the company or the period does not allow.

    ``field`` names the input at fault (for inline form errors and API error sources).
    """

    def __init__(self, code: str, message: str, field: str | None = None):
        super().__init__(code, message)
        self.field = field


# -- reading -------------------------------------------------------------------------------


def company_subscriptions(session: Session, tenant: Tenant) -> list[Subscription]:
    """The company's subscriptions, newest first."""
    return list(
        session.scalars(
            sa.select(Subscription)
            .where(Subscription.tenant_id == tenant.id)
            .order_by(Subscription.started_on.desc(), Subscription.id.desc())
        )
    )


def find_subscription(session: Session, tenant: Tenant, public_id: Any) -> Subscription | None:
    """The company's subscription with this public id, or None (unknown, malformed, other's)."""
    uid = parse_public_id(public_id)
    if uid is None:
        return None
    return session.scalars(
        sa.select(Subscription).where(
            Subscription.tenant_id == tenant.id, Subscription.public_id == uid
        )
    ).one_or_none()


def find_price(session: Session, tenant: Tenant, public_id: Any, *, field: str = "price") -> Price:
    """A price of the company's seller by public id.

    :raise SubscriptionRefused: ``unknown_price`` (unknown, malformed, another seller's).
    """
    uid = parse_public_id(public_id)
    price = None
    if uid is not None:
        price = session.scalars(
            sa.select(Price)
            .join(Plan, Plan.id == Price.plan_id)
            .where(Price.public_id == uid, Plan.seller_id == tenant.seller_id)
        ).one_or_none()
    if price is None:
        raise SubscriptionRefused("unknown_price", N_("There is no such price."), field)
    return price


def offered_prices(session: Session, tenant: Tenant) -> list[Price]:
    """Prices a new subscription of the company may use: its seller's, in its currency, not
    archived."""
    return list(
        session.scalars(
            sa.select(Price)
            .join(Plan, Plan.id == Price.plan_id)
            .where(
                Plan.seller_id == tenant.seller_id,
                Price.currency == tenant.currency,
                Price.archived_at.is_(None),
                Price.is_active.is_(True),
                Plan.archived_at.is_(None),
            )
            .order_by(Plan.name, Price.nickname, Price.id)
        )
    )


def current_period(subscription: Subscription, today: dt.date) -> tuple[dt.date, dt.date]:
    """The period [start, end) that contains ``today`` (the first one before it starts)."""
    return period_containing(
        subscription.started_on,
        subscription.interval.value,
        subscription.interval_count,
        max(today, subscription.started_on),
    )


def pending_end(subscription: Subscription) -> dt.date | None:
    """The day a pending cancellation ends the subscription (exclusive), if one is set."""
    if subscription.cancel_at_period_end and subscription.status != SubscriptionStatus.CANCELED:
        return subscription.current_period_end
    return None


def subscription_state(subscription: Subscription) -> dict[str, Any]:
    """What the audit log keeps of a subscription."""
    return {
        "status": subscription.status.value,
        "currency": subscription.currency,
        "started_on": subscription.started_on.isoformat(),
        "current_period_start": subscription.current_period_start.isoformat(),
        "current_period_end": subscription.current_period_end.isoformat(),
        "trial_end": subscription.trial_end.isoformat() if subscription.trial_end else None,
        "cancel_at_period_end": subscription.cancel_at_period_end,
        "cancel_reason": subscription.cancel_reason,
        "items": [
            {"price": str(item.price.public_id), "quantity": f"{item.quantity.normalize():f}"}
            for item in subscription.items
        ],
    }


# -- checks ----------------------------------------------------------------------------------


def _check_company(tenant: Tenant) -> None:
    if tenant.archived_at is not None or not tenant.is_active:
        raise SubscriptionRefused(
            "company_archived", N_("The company is archived: it cannot be billed any more.")
        )


def _check_price(tenant: Tenant, price: Price, currency: str, field: str) -> None:
    if price.plan.seller_id != tenant.seller_id:
        raise SubscriptionRefused("unknown_price", N_("There is no such price."), field)
    if price.archived_at is not None or not price.is_active or price.plan.archived_at is not None:
        raise SubscriptionRefused(
            "price_archived", N_("The price is archived: new subscriptions cannot use it."), field
        )
    if price.currency != currency:
        raise SubscriptionRefused(
            "currency_mismatch",
            N_("The price is in another currency than the company is billed in."),
            field,
        )


def parse_quantity(value: Any, *, field: str = "quantity") -> Decimal | None:
    """A licensed quantity from a form or JSON value (None when empty).

    :raise SubscriptionRefused: ``invalid_quantity`` or ``quantity_not_positive``.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool) or isinstance(value, float):
        raise SubscriptionRefused(
            "invalid_quantity", N_("Enter the quantity as a number, e.g. 5 or 2.5."), field
        )
    try:
        quantity = Decimal(str(value).strip()) if not isinstance(value, Decimal) else value
    except (InvalidOperation, ValueError):
        raise SubscriptionRefused(
            "invalid_quantity", N_("Enter the quantity as a number, e.g. 5 or 2.5."), field
        ) from None
    if not quantity.is_finite():
        raise SubscriptionRefused(
            "invalid_quantity", N_("Enter the quantity as a number, e.g. 5 or 2.5."), field
        )
    return quantity


def _check_quantity(price: Price, quantity: Decimal | None, field: str) -> Decimal:
    """The quantity an item of ``price`` stores: licensed > 0, metered none (stored 0)."""
    if price.usage_kind == UsageKind.METERED:
        if quantity is not None:
            raise SubscriptionRefused(
                "metered_quantity",
                N_("A metered price is billed by usage: it takes no quantity."),
                field,
            )
        return Decimal(0)
    if quantity is None:
        raise SubscriptionRefused("quantity_required", N_("Enter a quantity."), field)
    if quantity <= 0:
        raise SubscriptionRefused(
            "quantity_not_positive", N_("The quantity must be greater than zero."), field
        )
    if quantity >= MAX_QUANTITY or -int(quantity.as_tuple().exponent) > QUANTITY_PLACES:
        raise SubscriptionRefused(
            "invalid_quantity",
            N_("The quantity is too large or has more than six decimal places."),
            field,
        )
    return quantity


def _sync_period(subscription: Subscription, today: dt.date) -> None:
    """Bring the stored current period up to ``today`` (the invoice run does not move it);
    a pending cancellation whose end has passed has ended the subscription."""
    end = pending_end(subscription)
    start, stop = current_period(subscription, today)
    if end is not None and start >= end:
        subscription.status = SubscriptionStatus.CANCELED
        subscription.cancel_at_period_end = False
        subscription.canceled_at = subscription.canceled_at or utcnow()
        return
    if subscription.status == SubscriptionStatus.TRIALING and (
        subscription.trial_end is None or subscription.trial_end <= today
    ):
        subscription.status = SubscriptionStatus.ACTIVE
    subscription.current_period_start, subscription.current_period_end = start, stop


def _check_open(subscription: Subscription) -> None:
    if subscription.status == SubscriptionStatus.CANCELED:
        raise SubscriptionRefused("subscription_canceled", N_("The subscription is canceled."))


def _period_invoice(session: Session, subscription: Subscription) -> Invoice | None:
    tenant = session.get_one(Tenant, subscription.tenant_id)
    return find_period_invoice(
        session,
        tenant,
        InvoiceKind.SUBSCRIPTION,
        subscription.current_period_start,
        subscription.current_period_end - dt.timedelta(days=1),
    )


# -- subscribing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class NewItem:
    """One price of a new subscription; ``quantity`` None for metered prices."""

    price: Price
    quantity: Decimal | None = None


def create_subscription(
    session: Session,
    tenant: Tenant,
    actor: Actor,
    *,
    items: Sequence[NewItem],
    start: dt.date,
    billing_anchor: dt.date | None = None,
    trial_end: dt.date | None = None,
    today: dt.date | None = None,
) -> Subscription:
    """Subscribe the company to ``items`` (all in its currency and of one interval).

    Periods follow the prices' interval from the billing anchor (the first period's start,
    by default the start date); billing starts there. The trial runs until ``trial_end``
    (exclusive: its first paid day).

    :raise SubscriptionRefused: ``company_archived``, ``no_items``, ``unknown_price``,
        ``price_archived``, ``currency_mismatch``, ``duplicate_price``,
        ``interval_mismatch``, ``quantity_required``, ``quantity_not_positive``,
        ``metered_quantity``, ``invalid_quantity``, ``end_before_start``,
        ``anchor_out_of_range`` (checked under the company's lock).
    """
    today = today or dt.date.today()
    lock(session, tenant)
    _check_company(tenant)
    if not items:
        raise SubscriptionRefused("no_items", N_("Choose at least one price."), "items")
    seen: set[int] = set()
    stored = []
    for index, new in enumerate(items):
        where = f"items.{index}"
        _check_price(tenant, new.price, tenant.currency, f"{where}.price")
        if new.price.id in seen:
            raise SubscriptionRefused(
                "duplicate_price", N_("Each price can be on a subscription once."), where
            )
        seen.add(new.price.id)
        stored.append((new.price, _check_quantity(new.price, new.quantity, f"{where}.quantity")))
    first = items[0].price
    if any(
        (new.price.interval, new.price.interval_count) != (first.interval, first.interval_count)
        for new in items
    ):
        raise SubscriptionRefused(
            "interval_mismatch",
            N_("All prices of a subscription must have the same billing interval."),
            "items",
        )
    anchor = billing_anchor or start
    if anchor < start:
        raise SubscriptionRefused(
            "end_before_start",
            N_("The billing anchor cannot be before the start date."),
            "billing_anchor",
        )
    if anchor >= add_interval(start, first.interval.value, first.interval_count):
        raise SubscriptionRefused(
            "anchor_out_of_range",
            N_("The billing anchor must fall within the first period after the start date."),
            "billing_anchor",
        )
    if trial_end is not None and trial_end <= start:
        raise SubscriptionRefused(
            "end_before_start", N_("The trial must end after the start date."), "trial_end"
        )
    subscription = Subscription(
        tenant_id=tenant.id,
        currency=tenant.currency,
        interval=first.interval,
        interval_count=first.interval_count,
        started_on=anchor,
        current_period_start=anchor,
        current_period_end=add_interval(anchor, first.interval.value, first.interval_count),
        trial_end=trial_end,
        status=(
            SubscriptionStatus.TRIALING
            if trial_end is not None and trial_end > today
            else SubscriptionStatus.ACTIVE
        ),
        items=[
            SubscriptionItem(tenant_id=tenant.id, price=price, quantity=quantity)
            for price, quantity in stored
        ],
    )
    session.add(subscription)
    session.flush()
    _sync_period(subscription, today)
    session.flush()
    record_audit(
        session,
        actor,
        "subscription.create",
        "subscription",
        str(subscription.public_id),
        tenant_id=tenant.id,
        after=subscription_state(subscription),
    )
    return subscription


# -- changing --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemChange:
    """A change of one item from ``on``: a new quantity and/or a new price."""

    item: SubscriptionItem
    on: dt.date
    quantity: Decimal | None = None
    price: Price | None = None


def _apply_change(
    session: Session, subscription: Subscription, change: ItemChange, today: dt.date
) -> SubscriptionChange | None:
    """Check and record a change (under the subscription's lock); no audit. None when the
    item has that quantity and price already."""
    lock(session, subscription)
    tenant = session.get_one(Tenant, subscription.tenant_id)
    _check_company(tenant)
    _check_open(subscription)
    _sync_period(subscription, today)
    _check_open(subscription)
    if change.item.subscription_id != subscription.id:
        raise SubscriptionRefused("unknown_item", N_("There is no such item."), "item")
    if change.price is not None and change.price.id != change.item.price_id:
        _check_price(tenant, change.price, subscription.currency, "price")
        if (change.price.interval, change.price.interval_count) != (
            subscription.interval,
            subscription.interval_count,
        ):
            raise SubscriptionRefused(
                "interval_mismatch",
                N_("The new price must have the subscription's billing interval."),
                "price",
            )
    price = change.price or change.item.price
    if price.usage_kind == UsageKind.METERED or change.item.price.usage_kind == UsageKind.METERED:
        raise SubscriptionRefused(
            "metered_change",
            N_("Metered items follow usage: their quantity or price is not changed mid-period."),
            "item",
        )
    if change.quantity is not None:
        _check_quantity(price, change.quantity, "quantity")
    if not subscription.current_period_start <= change.on < subscription.current_period_end:
        raise SubscriptionRefused(
            "outside_current_period",
            N_("A change takes effect on a day within the current period."),
            "on",
        )
    found = _period_invoice(session, subscription)
    if found is not None:
        raise SubscriptionRefused(
            "period_invoiced",
            N_("The current period is invoiced already: change from the next period on."),
            "on",
        )
    try:
        return change_subscription_item(
            session, change.item, on=change.on, quantity=change.quantity, price=change.price
        )
    except SubscriptionChangeRefused as exc:  # the engine's own checks, under the item's lock
        raise SubscriptionRefused("change_refused", str(exc)) from exc


def change_item(
    session: Session,
    subscription: Subscription,
    actor: Actor,
    change: ItemChange,
    *,
    today: dt.date | None = None,
) -> Subscription:
    """Change an item's quantity and/or price from a day of the current period; the period's
    invoice bills the proration (see :func:`portal.catalog.services.change_subscription_item`).
    A change to what the item has already (a repeat) records and audits nothing.

    :raise SubscriptionRefused: ``company_archived``, ``subscription_canceled``,
        ``unknown_item``, ``unknown_price``, ``price_archived``, ``currency_mismatch``,
        ``interval_mismatch``, ``metered_change``, ``quantity_not_positive``,
        ``invalid_quantity``, ``outside_current_period``, ``period_invoiced``.
    """
    lock(session, subscription)  # the audit's "before" is what the change replaces
    before = subscription_state(subscription)
    if _apply_change(session, subscription, change, today or dt.date.today()) is None:
        return subscription
    session.flush()
    record_audit(
        session,
        actor,
        "subscription.change",
        "subscription",
        str(subscription.public_id),
        tenant_id=subscription.tenant_id,
        before=before,
        after={**subscription_state(subscription), "change_on": change.on.isoformat()},
    )
    return subscription


# -- preview ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewLine:
    """A line of a previewed invoice."""

    kind: LineKind
    description: str
    quantity: Decimal
    unit_price: Decimal
    net_amount_minor: int
    vat_category: str
    vat_rate: Decimal


@dataclass(frozen=True)
class PreviewInvoice:
    """The invoice the invoice run would issue for the subscription's current period."""

    currency: str
    period_start: dt.date | None
    period_end: dt.date | None  # inclusive, as invoices store it
    lines: list[PreviewLine]
    totals: dict[str, int]  # lines_total_minor … amount_due_minor
    allowances: list[dict] = field(default_factory=list)


def _preview_of(invoice: Invoice) -> PreviewInvoice:
    return PreviewInvoice(
        currency=invoice.currency,
        period_start=invoice.period_start,
        period_end=invoice.period_end,
        lines=[
            PreviewLine(
                kind=line.kind,
                description=line.description,
                quantity=line.quantity,
                unit_price=line.unit_price,
                net_amount_minor=line.net_amount_minor,
                vat_category=line.vat_category.value,
                vat_rate=line.vat_rate,
            )
            for line in invoice.lines
        ],
        totals={
            name: getattr(invoice, name)
            for name in (
                "lines_total_minor",
                "allowance_total_minor",
                "charge_total_minor",
                "tax_exclusive_minor",
                "tax_minor",
                "tax_inclusive_minor",
                "amount_due_minor",
            )
        },
        allowances=[
            {
                "reason": ac.reason,
                "amount_minor": ac.amount_minor,
                "is_charge": ac.is_charge,
                "vat_category": ac.vat_category.value,
                "vat_rate": ac.vat_rate,
            }
            for ac in invoice.allowance_charges
        ],
    )


def invoice_of_period(
    session: Session, subscription: Subscription, period: tuple[dt.date, dt.date]
) -> PreviewInvoice | None:
    """The invoice the run of the period's month would create for the company's period,
    planned and drafted by the run's own code (inside a savepoint, rolled back)."""
    tenant = session.get_one(Tenant, subscription.tenant_id)
    last_day = period[1] - dt.timedelta(days=1)
    month = f"{last_day:%Y-%m}"
    month_end = add_interval(last_day.replace(day=1), "month", 1)
    savepoint = session.begin_nested()
    try:
        for plan, found, _ in billing_plans(session, [tenant], month, issue_date=month_end):
            if (plan.period_start, plan.period_end) != period:
                continue
            invoice = found or draft_from_plan(session, plan, known_new=True)
            return _preview_of(invoice)
        return None
    finally:
        savepoint.rollback()


def preview(
    session: Session,
    subscription: Subscription,
    change: ItemChange | None = None,
    *,
    today: dt.date | None = None,
) -> PreviewInvoice | None:
    """The invoice of the current period as it would be with ``change``, computed by the
    code that will issue it: the change is recorded and the period's invoice drafted in a
    savepoint that is rolled back, so nothing is written. None when the period bills
    nothing.

    :raise SubscriptionRefused: as :func:`change_item`.
    """
    today = today or dt.date.today()
    savepoint = session.begin_nested()
    try:
        if change is not None:
            _apply_change(session, subscription, change, today)
        else:
            _sync_period(subscription, today)
        period = (subscription.current_period_start, subscription.current_period_end)
        return invoice_of_period(session, subscription, period)
    finally:
        savepoint.rollback()


# -- canceling -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cancellation:
    """What a cancellation did: the subscription, and the final invoice or credit note."""

    subscription: Subscription
    invoice: Invoice | None = None
    credit_note: CreditNote | None = None


def _reason(reason: str | None) -> str:
    text = (reason or "").replace("\x00", "").strip()
    if not text:
        raise SubscriptionRefused(
            "reason_required", N_("Say why the subscription is canceled."), "reason"
        )
    if len(text) > REASON_LENGTH:
        raise SubscriptionRefused(
            "reason_too_long", N_("Keep the reason under 500 characters."), "reason"
        )
    return text


def _credit_unused(
    session: Session, invoice: Invoice, subscription: Subscription, ends_on: dt.date
) -> CreditNote | None:
    """Credit the unused share of the licensed lines of an issued period invoice."""
    start, end = subscription.current_period_start, subscription.current_period_end
    unused = Fraction((end - ends_on).days, (end - start).days)
    item_ids = {item.id for item in subscription.items}
    lines = []
    for line in invoice.lines:
        if line.kind != LineKind.SUBSCRIPTION or line.subscription_item_id not in item_ids:
            continue
        quantity = (line.quantity * Decimal(unused.numerator) / unused.denominator).quantize(
            Decimal(1).scaleb(-QUANTITY_PLACES), rounding=ROUND_HALF_UP
        )
        if quantity:
            lines.append(CreditLine(line, quantity))
    if not lines:
        return None
    return issue_credit_note(
        session,
        invoice,
        reason=f"Subscription canceled from {ends_on:%d %b %Y}: unused time",
        lines=lines,
        issue_date=ends_on if ends_on <= dt.date.today() else None,
    )


def cancel_subscription(
    session: Session,
    subscription: Subscription,
    actor: Actor,
    *,
    at_period_end: bool,
    reason: str | None,
    on: dt.date | None = None,
    today: dt.date | None = None,
) -> Cancellation:
    """Cancel at the end of the current period (nothing billed after it), or at once.

    At once (from ``on``, today by default, within the current period) the period ends
    early: its final invoice is issued now for the share until then (licensed prices,
    usage, the proration of changes), finalized unless the company's invoices are
    reviewed by hand; if the period's invoice is already issued, a credit note returns
    the unused share of its licensed lines instead (a draft of it is replaced).
    Cancelling at period end again, for the same reason, changes nothing.

    :raise SubscriptionRefused: ``subscription_canceled``, ``reason_required``,
        ``reason_too_long``, ``outside_current_period``.
    """
    today = today or dt.date.today()
    text = _reason(reason)
    lock(session, subscription)
    _check_open(subscription)
    _sync_period(subscription, today)
    _check_open(subscription)
    result = Cancellation(subscription)
    if (
        at_period_end
        and pending_end(subscription) is not None
        and subscription.cancel_reason == text
    ):
        # A repeat (double click, retry, a racer that waited for the lock): it is so
        # already, so nothing changes and nothing is audited a second time.
        return result
    before = subscription_state(subscription)
    if at_period_end:
        subscription.cancel_at_period_end = True
        subscription.cancel_reason = text
    else:
        ends_on = on or today
        start, end = subscription.current_period_start, subscription.current_period_end
        if not start <= ends_on < end:
            raise SubscriptionRefused(
                "outside_current_period",
                N_("A cancellation at once takes effect on a day within the current period."),
                "on",
            )
        tenant = session.get_one(Tenant, subscription.tenant_id)
        found = _period_invoice(session, subscription)
        if found is not None and found.status == InvoiceStatus.DRAFT:
            delete_draft(session, found)
            found = None
        if found is not None and found.status != InvoiceStatus.VOID:
            result = Cancellation(
                subscription, credit_note=_credit_unused(session, found, subscription, ends_on)
            )
        elif found is None and ends_on > start:
            plan = plan_ended_period(
                session, tenant, subscription.id, (start, end), ends_on, issue_date=today
            )
            if plan is not None and plan.lines:
                invoice = draft_from_plan(session, plan)
                if _auto_finalize(session, tenant):
                    finalize_invoice(session, invoice, issue_date=today)
                result = Cancellation(subscription, invoice=invoice)
        subscription.status = SubscriptionStatus.CANCELED
        subscription.cancel_at_period_end = False
        subscription.canceled_at = utcnow()
        subscription.cancel_reason = text
    session.flush()
    record_audit(
        session,
        actor,
        "subscription.cancel",
        "subscription",
        str(subscription.public_id),
        tenant_id=subscription.tenant_id,
        before=before,
        after={
            **subscription_state(subscription),
            "at_period_end": at_period_end,
            "final_invoice": str(result.invoice.public_id) if result.invoice else None,
            "credit_note": str(result.credit_note.public_id) if result.credit_note else None,
        },
    )
    return result


def _auto_finalize(session: Session, tenant: Tenant) -> bool:
    """Whether the company's invoices are finalized without review (the default)."""
    auto = session.scalars(
        sa.select(CompanyBillingSettings.auto_finalize).where(
            CompanyBillingSettings.tenant_id == tenant.id
        )
    ).first()
    return auto is None or bool(auto)


def resume_subscription(
    session: Session, subscription: Subscription, actor: Actor, *, today: dt.date | None = None
) -> Subscription:
    """Withdraw a pending cancellation: the subscription renews again.

    :raise SubscriptionRefused: ``not_pending_cancellation`` (checked under lock).
    """
    lock(session, subscription)
    _sync_period(subscription, today or dt.date.today())
    if pending_end(subscription) is None:
        raise SubscriptionRefused(
            "not_pending_cancellation", N_("The subscription has no pending cancellation.")
        )
    before = subscription_state(subscription)
    subscription.cancel_at_period_end = False
    subscription.cancel_reason = None
    session.flush()
    record_audit(
        session,
        actor,
        "subscription.resume",
        "subscription",
        str(subscription.public_id),
        tenant_id=subscription.tenant_id,
        before=before,
        after=subscription_state(subscription),
    )
    return subscription
