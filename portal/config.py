"""Settings from environment variables, with safe local defaults."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE_DIR = ROOT / "instance"


def _bool(value: str | None, default: bool = False) -> bool:
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _secret_key() -> str:
    """Use SECRET_KEY, or a key kept in instance/ so local sessions survive restarts."""
    if key := os.environ.get("SECRET_KEY"):
        return key
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def normalize_database_url(url: str) -> str:
    """Accept plain ``postgresql://`` URLs and use the psycopg 3 driver for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def load_config() -> dict:
    """Build the configuration mapping from the environment."""
    env = os.environ
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    database_url = normalize_database_url(
        env.get("DATABASE_URL") or f"sqlite:///{INSTANCE_DIR / 'portal.sqlite3'}"
    )
    redis_url = env.get("REDIS_URL") or None
    development = env.get("PORTAL_ENV", "development") == "development"
    return {
        "ENV_NAME": env.get("PORTAL_ENV", "development"),
        "SECRET_KEY": _secret_key(),
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": redis_url,
        "PUBLIC_BASE_URL": env.get("PUBLIC_BASE_URL", "http://127.0.0.1:5000"),
        "SMTP_URL": env.get("SMTP_URL", "smtp://127.0.0.1:1025"),
        "MAIL_FROM": env.get("MAIL_FROM", "Billing <billing@localhost>"),
        "STRIPE_SECRET_KEY": env.get("STRIPE_SECRET_KEY") or None,
        "STRIPE_PUBLISHABLE_KEY": env.get("STRIPE_PUBLISHABLE_KEY") or None,
        "STRIPE_WEBHOOK_SECRET": env.get("STRIPE_WEBHOOK_SECRET") or None,
        "STRIPE_API_BASE": env.get("STRIPE_API_BASE") or None,
        # Stripe.js is loaded from here; localstripe serves a fake at <base>/js.stripe.com/v3/.
        "STRIPE_JS_URL": env.get("STRIPE_JS_URL") or "https://js.stripe.com/v3/",
        "MOLLIE_API_KEY": env.get("MOLLIE_API_KEY") or None,
        "MOLLIE_API_ENDPOINT": env.get("MOLLIE_API_ENDPOINT") or None,
        # Origins besides PUBLIC_BASE_URL that API clients may name as a setup's return_url.
        "PAYMENT_RETURN_ORIGINS": [
            o.strip() for o in env.get("PAYMENT_RETURN_ORIGINS", "").split(",") if o.strip()
        ],
        "RATELIMIT_WEBHOOKS": env.get("RATELIMIT_WEBHOOKS", "600 per minute"),
        # Huey: SQLite file beside the database by default, Redis when REDIS_URL is set.
        "QUEUE_IMMEDIATE": _bool(env.get("QUEUE_IMMEDIATE"), False),
        "QUEUE_SQLITE_PATH": env.get("QUEUE_SQLITE_PATH", str(INSTANCE_DIR / "queue.sqlite3")),
        # Recovery of what a dead worker took (the sweeper, every minute and `flask sweep`):
        # a queued row whose task has not run after the grace is queued again; a claimed
        # one (an e-mail being sent, an invoice being charged) is its worker's for the lease,
        # which must exceed the longest live attempt (SMTP times out after 30 s a step).
        "TASK_GRACE_SECONDS": int(env.get("TASK_GRACE_SECONDS", "300")),
        "TASK_LEASE_SECONDS": int(env.get("TASK_LEASE_SECONDS", "300")),
        # Flask-Limiter: memory by default, Redis when REDIS_URL is set.
        "RATELIMIT_STORAGE_URI": redis_url or "memory://",
        "RATELIMIT_LOGIN": env.get("RATELIMIT_LOGIN", "10 per minute"),
        "RATELIMIT_PASSWORD_RESET": env.get("RATELIMIT_PASSWORD_RESET", "5 per hour"),
        "RATELIMIT_HEADERS_ENABLED": True,
        # Per API token (or per address without one), on every JSON surface.
        "API_RATE_LIMIT": env.get("RATELIMIT_API", "600 per minute"),
        "PASSWORD_RESET_MAX_AGE": int(env.get("PASSWORD_RESET_MAX_AGE", "3600")),
        # Days an e-mailed invitation link stays valid (a resend starts it again).
        "INVITATION_MAX_AGE_DAYS": int(env.get("INVITATION_MAX_AGE_DAYS", "7")),
        # Signed invoice links (/i/<token>) e-mailed to billing contacts: lifetime, rate limit.
        "SIGNED_LINK_MAX_AGE_DAYS": int(env.get("SIGNED_LINK_MAX_AGE_DAYS", "60")),
        "RATELIMIT_SIGNED_LINKS": env.get("RATELIMIT_SIGNED_LINKS", "60 per minute"),
        # Bodies larger than this are refused with 413 before they are read (webhooks too).
        "MAX_CONTENT_LENGTH": int(env.get("MAX_CONTENT_LENGTH", str(1024 * 1024))) or None,
        # Levels of objects and arrays a JSON body may nest (deeper is a 4xx, not a crash).
        "JSON_MAX_DEPTH": int(env.get("JSON_MAX_DEPTH", "64")),
        # Strict-Transport-Security max-age in seconds outside debug and tests; 0 sends none.
        "HSTS_MAX_AGE": int(env.get("HSTS_MAX_AGE", str(365 * 24 * 3600))),
        # Reverse proxies in front of the app whose X-Forwarded-* headers are believed.
        "TRUSTED_PROXIES": int(env.get("TRUSTED_PROXIES", "0")),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": not development,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": not development,
        "WTF_CSRF_TIME_LIMIT": None,
        "BABEL_DEFAULT_LOCALE": "en",
        "BABEL_DEFAULT_TIMEZONE": "UTC",
        "LANGUAGES": ["en", "de"],
        "BABEL_TRANSLATION_DIRECTORIES": str(ROOT / "translations"),
    }


class UnsafePaymentConfig(RuntimeError):
    """Payment settings that would send live credentials to a fake API (or vice versa)."""


def check_payment_config(config: dict) -> None:
    """Refuse a fake API base (localstripe, the Mollie stand-in) with a live key or in
    production.

    :raise UnsafePaymentConfig: naming the offending settings.
    """
    production = config.get("ENV_NAME") == "production"
    stripe_keys = (
        config.get("STRIPE_SECRET_KEY") or "",
        config.get("STRIPE_PUBLISHABLE_KEY") or "",
    )
    if config.get("STRIPE_API_BASE"):
        if any(key.startswith(("sk_live_", "rk_live_", "pk_live_")) for key in stripe_keys):
            raise UnsafePaymentConfig("STRIPE_API_BASE points at a fake API but the key is live")
        if production:
            raise UnsafePaymentConfig("STRIPE_API_BASE must not be set in production")
    if config.get("MOLLIE_API_ENDPOINT"):
        if (config.get("MOLLIE_API_KEY") or "").startswith("live_"):
            raise UnsafePaymentConfig(
                "MOLLIE_API_ENDPOINT points at a fake API but the key is live"
            )
        if production:
            raise UnsafePaymentConfig("MOLLIE_API_ENDPOINT must not be set in production")
