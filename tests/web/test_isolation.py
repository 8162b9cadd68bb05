"""Tenant isolation: every registered route, acting as tenant A, on tenant B's objects.

The matrix is built from ``app.url_map`` so it grows with every new route. A route with a
URL argument this file does not know fails the suite until the argument is mapped to an
object of tenant B below.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from portal import create_app
from portal.payments.models import PaymentMethod
from portal.tenancy.models import ApiToken, TokenKind
from portal.tenancy.roles import Role
from portal.tenancy.services import create_api_token

#: URL argument → how to find tenant B's object for it.
OBJECT_ARGUMENTS = {
    "token_id": lambda world: str(world.b.token.public_id),
    "invoice_id": lambda world: str(world.b.invoice.public_id),
    "method_id": lambda world: str(world.b.payment_method.public_id),
    "payment_id": lambda world: str(_payment_of_b(world).public_id),
    # The account API: tenant B as an account of its seller (admin-token surface).
    "orgId": lambda world: str(world.b.tenant.seller.public_id),
    "accountId": lambda world: str(world.b.tenant.public_id),
    # The provider console's names for the same objects (admin-token surface).
    "companyUid": lambda world: str(world.b.tenant.public_id),
    "invoiceUid": lambda world: str(world.b.invoice.public_id),
    "jobUid": lambda world: str(_job_of_b(world).public_id),
    "sellerUid": lambda world: str(world.b.tenant.seller.public_id),
    "invoiceId": lambda world: str(world.b.invoice.public_id),
    # The admin console pages (portal/web/admin).
    "company_id": lambda world: str(world.b.tenant.public_id),
    "job_id": lambda world: str(_job_of_b(world).public_id),
    # The catalog (operator-level objects, admin pages and admin-token API only).
    "product_id": lambda world: str(_catalog_of_b(world)[0].public_id),
    "price_id": lambda world: str(_catalog_of_b(world)[1].public_id),
    "coupon_id": lambda world: str(_catalog_of_b(world)[2].public_id),
    "productUid": lambda world: str(_catalog_of_b(world)[0].public_id),
    "priceUid": lambda world: str(_catalog_of_b(world)[1].public_id),
    "couponUid": lambda world: str(_catalog_of_b(world)[2].public_id),
    # Subscriptions (admin pages and the console API).
    "subscription_id": lambda world: str(_subscription_of_b(world).public_id),
    "subscriptionUid": lambda world: str(_subscription_of_b(world).public_id),
    "seller_id": lambda world: str(world.b.tenant.seller.public_id),
    # Quotas are named by metric within a company (B's company in the path).
    "metric": lambda world: "api_calls",
    # The team: tenant B's pending invitation and one of its members (by user id).
    "invitation_id": lambda world: str(_invitation_of_b(world).public_id),
    "invitationUid": lambda world: str(_invitation_of_b(world).public_id),
    "member_id": lambda world: str(world.b.viewer.public_id),
}


def _invitation_of_b(world):
    """A pending invitation of tenant B (created on first use)."""
    from portal.extensions import db
    from portal.ops.audit import Actor
    from portal.tenancy.invitations import invite
    from portal.tenancy.models import Invitation

    invitation = db.session.scalars(
        sa.select(Invitation).where(Invitation.tenant_id == world.b.tenant.id)
    ).first()
    if invitation is None:
        invitation = invite(
            db.session, world.b.tenant, email="invitee-b@example.com", role="viewer",
            actor=Actor(label="isolation"),
        )  # fmt: skip
        db.session.commit()
    return invitation


def _catalog_of_b(world):
    """A product, price and coupon of tenant B's seller (created on first use)."""
    from portal.catalog.models import Coupon, Plan, Price, PriceModel
    from portal.extensions import db

    seller_id = world.b.tenant.seller_id
    plan = db.session.scalars(sa.select(Plan).where(Plan.seller_id == seller_id)).first()
    if plan is None:
        plan = Plan(seller_id=seller_id, code="iso", name="Isolation")
        plan.prices.append(
            Price(code="iso", nickname="Iso", currency="EUR", model=PriceModel.FLAT, unit_amount=1)
        )
        db.session.add(plan)
        db.session.add(
            Coupon(
                seller_id=seller_id, code="ISO", name="Iso", amount_off_minor=100, currency="EUR"
            )
        )
        db.session.commit()
    coupon = db.session.scalars(sa.select(Coupon).where(Coupon.seller_id == seller_id)).first()
    return plan, plan.prices[0], coupon


def _subscription_of_b(world):
    """A subscription of tenant B (created on first use)."""
    import datetime as dt

    from portal.catalog.models import Subscription
    from portal.extensions import db

    subscription = db.session.scalars(
        sa.select(Subscription).where(Subscription.tenant_id == world.b.tenant.id)
    ).first()
    if subscription is None:
        start = dt.date.today().replace(day=1)
        subscription = Subscription(
            tenant_id=world.b.tenant.id,
            currency="EUR",
            started_on=start,
            current_period_start=start,
            current_period_end=(start + dt.timedelta(days=32)).replace(day=1),
        )
        db.session.add(subscription)
        db.session.commit()
    return subscription


def _job_of_b(world):
    """A job about tenant B (created on first use)."""
    from portal.extensions import db
    from portal.ops.models import Job

    job = db.session.scalars(sa.select(Job).where(Job.tenant_id == world.b.tenant.id)).first()
    if job is None:
        job = Job(kind="quota_report", tenant_id=world.b.tenant.id, params={})
        db.session.add(job)
        db.session.commit()
    return job


def _payment_of_b(world):
    """A payment of tenant B (created on first use) for the payment-action routes."""
    from portal.extensions import db
    from portal.payments.models import Payment

    payment = db.session.scalars(
        sa.select(Payment).where(Payment.tenant_id == world.b.tenant.id)
    ).first()
    if payment is None:
        payment = Payment(
            tenant_id=world.b.tenant.id,
            invoice_id=world.b.invoice.id,
            provider="stripe",
            amount_minor=100,
            currency="EUR",
            status="requires_action",
        )
        db.session.add(payment)
        db.session.commit()
    return payment


#: Endpoints anyone may call; they handle no tenant object.
PUBLIC_ENDPOINTS = {
    "static",
    "auth.login",
    "auth.logout",
    "auth.forgot_password",
    "auth.reset_password",
    "auth.switch_tenant",
    "auth.set_language",
    "webhooks.receive",  # authenticated by signature or by re-fetching at the provider
    # Signed invoice links: the token is the credential; it opens one invoice, nothing else.
    "public.show",
    "public.download",
    "public.pay",
    "public.pay_return",
    # The signed-in user's own account (login_required; no tenant object); its e-mail
    # confirmation link is a signed token, like a password reset.
    "account.show",
    "account.update",
    "account.request_email",
    "account.password",
    "account.confirm_email",
    # An invitation link: the token is the credential; it opens one invitation.
    "team.accept",
}

#: Arguments of public endpoints that are not tenant objects.
NON_OBJECT_ARGUMENTS = {
    "filename": "css/portal.css",
    "token": "not-a-valid-token",
    "provider_slug": "stripe",
    "slug": "stripe",  # a payment provider (tenant API), not a tenant object
    "action": "mark-paid",  # an admin invoice action (the admin pages answer tenants 404)
}


def _routes():
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    for rule in app.url_map.iter_rules():
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield pytest.param(
                rule.endpoint, rule.rule, method, sorted(rule.arguments), id=f"{method} {rule.rule}"
            )


ROUTES = list(_routes())


def _url(rule: str, arguments: list[str], world) -> str:
    url = rule
    for name in arguments:
        if name in OBJECT_ARGUMENTS:
            value = OBJECT_ARGUMENTS[name](world)
        elif name in NON_OBJECT_ARGUMENTS:
            value = NON_OBJECT_ARGUMENTS[name]
        else:
            pytest.fail(
                f"{rule}: map URL argument {name!r} to a tenant-B object in OBJECT_ARGUMENTS"
            )
        url = url.replace(f"<{name}>", value)
        for converter in ("string", "uuid", "int", "path"):
            url = url.replace(f"<{converter}:{name}>", value)
    return url


def test_every_route_is_covered():
    assert ROUTES, "no routes found"
    for param in ROUTES:
        endpoint, rule, _, arguments = param.values
        for name in arguments:
            assert name in OBJECT_ARGUMENTS or name in NON_OBJECT_ARGUMENTS, (
                f"{rule}: add {name!r} to OBJECT_ARGUMENTS"
            )


def test_every_non_public_view_has_a_guard(app):
    for endpoint, view in app.view_functions.items():
        if endpoint in PUBLIC_ENDPOINTS:
            continue
        if endpoint.startswith("api_") and endpoint.rsplit(".", 1)[-1] in ("openapi", "docs"):
            continue  # the API's own description, public like the reference says
        guarded = (
            hasattr(view, "required_permission")
            or hasattr(view, "admin_only")
            or hasattr(view, "required_scope")  # a JSON API operation (bearer token)
        )
        assert guarded, f"{endpoint} is neither tenant_view, admin_view nor an API operation"


@pytest.mark.parametrize("role", [Role.OWNER, Role.VIEWER])
@pytest.mark.parametrize(("endpoint", "rule", "method", "arguments"), ROUTES)
def test_tenant_a_cannot_reach_tenant_b(
    client, auth, world, session, role, endpoint, rule, method, arguments
):
    auth.login(world.a.user(role).email)
    url = _url(rule, arguments, world)
    headers = {}
    if rule.startswith("/api/"):
        # JSON surfaces ignore the session: act with tenant A's token (read-only for the
        # viewer, read-write for the owner).
        scopes = ["billing:read"] + (["billing:write"] if role == Role.OWNER else [])
        _, secret = create_api_token(
            session, kind=TokenKind.TENANT, tenant=world.a.tenant, name="a", scopes=scopes
        )
        session.commit()
        headers["Authorization"] = f"Bearer {secret}"
    form = {
        "name": "hijack",
        "access": "billing:write",
        "tenant": str(world.b.tenant.public_id),
        "language": "en",
    }
    response = client.open(
        url, method=method, data=form if method != "GET" else None, headers=headers
    )

    object_arguments = [a for a in arguments if a in OBJECT_ARGUMENTS]
    view = client.application.view_functions[endpoint]
    if getattr(view, "admin_only", False):
        assert response.status_code == 404
    elif rule.startswith("/api/v1/organizations/") and getattr(view, "required_scope", None):
        assert response.status_code == 401  # admin-token surfaces refuse tenant tokens
    elif object_arguments:
        allowed = {404} if role == Role.OWNER else {403, 404}
        assert response.status_code in allowed, f"{method} {url} → {response.status_code}"
    elif endpoint == "auth.switch_tenant":
        assert response.status_code == 404
    else:
        assert response.status_code < 500
    # Nothing of tenant B shows, and nothing of tenant B changed.
    body = response.get_data(as_text=True)
    response.close()
    assert world.b.tenant.name not in body
    assert world.b.invoice.number not in body
    session.expire_all()
    token_b = session.scalar(sa.select(ApiToken).where(ApiToken.id == world.b.token.id))
    assert token_b.revoked_at is None
    from portal.tenancy.models import Invitation, Membership

    memberships_b = session.execute(
        sa.select(Membership.user_id, Membership.role).where(
            Membership.tenant_id == world.b.tenant.id
        )
    ).all()
    assert sorted((u, r.value) for u, r in memberships_b) == sorted(
        (world.b.user(r).id, r.value) for r in Role
    )
    for invitation in session.scalars(
        sa.select(Invitation).where(Invitation.tenant_id == world.b.tenant.id)
    ):
        assert invitation.revoked_at is None and invitation.resend_count == 0
    method_b = session.get(PaymentMethod, world.b.payment_method.id)
    assert method_b.status == "active" and method_b.is_default
    assert (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(ApiToken)
            .where(ApiToken.tenant_id == world.b.tenant.id)
        )
        == 1
    )
