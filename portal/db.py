"""Declarative base, portable column types and tenant-scoping helpers."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column
from werkzeug.exceptions import NotFound

# Alembic needs stable, explicit constraint names to alter or drop them later, and SQLite
# batch migrations need them to recreate tables; the convention gives every constraint one.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base class of every model."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def table_of(model: type) -> sa.Table:
    """The Core table of a mapped class (``__table__`` is typed as any FROM clause)."""
    table = model.__table__  # type: ignore[attr-defined]  # set by the declarative base
    assert isinstance(table, sa.Table)
    return table


def utcnow() -> dt.datetime:
    """The current time, timezone-aware in UTC."""
    return dt.datetime.now(dt.UTC)


class UTCDateTime(sa.TypeDecorator):
    """A timestamp stored in UTC that always comes back timezone-aware.

    SQLite has no time zones and returns naive values; PostgreSQL uses timestamptz.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class ExactDecimal(sa.TypeDecorator):
    """An exact decimal: NUMERIC(p, s) on PostgreSQL, a scaled 64-bit integer on SQLite.

    SQLite's NUMERIC affinity stores binary floats, which would break money arithmetic;
    scaling to an integer keeps values exact and lets SUM() run in SQL on both databases
    (``func.sum(column)`` carries this type, so results come back as Decimal).
    """

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int):
        super().__init__()
        self.precision = precision
        self.scale = scale
        self._factor = Decimal(10) ** scale
        self._quantum = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect: Any) -> Any:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("floats are not accepted for exact decimal columns")
        value = Decimal(value)
        if value != value.quantize(self._quantum):
            raise ValueError(f"{value} has more than {self.scale} decimal places")
        if dialect.name == "sqlite":
            return int(value * self._factor)
        return value

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return (Decimal(int(value)) / self._factor).quantize(self._quantum)
        return Decimal(value).quantize(self._quantum)

    @property
    def python_type(self) -> type:
        return Decimal


#: Quantities (seats, API calls, GB-hours): up to 6 decimal places.
Quantity = ExactDecimal(24, 6)
#: Unit prices in major currency units (EN 16931 BT-146 allows more decimals than money).
UnitPrice = ExactDecimal(24, 10)
#: Percentages such as VAT rates and discounts (19.0000, 7.7000).
Percent = ExactDecimal(9, 4)


class IdMixin:
    """An internal integer key; never shown outside the database."""

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True)


class PublicIdMixin:
    """A random UUID that URLs and APIs use instead of the integer key."""

    #: Public identifier used in URLs and APIs.
    public_id: Mapped[uuid.UUID] = mapped_column(
        sa.Uuid, unique=True, default=uuid.uuid4, nullable=False
    )


class TimestampMixin:
    """Creation and last-change times."""

    #: When the row was created (UTC).
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    #: When the row last changed (UTC).
    updated_at: Mapped[dt.datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow, nullable=False
    )


class TenantMixin:
    """Marks a tenant-owned row: it is only ever loaded through tenant-scoped queries."""

    __tenant_owned__ = True

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:  # noqa: N805
        #: The tenant that owns this row.
        return mapped_column(
            sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False, index=True
        )


def enum_column(enum_cls: type[enum.Enum], name: str) -> sa.Enum:
    """A portable enum type: VARCHAR plus a named CHECK constraint, stored by value."""
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        validate_strings=True,
        values_callable=lambda members: [m.value for m in members],
    )


M = TypeVar("M")


def scoped(model: type[M], tenant: Any) -> sa.Select:
    """A SELECT of ``model`` limited to rows of ``tenant``."""
    if not getattr(model, "__tenant_owned__", False):
        raise TypeError(f"{model.__name__} is not tenant-owned")
    return sa.select(model).where(model.tenant_id == tenant.id)  # type: ignore[attr-defined]


def parse_public_id(value: Any) -> uuid.UUID | None:
    """A UUID from a string or UUID, or None when it is not one."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


def load_for_tenant(session: Any, model: type[M], public_id: Any, tenant: Any) -> M:
    """Load a tenant-owned object by public id, or raise 404.

    Another tenant's id, an unknown id and a malformed id all answer 404, so the response
    never tells whether an object exists elsewhere.

    :raise NotFound: when the object does not belong to ``tenant``.
    """
    uid = parse_public_id(public_id)
    if uid is None or tenant is None:
        raise NotFound()
    obj = session.scalars(
        scoped(model, tenant).where(model.public_id == uid)  # type: ignore[attr-defined]
    ).one_or_none()
    if obj is None:
        raise NotFound()
    return obj


def lock(session: Any, obj: M) -> M:
    """Lock ``obj``'s row until the transaction ends and reload it from the database.

    Every state change calls this before it checks its precondition, so a second,
    concurrent request waits for the first and then sees what the first wrote (and is
    refused as a sequential second request would be). PostgreSQL takes a row lock with
    ``SELECT … FOR UPDATE``. SQLite has no row locks: a no-op ``UPDATE`` of the row starts
    the write transaction and takes the database's single write lock, which serializes
    writers the same way; the reload that follows then reads what the last writer committed.
    """
    # raiseerr spelled out: without it SQLAlchemy's overloads type the result as Optional.
    mapper = sa.inspect(obj, raiseerr=True).mapper
    model = mapper.class_
    table = mapper.local_table
    key = table.c.id == obj.id  # type: ignore[attr-defined]
    if session.get_bind().dialect.name == "sqlite":
        session.execute(sa.update(table).where(key).values(id=table.c.id))
    # The rows must be fetched: the ORM refreshes the object as it reads them.
    session.scalars(
        sa.select(model)
        .where(model.id == obj.id)  # type: ignore[attr-defined]
        .with_for_update(of=model)
        .execution_options(populate_existing=True)
    ).one()
    return obj
