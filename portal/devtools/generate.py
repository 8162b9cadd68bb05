"""Bulk data for benchmarks: ``flask generate-data`` (COPY on PostgreSQL, executemany on SQLite).

Rows are written with SQLAlchemy Core (SQLite) or PostgreSQL ``COPY`` through psycopg 3,
never through the ORM, so a million invoices load in minutes. The data is additive (new
sellers, tenants and ids after the existing ones) and reproducible for a given seed:

- sellers in a few EU countries, each with a small catalog (plans, flat, per-seat and
  metered prices);
- tenants with a billing profile, an owner user (one shared argon2 hash of
  :data:`GENERATED_PASSWORD`), a membership and an active monthly subscription;
- issued invoices (finalized, sent, paid, uncollectible, void) with lines, VAT breakdown,
  payments and ledger movements; totals come from ``portal.domain.totals`` once per
  distinct line set; numbers are gapless per seller and year, in issue-date order, and
  ``document_sequences`` holds the last number of each;
- usage records spread over the last months up to now.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache

import click
import sqlalchemy as sa
from flask import Flask

from portal.db import Base
from portal.domain.tax import COVERAGE_START, Party, VatDecision, decide_vat
from portal.domain.totals import LineInput, Totals, compute_totals
from portal.extensions import db
from portal.tenancy.passwords import hash_password

#: Password of every generated user (they share one argon2 hash).
GENERATED_PASSWORD = "generated-billing-2026"  # noqa: S105 (a documented demo login)
#: Usage metric of the metered price.
METRIC = "api_calls"
#: Generated invoices start at the first day whose VAT rates are known.
EARLIEST = COVERAGE_START + dt.timedelta(days=31)
#: Tenants written per chunk (one COPY per table and chunk, one commit per chunk).
CHUNK_TENANTS = 250

SELLERS = (
    ("DE", "Nordlicht Cloud GmbH", "Torstraße 120", "10119", "Berlin", "DE811907980"),
    ("FR", "Nuage Clair SAS", "12 rue de la Paix", "75002", "Paris", "FR40303265045"),
    ("NL", "Wolkenhuis B.V.", "Keizersgracht 200", "1016 DX", "Amsterdam", "NL859048257B01"),
    ("AT", "Alpenwolke GmbH", "Mariahilfer Straße 1", "1060", "Wien", "ATU13585627"),
    ("IE", "Clearsky Hosting Ltd", "1 Grand Canal Square", "D02 P820", "Dublin", "IE6388047V"),
)
BUYER_COUNTRIES = ("DE", "DE", "DE", "FR", "FR", "NL", "AT", "BE", "IE", "ES", "IT", "US", "CH")
CITIES = {
    "DE": ("München", "80331"),
    "FR": ("Lyon", "69001"),
    "NL": ("Utrecht", "3511 AA"),
    "AT": ("Graz", "8010"),
    "BE": ("Gent", "9000"),
    "IE": ("Cork", "T12 X70A"),
    "ES": ("Madrid", "28001"),
    "IT": ("Milano", "20121"),
    "US": ("Austin", "78701"),
    "CH": ("Basel", "4051"),
}
NAMES = ("Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay", "Stark", "Wayne", "Tyrell")
SUFFIXES = {"DE": "GmbH", "AT": "GmbH", "FR": "SAS", "NL": "B.V.", "BE": "BV", "IE": "Ltd"}
#: code, name, flat monthly fee, per-seat price (None: no seats), metered price per call.
PLANS = (
    ("starter", "Starter", Decimal("29.00"), None, Decimal("0.0004")),
    ("pro", "Pro", Decimal("99.00"), Decimal("12.50"), Decimal("0.0003")),
    ("business", "Business", Decimal("299.00"), Decimal("9.90"), Decimal("0.00025")),
)
#: Monthly metered quantities come from a few buckets so that line sets repeat.
USAGE_BUCKETS = tuple(Decimal(n) for n in (0, 12000, 25000, 48000, 90000, 150000, 240000))
SEAT_CHOICES = (Decimal(1), Decimal(3), Decimal(5), Decimal(10), Decimal(25))


@dataclass
class GenerateResult:
    """What a generation wrote."""

    counts: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    #: Tenant id and owner e-mail of the tenant with the most invoices (for benchmarks).
    large_tenant_id: int | None = None
    large_tenant_email: str | None = None


@dataclass
class _TenantPlan:
    id: int
    seller: int  # index into the generated sellers
    country: str
    vat_id: str | None
    plan: int  # index into PLANS
    seats: Decimal | None
    invoices: int
    usage: int
    usage_in_month: int  # records in the current month only (the large tenant)
    daily: bool


def _month_start(day: dt.date, back: int = 0) -> dt.date:
    index = day.year * 12 + day.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def _periods(tenant: _TenantPlan, today: dt.date) -> list[tuple[dt.date, dt.date]]:
    """Inclusive (start, end) of each invoice, oldest first, all before the current month.

    Monthly when the months since the VAT rates' coverage start allow it, else periods of
    equal whole days ending on the last day of the previous month.
    """
    this_month = _month_start(today)
    if not tenant.daily:
        return [
            (_month_start(today, back), _month_start(today, back - 1) - dt.timedelta(days=1))
            for back in range(tenant.invoices, 0, -1)
        ]
    days = max(1, (this_month - EARLIEST).days // max(tenant.invoices, 1))
    return [
        (
            this_month - dt.timedelta(days=days * back),
            this_month - dt.timedelta(days=days * (back - 1) + 1),
        )
        for back in range(tenant.invoices, 0, -1)
    ]


class _Writer:
    """Writes rows of one table: COPY on PostgreSQL, Core executemany elsewhere."""

    def __init__(self, connection: sa.Connection):
        self.connection = connection
        self.pg = connection.dialect.name == "postgresql"

    def json(self, obj: object) -> object:
        """A JSON value as this writer wants it (text for COPY, the object for Core)."""
        return json.dumps(obj) if self.pg else obj

    def uuid(self, prefix: str, n: int) -> object:
        text = f"{prefix}{n:012x}"
        return text if self.pg else uuid.UUID(text)

    def write(self, table: str, columns: Sequence[str], rows: list[tuple]) -> int:
        if not rows:
            return 0
        if self.pg:
            raw = self.connection.connection.driver_connection
            assert raw is not None  # a live psycopg connection, checked out just above
            with raw.cursor() as cursor:
                sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                with cursor.copy(sql) as copy:
                    for row in rows:
                        copy.write_row(row)
        else:
            insert = Base.metadata.tables[table].insert()
            for start in range(0, len(rows), 5000):
                self.connection.execute(
                    insert,
                    [dict(zip(columns, row, strict=True)) for row in rows[start : start + 5000]],
                )
        return len(rows)


def _next_ids(connection: sa.Connection, tables: Iterable[str]) -> dict[str, int]:
    # Table names come from TABLES, never from input.
    ids = {}
    for name in tables:
        ids[name] = (connection.scalar(sa.text(f"SELECT max(id) FROM {name}")) or 0) + 1  # noqa: S608
    return ids


def _reset_sequences(connection: sa.Connection, tables: Iterable[str]) -> None:
    if connection.dialect.name != "postgresql":
        return
    for name in tables:
        last = f"(SELECT max(id) FROM {name})"  # noqa: S608 (names from TABLES)
        connection.execute(
            sa.text(f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), {last})")
        )


#: Tables whose rows PostgreSQL refuses under an issued invoice (migration 0002).
FROZEN_CHILDREN = ("invoice_lines", "invoice_vat_breakdowns")


@contextmanager
def _children_unfrozen(connection: sa.Connection):
    """Let issued invoices' lines be inserted, within the caller's transaction only.

    The freeze triggers refuse lines under an invoice that is not a draft; generated
    invoices are written already issued, so the triggers are off for this transaction
    (DDL is transactional in PostgreSQL: a failure rolls the switch back too).
    """
    if connection.dialect.name != "postgresql":
        yield
        return
    for table in FROZEN_CHILDREN:
        connection.execute(sa.text(f"ALTER TABLE {table} DISABLE TRIGGER {table}_frozen"))
    yield
    for table in FROZEN_CHILDREN:
        connection.execute(sa.text(f"ALTER TABLE {table} ENABLE TRIGGER {table}_frozen"))


@contextmanager
def _usage_rollup_deferred(connection: sa.Connection, first_tenant: int, last_tenant: int):
    """Sum the chunk's usage into ``usage_daily_totals`` once, not a trigger call per row.

    On PostgreSQL the rollup trigger (migration 0008) is off while the chunk is copied, and
    the chunk's tenants' records are summed per day in one statement afterwards, in the same
    transaction. SQLite keeps its triggers (they run in-process and cost little there).
    """
    if connection.dialect.name != "postgresql":
        yield
        return
    connection.execute(
        sa.text("ALTER TABLE usage_records DISABLE TRIGGER usage_records_daily_totals")
    )
    yield
    connection.execute(
        sa.text(
            "INSERT INTO usage_daily_totals (tenant_id, metric, day, quantity, records) "
            "SELECT tenant_id, metric, (occurred_at AT TIME ZONE 'UTC')::date, sum(quantity), "
            "count(*) FROM usage_records WHERE tenant_id BETWEEN :first AND :last "
            "GROUP BY 1, 2, 3 ON CONFLICT (tenant_id, metric, day) DO UPDATE "
            "SET quantity = usage_daily_totals.quantity + EXCLUDED.quantity, "
            "records = usage_daily_totals.records + EXCLUDED.records"
        ),
        {"first": first_tenant, "last": last_tenant},
    )
    connection.execute(
        sa.text("ALTER TABLE usage_records ENABLE TRIGGER usage_records_daily_totals")
    )


TABLES = (
    "sellers",
    "plans",
    "prices",
    "tenants",
    "billing_profiles",
    "users",
    "memberships",
    "subscriptions",
    "subscription_items",
    "invoices",
    "invoice_lines",
    "invoice_vat_breakdowns",
    "payments",
    "ledger_movements",
    "usage_records",
    "document_sequences",
)

INVOICE_COLUMNS = (
    "id public_id tenant_id created_at updated_at currency lines_total_minor "
    "allowance_total_minor charge_total_minor tax_exclusive_minor tax_minor "
    "tax_inclusive_minor prepaid_minor rounding_minor amount_due_minor seller_snapshot "
    "buyer_snapshot language seller_id number kind status subscription_id period_start "
    "period_end issue_date due_date buyer_reference purchase_order note amount_paid_minor "
    "amount_credited_minor finalized_at sent_at paid_at voided_at uncollectible_at "
    "auto_collect attempt_count next_attempt_at pdf_url"
).split()
LINE_COLUMNS = (
    "id tenant_id invoice_id position kind description quantity unit_code unit_price "
    "net_amount_minor period_start period_end vat_category vat_rate vat_exemption_reason "
    "vat_exemption_code price_id subscription_item_id details"
).split()
BREAKDOWN_COLUMNS = (
    "id invoice_id category rate taxable_minor tax_minor exemption_reason exemption_code"
).split()
PAYMENT_COLUMNS = (
    "id public_id tenant_id created_at updated_at invoice_id payment_method_id provider "
    "provider_ref amount_minor currency status refunded_minor failure_code failure_message "
    "action_url attempt succeeded_at"
).split()
MOVEMENT_COLUMNS = (
    "id public_id tenant_id kind amount_minor currency invoice_id payment_id refund_id "
    "credit_note_id description occurred_at created_at"
).split()
USAGE_COLUMNS = (
    "id public_id tenant_id metric quantity occurred_at idempotency_key properties created_at"
).split()


class _Generator:
    def __init__(
        self,
        connection: sa.Connection,
        *,
        seed: int,
        today: dt.date,
        password_hash: str,
        on_progress: Callable[[int], None] | None,
    ):
        self.w = _Writer(connection)
        self.connection = connection
        self.rng = random.Random(seed)
        self.today = today
        self.now = dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC)
        self.password_hash = password_hash
        self.on_progress = on_progress
        self.ids = _next_ids(connection, TABLES)
        self.counts: Counter = Counter()
        # A random UUID prefix per run; the last 12 hex digits count rows.
        # (seeded by what the database already holds, so a second run never collides).
        ids_rng = random.Random(f"{seed}:{self.ids['sellers']}:{self.ids['usage_records']}")
        self.uuid_prefix = str(uuid.UUID(int=ids_rng.getrandbits(128), version=4))[:24]
        self.uuid_n = 0
        self.totals_cache: dict[tuple, Totals] = {}

    # -- helpers -------------------------------------------------------------------------

    def take_id(self, table: str, n: int = 1) -> int:
        first = self.ids[table]
        self.ids[table] += n
        return first

    def public_id(self) -> object:
        self.uuid_n += 1
        return self.w.uuid(self.uuid_prefix, self.uuid_n)

    def write(self, table: str, columns: Sequence[str], rows: list[tuple]) -> None:
        self.counts[table] += self.w.write(table, columns, rows)

    @staticmethod
    @cache
    def vat(seller_country: str, seller_vat: str, country: str, vat_id: str | None, on: dt.date):
        return decide_vat(
            seller=Party(country=seller_country, vat_id=seller_vat),
            buyer=Party(country=country, vat_id=vat_id, is_business=bool(vat_id)),
            on=on,
        )

    def totals(self, lines: tuple[LineInput, ...], currency: str) -> Totals:
        key = (lines, currency)
        totals = self.totals_cache.get(key)
        if totals is None:
            totals = self.totals_cache[key] = compute_totals(list(lines), currency)
        return totals

    # -- catalog and tenants -------------------------------------------------------------

    def sellers(self, count: int) -> None:
        self.seller_rows = []
        rows, plan_rows, price_rows = [], [], []
        self.prices: list[list[tuple[int, int | None, int]]] = []  # per seller, per plan
        for k in range(count):
            country, name, street, postal, city, vat_id = SELLERS[k % len(SELLERS)]
            seller_id = self.take_id("sellers")
            snapshot = {
                "legal_name": name,
                "trading_name": None,
                "address_line1": street,
                "address_line2": None,
                "postal_code": postal,
                "city": city,
                "region": None,
                "country": country,
                "vat_id": vat_id,
                "tax_number": None,
                "registration": None,
                "email": f"billing@seller{seller_id}.example",
                "phone": None,
                "website": None,
                "iban": "DE89370400440532013000",
                "bic": "COBADEFFXXX",
                "bank_name": "Commerzbank",
                "invoice_footer": None,
            }
            self.seller_rows.append((seller_id, country, vat_id, self.w.json(snapshot)))
            rows.append(
                (
                    seller_id,
                    self.public_id(),
                    self.now,
                    self.now,
                    name,
                    None,
                    street,
                    None,
                    postal,
                    city,
                    None,
                    country,
                    vat_id,
                    None,
                    None,
                    snapshot["email"],
                    None,
                    None,
                    snapshot["iban"],
                    snapshot["bic"],
                    snapshot["bank_name"],
                    None,
                    None,
                    "INV-{year}-{seq:06d}",
                    "CN-{year}-{seq:06d}",
                    "EUR",
                    14,
                    None,
                )
            )
            per_plan = []
            for code, plan_name, fee, seat, per_call in PLANS:
                plan_id = self.take_id("plans")
                plan_rows.append(
                    (plan_id, self.public_id(), self.now, self.now, seller_id, code, plan_name)
                )
                ids: list[int | None] = []
                for p_code, nickname, model, usage_kind, metric, amount in (
                    ("base", f"{plan_name} plan", "flat", "licensed", None, fee),
                    ("seats", f"{plan_name} seats", "per_unit", "licensed", None, seat),
                    ("calls", "API calls", "per_unit", "metered", METRIC, per_call),
                ):
                    if amount is None:
                        ids.append(None)
                        continue
                    price_id = self.take_id("prices")
                    ids.append(price_id)
                    price_rows.append(
                        (
                            price_id,
                            self.public_id(),
                            self.now,
                            self.now,
                            plan_id,
                            f"{code}-{p_code}-eur",
                            nickname,
                            "EUR",
                            model,
                            usage_kind,
                            metric,
                            "month",
                            1,
                            amount,
                            None,
                            "C62",
                            0,
                            True,
                        )
                    )
                base_id, seats_id, calls_id = ids
                # Every plan has a base fee and metered calls; only the seats are optional.
                assert base_id is not None and calls_id is not None
                per_plan.append((base_id, seats_id, calls_id))
            self.prices.append(per_plan)
        self.write(
            "sellers",
            "id public_id created_at updated_at legal_name trading_name address_line1 "
            "address_line2 postal_code city region country vat_id tax_number registration "
            "email phone website iban bic bank_name logo logo_mime invoice_number_format "
            "credit_note_number_format default_currency default_payment_terms_days "
            "invoice_footer".split(),
            rows,
        )
        self.write(
            "plans",
            "id public_id created_at updated_at seller_id code name description is_active".split(),
            [(*r, None, True) for r in plan_rows],
        )
        self.write(
            "prices",
            "id public_id created_at updated_at plan_id code nickname currency model usage_kind "
            "metric interval interval_count unit_amount package_size unit_code trial_days "
            "is_active".split(),
            price_rows,
        )

    def plan_tenants(
        self,
        count: int,
        invoices: int,
        usage: int,
        large_invoices: int,
        large_usage: int,
    ) -> list[_TenantPlan]:
        plans = []
        first = self.ids["tenants"]
        this_month = _month_start(self.today)
        monthly = (this_month.year - EARLIEST.year) * 12 + this_month.month - EARLIEST.month
        for i in range(count):
            country = self.rng.choice(BUYER_COUNTRIES)
            is_business = self.rng.random() < 0.8
            vat_id = f"{country}{self.rng.randrange(10**8, 10**9)}" if is_business else None
            if country in ("US", "CH") and is_business:
                vat_id = None  # outside the EU: no EU VAT ID
            plan = self.rng.randrange(len(PLANS))
            large = i == 0 and large_invoices > 0
            plans.append(
                _TenantPlan(
                    id=first + i,
                    seller=i % len(self.seller_rows),
                    country=country,
                    vat_id=vat_id,
                    plan=plan,
                    seats=self.rng.choice(SEAT_CHOICES) if PLANS[plan][3] else None,
                    invoices=large_invoices if large else invoices,
                    usage=usage,
                    usage_in_month=large_usage if i == 0 else 0,
                    daily=(large_invoices if large else invoices) > monthly,
                )
            )
        self.ids["tenants"] += count
        return plans

    def numbering(self, tenants: list[_TenantPlan]) -> None:
        """Base numbers per (seller, issue date): gapless per seller and year, by date."""
        per_day: Counter = Counter()
        for tenant in tenants:
            for _, end in _periods(tenant, self.today):
                per_day[(tenant.seller, end + dt.timedelta(days=1))] += 1
        self.number_base: dict[tuple[int, dt.date], int] = {}
        last: dict[tuple[int, int], int] = defaultdict(int)
        for (seller, day), n in sorted(per_day.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            self.number_base[(seller, day)] = last[(seller, day.year)]
            last[(seller, day.year)] += n
        self.number_taken: Counter = Counter()
        self.sequences = last

    # -- per tenant ----------------------------------------------------------------------

    def tenant_chunk(self, tenants: list[_TenantPlan]) -> None:
        rows: dict[str, list[tuple]] = defaultdict(list)
        for tenant in tenants:
            self.tenant_rows(tenant, rows)
        self.write(
            "tenants",
            "id public_id created_at updated_at seller_id name slug currency is_active".split(),
            rows["tenants"],
        )
        self.write(
            "billing_profiles",
            "id tenant_id created_at updated_at company_name address_line1 address_line2 "
            "postal_code city region country vat_id tax_exempt tax_exemption_reason "
            "billing_email cc_emails contact_name phone buyer_reference purchase_order "
            "peppol_endpoint_id peppol_endpoint_scheme einvoice_format language currency "
            "payment_terms_days".split(),
            rows["billing_profiles"],
        )
        self.write(
            "users",
            "id public_id created_at updated_at email name password_hash locale auth_version "
            "is_active last_login_at".split(),
            rows["users"],
        )
        self.write(
            "memberships",
            "id created_at updated_at user_id tenant_id role".split(),
            rows["memberships"],
        )
        self.write(
            "subscriptions",
            "id public_id tenant_id created_at updated_at status currency interval "
            "interval_count started_on current_period_start current_period_end trial_end "
            "cancel_at_period_end canceled_at collection_method".split(),
            rows["subscriptions"],
        )
        self.write(
            "subscription_items",
            "id tenant_id created_at updated_at subscription_id price_id quantity".split(),
            rows["subscription_items"],
        )
        self.write("invoices", INVOICE_COLUMNS, rows["invoices"])
        self.write("invoice_lines", LINE_COLUMNS, rows["invoice_lines"])
        self.write("invoice_vat_breakdowns", BREAKDOWN_COLUMNS, rows["invoice_vat_breakdowns"])
        self.write("payments", PAYMENT_COLUMNS, rows["payments"])
        self.write("ledger_movements", MOVEMENT_COLUMNS, rows["ledger_movements"])
        self.write("usage_records", USAGE_COLUMNS, rows["usage_records"])

    def tenant_rows(self, tenant: _TenantPlan, rows: dict[str, list[tuple]]) -> None:
        rng = self.rng
        seller_id, seller_country, seller_vat, seller_snapshot = self.seller_rows[tenant.seller]
        city, postal = CITIES[tenant.country]
        name = f"{rng.choice(NAMES)} {tenant.id} {SUFFIXES.get(tenant.country, 'Inc.')}"
        periods = _periods(tenant, self.today)
        first_day = periods[0][0] if periods else _month_start(self.today, 1)
        created = dt.datetime.combine(first_day, dt.time(9), tzinfo=dt.UTC)
        email = f"billing{tenant.id}@tenant.example"
        rows["tenants"].append(
            (tenant.id, self.public_id(), created, created, seller_id, name, f"gen-{tenant.id}")
            + ("EUR", True)
        )
        profile: dict[str, object] = {
            "company_name": name,
            "address_line1": f"Hauptstraße {tenant.id % 200 + 1}",
            "address_line2": None,
            "postal_code": postal,
            "city": city,
            "region": None,
            "country": tenant.country,
            "vat_id": tenant.vat_id,
            "tax_exempt": False,
            "tax_exemption_reason": None,
            "billing_email": email,
            "cc_emails": [],
            "contact_name": "Alex Example",
            "phone": None,
            "buyer_reference": None,
            "purchase_order": None,
            "peppol_endpoint_id": None,
            "peppol_endpoint_scheme": None,
            "language": "de" if tenant.country in ("DE", "AT") else "en",
        }
        rows["billing_profiles"].append(
            (self.take_id("billing_profiles"), tenant.id, created, created)
            + tuple(profile[k] for k in list(profile)[:10])
            + (profile["billing_email"], self.w.json([]), "Alex Example")
            + (None, None, None, None, None, "none", profile["language"], "EUR", 14)
        )
        user_id = self.take_id("users")
        rows["users"].append(
            (user_id, self.public_id(), created, created, f"owner{tenant.id}@tenant.example")
            + ("Alex Example", self.password_hash, None, 1, True, None)
        )
        rows["memberships"].append(
            (self.take_id("memberships"), created, created, user_id, tenant.id, "owner")
        )
        subscription_id = self.take_id("subscriptions")
        this_month = _month_start(self.today)
        rows["subscriptions"].append(
            (subscription_id, self.public_id(), tenant.id, created, created, "active", "EUR")
            + ("month", 1, _month_start(first_day), this_month, _month_start(self.today, -1))
            + (None, False, None, "send_invoice")
        )
        base_price, seat_price, call_price = self.prices[tenant.seller][tenant.plan]
        items = {}
        for price_id, quantity in (
            (base_price, Decimal(1)),
            (seat_price, tenant.seats),
            (call_price, Decimal(1)),
        ):
            if price_id is None:
                continue
            items[price_id] = item_id = self.take_id("subscription_items")
            rows["subscription_items"].append(
                (item_id, tenant.id, created, created, subscription_id, price_id, quantity)
            )
        snapshots = (seller_snapshot, self.w.json(profile))
        self.invoice_rows(tenant, periods, snapshots, rows, items)
        self.usage_rows(tenant, rows)

    def invoice_rows(
        self,
        tenant: _TenantPlan,
        periods: list[tuple[dt.date, dt.date]],
        snapshots: tuple[object, object],
        rows: dict[str, list[tuple]],
        items: dict[int, int],
    ) -> None:
        rng = self.rng
        seller_id, seller_country, seller_vat, _ = self.seller_rows[tenant.seller]
        _, plan_name, fee, seat, per_call = PLANS[tenant.plan]
        base_price, seat_price, call_price = self.prices[tenant.seller][tenant.plan]
        language = "de" if tenant.country in ("DE", "AT") else "en"
        count = len(periods)
        first_invoice = self.take_id("invoices", count)
        for n, (start, end) in enumerate(periods):
            invoice_id = first_invoice + n
            issue = end + dt.timedelta(days=1)
            vat: VatDecision = self.vat(
                seller_country, seller_vat, tenant.country, tenant.vat_id, issue
            )
            calls = rng.choice(USAGE_BUCKETS)
            specs = [(f"{plan_name} plan", Decimal(1), fee, base_price, "subscription")]
            # A plan has seats (a seat price and a tenant seat count) or has none of them.
            if seat is not None and seat_price is not None and tenant.seats is not None:
                specs.append((f"{plan_name} seats", tenant.seats, seat, seat_price, "subscription"))
            if calls:
                specs.append(("API calls", calls, per_call, call_price, "usage"))
            rate = vat.rate
            category = vat.category.value
            totals = self.totals(
                tuple(LineInput(q, p, category, rate) for _, q, p, _, _ in specs), "EUR"
            )
            for position, ((description, quantity, unit_price, price_id, kind), net) in enumerate(
                zip(specs, totals.line_nets, strict=True), start=1
            ):
                rows["invoice_lines"].append(
                    (self.take_id("invoice_lines"), tenant.id, invoice_id, position, kind)
                    + (description, quantity, "C62", unit_price, net.minor, start, end)
                    + (category, rate, vat.exemption_reason, vat.exemption_code, price_id)
                    + (items.get(price_id), self.w.json({}))
                )
            for group in totals.vat_breakdown:
                rows["invoice_vat_breakdowns"].append(
                    (self.take_id("invoice_vat_breakdowns"), invoice_id, group.category)
                    + (group.rate, group.taxable.minor, group.tax.minor)
                    + (vat.exemption_reason, vat.exemption_code)
                )
            # Number: gapless per seller and year, in issue-date order.
            key = (tenant.seller, issue)
            self.number_taken[key] += 1
            seq = self.number_base[key] + self.number_taken[key]
            number = f"INV-{issue.year}-{seq:06d}"
            finalized = dt.datetime.combine(issue, dt.time(6), tzinfo=dt.UTC)
            due = issue + dt.timedelta(days=14)
            recent = issue > self.today - dt.timedelta(days=30)
            roll = rng.random()
            if recent:
                status = "finalized" if roll < 0.3 else "sent" if roll < 0.7 else "paid"
            else:
                status = "paid" if roll < 0.97 else "uncollectible" if roll < 0.99 else "void"
            sent = finalized + dt.timedelta(hours=1) if status != "finalized" else None
            amount = totals.amount_due.minor
            paid_at = voided = uncollectible = None
            if status == "paid":
                paid_at = finalized + dt.timedelta(days=rng.randrange(1, 15))
            elif status == "void":
                voided = finalized + dt.timedelta(days=20)
            elif status == "uncollectible":
                uncollectible = finalized + dt.timedelta(days=60)
            rows["invoices"].append(
                (invoice_id, self.public_id(), tenant.id, finalized, paid_at or finalized)
                + ("EUR", totals.lines_total.minor, 0, 0, totals.tax_exclusive.minor)
                + (totals.tax.minor, totals.tax_inclusive.minor, 0, 0, amount)
                + (*snapshots, language, seller_id, number, "subscription", status)
                + (None, start, end, issue, due, None, None, None)
                + (amount if status == "paid" else 0, 0, finalized, sent, paid_at)
                + (voided, uncollectible, False, 0, None, None)
            )
            rows["ledger_movements"].append(
                (self.take_id("ledger_movements"), self.public_id(), tenant.id, "invoice")
                + (amount, "EUR", invoice_id, None, None, None, f"Invoice {number}")
                + (finalized, finalized)
            )
            if status == "paid":
                payment_id = self.take_id("payments")
                rows["payments"].append(
                    (payment_id, self.public_id(), tenant.id, paid_at, paid_at, invoice_id)
                    + (None, "manual", None, amount, "EUR", "succeeded", 0, None, None, None)
                    + (1, paid_at)
                )
                rows["ledger_movements"].append(
                    (self.take_id("ledger_movements"), self.public_id(), tenant.id, "payment")
                    + (-amount, "EUR", invoice_id, payment_id, None, None)
                    + (f"Payment of invoice {number}", paid_at, paid_at)
                )
            elif status in ("void", "uncollectible"):
                kind = "void" if status == "void" else "write_off"
                at = voided or uncollectible
                rows["ledger_movements"].append(
                    (self.take_id("ledger_movements"), self.public_id(), tenant.id, kind)
                    + (-amount, "EUR", invoice_id, None, None, None)
                    + (f"{kind.replace('_', ' ').capitalize()} of invoice {number}", at, at)
                )

    def usage_rows(self, tenant: _TenantPlan, rows: dict[str, list[tuple]]) -> None:
        rng = self.rng
        months = max(1, min(tenant.invoices, 12) + 1)
        window_start = dt.datetime.combine(
            _month_start(self.today, months - 1), dt.time(), tzinfo=dt.UTC
        )
        month_start = dt.datetime.combine(_month_start(self.today), dt.time(), tzinfo=dt.UTC)
        out = rows["usage_records"]
        props = self.w.json({})
        quantities = [Decimal(n) for n in range(1, 201)]
        for count, start in ((tenant.usage, window_start), (tenant.usage_in_month, month_start)):
            if not count:
                continue
            span = max(int((self.now - start).total_seconds()), 1)
            first = self.take_id("usage_records", count)
            for n in range(count):
                occurred = start + dt.timedelta(seconds=rng.randrange(span))
                record_id = first + n
                out.append(
                    (record_id, self.public_id(), tenant.id, METRIC, rng.choice(quantities))
                    + (occurred, f"gen-{record_id}", props, occurred)
                )

    def sequence_rows(self) -> None:
        rows = [
            (self.take_id("document_sequences"), self.seller_rows[seller][0], "invoice", year, n)
            for (seller, year), n in sorted(self.sequences.items())
        ]
        self.write(
            "document_sequences", "id seller_id document_type year last_number".split(), rows
        )


def generate_data(
    engine: sa.Engine,
    *,
    tenants: int,
    invoices_per_tenant: int,
    usage_per_tenant: int,
    seed: int = 1,
    today: dt.date | None = None,
    large_tenant_invoices: int = 0,
    large_tenant_usage: int = 0,
    password_hash: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> GenerateResult:
    """Write generated sellers, tenants, invoices and usage; commit per chunk of tenants.

    :param large_tenant_invoices: give the first tenant this many invoices instead of
        ``invoices_per_tenant``.
    :param large_tenant_usage: add this many usage records in the current month to the
        first tenant.
    """
    if tenants < 1:
        raise ValueError("tenants must be at least 1")
    if password_hash is None:
        password_hash = hash_password(GENERATED_PASSWORD)
    started = time.perf_counter()
    today = today or dt.date.today()
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SET synchronous_commit = off"))
        gen = _Generator(
            connection, seed=seed, today=today, password_hash=password_hash, on_progress=on_progress
        )
        gen.sellers(min(len(SELLERS), max(1, -(-tenants // 2000))))
        plans = gen.plan_tenants(
            tenants,
            invoices_per_tenant,
            usage_per_tenant,
            large_tenant_invoices,
            large_tenant_usage,
        )
        gen.numbering(plans)
        connection.commit()
        for start in range(0, len(plans), CHUNK_TENANTS):
            chunk = plans[start : start + CHUNK_TENANTS]
            with (
                _children_unfrozen(connection),
                _usage_rollup_deferred(
                    connection, min(t.id for t in chunk), max(t.id for t in chunk)
                ),
            ):
                gen.tenant_chunk(chunk)
            connection.commit()
            if on_progress is not None:
                on_progress(len(chunk))
        gen.sequence_rows()
        _reset_sequences(connection, TABLES)
        connection.commit()
        if connection.dialect.name == "postgresql":
            for table in (*TABLES, "usage_daily_totals"):
                connection.execute(sa.text(f"ANALYZE {table}"))
            connection.commit()
    large = plans[0]
    return GenerateResult(
        counts=gen.counts,
        seconds=time.perf_counter() - started,
        large_tenant_id=large.id,
        large_tenant_email=f"owner{large.id}@tenant.example",
    )


@click.command("generate-data")
@click.option("--tenants", type=click.IntRange(1), required=True)
@click.option("--invoices-per-tenant", type=click.IntRange(0), default=12, show_default=True)
@click.option("--usage-per-tenant", type=click.IntRange(0), default=100, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--large-tenant-invoices",
    type=click.IntRange(0),
    default=0,
    help="Give the first generated tenant this many invoices.",
)
@click.option(
    "--large-tenant-usage",
    type=click.IntRange(0),
    default=0,
    help="Add this many usage records in the current month to the first generated tenant.",
)
def generate_data_command(
    tenants: int,
    invoices_per_tenant: int,
    usage_per_tenant: int,
    seed: int,
    large_tenant_invoices: int,
    large_tenant_usage: int,
) -> None:
    """Fill the database with generated tenants, invoices and usage (bulk inserts)."""
    with click.progressbar(length=tenants, label="Generating tenants") as bar:
        result = generate_data(
            db.engine,
            tenants=tenants,
            invoices_per_tenant=invoices_per_tenant,
            usage_per_tenant=usage_per_tenant,
            seed=seed,
            large_tenant_invoices=large_tenant_invoices,
            large_tenant_usage=large_tenant_usage,
            on_progress=bar.update,
        )
    for table, count in sorted(result.counts.items()):
        click.echo(f"  {table:<24} {count:>12,}")
    click.echo(
        f"Generated in {result.seconds:.1f} s. Users' password: {GENERATED_PASSWORD}; "
        f"largest tenant: id {result.large_tenant_id}, {result.large_tenant_email}"
    )


def register_generate_cli(app: Flask) -> None:
    app.cli.add_command(generate_data_command)
