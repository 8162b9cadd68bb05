"""Signed links for billing contacts: one invoice, one purpose, expiring, revocable.

The URL token is the link row's public id and version signed with the app's secret, so a
changed character fails the signature before the database is asked. The row decides the
rest: which invoice, what for, until when, and whether the invoice's link version has been
rotated since (an admin's revocation of every earlier link at once).
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.orm import Session

from portal.db import utcnow
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.notifications.models import InvoiceLinkVersion, SignedLink
from portal.tenancy.models import User

#: What each purpose lets the holder do on the public page.
PURPOSE_ACTIONS: dict[str, frozenset[str]] = {
    # The invoice e-mail's link: see it, download its documents, pay it.
    "view": frozenset({"view", "download", "pay"}),
    # A payment e-mail's link: the same page, opened to pay.
    "pay": frozenset({"view", "download", "pay"}),
}
#: The serializer's salt: a token signed for anything else (a reset link) never opens this.
_SALT = "portal.signed-link.v1"


class LinkUnusable(Exception):
    """A link that opens nothing; ``status`` is the HTTP answer (404 unknown, 410 gone).

    :ivar reason: "invalid", "expired" or "revoked".
    """

    status = 404

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class LinkInvalid(LinkUnusable):
    """Tampered, malformed, unknown, or not for this action."""

    status = 404

    def __init__(self) -> None:
        super().__init__("invalid")


class LinkExpired(LinkUnusable):
    """Past its expiry date."""

    status = 410

    def __init__(self) -> None:
        super().__init__("expired")


class LinkRevoked(LinkUnusable):
    """Revoked, or issued under an invoice link version that has since been rotated."""

    status = 410

    def __init__(self) -> None:
        super().__init__("revoked")


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def max_age() -> dt.timedelta:
    """How long a new link stays valid (``SIGNED_LINK_MAX_AGE_DAYS``, 60 by default)."""
    return dt.timedelta(days=int(current_app.config.get("SIGNED_LINK_MAX_AGE_DAYS", 60)))


def current_version(session: Session, invoice: Invoice) -> int:
    """The invoice's link version (1 until an admin first rotates it)."""
    version = session.scalar(
        sa.select(InvoiceLinkVersion.version).where(InvoiceLinkVersion.invoice_id == invoice.id)
    )
    return version or 1


def token_for(link: SignedLink) -> str:
    """The URL token of ``link``: its public id and version, signed."""
    return _serializer().dumps([link.public_id.hex, link.version])


def link_url(link: SignedLink) -> str:
    """The absolute URL of ``link`` for e-mails and API clients (``PUBLIC_BASE_URL``)."""
    base = current_app.config["PUBLIC_BASE_URL"].rstrip("/")
    # Built without a request: links are also made by queue tasks (automatic sending).
    adapter = current_app.url_map.bind("localhost")
    return base + adapter.build("public.show", {"token": token_for(link)})


def issue_link(
    session: Session,
    invoice: Invoice,
    *,
    purpose: str = "view",
    recipient: str | None = None,
    now: dt.datetime | None = None,
) -> SignedLink:
    """Create a link to ``invoice`` for ``purpose`` under the invoice's current version.

    :raise ValueError: for a draft (it has nothing to show yet) or an unknown purpose.
    """
    if purpose not in PURPOSE_ACTIONS:
        raise ValueError(f"unknown link purpose {purpose!r}")
    if invoice.status == InvoiceStatus.DRAFT:
        raise ValueError("drafts have no public link")
    now = now or utcnow()
    link = SignedLink(
        tenant_id=invoice.tenant_id,
        invoice_id=invoice.id,
        purpose=purpose,
        recipient=recipient,
        version=current_version(session, invoice),
        expires_at=now + max_age(),
        created_at=now,
    )
    session.add(link)
    session.flush()
    return link


def shared_link(
    session: Session, invoice: Invoice, *, now: dt.datetime | None = None
) -> SignedLink:
    """A view link without a recipient (for API clients), reused while it has half its life.

    Asking twice gives the same URL instead of a new row each time; a link with less than
    half its lifetime left is replaced, so a URL handed out lasts at least that long.
    """
    now = now or utcnow()
    reusable = session.scalars(
        sa.select(SignedLink)
        .where(
            SignedLink.invoice_id == invoice.id,
            SignedLink.purpose == "view",
            SignedLink.recipient.is_(None),
            SignedLink.revoked_at.is_(None),
            SignedLink.version == current_version(session, invoice),
            SignedLink.expires_at > now + max_age() / 2,
        )
        .order_by(SignedLink.expires_at.desc())
        .limit(1)
    ).first()
    return reusable or issue_link(session, invoice, now=now)


def resolve_link(
    session: Session, token: str, action: str = "view", *, now: dt.datetime | None = None
) -> tuple[SignedLink, Invoice]:
    """The link and invoice a token opens for ``action``; records the use.

    :raise LinkInvalid: tampered, unknown, or a purpose that does not allow ``action``.
    :raise LinkExpired: past its expiry.
    :raise LinkRevoked: revoked, or its version rotated away.
    """
    try:
        public_hex, version = _serializer().loads(token)
        public_id = uuid.UUID(hex=str(public_hex))
        version = int(version)
    except (BadSignature, ValueError, TypeError):
        raise LinkInvalid() from None
    link = session.scalars(sa.select(SignedLink).where(SignedLink.public_id == public_id)).first()
    if link is None or link.version != version:
        raise LinkInvalid()
    if action not in PURPOSE_ACTIONS.get(link.purpose, frozenset()):
        raise LinkInvalid()
    invoice = session.get(Invoice, link.invoice_id)
    if invoice is None or invoice.tenant_id != link.tenant_id:
        raise LinkInvalid()
    if link.revoked_at is not None or link.version < current_version(session, invoice):
        raise LinkRevoked()
    now = now or utcnow()
    if link.expires_at <= now:
        raise LinkExpired()
    link.last_used_at = now
    session.flush()
    return link, invoice


def rotate_links(
    session: Session, invoice: Invoice, *, actor: User | None = None, now: dt.datetime | None = None
) -> int:
    """Revoke every link to ``invoice`` by moving its link version on; returns the new one.

    New links (the next e-mail, the API) are issued under the new version.
    """
    now = now or utcnow()
    row = session.scalars(
        sa.select(InvoiceLinkVersion)
        .where(InvoiceLinkVersion.invoice_id == invoice.id)
        .with_for_update()
    ).first()
    if row is None:
        row = InvoiceLinkVersion(tenant_id=invoice.tenant_id, invoice_id=invoice.id, version=1)
        session.add(row)
    row.version += 1
    row.rotated_at = now
    row.rotated_by_id = actor.id if actor is not None else None
    session.execute(
        sa.update(SignedLink)
        .where(SignedLink.invoice_id == invoice.id, SignedLink.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.flush()
    return row.version
