"""Test fixtures: a migrated database per worker, a real SMTP server, app and clients.

The database is PostgreSQL when TEST_DATABASE_URL points at one (each xdist worker gets its
own database on that server), else the embedded SQLite default. Either way the schema comes
from the Alembic migrations, never from create_all(). Tests commit for real; PostgreSQL is
truncated after each test and SQLite starts each test from a copy of the migrated file.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import g
from flask_migrate import upgrade

from portal import create_app
from portal.config import normalize_database_url
from portal.extensions import db

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL") or ""
ON_POSTGRES = TEST_DATABASE_URL.startswith(("postgres://", "postgresql"))
REDIS_TEST_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/15")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session", autouse=True)
def compiled_translations():
    """Compile the message catalogs, as `make setup` does, for runs that skip make."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po_path in Path(__file__).resolve().parents[1].glob("translations/*/LC_MESSAGES/*.po"):
        with po_path.open("rb") as po_file:
            catalog = read_po(po_file)
        with po_path.with_suffix(".mo").open("wb") as mo_file:
            write_mo(mo_file, catalog)


# -- mail ---------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """Messages received by the test SMTP server."""

    messages: list[EmailMessage] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd hook name)
        message = message_from_bytes(envelope.content, policy=policy.default)
        message["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(message)
        return "250 OK"

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.messages


@pytest.fixture(scope="session")
def smtp_server():
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, mailbox
    controller.stop()


@pytest.fixture
def mailbox(smtp_server) -> Mailbox:
    _, box = smtp_server
    box.messages.clear()
    return box


# -- database -----------------------------------------------------------------------------


def _worker() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


def _base_config(database_url: str, tmp_path: Path, smtp_port: int) -> dict:
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"poolclass": sa.pool.NullPool},
        "WTF_CSRF_ENABLED": False,
        "RATELIMIT_ENABLED": False,
        "RATELIMIT_STORAGE_URI": "memory://",
        "REDIS_URL": None,
        "QUEUE_IMMEDIATE": True,
        "QUEUE_SQLITE_PATH": str(tmp_path / "queue.sqlite3"),
        "SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "MAIL_FROM": "Billing <billing@test.example>",
        "PUBLIC_BASE_URL": "http://localhost",
        # The official e-invoice rules take a second or two per document: the document
        # tests run them where they are the point (tests/documents/), nowhere else.
        "EINVOICE_VALIDATOR": "off",
        "SESSION_COOKIE_SECURE": False,
        "REMEMBER_COOKIE_SECURE": False,
    }


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory, smtp_server):
    """Create and migrate this worker's database once; yields its URL (SQLite: a template)."""
    tmp = tmp_path_factory.mktemp("db")
    admin = name = None
    if ON_POSTGRES:
        base_url = sa.engine.make_url(normalize_database_url(TEST_DATABASE_URL))
        # One database per worker and per run, so two runs on one machine never collide.
        run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID", uuid.uuid4().hex)[:8]
        name = f"{base_url.database}_portal_{run_id}_{_worker()}"
        admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = base_url.set(database=name).render_as_string(hide_password=False)
    else:
        url = f"sqlite:///{tmp / 'template.sqlite3'}"
    app = create_app(_base_config(url, tmp, smtp_server[0].port))
    with app.app_context():
        upgrade()
        db.engine.dispose()
    yield url
    if admin is not None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate_all(url: str) -> None:
    from portal.db import Base

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture
def database_url(migrated_database, tmp_path) -> str:
    """A clean, migrated database for one test."""
    if ON_POSTGRES:
        yield migrated_database
        _truncate_all(migrated_database)
    else:
        template = Path(migrated_database.removeprefix("sqlite:///"))
        copy = tmp_path / "portal.sqlite3"
        shutil.copyfile(template, copy)
        yield f"sqlite:///{copy}"


@pytest.fixture
def app_config(database_url, tmp_path, smtp_server) -> dict:
    """Settings of the test app; tests may change them before ``app`` is created."""
    return _base_config(database_url, tmp_path, smtp_server[0].port)


def fresh_g_per_request(app) -> None:
    """Give each test request an empty ``g``, as a real request with its own app context has.

    Tests keep one app context open (to use the session between requests) and Flask reuses
    it for every request, so ``g`` (and Flask-Login's cached user in it) would otherwise
    leak from one request to the next.
    """

    def clear_g() -> None:
        for name in list(vars(g)):
            delattr(g, name)

    app.before_request_funcs.setdefault(None, []).insert(0, clear_g)


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    fresh_g_per_request(app)
    with app.app_context():
        yield app
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def session(app):
    return db.session


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# -- acting as someone ----------------------------------------------------------------------


class AuthActions:
    """Log in and out through the real login form."""

    def __init__(self, client):
        self._client = client

    def login(self, email: str, password: str = "correct horse battery"):
        return self._client.post("/login", data={"email": email, "password": password})

    def logout(self):
        return self._client.post("/logout")


@pytest.fixture
def auth(client) -> AuthActions:
    return AuthActions(client)


pytest_plugins = ["tests.factories.fixtures"]


# -- headless Chromium (e2e tests in tests/e2e and elsewhere) ------------------------------


@pytest.fixture(scope="session")
def browser():
    """Debian's headless Chromium through Playwright, one per test process."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-quic",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    # bypass_csp only so axe-core can be injected; the CSP itself is checked separately.
    context = browser.new_context(
        base_url=live_server.url(), bypass_csp=False, viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    yield page
    context.close()
