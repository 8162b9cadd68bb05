"""Role checks: viewers see everything and change nothing; admins have their own area."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from portal.tenancy.models import ApiToken
from portal.tenancy.roles import Role, role_allows
from tests.factories.tenancy import MembershipFactory, TenantFactory


@pytest.mark.parametrize(
    ("role", "permission", "allowed"),
    [
        (Role.OWNER, "manage_members", True),
        (Role.BILLING_ADMIN, "manage_members", False),
        (Role.BILLING_ADMIN, "manage_billing", True),
        (Role.VIEWER, "view", True),
        (Role.VIEWER, "manage_billing", False),
        (Role.VIEWER, "manage_tokens", False),
        (None, "view", False),
    ],
)
def test_role_permissions(role, permission, allowed):
    assert role_allows(role, permission) is allowed


@pytest.mark.parametrize("role", list(Role))
def test_everyone_sees_the_tokens_page(client, auth, world, role):
    auth.login(world.a.user(role).email)
    page = client.get("/settings/tokens")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert world.a.token.name in html
    assert ("Create a token" in html) is (role != Role.VIEWER)
    assert ("Revoke" in html) is (role != Role.VIEWER)


def test_viewer_cannot_create_or_revoke_tokens(client, auth, world, session):
    auth.login(world.a.viewer.email)
    create = client.post("/settings/tokens", data={"name": "mine", "access": "billing:read"})
    assert create.status_code == 403
    revoke = client.post(f"/settings/tokens/{world.a.token.public_id}/revoke")
    assert revoke.status_code == 403
    session.expire_all()
    assert session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 2
    assert session.get(ApiToken, world.a.token.id).revoked_at is None


@pytest.mark.parametrize("role", [Role.OWNER, Role.BILLING_ADMIN])
def test_managers_create_a_token_shown_once_and_revoke_it(client, auth, world, session, role):
    auth.login(world.a.user(role).email)
    page = client.post("/settings/tokens", data={"name": "CI export", "access": "billing:write"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    created = session.scalars(sa.select(ApiToken).where(ApiToken.name == "CI export")).one()
    assert created.tenant_id == world.a.tenant.id
    assert created.scopes == ["billing:read", "billing:write"]
    secret = re.search(r'<code class="secret">(tbp_[\w-]+)</code>', html).group(1)
    assert secret.startswith(created.prefix)
    listing = client.get("/settings/tokens").get_data(as_text=True)
    assert "CI export" in listing
    assert secret not in listing  # shown once, never again
    response = client.post(f"/settings/tokens/{created.public_id}/revoke")
    assert response.status_code == 303
    session.expire_all()
    assert session.get(ApiToken, created.id).revoked_at is not None


def test_invalid_token_form_shows_field_errors_and_writes_nothing(client, auth, world, session):
    auth.login(world.a.owner.email)
    response = client.post("/settings/tokens", data={"name": "", "access": "root"})
    assert response.status_code == 200
    assert "field__error" in response.get_data(as_text=True)
    assert session.scalar(sa.select(sa.func.count()).select_from(ApiToken)) == 2


def test_htmx_request_gets_only_the_fragment(client, auth, world):
    auth.login(world.a.owner.email)
    full = client.get("/settings/tokens")
    fragment = client.get("/settings/tokens", headers={"HX-Request": "true"})
    assert "<html" in full.get_data(as_text=True)
    assert "<html" not in fragment.get_data(as_text=True)
    assert world.a.token.name in fragment.get_data(as_text=True)
    assert "HX-Request" in fragment.headers["Vary"]
    restore = client.get(
        "/settings/tokens", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in restore.get_data(as_text=True)


def test_admin_area_is_hidden_from_tenant_users(client, auth, world):
    auth.login(world.a.owner.email)
    assert client.get("/admin/").status_code == 404


def test_admin_area_requires_login(client):
    assert client.get("/admin/").status_code == 302


def test_user_without_tenant_gets_404(client, auth, session):
    from tests.factories.tenancy import UserFactory

    user = UserFactory()
    session.commit()
    auth.login(user.email)
    assert client.get("/").status_code == 404


def test_tenant_switcher_changes_the_current_tenant(client, auth, world, session):
    other = TenantFactory(seller=world.a.tenant.seller, name="Charlie Foods")
    MembershipFactory(tenant=other, user=world.a.owner, role=Role.VIEWER)
    session.commit()
    auth.login(world.a.owner.email)
    page = client.get("/").get_data(as_text=True)
    assert 'id="tenant-switch"' in page
    # Tenants are ordered by name: Alpha first.
    assert "<h1>Alpha Industries</h1>" in page
    response = client.post("/tenants/switch", data={"tenant": str(other.public_id)})
    assert response.status_code == 303
    page = client.get("/").get_data(as_text=True)
    assert "<h1>Charlie Foods</h1>" in page
    # The role follows the tenant: a viewer there.
    assert (
        client.post("/settings/tokens", data={"name": "x", "access": "billing:read"}).status_code
        == 403
    )
    # Someone else's tenant is not a choice.
    assert (
        client.post("/tenants/switch", data={"tenant": str(world.b.tenant.public_id)}).status_code
        == 404
    )


def _changing_tenant_routes():
    """Every page route whose permission is more than "view", from the app's url map."""
    from portal import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        permission = getattr(view, "required_permission", None)
        if permission in (None, "view"):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield pytest.param(
                rule.rule, method, sorted(rule.arguments), id=f"{method} {rule.rule}"
            )


@pytest.mark.parametrize(("rule", "method", "arguments"), list(_changing_tenant_routes()))
def test_viewers_are_refused_every_change(client, auth, world, session, rule, method, arguments):
    """A viewer gets 403 on every route that needs more than "view", on their own
    company's objects, and nothing of the team changes."""
    import datetime as dt

    from portal.catalog.models import Subscription
    from portal.ops.audit import Actor
    from portal.tenancy.invitations import invite
    from portal.tenancy.models import Invitation, Membership

    invitation = invite(
        session, world.a.tenant, email="roles@example.com", role="viewer", actor=Actor(label="t")
    )
    start = dt.date.today().replace(day=1)
    subscription = Subscription(
        tenant_id=world.a.tenant.id,
        currency="EUR",
        started_on=start,
        current_period_start=start,
        current_period_end=(start + dt.timedelta(days=32)).replace(day=1),
    )
    session.add(subscription)
    session.commit()
    own = {
        "subscription_id": str(subscription.public_id),
        "token_id": str(world.a.token.public_id),
        "invoice_id": str(world.a.invoice.public_id),
        "method_id": str(world.a.payment_method.public_id),
        "invitation_id": str(invitation.public_id),
        "member_id": str(world.a.owner.public_id),
        "payment_id": "00000000-0000-0000-0000-000000000000",
        "slug": "stripe",
    }
    url = rule
    for name in arguments:
        assert name in own, f"{rule}: give {name!r} an object of tenant A here"
        url = url.replace(f"<{name}>", own[name])
    auth.login(world.a.viewer.email)
    form = {"email": "x@example.com", "role": "owner", "name": "x", "access": "billing:write"}
    response = client.open(url, method=method, data=form)
    assert response.status_code == 403, f"{method} {url} → {response.status_code}"
    session.expire_all()
    assert session.get(Invitation, invitation.id).revoked_at is None
    assert session.scalar(sa.select(sa.func.count()).select_from(Invitation)) == 1
    assert session.get(Subscription, subscription.id).cancel_at_period_end is False
    roles = session.scalars(
        sa.select(Membership.role).where(Membership.tenant_id == world.a.tenant.id)
    ).all()
    assert sorted(r.value for r in roles) == ["billing_admin", "owner", "viewer"]
