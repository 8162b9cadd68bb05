"""Models of invoices, their lines, VAT breakdown, allowances, credit notes and numbering.

Amounts are integers in the minor unit of ``currency`` (``*_minor``); quantities, unit
prices and rates are exact decimals. Totals follow EN 16931 (BT-106 … BT-115).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, mapped_column, relationship

from portal.db import (
    Base,
    IdMixin,
    JSONType,
    Percent,
    PublicIdMixin,
    Quantity,
    TenantMixin,
    TimestampMixin,
    UnitPrice,
    UTCDateTime,
    enum_column,
)
from portal.invoices.states import (
    CreditNoteStatus,
    DocumentType,
    InvoiceKind,
    InvoiceStatus,
    LineKind,
    VatCategory,
)


class DocumentTotalsMixin:
    """Document-level totals shared by invoices and credit notes (EN 16931 BG-22)."""

    #: ISO 4217 currency of every amount on the document (BT-5).
    currency: Mapped[str] = mapped_column(sa.String(3))
    #: Sum of line net amounts, minor units (BT-106).
    lines_total_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Sum of document allowances, minor units, >= 0 (BT-107).
    allowance_total_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Sum of document charges, minor units, >= 0 (BT-108).
    charge_total_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Total without VAT, minor units (BT-109).
    tax_exclusive_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Total VAT, minor units (BT-110).
    tax_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Total with VAT, minor units (BT-112).
    tax_inclusive_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Amount already paid before issue, minor units (BT-113).
    prepaid_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Rounding amount, minor units (BT-114).
    rounding_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Amount due for payment, minor units (BT-115).
    amount_due_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Seller data frozen at finalization (name, address, VAT ID, bank).
    seller_snapshot: Mapped[dict | None] = mapped_column(JSONType)
    #: Buyer data frozen at finalization (billing profile as it was).
    buyer_snapshot: Mapped[dict | None] = mapped_column(JSONType)
    #: Language of the document (ISO 639-1).
    language: Mapped[str] = mapped_column(sa.String(8), default="en")

    @classmethod
    def totals_constraints(cls) -> tuple[sa.CheckConstraint, ...]:
        return (
            sa.CheckConstraint("length(currency) = 3", name="currency_iso4217"),
            sa.CheckConstraint(
                "allowance_total_minor >= 0 AND charge_total_minor >= 0",
                name="allowances_charges_non_negative",
            ),
            sa.CheckConstraint("prepaid_minor >= 0", name="prepaid_non_negative"),
        )


class Invoice(IdMixin, PublicIdMixin, TenantMixin, TimestampMixin, DocumentTotalsMixin, Base):
    """A bill to a tenant: a draft until finalized, then frozen."""

    __tablename__ = "invoices"

    #: The issuing seller; invoice numbers are unique per seller.
    seller_id: Mapped[int] = mapped_column(sa.ForeignKey("sellers.id"), index=True)
    #: Gapless number assigned at finalization (BT-1); NULL for drafts.
    number: Mapped[str | None] = mapped_column(sa.String(40))
    #: Why the invoice exists.
    kind: Mapped[InvoiceKind] = mapped_column(enum_column(InvoiceKind, "invoice_kind"))
    #: Lifecycle state.
    status: Mapped[InvoiceStatus] = mapped_column(
        enum_column(InvoiceStatus, "invoice_status"), default=InvoiceStatus.DRAFT
    )
    #: Subscription the invoice bills, if any.
    subscription_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("subscriptions.id", ondelete="SET NULL"), index=True
    )
    #: First day of the billed period (BT-73).
    period_start: Mapped[dt.date | None] = mapped_column(sa.Date)
    #: Last day of the billed period, inclusive (BT-74).
    period_end: Mapped[dt.date | None] = mapped_column(sa.Date)
    #: Issue date (BT-2); set at finalization.
    issue_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    #: Due date (BT-9).
    due_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    #: Buyer reference / Leitweg-ID (BT-10).
    buyer_reference: Mapped[str | None] = mapped_column(sa.String(100))
    #: Purchase order reference (BT-13).
    purchase_order: Mapped[str | None] = mapped_column(sa.String(100))
    #: Free-text note printed on the invoice (BT-22).
    note: Mapped[str | None] = mapped_column(sa.Text)
    #: Amount paid so far, minor units, >= 0.
    amount_paid_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    #: Total of issued credit notes against this invoice, minor units, >= 0.
    amount_credited_minor: Mapped[int] = mapped_column(sa.BigInteger, default=0, server_default="0")
    #: When it was finalized.
    finalized_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: When it was last e-mailed.
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: When it was fully paid.
    paid_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: When it was voided.
    voided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: When it was written off as uncollectible.
    uncollectible_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Whether the default payment method is charged.
    auto_collect: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    #: Collection attempts made.
    attempt_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: When the next collection attempt is due (dunning), if any.
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: URL of a pre-generated PDF; the PDF endpoint redirects to it when set.
    pdf_url: Mapped[str | None] = mapped_column(sa.String(500))

    lines: Mapped[list[InvoiceLine]] = relationship(
        back_populates="invoice", cascade="all, delete-orphan", order_by="InvoiceLine.position"
    )
    vat_breakdown: Mapped[list[InvoiceVatBreakdown]] = relationship(
        cascade="all, delete-orphan", order_by="InvoiceVatBreakdown.id"
    )
    allowance_charges: Mapped[list[InvoiceAllowanceCharge]] = relationship(
        cascade="all, delete-orphan", order_by="InvoiceAllowanceCharge.id"
    )
    credit_notes: Mapped[list[CreditNote]] = relationship(
        back_populates="invoice", order_by="CreditNote.id"
    )

    __table_args__ = (
        # The tenant's invoice list, newest first, paged: an index scan (read backwards
        # it is "issue_date DESC NULLS FIRST, id DESC", the list's default order).
        sa.Index("ix_invoices_tenant_id_issue_date_id", "tenant_id", "issue_date", "id"),
        # One gapless number per seller.
        sa.UniqueConstraint("seller_id", "number"),
        # Generation is idempotent: one invoice per tenant, period and kind.
        sa.UniqueConstraint("tenant_id", "kind", "period_start", "period_end"),
        sa.CheckConstraint("status = 'draft' OR number IS NOT NULL", name="issued_has_number"),
        sa.CheckConstraint(
            "status = 'draft' OR issue_date IS NOT NULL", name="issued_has_issue_date"
        ),
        sa.CheckConstraint(
            "due_date IS NULL OR issue_date IS NULL OR due_date >= issue_date",
            name="due_after_issue",
        ),
        sa.CheckConstraint(
            "period_end IS NULL OR period_start IS NULL OR period_end >= period_start",
            name="period_ordered",
        ),
        sa.CheckConstraint("amount_paid_minor >= 0", name="amount_paid_non_negative"),
        sa.CheckConstraint("amount_credited_minor >= 0", name="amount_credited_non_negative"),
        # Money state the database holds whatever the code does (migration 0012; SQLite
        # enforces these three by triggers): credit notes never credit more than the
        # invoice, payments never pay more than it, and a void invoice was never paid.
        sa.CheckConstraint(
            "amount_credited_minor = 0 OR amount_credited_minor <= amount_due_minor",
            name="credited_within_total",
        ),
        sa.CheckConstraint(
            "amount_paid_minor = 0 OR amount_paid_minor <= amount_due_minor",
            name="paid_within_total",
        ),
        sa.CheckConstraint("status <> 'void' OR amount_paid_minor = 0", name="void_unpaid"),
        sa.CheckConstraint("attempt_count >= 0", name="attempt_count_non_negative"),
        # Status tabs and filters; with the due date included, the tab counts (open,
        # overdue, paid…) are an index-only scan on PostgreSQL.
        sa.Index(
            "ix_invoices_tenant_status_issue",
            "tenant_id",
            "status",
            "issue_date",
            postgresql_include=["due_date"],
        ),
        *DocumentTotalsMixin.totals_constraints(),
    )

    def is_overdue(self, today: dt.date) -> bool:
        """Issued, unpaid and past its due date on ``today``."""
        return self.status.is_open and self.due_date is not None and self.due_date < today

    @property
    def amount_open_minor(self) -> int:
        """What is still to be paid, minor units."""
        if not self.status.is_open:
            return 0
        return max(self.amount_due_minor - self.amount_paid_minor - self.amount_credited_minor, 0)


class LineMixin:
    """Columns shared by invoice lines and credit-note lines (EN 16931 BG-25)."""

    #: Order on the document, from 1 (BT-126 line id).
    position: Mapped[int] = mapped_column(sa.Integer)
    #: What the line charges for.
    kind: Mapped[LineKind] = mapped_column(enum_column(LineKind, "line_kind"))
    #: Item name (BT-153).
    description: Mapped[str] = mapped_column(sa.String(500))
    #: Invoiced quantity (BT-129), exact decimal; negative for proration credits.
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    #: UN/ECE Recommendation 20 unit code (BT-130).
    unit_code: Mapped[str] = mapped_column(sa.String(3), default="C62")
    #: Net price per unit in major units (BT-146), exact decimal.
    unit_price: Mapped[Decimal] = mapped_column(UnitPrice)
    #: Line net amount = quantity × unit price rounded to the minor unit (BT-131).
    net_amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    #: Service period start (BT-134).
    period_start: Mapped[dt.date | None] = mapped_column(sa.Date)
    #: Service period end, inclusive (BT-135).
    period_end: Mapped[dt.date | None] = mapped_column(sa.Date)
    #: VAT category code (BT-151).
    vat_category: Mapped[VatCategory] = mapped_column(
        enum_column(VatCategory, "vat_category"), default=VatCategory.STANDARD
    )
    #: VAT rate in percent (BT-152), exact decimal.
    vat_rate: Mapped[Decimal] = mapped_column(Percent, default=Decimal(0))
    #: Why no VAT is charged (BT-120 of the line's breakdown), e.g. "Reverse charge".
    vat_exemption_reason: Mapped[str | None] = mapped_column(sa.String(300))
    #: VATEX code of the exemption (BT-121), e.g. "VATEX-EU-AE".
    vat_exemption_code: Mapped[str | None] = mapped_column(sa.String(30))

    @declared_attr
    def price_id(cls) -> Mapped[int | None]:  # noqa: N805
        #: Catalog price the line came from, if any.
        return mapped_column(sa.ForeignKey("prices.id", ondelete="SET NULL"))

    @classmethod
    def line_constraints(cls) -> tuple[sa.CheckConstraint, ...]:
        return (
            sa.CheckConstraint("position >= 1", name="position_positive"),
            sa.CheckConstraint("vat_rate >= 0", name="vat_rate_non_negative"),
        )


class InvoiceLine(IdMixin, TenantMixin, LineMixin, Base):
    """One line of an invoice."""

    __tablename__ = "invoice_lines"

    #: The invoice.
    invoice_id: Mapped[int] = mapped_column(
        sa.ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    #: Subscription item the line bills, if any.
    subscription_item_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("subscription_items.id", ondelete="SET NULL")
    )
    #: Pricing details (tiers applied, proration factor) for display and audit.
    details: Mapped[dict] = mapped_column(JSONType, default=dict)

    invoice: Mapped[Invoice] = relationship(back_populates="lines")

    __table_args__ = (
        sa.UniqueConstraint("invoice_id", "position"),
        *LineMixin.line_constraints(),
    )


class InvoiceVatBreakdown(IdMixin, Base):
    """One VAT breakdown row of an invoice per category and rate (EN 16931 BG-23)."""

    __tablename__ = "invoice_vat_breakdowns"

    #: The invoice.
    invoice_id: Mapped[int] = mapped_column(
        sa.ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    #: VAT category code (BT-118).
    category: Mapped[VatCategory] = mapped_column(enum_column(VatCategory, "breakdown_category"))
    #: VAT rate in percent (BT-119).
    rate: Mapped[Decimal] = mapped_column(Percent)
    #: Taxable amount, minor units (BT-116).
    taxable_minor: Mapped[int] = mapped_column(sa.BigInteger)
    #: VAT amount, minor units (BT-117).
    tax_minor: Mapped[int] = mapped_column(sa.BigInteger)
    #: Exemption reason text (BT-120), e.g. "Reverse charge".
    exemption_reason: Mapped[str | None] = mapped_column(sa.String(300))
    #: Exemption reason code (BT-121), e.g. VATEX-EU-AE.
    exemption_code: Mapped[str | None] = mapped_column(sa.String(30))

    __table_args__ = (sa.UniqueConstraint("invoice_id", "category", "rate"),)


class InvoiceAllowanceCharge(IdMixin, Base):
    """A document-level allowance (discount) or charge (EN 16931 BG-20 / BG-21)."""

    __tablename__ = "invoice_allowance_charges"

    #: The invoice.
    invoice_id: Mapped[int] = mapped_column(
        sa.ForeignKey("invoices.id", ondelete="CASCADE"), index=True
    )
    #: True for a charge, False for an allowance.
    is_charge: Mapped[bool] = mapped_column(sa.Boolean)
    #: Amount, minor units, >= 0 (BT-92 / BT-99).
    amount_minor: Mapped[int] = mapped_column(sa.BigInteger)
    #: Base amount the percentage applies to, minor units (BT-93 / BT-100).
    base_minor: Mapped[int | None] = mapped_column(sa.BigInteger)
    #: Percentage (BT-94 / BT-101).
    percent: Mapped[Decimal | None] = mapped_column(Percent)
    #: Reason text (BT-97 / BT-104).
    reason: Mapped[str] = mapped_column(sa.String(300))
    #: Reason code (UNCL5189 / UNCL7161).
    reason_code: Mapped[str | None] = mapped_column(sa.String(10))
    #: VAT category of the allowance or charge (BT-95 / BT-102).
    vat_category: Mapped[VatCategory] = mapped_column(enum_column(VatCategory, "ac_category"))
    #: VAT rate (BT-96 / BT-103).
    vat_rate: Mapped[Decimal] = mapped_column(Percent)

    __table_args__ = (sa.CheckConstraint("amount_minor >= 0", name="amount_non_negative"),)


class CreditNote(IdMixin, PublicIdMixin, TenantMixin, TimestampMixin, DocumentTotalsMixin, Base):
    """A correction of a finalized invoice; amounts are positive and credit the tenant."""

    __tablename__ = "credit_notes"

    #: The issuing seller.
    seller_id: Mapped[int] = mapped_column(sa.ForeignKey("sellers.id"), index=True)
    #: The invoice being corrected (BT-25).
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    #: Gapless number from the credit-note sequence; NULL for drafts.
    number: Mapped[str | None] = mapped_column(sa.String(40))
    #: Lifecycle state.
    status: Mapped[CreditNoteStatus] = mapped_column(
        enum_column(CreditNoteStatus, "credit_note_status"), default=CreditNoteStatus.DRAFT
    )
    #: Why the credit was given (printed).
    reason: Mapped[str] = mapped_column(sa.String(500))
    #: Issue date; set when issued.
    issue_date: Mapped[dt.date | None] = mapped_column(sa.Date)
    #: When it was issued.
    issued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    invoice: Mapped[Invoice] = relationship(back_populates="credit_notes")
    lines: Mapped[list[CreditNoteLine]] = relationship(
        back_populates="credit_note",
        cascade="all, delete-orphan",
        order_by="CreditNoteLine.position",
    )

    __table_args__ = (
        sa.UniqueConstraint("seller_id", "number"),
        sa.CheckConstraint("status = 'draft' OR number IS NOT NULL", name="issued_has_number"),
        sa.CheckConstraint("tax_inclusive_minor >= 0", name="total_non_negative"),
        *DocumentTotalsMixin.totals_constraints(),
    )


class CreditNoteLine(IdMixin, TenantMixin, LineMixin, Base):
    """One line of a credit note."""

    __tablename__ = "credit_note_lines"

    #: The credit note.
    credit_note_id: Mapped[int] = mapped_column(
        sa.ForeignKey("credit_notes.id", ondelete="CASCADE"), index=True
    )
    #: The invoice line being credited, if any.
    invoice_line_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("invoice_lines.id", ondelete="SET NULL")
    )

    credit_note: Mapped[CreditNote] = relationship(back_populates="lines")

    __table_args__ = (
        sa.UniqueConstraint("credit_note_id", "position"),
        *LineMixin.line_constraints(),
    )


class DocumentSequence(IdMixin, Base):
    """The last number used per seller, document type and year (gapless numbering).

    Finalization locks the row (SELECT … FOR UPDATE on PostgreSQL; SQLite serializes
    writers) and increments it in the same transaction as the invoice.
    """

    __tablename__ = "document_sequences"

    #: The seller.
    seller_id: Mapped[int] = mapped_column(sa.ForeignKey("sellers.id"))
    #: Invoice or credit note.
    document_type: Mapped[DocumentType] = mapped_column(enum_column(DocumentType, "document_type"))
    #: Calendar year of the issue date.
    year: Mapped[int] = mapped_column(sa.Integer)
    #: Last number issued; the next document gets last_number + 1.
    last_number: Mapped[int] = mapped_column(sa.Integer, default=0)

    __table_args__ = (
        sa.UniqueConstraint("seller_id", "document_type", "year"),
        sa.CheckConstraint("last_number >= 0", name="last_number_non_negative"),
    )
