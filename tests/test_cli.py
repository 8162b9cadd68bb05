"""The flask commands: seed-demo (idempotent), create-admin, create-token."""

from __future__ import annotations

import sqlalchemy as sa

from portal.db import Base
from portal.extensions import db
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceStatus
from portal.tenancy.models import ApiToken, Tenant, TokenKind, User
from portal.tenancy.services import authenticate, authenticate_token


def _dump() -> dict[str, list[tuple]]:
    """Every row of every table, in primary-key order."""
    dump = {}
    with db.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            rows = conn.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
            dump[table.name] = [tuple(row) for row in rows]
    return dump


def test_seed_demo_loads_every_status_and_is_idempotent(runner, session):
    result = runner.invoke(args=["seed-demo"])
    assert result.exit_code == 0, result.output
    assert "demo@example.com" in result.output and "admin@example.com" in result.output
    first = _dump()
    again = runner.invoke(args=["seed-demo"])
    assert again.exit_code == 0, again.output
    assert _dump() == first

    tenants = session.scalars(sa.select(Tenant)).all()
    assert len(tenants) == 4
    assert {t.currency for t in tenants} == {"EUR", "JPY"}
    statuses = set(session.scalars(sa.select(Invoice.status)))
    assert statuses == set(InvoiceStatus)
    per_tenant = session.execute(
        sa.select(Invoice.tenant_id, sa.func.count()).group_by(Invoice.tenant_id)
    ).all()
    assert all(count == 13 for _, count in per_tenant)  # 12 past months + the current draft
    numbers = session.scalars(sa.select(Invoice.number).where(Invoice.number.is_not(None)))
    assert len(set(numbers)) == 48
    # The printed passwords work.
    for line in result.output.splitlines():
        parts = line.split()
        if len(parts) == 2 and "@" in parts[0]:
            assert authenticate(session, parts[0], parts[1]) is not None
    admin = session.scalars(sa.select(User).where(User.email == "admin@example.com")).one()
    assert admin.is_platform_admin


def test_create_admin(runner, session):
    result = runner.invoke(
        args=[
            "create-admin",
            "--email",
            "Ops@Example.com",
            "--name",
            "Ops",
            "--password",
            "a long admin password",
        ]
    )
    assert result.exit_code == 0, result.output
    user = session.scalars(sa.select(User).where(User.email == "ops@example.com")).one()
    assert user.is_platform_admin
    weak = runner.invoke(args=["create-admin", "--email", "x@example.com", "--password", "short"])
    assert weak.exit_code != 0 and "at least" in weak.output


def test_create_token_for_tenant_and_admin(runner, session, world):
    result = runner.invoke(
        args=["create-token", "--tenant", world.a.tenant.slug, "--name", "erp", "--scope", "read"]
    )
    assert result.exit_code == 0, result.output
    secret = result.output.splitlines()[1]
    token = authenticate_token(session, secret, TokenKind.TENANT)
    assert token is not None and token.tenant_id == world.a.tenant.id
    assert token.scopes == ["billing:read"]
    assert authenticate_token(session, secret, TokenKind.ADMIN) is None  # kinds never mix

    admin = runner.invoke(args=["create-token", "--admin", "--name", "console"])
    admin_secret = admin.output.splitlines()[1]
    admin_token = authenticate_token(session, admin_secret, TokenKind.ADMIN)
    assert admin_token is not None and admin_token.tenant_id is None
    stored = session.scalars(sa.select(ApiToken.token_hash)).all()
    assert secret not in stored and admin_secret not in stored

    both = runner.invoke(args=["create-token", "--admin", "--tenant", "x", "--name", "n"])
    assert both.exit_code != 0
    unknown = runner.invoke(args=["create-token", "--tenant", "nope", "--name", "n"])
    assert unknown.exit_code != 0 and "no tenant" in unknown.output
