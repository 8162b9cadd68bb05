"""The e-mail outbox: render and store in the caller's transaction, deliver by the queue.

An e-mail is written in the same transaction as its cause, so it exists exactly when the
cause does; delivery runs after commit, is retried with backoff, and a row marked sent is
never sent again.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import sqlalchemy as sa
from flask import current_app, render_template
from flask_babel import force_locale
from sqlalchemy.orm import Session, selectinload

from portal.db import utcnow
from portal.extensions import db, queue
from portal.notifications.models import OutboxEmail, OutboxStatus
from portal.ops.after_commit import after_commit

MAX_ATTEMPTS = 6


def queue_email(
    session: Session,
    *,
    template: str,
    to: list[str],
    dedupe_key: str,
    context: dict[str, Any],
    cc: list[str] | None = None,
    tenant_id: int | None = None,
    attachments: list[dict] | None = None,
    locale: str = "en",
) -> OutboxEmail:
    """Render ``templates/emails/<template>/`` and store the e-mail; deliver after commit.

    The e-mail is rendered in ``locale``, the recipient's language (not the request's).
    A second call with the same ``dedupe_key`` returns the first e-mail unchanged.
    """
    existing = session.scalars(
        sa.select(OutboxEmail).where(OutboxEmail.dedupe_key == dedupe_key)
    ).first()
    if existing is not None:
        return existing
    base = f"emails/{template}"
    with force_locale(locale):
        subject = render_template(f"{base}/subject.txt", **context).strip()
        body_text = render_template(f"{base}/body.txt", **context)
        body_html = render_template(f"{base}/body.html", **context)
    email = OutboxEmail(
        tenant_id=tenant_id,
        template=template,
        dedupe_key=dedupe_key,
        to_addrs=list(to),
        cc_addrs=list(cc or []),
        subject=subject,
        body_text=body_text,
        body_html=body_html,
        attachments=list(attachments or []),
    )
    session.add(email)
    session.flush()
    email_id = email.id
    after_commit(session, lambda: deliver_email_task(email_id))
    return email


def smtp_connection(url: str) -> smtplib.SMTP:
    """Open an SMTP connection from ``smtp://user:pass@host:port?starttls=1`` or ``smtps://``."""
    parts = urlsplit(url)
    options = parse_qs(parts.query)
    host = parts.hostname or "127.0.0.1"
    if parts.scheme == "smtps":
        conn: smtplib.SMTP = smtplib.SMTP_SSL(
            host, parts.port or 465, timeout=30, context=ssl.create_default_context()
        )
    elif parts.scheme == "smtp":
        conn = smtplib.SMTP(host, parts.port or 25, timeout=30)
        if options.get("starttls", ["0"])[0] in {"1", "true", "yes"}:
            conn.starttls(context=ssl.create_default_context())
    else:
        raise ValueError(f"unsupported SMTP_URL scheme: {parts.scheme!r}")
    if parts.username:
        conn.login(unquote(parts.username), unquote(parts.password or ""))
    return conn


def build_attachments(session: Session, email: OutboxEmail) -> list[tuple[bytes, str, str, str]]:
    """Render the attachments an outbox row asks for: ``(data, maintype, subtype, filename)``.

    Built at delivery, not at queueing, so the outbox stays small. Issued documents come
    from the document store, so the attachment is byte for byte the document a download
    gives. Kinds: ``{"kind": "invoice_document", "invoice_id": <int>, "format": "pdf"}``
    (any format of :mod:`portal.documents.formats`) and the older ``"invoice_pdf"``.

    :raise ValueError: for an unknown kind or a missing invoice (the queue retries, then
        the e-mail is marked failed rather than sent without its attachment).
    """
    from portal.documents.formats import render_document
    from portal.invoices.models import Invoice

    rendered = []
    for spec in email.attachments or []:
        kind = spec.get("kind")
        if kind not in ("invoice_pdf", "invoice_document"):
            raise ValueError(f"unknown attachment kind: {kind!r}")
        invoice = session.scalars(
            sa.select(Invoice)
            .where(Invoice.id == int(spec["invoice_id"]))
            .options(
                selectinload(Invoice.lines),
                selectinload(Invoice.vat_breakdown),
                selectinload(Invoice.allowance_charges),
            )
        ).one_or_none()
        if invoice is None or (
            email.tenant_id is not None and invoice.tenant_id != email.tenant_id
        ):
            raise ValueError(f"attachment invoice {spec.get('invoice_id')} not found")
        fmt = spec.get("format", "pdf") if kind == "invoice_document" else "pdf"
        document = render_document(session, invoice, fmt, invoice.language)
        maintype, _, subtype = document.media_type.partition("/")
        rendered.append((document.content, maintype, subtype, document.filename))
    return rendered  # documents rendered for the first time are stored by deliver()'s commit


def build_message(email: OutboxEmail, sender: str, session: Session | None = None) -> EmailMessage:
    """The MIME message of an outbox row; attachments need ``session`` to be rendered."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(email.to_addrs)
    if email.cc_addrs:
        message["Cc"] = ", ".join(email.cc_addrs)
    message["Subject"] = email.subject
    message["Message-ID"] = email.message_id or make_msgid(domain="billing.local")
    message.set_content(email.body_text)
    if email.body_html:
        message.add_alternative(email.body_html, subtype="html")
    if email.attachments:
        if session is None:
            raise ValueError("attachments are rendered from the database: pass a session")
        for data, maintype, subtype, filename in build_attachments(session, email):
            message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message


def deliver(session: Session, email_id: int) -> OutboxStatus:
    """Send one queued e-mail over SMTP and record the outcome.

    :raise smtplib.SMTPException, OSError: on a delivery failure (the queue retries).
    """
    email = session.get(OutboxEmail, email_id, with_for_update=True)
    if email is None or email.status != OutboxStatus.QUEUED:
        return email.status if email else OutboxStatus.FAILED
    email.attempts += 1
    try:
        message = build_message(email, current_app.config["MAIL_FROM"], session)
        email.message_id = message["Message-ID"]
        with smtp_connection(current_app.config["SMTP_URL"]) as conn:
            conn.send_message(message)
    except (ValueError, smtplib.SMTPException, OSError) as exc:
        # A failed attachment or SMTP exchange: retried by the queue, then given up.
        email.last_error = f"{type(exc).__name__}: {exc}"
        if email.attempts >= MAX_ATTEMPTS:
            email.status = OutboxStatus.FAILED
        session.commit()
        if email.status == OutboxStatus.FAILED:
            return email.status
        raise
    email.status = OutboxStatus.SENT
    email.sent_at = utcnow()
    email.last_error = None
    session.commit()
    return email.status


@queue.app_task(retries=MAX_ATTEMPTS - 1, retry_delay=30, retry_backoff=2)
def deliver_email_task(email_id: int) -> str:
    """Queue task: deliver one outbox e-mail.

    Uses its own session: in immediate mode it runs inside the caller's after-commit hook,
    where the caller's session can no longer emit SQL.
    """
    with Session(db.engine) as session:
        return str(deliver(session, email_id))


# The e-mails other modules' events cause (automatic sending, receipts, expiring cards) are
# registered with the outbox, which the app factory and the worker both import.
from portal.notifications import triggers  # noqa: E402, F401
