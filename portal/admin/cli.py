"""``flask --app wsgi worker``: a huey consumer for jobs and e-mails."""

from __future__ import annotations

import logging

import click
from flask import Flask

from portal.extensions import queue


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
    from portal.ops.sweeper import sweep_now

    result = sweep_now()
    for name, count in sorted(result.counts.items()):
        click.echo(f"{name}: {count} re-enqueued")
    for name in result.failed:
        click.echo(f"{name}: sweep failed (see the log)", err=True)
    if result.failed:
        raise SystemExit(1)


def register_admin_cli(app: Flask) -> None:
    """Add the worker and sweep commands and register the admin tasks with the queue."""
    from portal.admin import tasks  # noqa: F401  (declares the tasks consumers run)

    app.cli.add_command(worker_command)
    app.cli.add_command(sweep_command)
