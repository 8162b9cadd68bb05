"""Models of plans, prices and tiers, subscriptions, and per-company billing settings."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import (
    Base,
    IdMixin,
    Percent,
    PublicIdMixin,
    Quantity,
    TenantMixin,
    TimestampMixin,
    UnitPrice,
    UTCDateTime,
    enum_column,
    utcnow,
)


class PriceModel(enum.StrEnum):
    """How a price turns a quantity into an amount."""

    FLAT = "flat"  # a fixed amount per period, whatever the quantity
    PER_UNIT = "per_unit"  # quantity × unit amount (seats)
    GRADUATED = "graduated"  # each tier prices the units that fall in it
    VOLUME = "volume"  # the tier the total falls in prices every unit
    PACKAGE = "package"  # units are sold in packages of package_size, rounded up


class BillingInterval(enum.StrEnum):
    """Length unit of a recurring period."""

    MONTH = "month"
    YEAR = "year"


class UsageKind(enum.StrEnum):
    """Whether a price is charged on a licensed quantity or on metered usage."""

    LICENSED = "licensed"
    METERED = "metered"


class TaxTreatment(enum.StrEnum):
    """What a price sells, for the VAT decision: a service or goods."""

    SERVICES = "services"
    GOODS = "goods"


class CouponDuration(enum.StrEnum):
    """How long a coupon applies once added to a subscription."""

    ONCE = "once"  # the first invoice of the subscription after it was added
    REPEATING = "repeating"  # the next ``duration_periods`` invoices
    FOREVER = "forever"


class ChargeTiming(enum.StrEnum):
    """When a one-off charge is invoiced."""

    NEXT_INVOICE = "next_invoice"  # added to the company's next periodic invoice
    NOW = "now"  # issued at once as an invoice of its own


class SubscriptionStatus(enum.StrEnum):
    """Lifecycle of a subscription."""

    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"


class CollectionMethod(enum.StrEnum):
    """How invoices are paid: charged automatically or paid by the buyer."""

    CHARGE_AUTOMATICALLY = "charge_automatically"
    SEND_INVOICE = "send_invoice"


class Plan(IdMixin, PublicIdMixin, TimestampMixin, Base):
    """A product the seller sells, with one or more prices."""

    __tablename__ = "plans"

    #: The seller offering the plan.
    seller_id: Mapped[int] = mapped_column(sa.ForeignKey("sellers.id"), index=True)
    #: Stable code, unique per seller (e.g. "pro").
    code: Mapped[str] = mapped_column(sa.String(60))
    #: Display name printed on invoice lines.
    name: Mapped[str] = mapped_column(sa.String(200))
    #: Longer description.
    description: Mapped[str | None] = mapped_column(sa.Text)
    #: Whether new subscriptions may use the plan.
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    #: When the product was archived: hidden from new subscriptions, kept for history.
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    prices: Mapped[list[Price]] = relationship(
        back_populates="plan", cascade="all, delete-orphan", order_by="Price.id"
    )

    __table_args__ = (sa.UniqueConstraint("seller_id", "code"),)


class Price(IdMixin, PublicIdMixin, TimestampMixin, Base):
    """One way of charging for a plan: model, currency, interval and amounts."""

    __tablename__ = "prices"

    #: The plan this price belongs to.
    plan_id: Mapped[int] = mapped_column(sa.ForeignKey("plans.id", ondelete="CASCADE"), index=True)
    #: Stable code, unique per plan (e.g. "pro-monthly-eur").
    code: Mapped[str] = mapped_column(sa.String(80))
    #: Line description on invoices (e.g. "Seats").
    nickname: Mapped[str] = mapped_column(sa.String(200))
    #: ISO 4217 currency of every amount of this price.
    currency: Mapped[str] = mapped_column(sa.String(3))
    #: Pricing model.
    model: Mapped[PriceModel] = mapped_column(enum_column(PriceModel, "price_model"))
    #: Licensed (quantity on the subscription item) or metered (usage records).
    usage_kind: Mapped[UsageKind] = mapped_column(
        enum_column(UsageKind, "usage_kind"), default=UsageKind.LICENSED
    )
    #: Usage metric code read from usage records for metered prices (e.g. "api_calls").
    metric: Mapped[str | None] = mapped_column(sa.String(60))
    #: Billing interval unit.
    interval: Mapped[BillingInterval] = mapped_column(
        enum_column(BillingInterval, "billing_interval"), default=BillingInterval.MONTH
    )
    #: Number of interval units per period (1 month, 3 months, 1 year).
    interval_count: Mapped[int] = mapped_column(sa.Integer, default=1)
    #: Amount per unit in major units (flat: per period; package: per package). Decimal.
    unit_amount: Mapped[Decimal | None] = mapped_column(UnitPrice)
    #: Units per package for the package model.
    package_size: Mapped[Decimal | None] = mapped_column(Quantity)
    #: UN/ECE Recommendation 20 unit code for invoice lines (C62 = one, HUR = hour).
    unit_code: Mapped[str] = mapped_column(sa.String(3), default="C62")
    #: Trial length in days granted to new subscriptions.
    trial_days: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: Whether new subscriptions may use the price.
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    #: Services or goods, for the VAT decision.
    tax_treatment: Mapped[TaxTreatment] = mapped_column(
        enum_column(TaxTreatment, "tax_treatment"), default=TaxTreatment.SERVICES
    )
    #: Why lines of this price are exempt from VAT, when they are (printed on the invoice).
    vat_exemption_reason: Mapped[str | None] = mapped_column(sa.Text)
    #: Tenants may switch their subscription to this price themselves.
    self_serve: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    #: 1 for a new price; an edit of a price already invoiced makes version + 1.
    version: Mapped[int] = mapped_column(sa.Integer, default=1)
    #: The earlier version this one replaces (its subscriptions keep the old one).
    replaces_id: Mapped[int | None] = mapped_column(sa.ForeignKey("prices.id"))
    #: When the price was archived (or replaced by a new version).
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    plan: Mapped[Plan] = relationship(back_populates="prices")
    tiers: Mapped[list[PriceTier]] = relationship(
        back_populates="price", cascade="all, delete-orphan", order_by="PriceTier.position"
    )

    __table_args__ = (
        # The current version keeps the code; an older one is renamed "<code>@v<version>".
        sa.UniqueConstraint("plan_id", "code"),
        sa.CheckConstraint("interval_count >= 1", name="interval_count_positive"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        sa.CheckConstraint("trial_days >= 0", name="trial_days_non_negative"),
        sa.CheckConstraint(
            "unit_amount IS NULL OR unit_amount >= 0", name="unit_amount_non_negative"
        ),
        sa.CheckConstraint(
            "package_size IS NULL OR package_size > 0", name="package_size_positive"
        ),
        sa.CheckConstraint(
            "model <> 'package' OR (package_size IS NOT NULL AND unit_amount IS NOT NULL)",
            name="package_has_size",
        ),
        sa.CheckConstraint(
            "usage_kind <> 'metered' OR metric IS NOT NULL", name="metered_has_metric"
        ),
    )


class PriceTier(IdMixin, Base):
    """One tier of a graduated or volume price."""

    __tablename__ = "price_tiers"

    #: The tiered price.
    price_id: Mapped[int] = mapped_column(
        sa.ForeignKey("prices.id", ondelete="CASCADE"), index=True
    )
    #: Order of the tier, from 0.
    position: Mapped[int] = mapped_column(sa.Integer)
    #: Inclusive upper bound of the tier; NULL means no bound (the last tier).
    up_to: Mapped[Decimal | None] = mapped_column(Quantity)
    #: Amount per unit in the tier, major units.
    unit_amount: Mapped[Decimal] = mapped_column(UnitPrice, default=Decimal(0))
    #: Fixed amount added when the tier is reached, major units.
    flat_amount: Mapped[Decimal] = mapped_column(UnitPrice, default=Decimal(0))

    price: Mapped[Price] = relationship(back_populates="tiers")

    __table_args__ = (
        sa.UniqueConstraint("price_id", "position"),
        sa.CheckConstraint("unit_amount >= 0 AND flat_amount >= 0", name="amounts_non_negative"),
        sa.CheckConstraint("up_to IS NULL OR up_to > 0", name="up_to_positive"),
    )


class Subscription(IdMixin, PublicIdMixin, TenantMixin, TimestampMixin, Base):
    """A tenant's subscription: what is billed each period."""

    __tablename__ = "subscriptions"

    #: Lifecycle state.
    status: Mapped[SubscriptionStatus] = mapped_column(
        enum_column(SubscriptionStatus, "subscription_status"), default=SubscriptionStatus.ACTIVE
    )
    #: ISO 4217 currency; every item's price uses it.
    currency: Mapped[str] = mapped_column(sa.String(3))
    #: Billing interval unit.
    interval: Mapped[BillingInterval] = mapped_column(
        enum_column(BillingInterval, "subscription_interval"), default=BillingInterval.MONTH
    )
    #: Number of interval units per period.
    interval_count: Mapped[int] = mapped_column(sa.Integer, default=1)
    #: Day the subscription started.
    started_on: Mapped[dt.date] = mapped_column(sa.Date)
    #: First day of the current period (inclusive).
    current_period_start: Mapped[dt.date] = mapped_column(sa.Date)
    #: First day after the current period (exclusive).
    current_period_end: Mapped[dt.date] = mapped_column(sa.Date)
    #: Last day of the trial (exclusive end), if any.
    trial_end: Mapped[dt.date | None] = mapped_column(sa.Date)
    #: Cancel at the end of the current period instead of renewing.
    cancel_at_period_end: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    #: When it was canceled.
    canceled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Why it was canceled (a code from the list the pages offer, or free text).
    cancel_reason: Mapped[str | None] = mapped_column(sa.String(500))
    #: How its invoices are paid.
    collection_method: Mapped[CollectionMethod] = mapped_column(
        enum_column(CollectionMethod, "collection_method"),
        default=CollectionMethod.CHARGE_AUTOMATICALLY,
    )

    items: Mapped[list[SubscriptionItem]] = relationship(
        back_populates="subscription", cascade="all, delete-orphan", order_by="SubscriptionItem.id"
    )

    __table_args__ = (
        sa.CheckConstraint("current_period_end > current_period_start", name="period_ordered"),
        sa.CheckConstraint("interval_count >= 1", name="interval_count_positive"),
    )


class SubscriptionItem(IdMixin, TenantMixin, TimestampMixin, Base):
    """One price on a subscription, with its licensed quantity."""

    __tablename__ = "subscription_items"

    #: The subscription.
    subscription_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    #: The price charged.
    price_id: Mapped[int] = mapped_column(sa.ForeignKey("prices.id"), index=True)
    #: Licensed quantity (seats); ignored for metered prices.
    quantity: Mapped[Decimal] = mapped_column(Quantity, default=Decimal(1))

    subscription: Mapped[Subscription] = relationship(back_populates="items")
    price: Mapped[Price] = relationship()

    __table_args__ = (
        sa.UniqueConstraint("subscription_id", "price_id"),
        sa.CheckConstraint("quantity >= 0", name="quantity_non_negative"),
    )


class CompanyBillingSettings(IdMixin, TenantMixin, TimestampMixin, Base):
    """How the operator bills one company (tenant); edited by admins only."""

    __tablename__ = "company_billing_settings"

    #: Day of the month invoices are generated (1-28 so every month has it).
    billing_day: Mapped[int] = mapped_column(sa.Integer, default=1)
    #: Days between issue and due date; overrides the billing profile's terms when set.
    payment_terms_days: Mapped[int | None] = mapped_column(sa.Integer)
    #: Finalize generated invoices without review.
    auto_finalize: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    #: E-mail invoices once finalized.
    auto_send: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    #: Charge the default payment method once finalized.
    auto_collect: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    #: Whether tenants see draft invoices in the portal.
    show_drafts_to_tenant: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    #: Percentage discount applied to every invoice as a document allowance.
    discount_percent: Mapped[Decimal] = mapped_column(Percent, default=Decimal(0))
    #: Internal note for admins.
    notes: Mapped[str | None] = mapped_column(sa.Text)
    #: Self-service: the company's owners and billing admins may change the quantity of
    #: licensed items themselves (subscription page and tenant API).
    self_service_quantity: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    #: Self-service: they may switch an item to another price marked ``self_serve``.
    self_service_price_switch: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    #: Self-service: they may cancel at period end (and withdraw that before the end).
    self_service_cancel: Mapped[bool] = mapped_column(sa.Boolean, default=True)

    __table_args__ = (
        sa.UniqueConstraint("tenant_id"),
        sa.CheckConstraint("billing_day BETWEEN 1 AND 28", name="billing_day_range"),
        sa.CheckConstraint(
            "payment_terms_days IS NULL OR payment_terms_days BETWEEN 0 AND 365",
            name="payment_terms_range",
        ),
        # Only sign checks on ExactDecimal columns: SQLite stores them scaled, so a
        # literal bound such as 100 would mean something else there.
        sa.CheckConstraint("discount_percent >= 0", name="discount_non_negative"),
    )


class SubscriptionChange(IdMixin, TenantMixin, Base):
    """A mid-period change of a subscription item's price or quantity, kept for proration.

    The period's invoice charges the item's terms at period end for the whole period; each
    change adds the difference for the days before it took effect (see invoices.generation).
    """

    __tablename__ = "subscription_changes"

    #: The subscription item that changed.
    subscription_item_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscription_items.id", ondelete="CASCADE"), index=True
    )
    #: First day on the new terms.
    effective_on: Mapped[dt.date] = mapped_column(sa.Date)
    #: Price before the change.
    old_price_id: Mapped[int] = mapped_column(sa.ForeignKey("prices.id"))
    #: Quantity before the change.
    old_quantity: Mapped[Decimal] = mapped_column(Quantity)
    #: Price after the change.
    new_price_id: Mapped[int] = mapped_column(sa.ForeignKey("prices.id"))
    #: Quantity after the change.
    new_quantity: Mapped[Decimal] = mapped_column(Quantity)
    #: When the change was recorded (UTC).
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    old_price: Mapped[Price] = relationship(foreign_keys=[old_price_id])
    new_price: Mapped[Price] = relationship(foreign_keys=[new_price_id])

    __table_args__ = (
        sa.CheckConstraint(
            "old_quantity >= 0 AND new_quantity >= 0", name="quantities_non_negative"
        ),
    )


class Coupon(IdMixin, PublicIdMixin, TimestampMixin, Base):
    """A discount a seller offers: a percentage or a fixed amount, for a while or forever.

    On an invoice it is an allowance (BG-20 in EN 16931), never a negative line.
    """

    __tablename__ = "coupons"

    #: The seller offering it.
    seller_id: Mapped[int] = mapped_column(sa.ForeignKey("sellers.id"), index=True)
    #: Code, unique per seller (e.g. "LAUNCH20").
    code: Mapped[str] = mapped_column(sa.String(60))
    #: Name printed as the allowance's reason (BT-97).
    name: Mapped[str] = mapped_column(sa.String(200))
    #: Percentage off the net of each invoice (e.g. 20.0000), or
    percent_off: Mapped[Decimal | None] = mapped_column(Percent)
    #: a fixed amount off, in ``currency`` minor units.
    amount_off_minor: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: Currency of ``amount_off_minor``.
    currency: Mapped[str | None] = mapped_column(sa.String(3))
    #: How long it applies.
    duration: Mapped[CouponDuration] = mapped_column(
        enum_column(CouponDuration, "coupon_duration"), default=CouponDuration.ONCE
    )
    #: Invoices it applies to when ``duration`` is repeating.
    duration_periods: Mapped[int | None] = mapped_column(sa.Integer)
    #: When it was archived: no longer added to subscriptions; where it is, it stays.
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        sa.UniqueConstraint("seller_id", "code"),
        sa.CheckConstraint(
            "(percent_off IS NULL) <> (amount_off_minor IS NULL)", name="one_kind_of_discount"
        ),
        sa.CheckConstraint(
            # > 0 only: SQLite stores exact decimals scaled (ExactDecimal), so "<= 100" cannot be
            # written portably here; the catalog service refuses more than 100 %.
            "percent_off IS NULL OR percent_off > 0",
            name="percent_off_range",
        ),
        sa.CheckConstraint(
            "amount_off_minor IS NULL OR (amount_off_minor > 0 AND currency IS NOT NULL)",
            name="amount_off_has_currency",
        ),
        sa.CheckConstraint(
            "duration <> 'repeating' OR duration_periods >= 1", name="repeating_has_periods"
        ),
    )


class SubscriptionCoupon(IdMixin, TenantMixin, Base):
    """A coupon on a subscription, and how many invoices it has discounted."""

    __tablename__ = "subscription_coupons"

    #: The subscription discounted.
    subscription_id: Mapped[int] = mapped_column(
        sa.ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    #: The coupon.
    coupon_id: Mapped[int] = mapped_column(sa.ForeignKey("coupons.id"), index=True)
    #: When it was added.
    applied_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Invoices it has discounted so far.
    periods_used: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: When it was removed (it discounts nothing after).
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    coupon: Mapped[Coupon] = relationship()

    __table_args__ = (sa.CheckConstraint("periods_used >= 0", name="periods_used_non_negative"),)


class OneOffCharge(IdMixin, PublicIdMixin, TenantMixin, Base):
    """A charge outside the subscription (setup fee, consulting hours) for one company."""

    __tablename__ = "one_off_charges"

    #: Line description.
    description: Mapped[str] = mapped_column(sa.String(500))
    #: Quantity, exact decimal.
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    #: Net unit price in major units, exact decimal.
    unit_price: Mapped[Decimal] = mapped_column(UnitPrice)
    #: ISO 4217 currency (the company's).
    currency: Mapped[str] = mapped_column(sa.String(3))
    #: Services or goods, for the VAT decision.
    tax_treatment: Mapped[TaxTreatment] = mapped_column(
        enum_column(TaxTreatment, "charge_tax_treatment"), default=TaxTreatment.SERVICES
    )
    #: Why the line is exempt from VAT, when it is.
    vat_exemption_reason: Mapped[str | None] = mapped_column(sa.Text)
    #: Next invoice, or an invoice of its own now.
    timing: Mapped[ChargeTiming] = mapped_column(
        enum_column(ChargeTiming, "charge_timing"), default=ChargeTiming.NEXT_INVOICE
    )
    #: The invoice it was billed on (set once; a charge is billed once).
    invoice_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("invoices.id", ondelete="SET NULL"), index=True
    )
    #: Who added it (the audit actor's label).
    created_by: Mapped[str] = mapped_column(sa.String(254))
    #: When it was added.
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        sa.CheckConstraint("quantity > 0", name="quantity_positive"),
        sa.CheckConstraint("unit_price >= 0", name="unit_price_non_negative"),
    )
