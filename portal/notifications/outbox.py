"""The e-mail outbox: render and store in the caller's transaction, deliver by the queue.

An e-mail is written in the same transaction as its cause, so it exists exactly when the
cause does; delivery runs after commit, is retried with backoff, and a row marked sent is
never sent again. A delivery a dead worker took is found again by the sweeper
(:func:`sweep_outbox`) and sent with the Message-ID committed before the first try.
"""

from __future__ import annotations

import datetime as dt
import logging
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

from portal.db import lock, utcnow
from portal.documents.formats import render_document
from portal.extensions import db, queue
from portal.invoices.models import Invoice
from portal.notifications.models import OutboxEmail, OutboxStatus
from portal.ops.after_commit import after_commit
from portal.ops.sweeper import SweepWindow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 6
#: Seconds before the first retry of a failed delivery; each later wait doubles.
RETRY_DELAY = 30
RETRY_BACKOFF = 2


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


def _lease(name: str) -> dt.timedelta:
    return dt.timedelta(seconds=int(current_app.config.get(name, 300)))


def _retry_wait(attempts: int) -> dt.timedelta:
    """How long after failed attempt ``attempts`` the queue's retry is due."""
    return dt.timedelta(seconds=RETRY_DELAY * RETRY_BACKOFF ** max(attempts - 1, 0))


def _claim(session: Session, email_id: int) -> OutboxEmail | OutboxStatus:
    """Claim a queued e-mail for one delivery attempt and commit the claim.

    Under the row's lock: an e-mail that is sent, failed or being sent (a claim only the
    sweeper takes back, once its lease is over) is left alone, and its status returned.
    Otherwise it becomes ``sending`` with a lease, and gets its Message-ID if it has none
    yet; both are committed before the message goes anywhere, so a resend after a crash
    carries the same Message-ID.
    """
    email = session.get(OutboxEmail, email_id)
    if email is None:
        return OutboxStatus.FAILED
    if email.status in (OutboxStatus.SENT, OutboxStatus.FAILED):
        return email.status  # the common case of a repeated task: no lock taken
    lock(session, email)
    now = utcnow()
    if email.status != OutboxStatus.QUEUED:  # sent meanwhile, or another worker's claim
        status = email.status
        session.rollback()
        return status
    if email.attempts >= MAX_ATTEMPTS:  # the last attempts died with their worker
        email.status = OutboxStatus.FAILED
        email.last_error = email.last_error or "delivery interrupted"
        email.lease_until = None
        session.commit()
        return OutboxStatus.FAILED
    email.attempts += 1
    email.status = OutboxStatus.SENDING
    email.claimed_at = now
    email.lease_until = now + _lease("TASK_LEASE_SECONDS")
    email.message_id = email.message_id or make_msgid(domain="billing.local")
    session.commit()
    return email


def _mark_sent(session: Session, email_id: int) -> None:
    """Record a delivery the SMTP server accepted (whoever claimed the row since).

    One UPDATE (it locks the row itself) and the commit, on a connection taken before the
    message went out: this is the duplicate window, so it is kept as short as it can be.
    """
    session.execute(
        sa.update(OutboxEmail)
        .where(OutboxEmail.id == email_id, OutboxEmail.status != OutboxStatus.SENT)
        .values(status=OutboxStatus.SENT, sent_at=utcnow(), lease_until=None, last_error=None)
    )
    session.commit()


def _mark_failed_attempt(
    session: Session, email_id: int, attempt: int, exc: BaseException
) -> OutboxStatus:
    """Give a failed attempt's e-mail back to the queue (or give up after the last)."""
    session.rollback()
    email = lock(session, session.get_one(OutboxEmail, email_id))
    if email.status == OutboxStatus.SENDING and email.attempts == attempt:  # still our claim
        email.last_error = f"{type(exc).__name__}: {exc}"
        if email.attempts >= MAX_ATTEMPTS:
            email.status = OutboxStatus.FAILED
            email.lease_until = None
        else:
            email.status = OutboxStatus.QUEUED
            # The sweeper leaves it to the queue's retry until that is overdue.
            email.lease_until = utcnow() + _retry_wait(attempt) + _lease("TASK_GRACE_SECONDS")
    status = email.status
    session.commit()
    return status


def deliver(session: Session, email_id: int) -> OutboxStatus:
    """Send one queued e-mail over SMTP and record the outcome; commits.

    Three transactions: the claim (``sending``, lease, Message-ID) is committed first; the
    message is built (documents rendered for attachments are stored) and handed to SMTP;
    the row is marked sent as soon as the server accepted the message. A worker that dies
    in between leaves the row ``sending`` until its lease ends; the sweeper then queues it
    again and it is sent again with the same Message-ID. That resend is a duplicate only if
    the server had accepted the message before the worker died (see the README).

    :raise smtplib.SMTPException, OSError, ValueError: on a failed attempt, after giving the
        row back to the queue (the queue retries); not after the last attempt, which marks
        the e-mail failed.
    """
    claimed = _claim(session, email_id)
    if not isinstance(claimed, OutboxEmail):
        return claimed
    email, attempt = claimed, claimed.attempts
    try:
        message = build_message(email, current_app.config["MAIL_FROM"], session)
        session.commit()  # the documents rendered for the attachments, if new
        conn = smtp_connection(current_app.config["SMTP_URL"])
        try:
            session.connection()  # checked out (and pinged) now, not after the acceptance
            conn.send_message(message)
            # Before QUIT: the window between the server's acceptance and this commit is
            # the only place a crash makes a duplicate, so nothing else stands in it.
            _mark_sent(session, email_id)
        finally:
            _close_quietly(conn)
    except (ValueError, smtplib.SMTPException, OSError) as exc:
        # A failed attachment or SMTP exchange: retried by the queue, then given up.
        status = _mark_failed_attempt(session, email_id, attempt, exc)
        if status == OutboxStatus.FAILED:
            return status
        raise
    return OutboxStatus.SENT


def _close_quietly(conn: smtplib.SMTP) -> None:
    """QUIT, or just close the connection when the server does not answer it."""
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()


@queue.app_task(retries=MAX_ATTEMPTS - 1, retry_delay=RETRY_DELAY, retry_backoff=RETRY_BACKOFF)
def deliver_email_task(email_id: int) -> str:
    """Queue task: deliver one outbox e-mail.

    Uses its own session: in immediate mode it runs inside the caller's after-commit hook,
    where the caller's session can no longer emit SQL.
    """
    with Session(db.engine) as session:
        return str(deliver(session, email_id))


# -- recovery -------------------------------------------------------------------------------


def sweep_outbox(session: Session, window: SweepWindow) -> int:
    """Queue again the e-mails a dead worker took; returns how many.

    An e-mail ``sending`` past its lease goes back to ``queued`` (keeping its Message-ID
    and attempts); one ``queued`` past the grace (counted from its lease after a failed
    attempt, else from its creation) is queued again, and its lease moved on by the grace
    so the next sweeps do not queue it once a minute while it waits behind a backlog.
    """
    expired = list(
        session.scalars(
            sa.select(OutboxEmail.id)
            .where(OutboxEmail.status == OutboxStatus.SENDING, OutboxEmail.lease_until < window.now)
            .order_by(OutboxEmail.id)
            .limit(window.limit)
        )
    )
    waiting = list(
        session.scalars(
            sa.select(OutboxEmail.id)
            .where(
                OutboxEmail.status == OutboxStatus.QUEUED,
                sa.or_(
                    OutboxEmail.lease_until < window.now,
                    sa.and_(
                        OutboxEmail.lease_until.is_(None),
                        OutboxEmail.created_at < window.queued_before,
                    ),
                ),
            )
            .order_by(OutboxEmail.id)
            .limit(window.limit)
        )
    )
    next_look = window.now + window.grace
    if expired:
        # The same conditions again in the UPDATE: a row its worker finished meanwhile stays.
        session.execute(
            sa.update(OutboxEmail)
            .where(
                OutboxEmail.id.in_(expired),
                OutboxEmail.status == OutboxStatus.SENDING,
                OutboxEmail.lease_until < window.now,
            )
            .values(status=OutboxStatus.QUEUED, lease_until=next_look)
        )
        log.warning(
            "e-mails %s were being sent by a worker that stopped; sending them again "
            "with the same Message-ID",
            expired,
        )
    if waiting:
        session.execute(
            sa.update(OutboxEmail)
            .where(OutboxEmail.id.in_(waiting), OutboxEmail.status == OutboxStatus.QUEUED)
            .values(lease_until=next_look)
        )
    session.commit()
    for email_id in expired + waiting:
        deliver_email_task(email_id)
    return len(expired) + len(waiting)
