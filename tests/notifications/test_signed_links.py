"""Signed invoice links: the public page shows one invoice; expired, tampered and revoked
links show nothing of it; the admin revokes by rotating the invoice's link version."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.db import utcnow
from portal.extensions import db
from portal.invoices.states import InvoiceStatus
from portal.notifications.links import (
    LinkExpired,
    LinkInvalid,
    LinkRevoked,
    current_version,
    issue_link,
    resolve_link,
    rotate_links,
    shared_link,
    token_for,
)
from portal.notifications.models import SignedLink
from portal.ops.models import AuditLogEntry
from tests.factories.invoices import make_invoice


def _invoice_secrets(world) -> list[str]:
    """Strings only tenant A's invoice page may show."""
    invoice = world.a.invoice
    return [invoice.number, world.a.tenant.name, "Platform", "Seats"]


def test_link_opens_its_invoice_only(client, session, world):
    link = issue_link(session, world.a.invoice, recipient="ap@buyer.example")
    session.commit()
    response = client.get(f"/i/{token_for(link)}")
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert world.a.invoice.number in body
    assert "Platform" in body and "Seats" in body
    # Nothing else of the tenant, nothing of the other tenant, no way into the portal.
    assert world.b.invoice.number not in body
    assert world.b.tenant.name not in body
    for path in ('href="/invoices', 'href="/payment-methods', 'href="/billing-profile', 'href="/"'):
        assert path not in body
    assert world.a.owner.email not in body
    assert response.headers["Cache-Control"] == "private, no-store"
    assert "noindex" in response.headers["X-Robots-Tag"]
    session.expire_all()
    assert session.get(SignedLink, link.id).last_used_at is not None


def test_link_downloads_the_stored_pdf(client, session, world):
    link = issue_link(session, world.a.invoice)
    session.commit()
    first = client.get(f"/i/{token_for(link)}/download?format=pdf")
    assert first.status_code == 200
    assert first.mimetype == "application/pdf"
    assert first.data.startswith(b"%PDF")
    again = client.get(f"/i/{token_for(link)}/download")
    assert again.data == first.data  # issued documents are stored: the same bytes
    xml = client.get(f"/i/{token_for(link)}/download?format=cii")
    assert xml.status_code == 200 and b"CrossIndustryInvoice" in xml.data
    unknown = client.get(f"/i/{token_for(link)}/download?format=doc")
    assert unknown.status_code == 303


def _assert_nothing_shown(response, world, status: int) -> None:
    assert response.status_code == status
    body = response.get_data(as_text=True)
    for secret in _invoice_secrets(world):
        assert secret not in body
    assert "%PDF" not in body


@pytest.mark.parametrize("suffix", ["", "/download?format=pdf"])
def test_tampered_links_show_nothing(client, session, world, suffix):
    link = issue_link(session, world.a.invoice)
    session.commit()
    token = token_for(link)
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (flipped, token + "x", "not-a-token", token.split(".")[0]):
        _assert_nothing_shown(client.get(f"/i/{bad}{suffix}"), world, 404)


def test_expired_link_shows_nothing(client, session, world):
    link = issue_link(session, world.a.invoice, now=utcnow() - dt.timedelta(days=61))
    session.commit()
    response = client.get(f"/i/{token_for(link)}")
    _assert_nothing_shown(response, world, 410)
    assert "expired" in response.get_data(as_text=True)
    _assert_nothing_shown(client.get(f"/i/{token_for(link)}/download"), world, 410)


def test_max_age_is_configurable(app, session, world):
    app.config["SIGNED_LINK_MAX_AGE_DAYS"] = 5
    link = issue_link(session, world.a.invoice)
    assert link.expires_at - link.created_at == dt.timedelta(days=5)
    with pytest.raises(LinkExpired):
        resolve_link(session, token_for(link), now=utcnow() + dt.timedelta(days=6))


def test_rotating_the_version_revokes_every_link(client, auth, session, world):
    invoice = world.a.invoice
    first = issue_link(session, invoice, recipient="ap@buyer.example")
    second = issue_link(session, invoice)
    session.commit()
    auth.login(world.admin.email)
    response = client.post(
        f"/admin/invoices/{invoice.public_id}/links/rotate", data={"next": "/admin/"}
    )
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/admin/")
    client.get("/admin/")  # shows (and so consumes) the admin's confirmation
    auth.logout()
    session.expire_all()
    assert current_version(session, invoice) == 2
    for link in (first, second):
        _assert_nothing_shown(client.get(f"/i/{token_for(link)}"), world, 410)
    entry = session.scalars(sa.select(AuditLogEntry)).one()
    assert entry.action == "invoice.rotate_links" and entry.target_id == str(invoice.public_id)
    # A new link works under the new version.
    fresh = issue_link(session, invoice)
    session.commit()
    assert fresh.version == 2
    assert client.get(f"/i/{token_for(fresh)}").status_code == 200


def test_rotation_is_for_platform_admins_only(client, auth, session, world):
    link = issue_link(session, world.a.invoice)
    session.commit()
    auth.login(world.a.owner.email)
    response = client.post(f"/admin/invoices/{world.a.invoice.public_id}/links/rotate")
    assert response.status_code == 404
    auth.logout()
    response = client.post(f"/admin/invoices/{world.a.invoice.public_id}/links/rotate")
    assert response.status_code == 302  # to the login page
    assert client.get(f"/i/{token_for(link)}").status_code == 200
    auth.login(world.admin.email)
    assert client.post("/admin/invoices/not-a-uuid/links/rotate").status_code == 404


def test_link_revoked_row_and_old_version_token(session, world):
    link = issue_link(session, world.a.invoice)
    token = token_for(link)
    link.revoked_at = utcnow()
    session.flush()
    with pytest.raises(LinkRevoked):
        resolve_link(session, token)
    other = issue_link(session, world.a.invoice)
    rotate_links(session, world.a.invoice)
    with pytest.raises(LinkRevoked):
        resolve_link(session, token_for(other))
    # A token claiming a version the row does not have is a forgery, not a revocation.
    other.version = 2
    forged = token_for(other)
    session.rollback()
    with pytest.raises(LinkInvalid):
        resolve_link(session, forged)


def test_purpose_binds_the_actions(session, world):
    link = issue_link(session, world.a.invoice, purpose="view")
    with pytest.raises(LinkInvalid):
        resolve_link(session, token_for(link), "delete")
    with pytest.raises(ValueError):
        issue_link(session, world.a.invoice, purpose="admin")


def test_drafts_have_no_links(session, world):
    draft = make_invoice(
        world.a.tenant,
        finalize=False,
        period_start=dt.date(2026, 10, 1),
        period_end=dt.date(2026, 10, 31),
    )
    assert draft.status == InvoiceStatus.DRAFT
    with pytest.raises(ValueError):
        issue_link(session, draft)


def test_shared_link_is_reused_until_half_its_life(session, world):
    first = shared_link(session, world.a.invoice)
    assert shared_link(session, world.a.invoice).id == first.id
    later = utcnow() + dt.timedelta(days=31)
    assert shared_link(session, world.a.invoice, now=later).id != first.id


def test_links_are_rate_limited(app_config, world):
    app_config.update(RATELIMIT_ENABLED=True, RATELIMIT_SIGNED_LINKS="3 per minute")
    app = create_app(app_config)
    client = app.test_client()
    statuses = [client.get("/i/not-a-token").status_code for _ in range(5)]
    assert statuses == [404, 404, 404, 429, 429]
    limited = client.get("/i/not-a-token")
    body = limited.get_data(as_text=True)
    assert "Please wait a minute" in body
    assert 'href="/' not in body.replace('href="/static/', "")  # no way into the portal
    with app.app_context():
        db.session.remove()
