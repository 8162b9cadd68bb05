"""Entry point of the queue consumer: ``huey_consumer portal.worker.queue``."""

from portal import create_app
from portal.extensions import queue

app = create_app()

__all__ = ["app", "queue"]
