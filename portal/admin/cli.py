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
    help="Run the scheduled tasks (dunning retries, card-expiry notices). With several "
    "consumers, keep it on one and pass --no-periodic to the others.",
)
def worker_command(
    workers: int, worker_type: str, delay: float, max_delay: float, periodic: bool
) -> None:
    """Run a queue consumer (SQLite queue file by default, Redis when REDIS_URL is set).

    Several consumers, on one machine or many, share a Redis queue; an invoice run is one
    task per company, so they split it. Scheduled tasks run on consumers started with
    ``--periodic`` (the default).
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


def register_admin_cli(app: Flask) -> None:
    """Add the worker command and register the admin tasks with the queue."""
    from portal.admin import tasks  # noqa: F401  (declares the tasks consumers run)

    app.cli.add_command(worker_command)
