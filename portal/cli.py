"""Flask commands: ``flask --app wsgi seed-demo | create-admin | create-token``."""

from __future__ import annotations

import datetime as dt
import logging

import click
import sqlalchemy as sa
from flask import Flask

from portal.db import parse_public_id
from portal.demo import seed_demo
from portal.devtools.generate import register_generate_cli
from portal.extensions import db, queue
from portal.invoices.generation import month_period
from portal.invoices.run import run_invoices, tenants_to_bill
from portal.ledger.reconciliation import reconcile, record_check
from portal.ops.sweeper import sweep_now
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


@click.command("worker")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True)
@click.option(
    "--worker-type",
    type=click.Choice(["thread", "process"]),
    default="thread",
    show_default=True,
)
@click.option(
    "--delay", type=float, default=0.1, show_default=True, help="First polling interval (s)."
)
@click.option(
    "--max-delay", type=float, default=2.0, show_default=True, help="Longest polling interval (s)."
)
@click.option(
    "--periodic/--no-periodic",
    default=True,
    show_default=True,
    help="Run the scheduled tasks (the sweeper, dunning retries, card-expiry notices). With "
    "several consumers, keep it on one and pass --no-periodic to the others.",
)
def worker_command(
    workers: int, worker_type: str, delay: float, max_delay: float, periodic: bool
) -> None:
    """Run a queue consumer (SQLite queue file by default, Redis when REDIS_URL is set).

    Several consumers, on one machine or many, share a Redis queue; an invoice run is one
    task per company, so they split it. Scheduled tasks run on consumers started with
    ``--periodic`` (the default), among them the sweeper, which queues again every minute
    (and once at start) what a consumer that died had taken.
    """
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(message)s"
        )
    consumer = queue.create_consumer(
        workers=workers,
        worker_type=worker_type,
        initial_delay=delay,
        max_delay=max_delay,
        periodic=periodic,
    )
    consumer.run()


@click.command("sweep")
def sweep_command() -> None:
    """Queue again the background work a dead worker took, once (the worker does this every
    minute): e-mails queued past the grace or sending past their lease, webhook events,
    collections and job steps. Prints what it queued; exits 1 if a kind could not be swept.
    """
    result = sweep_now()
    for name, count in sorted(result.counts.items()):
        click.echo(f"{name}: {count} re-enqueued")
    for name in result.failed:
        click.echo(f"{name}: sweep failed (see the log)", err=True)
    if result.failed:
        raise SystemExit(1)


def register_cli(app: Flask) -> None:
    for command in (
        seed_demo_command,
        create_admin_command,
        create_token_command,
        invoice_run_command,
        check_ledger_command,
        worker_command,
        sweep_command,
    ):
        app.cli.add_command(command)
    register_generate_cli(app)
