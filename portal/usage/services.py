"""Usage use cases: recording consumptions once per idempotency key, one or a batch."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from portal.db import lock, table_of, utcnow
from portal.invoices.models import Invoice
from portal.invoices.states import InvoiceKind, InvoiceStatus
from portal.tenancy.models import Tenant
from portal.usage.models import UsageRecord
from portal.usage.queries import consumption_by_key


class ConsumptionConflict(Exception):
    """The idempotency key was used for a consumption with other data; nothing was written."""

    def __init__(self, idempotency_key: str):
        super().__init__("This idempotency key was used for a different consumption.")
        self.idempotency_key = idempotency_key
        self.message = str(self)


def record_consumption(
    session: Session,
    tenant: Tenant,
    *,
    metric: str,
    quantity: Decimal,
    occurred_at: dt.datetime,
    idempotency_key: str,
    properties: dict[str, Any],
) -> UsageRecord:
    """The tenant's usage record under ``idempotency_key``: written now, or the earlier one.

    The account API's write, through the batch path (:func:`ingest_usage`, a batch of one,
    without the invoiced-period check that API does not make): repeating a key with the
    same metric, quantity and time (its :func:`fingerprint`) gives the first record back
    (its properties are not compared), so a retried request is billed once; the same key
    with other data is refused, so a client bug is not billed silently. Flushes, never
    commits.

    :param occurred_at: in UTC.
    :raise ConsumptionConflict: the key was used for another consumption.
    """
    event = UsageEvent(idempotency_key, metric, quantity, occurred_at, dict(properties))
    try:
        ingest_usage(session, tenant, [event], refuse_invoiced=False)
    except UsageBatchRefused as exc:
        if exc.results[0].status == "conflict":
            raise ConsumptionConflict(idempotency_key) from None
        raise ValueError(exc.results[0].message) from None
    record = consumption_by_key(session, tenant, idempotency_key)
    assert record is not None  # written now or before, under this key
    session.refresh(record)  # the values as stored (e.g. the quantity's scale)
    return record


# -- batches of usage events (the console API), and the one path both APIs share --------------

#: Most events in one batch.
MAX_BATCH = 1000
#: The largest quantity the column holds, and its decimal places (portal.db.Quantity).
MAX_QUANTITY = Decimal("999999999999")
QUANTITY_PLACES = 6
METRIC = re.compile(r"[A-Za-z0-9_.:-]{1,60}")
KEY = re.compile(r"[\x21-\x7e]{1,100}")


@dataclass(frozen=True)
class UsageEvent:
    """One reported consumption, as a client sent it."""

    idempotency_key: Any
    metric: Any
    quantity: Any
    occurred_at: Any  # an aware datetime
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class EventResult:
    """What became of one event of a batch.

    ``status``: ``created``; ``duplicate`` (its key was recorded with the same body, so it
    counts once); ``conflict`` (its key was recorded with another body); ``period_invoiced``
    (its time falls in a period already invoiced); ``invalid``; ``not_written`` (a valid
    event of a batch refused because of another event).
    """

    index: int
    idempotency_key: str
    status: str
    http_status: int
    public_id: uuid.UUID | None = None
    code: str | None = None
    message: str | None = None
    remedy: str | None = None
    invoice_number: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status in ("created", "duplicate")


class UsageBatchTooLarge(ValueError):
    """More events than :data:`MAX_BATCH`; nothing was read or written."""

    def __init__(self, count: int):
        super().__init__(f"A batch holds at most {MAX_BATCH} events, not {count}.")
        self.count = count
        self.message = str(self)


class UsageBatchRefused(Exception):
    """An event of the batch was refused, so none was written; ``results`` say which."""

    def __init__(self, results: list[EventResult]):
        super().__init__("Some events were refused; nothing was written.")
        self.results = results
        self.message = str(self)


def fingerprint(metric: str, quantity: Decimal, occurred_at: dt.datetime) -> str:
    """SHA-256 of the canonical event body: metric, quantity without trailing zeros, and
    the time in UTC to the microsecond, as sorted compact JSON
    (``{"metric":…,"occurred_at":…,"quantity":…}``). Properties are not part of it (a repeat
    with other properties is the same consumption).
    """
    body = {
        "metric": metric,
        "occurred_at": occurred_at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "quantity": f"{quantity.normalize():f}" if quantity else "0",
    }
    if METRIC.fullmatch(metric):  # nothing to escape: the JSON text directly (a hot path)
        canonical = (
            f'{{"metric":"{metric}","occurred_at":"{body["occurred_at"]}",'
            f'"quantity":"{body["quantity"]}"}}'
        )
    else:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _invalid(index: int, key: Any, code: str, message: str) -> EventResult:
    return EventResult(
        index, key if isinstance(key, str) else "", "invalid", 422, code=code, message=message
    )


def _checked(index: int, event: UsageEvent) -> EventResult | UsageEvent:
    """The event with its quantity as a Decimal and its time in UTC, or why it is invalid."""
    key, metric, quantity, when = (
        event.idempotency_key,
        event.metric,
        event.quantity,
        event.occurred_at,
    )
    if not isinstance(key, str) or not KEY.fullmatch(key):
        return _invalid(
            index,
            key,
            "invalid_key",
            "The idempotency key must be 1 to 100 printable ASCII characters without spaces.",
        )
    if not isinstance(metric, str) or not METRIC.fullmatch(metric):
        return _invalid(
            index, key, "invalid_metric", "The metric must be 1 to 60 letters, digits or _ . : -"
        )
    if isinstance(quantity, (bool, float)) or not isinstance(quantity, (str, int, Decimal)):
        return _invalid(
            index, key, "invalid_quantity", "The quantity must be a decimal string or an integer."
        )
    try:
        number = quantity if isinstance(quantity, Decimal) else Decimal(str(quantity).strip())
    except (InvalidOperation, ValueError):
        number = Decimal("NaN")
    if (
        not number.is_finite()
        or number < 0
        or number > MAX_QUANTITY
        or -int(number.as_tuple().exponent) > QUANTITY_PLACES
    ):
        return _invalid(
            index,
            key,
            "invalid_quantity",
            "The quantity must be a number from 0 to 999999999999 with at most six decimal places.",
        )
    if not isinstance(when, dt.datetime) or when.utcoffset() is None:
        return _invalid(
            index,
            key,
            "invalid_timestamp",
            "The timestamp must be a date and time with its time zone.",
        )
    return UsageEvent(key, metric, number, when.astimezone(dt.UTC), dict(event.properties))


def _stored(session: Session, tenant: Tenant, keys: list[str]) -> dict[str, tuple]:
    """(fingerprint, public id) of the tenant's records under ``keys``."""
    found: dict[str, tuple] = {}
    for start in range(0, len(keys), 500):
        rows = session.execute(
            sa.select(
                UsageRecord.idempotency_key,
                UsageRecord.fingerprint,
                UsageRecord.metric,
                UsageRecord.quantity,
                UsageRecord.occurred_at,
                UsageRecord.public_id,
            ).where(
                UsageRecord.tenant_id == tenant.id,
                UsageRecord.idempotency_key.in_(keys[start : start + 500]),
            )
        )
        for key, stored_print, metric, quantity, occurred_at, public_id in rows:
            # Records from before fingerprints were kept get theirs from their columns.
            found[key] = (stored_print or fingerprint(metric, quantity, occurred_at), public_id)
    return found


def _invoiced_periods(session: Session, tenant: Tenant, events: list[UsageEvent]) -> list:
    """The tenant's periodic invoices (not void) whose period holds a day of ``events``."""
    days = [event.occurred_at.date() for event in events]
    return list(
        session.execute(
            sa.select(Invoice.period_start, Invoice.period_end, Invoice.number, Invoice.status)
            .where(
                Invoice.tenant_id == tenant.id,
                Invoice.kind == InvoiceKind.SUBSCRIPTION,
                Invoice.status != InvoiceStatus.VOID,
                Invoice.period_end >= min(days),
                Invoice.period_start <= max(days),
            )
            .order_by(Invoice.period_start)
        )
    )


def _hold_company(session: Session, tenant: Tenant) -> None:
    """Keep the company's invoices from being generated until this batch ends.

    Generation locks the company's row (``invoices/run.bill_month``) before it reads the
    period's usage. A share lock here makes either side wait for the other: the invoice
    then bills the batch, or the batch then sees the invoice and is refused, and no event
    is accepted into a period whose invoice missed it. Batches do not wait for each
    other. SQLite has no share lock: its write lock (``db.lock``) serializes instead.
    """
    if session.get_bind().dialect.name == "sqlite":
        lock(session, tenant)
        return
    session.execute(sa.select(Tenant.id).where(Tenant.id == tenant.id).with_for_update(read=True))


def _period_invoiced(index: int, event: UsageEvent, number: str | None, status) -> EventResult:
    if status == InvoiceStatus.DRAFT:
        remedy = (
            "The period's invoice is still a draft: delete the draft and generate it again "
            "to include this event, or send the event with a time in the next period."
        )
    else:
        remedy = (
            f"Bill it in the next period (send it with a time there), or correct invoice "
            f"{number} with a credit note."
        )
    return EventResult(
        index,
        event.idempotency_key,
        "period_invoiced",
        409,
        code="period_invoiced",
        message="The event falls in a billing period that is already invoiced.",
        remedy=remedy,
        invoice_number=number,
    )


def _insert(
    session: Session, tenant: Tenant, events: list[UsageEvent], prints: list[str]
) -> dict[str, uuid.UUID]:
    """Insert new records, skipping keys taken meanwhile; public ids of those inserted."""
    table = table_of(UsageRecord)
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    now = utcnow()
    rows = [
        {
            "public_id": uuid.uuid4(),
            "tenant_id": tenant.id,
            "metric": event.metric,
            "quantity": event.quantity,
            "occurred_at": event.occurred_at,
            "idempotency_key": event.idempotency_key,
            "fingerprint": printed,
            "properties": event.properties,
            "created_at": now,
        }
        for event, printed in zip(events, prints, strict=True)
    ]
    statement = (
        insert(table)
        .on_conflict_do_nothing(index_elements=["tenant_id", "idempotency_key"])
        .returning(table.c.idempotency_key, table.c.public_id)
    )
    inserted: dict[str, uuid.UUID] = {}
    for start in range(0, len(rows), MAX_BATCH):
        for key, public_id in session.execute(statement, rows[start : start + MAX_BATCH]):
            inserted[key] = public_id
    return inserted


def ingest_usage(
    session: Session,
    tenant: Tenant,
    events: list[UsageEvent],
    *,
    refuse_invoiced: bool = True,
) -> list[EventResult]:
    """Record a batch of usage events, each once per idempotency key; all or nothing.

    A key already recorded with the same body (its :func:`fingerprint`) is a duplicate and
    counts once; with another body it is a conflict. An event whose day falls in a period
    with a periodic invoice (not void) is refused with the remedy (next period or credit
    note). If any event is refused, nothing is written and :class:`UsageBatchRefused`
    carries every event's result. Keys sent twice at once by two requests are settled by
    the unique key (``ON CONFLICT DO NOTHING``), then compared like any repeat.

    :raise UsageBatchTooLarge: more than :data:`MAX_BATCH` events (nothing is read).
    :raise UsageBatchRefused: an event was invalid, a conflict or in an invoiced period.
    """
    if len(events) > MAX_BATCH:
        raise UsageBatchTooLarge(len(events))
    results: list[EventResult | None] = [None] * len(events)
    valid: list[tuple[int, UsageEvent]] = []
    for index, event in enumerate(events):
        checked = _checked(index, event)
        if isinstance(checked, EventResult):
            results[index] = checked
        else:
            valid.append((index, checked))
    stored = _stored(session, tenant, sorted({event.idempotency_key for _, event in valid}))
    first_in_batch: dict[str, str] = {}
    prints: dict[int, str] = {}
    new: list[tuple[int, UsageEvent]] = []
    for index, event in valid:
        key = event.idempotency_key
        printed = prints[index] = fingerprint(event.metric, event.quantity, event.occurred_at)
        earlier = stored.get(key)
        earlier_print = earlier[0] if earlier else first_in_batch.get(key)
        if earlier_print is None:
            first_in_batch[key] = printed
            new.append((index, event))
        elif earlier_print == printed:
            results[index] = EventResult(
                index, key, "duplicate", 200, public_id=earlier[1] if earlier else None
            )
        else:
            results[index] = _conflict(index, key)
    if refuse_invoiced and new:
        _hold_company(session, tenant)
        periods = _invoiced_periods(session, tenant, [event for _, event in new])
        still_new = []
        for index, event in new:
            day = event.occurred_at.date()
            hit = next((p for p in periods if p[0] <= day <= p[1]), None)
            if hit is None:
                still_new.append((index, event))
            else:
                results[index] = _period_invoiced(index, event, hit[2], hit[3])
        new = still_new
    if any(result is not None and not result.accepted for result in results):
        _refuse(results, new)
    savepoint = session.begin_nested()  # a conflict found while inserting undoes the batch
    try:
        inserted = _insert(
            session, tenant, [event for _, event in new], [prints[index] for index, _ in new]
        )
        raced = [event.idempotency_key for _, event in new if event.idempotency_key not in inserted]
        now_stored = _stored(session, tenant, raced) if raced else {}
    except BaseException:
        savepoint.rollback()
        raise
    for index, event in new:
        key = event.idempotency_key
        if key in inserted:
            results[index] = EventResult(index, key, "created", 201, public_id=inserted[key])
        elif now_stored[key][0] == prints[index]:
            results[index] = EventResult(index, key, "duplicate", 200, public_id=now_stored[key][1])
        else:
            results[index] = _conflict(index, key)
    done = [result for result in results if result is not None]
    if not all(result.accepted for result in done):  # lost a race to another body
        savepoint.rollback()
        _refuse(results, [(r.index, events[r.index]) for r in done if r.status == "created"])
    savepoint.commit()
    # Duplicates inside the batch point at the record their first occurrence made.
    for result in done:
        if result.status == "duplicate" and result.public_id is None:
            result.public_id = inserted.get(result.idempotency_key)
    return done


def _conflict(index: int, key: str) -> EventResult:
    return EventResult(
        index,
        key,
        "conflict",
        409,
        code="idempotency_conflict",
        message="This idempotency key was used for a different event.",
    )


def _refuse(results: list[EventResult | None], new: list[tuple[int, Any]]) -> NoReturn:
    """Refuse the batch: the events that would have been written are not."""
    for index, event in new:
        results[index] = EventResult(
            index,
            str(event.idempotency_key),
            "not_written",
            424,
            code="batch_refused",
            message="Not written: another event of the batch was refused. Send it again.",
        )
    raise UsageBatchRefused([result for result in results if result is not None])
