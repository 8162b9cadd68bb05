"""Run localstripe (a Stripe API fake, GPL-3.0, installed from PyPI) on 127.0.0.1 only.

``python -m portal.devtools.localstripe --port 8420``. Unlike its own CLI this listens on
loopback only and never writes its store to the shared file in /tmp (PAYMENTS.md §1).
With ``--webhook-url`` and ``--webhook-secret`` it also delivers signed events to the app.
"""

from __future__ import annotations

import argparse
import asyncio


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret")
    args = parser.parse_args(argv)

    from aiohttp import web
    from localstripe import resources, server

    resources.Store.dump_to_disk = lambda self: None  # keep the store in memory only
    if args.webhook_url and args.webhook_secret:
        from localstripe.webhooks import register_webhook

        # One fixed id: registrations survive DELETE /_config/data.
        register_webhook("portal", args.webhook_url, args.webhook_secret, None)
    asyncio.set_event_loop(asyncio.new_event_loop())
    web.run_app(server.app, host=args.host, port=args.port, print=None)


if __name__ == "__main__":
    main()
