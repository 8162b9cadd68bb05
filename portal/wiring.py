"""How the packages are connected: every receiver, sweep and job kind, in one place.

Packages do not register themselves by being imported. :func:`connect` (called by
``create_app``, so by the web app, the CLI and the worker alike) connects the receivers of
the invoice signals, tells the sweeper how to find each kind of lost background work, and
names the job kinds it recovers. Importing the task modules here is also what declares
their huey tasks to a consumer. Everything is idempotent: ``create_app`` may run many
times in one process (tests).
"""

from __future__ import annotations

from portal.catalog import coupons
from portal.invoices import run as invoice_run
from portal.invoices import signals as invoice_signals
from portal.notifications import outbox, triggers
from portal.ops import jobs, sweeper
from portal.payments import collection, webhooks
from portal.usage import reports


def connect() -> None:
    """Connect receivers, sweeps and job kinds (safe to call again)."""
    invoice_signals.watch_invoices()
    # blinker keeps one connection per receiver; weak=False as these live as long as the app.
    invoice_signals.invoices_finalized.connect(triggers.on_invoices_finalized, weak=False)
    invoice_signals.invoices_finalized.connect(collection.on_invoices_finalized, weak=False)
    invoice_signals.invoices_finalized.connect(coupons.on_invoices_finalized, weak=False)
    invoice_signals.invoices_paid.connect(triggers.on_invoices_paid, weak=False)

    sweeper.register_sweep("email", outbox.sweep_outbox)
    sweeper.register_sweep("webhook", webhooks.sweep_inbox)
    sweeper.register_sweep("collection", collection.sweep_collections)
    sweeper.register_sweep("job", jobs.sweep_jobs)

    jobs.register_job_kind(
        invoice_run.INVOICE_GENERATION,
        steps=invoice_run.generation_steps,
        queue_step=invoice_run.queue_generation_step,
    )
    jobs.register_job_kind(
        reports.QUOTA_REPORT, steps=reports.report_steps, queue_step=reports.queue_report_step
    )
