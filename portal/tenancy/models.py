"""Models of sellers, tenants, users, memberships, platform admins, tokens and profiles."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.db import (
    Base,
    IdMixin,
    JSONType,
    PublicIdMixin,
    TenantMixin,
    TimestampMixin,
    UTCDateTime,
    enum_column,
    utcnow,
)
from portal.tenancy.roles import Role


class EInvoiceFormat(enum.StrEnum):
    """The structured invoice a buyer wants besides (or inside) the PDF."""

    NONE = "none"
    UBL = "ubl"
    XRECHNUNG = "xrechnung"
    CII = "cii"
    FACTURX = "facturx"
    ZUGFERD = "zugferd"


class Seller(IdMixin, PublicIdMixin, TimestampMixin, Base):
    """The operator that issues invoices (the organization of the account API)."""

    __tablename__ = "sellers"

    #: Registered legal name, printed on invoices (BT-27).
    legal_name: Mapped[str] = mapped_column(sa.String(200))
    #: Trading name if it differs from the legal name (BT-28).
    trading_name: Mapped[str | None] = mapped_column(sa.String(200))
    #: Street and number.
    address_line1: Mapped[str] = mapped_column(sa.String(200))
    #: Additional address line.
    address_line2: Mapped[str | None] = mapped_column(sa.String(200))
    #: Postal code.
    postal_code: Mapped[str] = mapped_column(sa.String(20))
    #: City.
    city: Mapped[str] = mapped_column(sa.String(100))
    #: Region, state or province.
    region: Mapped[str | None] = mapped_column(sa.String(100))
    #: ISO 3166-1 alpha-2 country code.
    country: Mapped[str] = mapped_column(sa.String(2))
    #: VAT identifier with country prefix (BT-31).
    vat_id: Mapped[str | None] = mapped_column(sa.String(20))
    #: Local tax registration number (BT-32).
    tax_number: Mapped[str | None] = mapped_column(sa.String(40))
    #: Company register entry, e.g. "HRB 12345, Amtsgericht Berlin" (BT-30).
    registration: Mapped[str | None] = mapped_column(sa.String(200))
    #: Contact e-mail printed on invoices.
    email: Mapped[str] = mapped_column(sa.String(254))
    #: Contact phone.
    phone: Mapped[str | None] = mapped_column(sa.String(40))
    #: Website.
    website: Mapped[str | None] = mapped_column(sa.String(200))
    #: IBAN for credit transfers (BT-84).
    iban: Mapped[str | None] = mapped_column(sa.String(34))
    #: BIC of the bank (BT-86).
    bic: Mapped[str | None] = mapped_column(sa.String(11))
    #: Bank name.
    bank_name: Mapped[str | None] = mapped_column(sa.String(100))
    #: Logo image bytes (PNG or SVG), printed on documents.
    logo: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    #: MIME type of ``logo``.
    logo_mime: Mapped[str | None] = mapped_column(sa.String(50))
    #: Invoice number pattern; ``{year}`` and ``{seq}`` (with format spec) are replaced.
    invoice_number_format: Mapped[str] = mapped_column(
        sa.String(60), default="INV-{year}-{seq:05d}"
    )
    #: Credit-note number pattern, same placeholders.
    credit_note_number_format: Mapped[str] = mapped_column(
        sa.String(60), default="CN-{year}-{seq:05d}"
    )
    #: Default currency for new tenants (ISO 4217).
    default_currency: Mapped[str] = mapped_column(sa.String(3), default="EUR")
    #: Default payment terms in days.
    default_payment_terms_days: Mapped[int] = mapped_column(sa.Integer, default=14)
    #: Footer text printed on invoices.
    invoice_footer: Mapped[str | None] = mapped_column(sa.Text)
    #: Display name of the e-mails sent for this seller ("Example GmbH Billing").
    email_sender_name: Mapped[str | None] = mapped_column(sa.String(100))

    tenants: Mapped[list[Tenant]] = relationship(back_populates="seller")

    @property
    def logo_sha256(self) -> str | None:
        """SHA-256 (hex) of the logo: invoices keep it to print only the logo they were
        finalized with."""
        return hashlib.sha256(self.logo).hexdigest() if self.logo else None

    __table_args__ = (
        sa.CheckConstraint("default_payment_terms_days >= 0", name="payment_terms_non_negative"),
    )


class Tenant(IdMixin, PublicIdMixin, TimestampMixin, Base):
    """A customer of the seller (a company in the provider console, an account)."""

    __tablename__ = "tenants"

    #: The seller that bills this tenant.
    seller_id: Mapped[int] = mapped_column(sa.ForeignKey("sellers.id"), index=True)
    #: Display name.
    name: Mapped[str] = mapped_column(sa.String(200))
    #: URL-safe unique handle.
    slug: Mapped[str] = mapped_column(sa.String(80), unique=True)
    #: Billing currency (ISO 4217); every invoice of the tenant uses it.
    currency: Mapped[str] = mapped_column(sa.String(3), default="EUR")
    #: Whether the tenant may log in and is invoiced.
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    #: When the operator archived the company: no new invoices; its history stays readable.
    archived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    seller: Mapped[Seller] = relationship(back_populates="tenants")
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="tenant", cascade="all, delete-orphan"
    )
    billing_profile: Mapped[BillingProfile | None] = relationship(
        back_populates="tenant", uselist=False
    )

    __table_args__ = (sa.CheckConstraint("length(currency) = 3", name="currency_iso4217"),)


class User(IdMixin, PublicIdMixin, TimestampMixin, Base):
    """A person who logs in with e-mail and password."""

    __tablename__ = "users"

    #: Login e-mail, stored lower-case.
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    #: Full name.
    name: Mapped[str] = mapped_column(sa.String(200))
    #: argon2id hash of the password.
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    #: Preferred language (ISO 639-1), remembered across sessions.
    locale: Mapped[str | None] = mapped_column(sa.String(8))
    #: Bumped on password change; part of the session id so old sessions end.
    auth_version: Mapped[int] = mapped_column(sa.Integer, default=1)
    #: Whether the user may log in.
    is_active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    #: Last successful login (UTC).
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user", cascade="all, delete-orphan"
    )
    platform_admin: Mapped[PlatformAdmin | None] = relationship(
        back_populates="user", uselist=False, cascade="all, delete-orphan"
    )

    __table_args__ = (sa.CheckConstraint("email = lower(email)", name="email_lowercase"),)

    # Flask-Login protocol --------------------------------------------------------------
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        """The session id: public id plus auth version, so a password change logs out."""
        return f"{self.public_id}:{self.auth_version}"

    @property
    def is_platform_admin(self) -> bool:
        return self.platform_admin is not None


class Membership(IdMixin, TimestampMixin, Base):
    """A user's role in one tenant."""

    __tablename__ = "memberships"

    #: The member.
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    #: The tenant.
    tenant_id: Mapped[int] = mapped_column(
        sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    #: What the user may do in the tenant.
    role: Mapped[Role] = mapped_column(enum_column(Role, "membership_role"))

    user: Mapped[User] = relationship(back_populates="memberships")
    tenant: Mapped[Tenant] = relationship(back_populates="memberships")

    __table_args__ = (sa.UniqueConstraint("user_id", "tenant_id"),)


class PlatformAdmin(IdMixin, TimestampMixin, Base):
    """Operator staff: may use the admin console across all tenants."""

    __tablename__ = "platform_admins"

    #: The user who is an admin.
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), unique=True)

    user: Mapped[User] = relationship(back_populates="platform_admin")


class TokenKind(enum.StrEnum):
    """Whose API a token opens."""

    TENANT = "tenant"
    ADMIN = "admin"


class ApiToken(IdMixin, PublicIdMixin, TimestampMixin, Base):
    """A bearer token for the JSON APIs: shown once, stored as a SHA-256 hash."""

    __tablename__ = "api_tokens"

    #: Tenant the token acts for; NULL for admin tokens.
    tenant_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("tenants.id", ondelete="CASCADE"), index=True
    )
    #: Tenant token or admin token (the two never open each other's API).
    kind: Mapped[TokenKind] = mapped_column(enum_column(TokenKind, "token_kind"))
    #: Human label.
    name: Mapped[str] = mapped_column(sa.String(100))
    #: First characters of the token, shown in lists to recognize it.
    prefix: Mapped[str] = mapped_column(sa.String(16))
    #: SHA-256 hex digest of the whole token (tokens are random, so no slow hash needed).
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: Granted scopes, e.g. ["billing:read", "billing:write"].
    scopes: Mapped[list[str]] = mapped_column(JSONType, default=list)
    #: User who created the token.
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    #: Last time the token authenticated a request.
    last_used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Optional expiry.
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: Set when revoked; a revoked token never authenticates again.
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    tenant: Mapped[Tenant | None] = relationship()
    created_by: Mapped[User | None] = relationship()

    __tenant_owned__ = True

    __table_args__ = (
        sa.CheckConstraint(
            "(kind = 'tenant' AND tenant_id IS NOT NULL) OR (kind = 'admin' AND tenant_id IS NULL)",
            name="kind_matches_tenant",
        ),
    )

    @property
    def can_write(self) -> bool:
        """Whether the token may change data, not only read it."""
        return any(scope.endswith(":write") for scope in self.scopes)

    def is_usable(self, now: dt.datetime | None = None) -> bool:
        now = now or utcnow()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


class BillingProfile(IdMixin, TenantMixin, TimestampMixin, Base):
    """Who the tenant's invoices are addressed to, and how they want them."""

    __tablename__ = "billing_profiles"

    #: Buyer legal name (BT-44).
    company_name: Mapped[str] = mapped_column(sa.String(200))
    #: Street and number (BT-50).
    address_line1: Mapped[str] = mapped_column(sa.String(200))
    #: Additional address line (BT-51).
    address_line2: Mapped[str | None] = mapped_column(sa.String(200))
    #: Postal code (BT-53).
    postal_code: Mapped[str] = mapped_column(sa.String(20))
    #: City (BT-52).
    city: Mapped[str] = mapped_column(sa.String(100))
    #: Region, state or province (BT-54).
    region: Mapped[str | None] = mapped_column(sa.String(100))
    #: ISO 3166-1 alpha-2 country code (BT-55).
    country: Mapped[str] = mapped_column(sa.String(2))
    #: Buyer VAT identifier with country prefix (BT-48).
    vat_id: Mapped[str | None] = mapped_column(sa.String(20))
    #: The buyer is exempt from VAT (e.g. a charity); invoices use category E.
    tax_exempt: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    #: Why the buyer is exempt (BT-120), required when ``tax_exempt``.
    tax_exemption_reason: Mapped[str | None] = mapped_column(sa.String(200))
    #: Where invoices are e-mailed.
    billing_email: Mapped[str] = mapped_column(sa.String(254))
    #: Further recipients in copy.
    cc_emails: Mapped[list[str]] = mapped_column(JSONType, default=list)
    #: Contact person (BT-56).
    contact_name: Mapped[str | None] = mapped_column(sa.String(200))
    #: Contact phone (BT-57).
    phone: Mapped[str | None] = mapped_column(sa.String(40))
    #: Buyer reference, e.g. the German Leitweg-ID for XRechnung (BT-10).
    buyer_reference: Mapped[str | None] = mapped_column(sa.String(100))
    #: Purchase order reference (BT-13).
    purchase_order: Mapped[str | None] = mapped_column(sa.String(100))
    #: Peppol electronic address of the buyer (BT-49).
    peppol_endpoint_id: Mapped[str | None] = mapped_column(sa.String(100))
    #: Scheme of ``peppol_endpoint_id`` (EAS code, e.g. 0088, 9930).
    peppol_endpoint_scheme: Mapped[str | None] = mapped_column(sa.String(10))
    #: Preferred structured invoice format.
    einvoice_format: Mapped[EInvoiceFormat] = mapped_column(
        enum_column(EInvoiceFormat, "einvoice_format"), default=EInvoiceFormat.NONE
    )
    #: Language of invoices and e-mails (ISO 639-1).
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    #: Preferred currency (ISO 4217); informs new subscriptions.
    currency: Mapped[str] = mapped_column(sa.String(3), default="EUR")
    #: Days between issue and due date.
    payment_terms_days: Mapped[int] = mapped_column(sa.Integer, default=14)

    tenant: Mapped[Tenant] = relationship(back_populates="billing_profile")

    __table_args__ = (
        sa.UniqueConstraint("tenant_id"),
        sa.CheckConstraint("payment_terms_days BETWEEN 0 AND 365", name="payment_terms_range"),
        sa.CheckConstraint(
            "NOT tax_exempt OR tax_exemption_reason IS NOT NULL", name="exemption_has_reason"
        ),
    )


class Invitation(IdMixin, PublicIdMixin, TenantMixin, TimestampMixin, Base):
    """An invitation to join a tenant with a role, sent by e-mail as a single-use link.

    The link carries a random secret; only its SHA-256 hash is stored, so the table alone
    opens nothing. A resend stores a new hash (the old link dies); accepting or revoking
    closes the invitation for good. At most one open invitation per tenant and e-mail.
    """

    __tablename__ = "invitations"

    #: Who is invited, lower-case; an account with this e-mail joins, or is created.
    email: Mapped[str] = mapped_column(sa.String(254))
    #: The role the invitee gets on accepting.
    role: Mapped[Role] = mapped_column(enum_column(Role, "invitation_role"))
    #: The person who invited (NULL for an API token, or once that user is deleted).
    invited_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    #: Who invited, as shown in the e-mail and lists (a name, or the API token's label).
    invited_by_label: Mapped[str] = mapped_column(sa.String(254))
    #: SHA-256 hex digest of the link's secret (the secret itself is only in the e-mail).
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    #: When the current link stops working (UTC); a resend moves it on.
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    #: When the invitee joined; the link never works again.
    accepted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: The user who joined through it.
    accepted_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    #: When an owner or admin withdrew it (or a new invitation replaced an expired one).
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    #: How often it was sent again (each resend makes a new link).
    resend_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: Language the e-mail was written in (ISO 639-1).
    language: Mapped[str] = mapped_column(sa.String(8), default="en")

    tenant: Mapped[Tenant] = relationship()
    invited_by: Mapped[User | None] = relationship(foreign_keys=[invited_by_id])

    __table_args__ = (
        sa.CheckConstraint("email = lower(email)", name="email_lowercase"),
        sa.CheckConstraint("resend_count >= 0", name="resend_count_non_negative"),
        sa.CheckConstraint("accepted_at IS NULL OR revoked_at IS NULL", name="accepted_or_revoked"),
        # One open invitation per tenant and e-mail, in the database too: two invites sent
        # at once cannot both be written.
        sa.Index(
            "uq_invitations_open_email",
            "tenant_id",
            "email",
            unique=True,
            sqlite_where=sa.text("accepted_at IS NULL AND revoked_at IS NULL"),
            postgresql_where=sa.text("accepted_at IS NULL AND revoked_at IS NULL"),
        ),
    )

    def is_pending(self, now: dt.datetime | None = None) -> bool:
        """Neither accepted, revoked nor expired."""
        now = now or utcnow()
        return self.accepted_at is None and self.revoked_at is None and self.expires_at > now


__all__ = [
    "ApiToken",
    "BillingProfile",
    "EInvoiceFormat",
    "Invitation",
    "Membership",
    "PlatformAdmin",
    "Seller",
    "Tenant",
    "TokenKind",
    "User",
]
