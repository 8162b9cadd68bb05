"""Flask commands: ``flask --app wsgi seed-demo | create-admin | create-token``."""

from __future__ import annotations

import datetime as dt

import click
import sqlalchemy as sa
from flask import Flask

from portal.admin.cli import register_admin_cli
from portal.db import parse_public_id
from portal.devtools.generate import register_generate_cli
from portal.extensions import db
from portal.ledger.reconciliation import reconcile, record_check
from portal.tenancy.errors import EmailTaken, WeakPassword
from portal.tenancy.models import Tenant, TokenKind
from portal.tenancy.services import (
    create_api_token,
    create_user,
    get_user_by_email,
    make_platform_admin,
)


@click.command("seed-demo")
def seed_demo_command() -> None:
    """Load demo data (idempotent) and print the demo logins."""
    from portal.demo import seed_demo

    logins = seed_demo(db.session, dt.date.today())
    db.session.commit()
    click.echo("Demo data is ready. Sign in with:")
    for email, password in logins.items():
        click.echo(f"  {email:<22} {password}")


@click.command("create-admin")
@click.option("--email", prompt=True)
@click.option("--name", default="Administrator", show_default=True)
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
def create_admin_command(email: str, name: str, password: str) -> None:
    """Create a platform admin (or make an existing user one)."""
    user = get_user_by_email(db.session, email)
    if user is None:
        try:
            user = create_user(db.session, email=email, name=name, password=password)
        except (WeakPassword, EmailTaken) as exc:
            raise click.UsageError(str(exc)) from exc
    make_platform_admin(db.session, user)
    db.session.commit()
    click.echo(f"{user.email} is a platform admin.")


@click.command("create-token")
@click.option("--tenant", "tenant_ref", help="Tenant slug or public id (tenant API token).")
@click.option("--admin", "is_admin", is_flag=True, help="Create a provider-console admin token.")
@click.option("--name", required=True, help="Label shown in token lists.")
@click.option("--scope", type=click.Choice(["read", "write"]), default="write", show_default=True)
def create_token_command(tenant_ref: str | None, is_admin: bool, name: str, scope: str) -> None:
    """Create an API token and print it once."""
    if is_admin == bool(tenant_ref):
        raise click.UsageError("give exactly one of --tenant or --admin")
    tenant = None
    if tenant_ref:
        uid = parse_public_id(tenant_ref)
        condition = Tenant.public_id == uid if uid else Tenant.slug == tenant_ref
        tenant = db.session.scalars(sa.select(Tenant).where(condition)).first()
        if tenant is None:
            raise click.UsageError(f"no tenant {tenant_ref!r}")
    area = "admin" if is_admin else "billing"
    scopes = [f"{area}:read"] + ([f"{area}:write"] if scope == "write" else [])
    token, plaintext = create_api_token(
        db.session,
        kind=TokenKind.ADMIN if is_admin else TokenKind.TENANT,
        tenant=tenant,
        name=name,
        scopes=scopes,
    )
    db.session.commit()
    click.echo(f"Token {token.prefix}… for {tenant.name if tenant else 'the admin API'}:")
    click.echo(plaintext)
    click.echo("Store it now: it is not shown again.")


@click.command("invoice-run")
@click.option("--period", required=True, help="Month to bill, as YYYY-MM.")
@click.option(
    "--issue-date",
    type=click.DateTime(["%Y-%m-%d"]),
    default=None,
    help="Issue date of the invoices (default: the day after the period).",
)
@click.option("--batch-size", type=click.IntRange(1, 10000), default=200, show_default=True)
def invoice_run_command(period: str, issue_date, batch_size: int) -> None:
    """Generate and finalize every tenant's invoice for a month; safe to re-run or resume."""
    from portal.invoices.generation import month_period
    from portal.invoices.run import run_invoices, tenants_to_bill

    try:
        month_period(period)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--period") from exc
    todo, _ = tenants_to_bill(db.session, period)
    with click.progressbar(length=len(todo), label=f"Invoicing {period}") as bar:
        result = run_invoices(
            db.session,
            period,
            issue_date=issue_date.date() if issue_date else None,
            batch_size=batch_size,
            actor="cli",
            on_batch=bar.update,
        )
    click.echo(
        f"{result.created} invoices created, {result.finalized} finalized, "
        f"{result.skipped} tenants already billed for {period}."
    )


@click.command("check-ledger")
@click.option("--no-record", is_flag=True, help="Do not keep the result for the admin console.")
def check_ledger_command(no_record: bool) -> None:
    """Recompute balances and invoice amounts from the documents; exit 1 on a difference."""
    report = reconcile(db.session)
    for difference in report.differences:
        click.echo(str(difference))
    if not no_record:
        record_check(db.session, report, by="cli")
        db.session.commit()
    click.echo(
        f"{report.tenants} tenants, {report.invoices} invoices, {report.payments} payments: "
        + ("the ledger agrees." if report.clean else f"{len(report.differences)} differences.")
    )
    if not report.clean:
        raise SystemExit(1)


def register_cli(app: Flask) -> None:
    for command in (
        seed_demo_command,
        create_admin_command,
        create_token_command,
        invoice_run_command,
        check_ledger_command,
    ):
        app.cli.add_command(command)
    register_admin_cli(app)
    register_generate_cli(app)
