"""Companies (tenants) as the operator sets them up: create, change, archive (audited).

A company has a name, a unique slug, the seller that bills it, a currency, the language of
its invoices, a billing profile (validated exactly as the tenant's own profile form,
``tenancy/profiles.py``) and billing settings (``catalog/settings.py``). Archiving keeps
every invoice and record readable; the invoice run and "generate now" skip it.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.catalog.models import Subscription, SubscriptionStatus
from portal.catalog.settings import (
    SETTINGS_FIELDS,
    SettingsInvalid,
    company_settings,
    settings_dict,
    update_company_settings,
    validate_settings,
)
from portal.db import lock, parse_public_id, utcnow
from portal.domain.money import is_known_currency
from portal.invoices.models import Invoice
from portal.ops.audit import N_, Actor, AdminActionRefused, record_audit
from portal.tenancy.errors import TenancyError
from portal.tenancy.models import BillingProfile, Seller, Tenant
from portal.tenancy.profiles import (
    DEFAULT_LANGUAGES,
    ProfileInput,
    get_billing_profile,
    upsert_billing_profile,
    validate_profile,
)


class CompanyInvalid(TenancyError):
    """Company input that breaks one or more rules; nothing was written.

    :ivar errors: field name → English message; profile and settings fields are prefixed
        ``billing_profile.`` and ``billing_settings.``.
    """

    def __init__(self, errors: Mapping[str, str]):
        self.errors: dict[str, str] = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


#: Top-level fields of a company.
COMPANY_FIELDS = ("name", "slug", "seller", "currency", "language", "billing_profile",
                  "billing_settings")  # fmt: skip
SLUG = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
SLUG_MAX = 80
NAME_MAX = 200
#: Derived slugs tried when concurrent creations of one name take them first.
SLUG_ATTEMPTS = 50
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


def slugify(name: str) -> str:
    """A slug from a name: ASCII letters and digits, joined by single dashes."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:SLUG_MAX].rstrip("-")


def _slug_taken(session: Session, slug: str, exclude: Tenant | None = None) -> bool:
    query = sa.select(Tenant.id).where(Tenant.slug == slug)
    if exclude is not None and exclude.id is not None:
        query = query.where(Tenant.id != exclude.id)
    return session.scalar(query.limit(1)) is not None


def _free_slug(session: Session, base: str) -> str:
    """``base``, or ``base-2``, ``base-3``… the first not taken (for derived slugs only)."""
    base = base or "company"
    candidate, n = base, 1
    while _slug_taken(session, candidate):
        n += 1
        suffix = f"-{n}"
        candidate = base[: SLUG_MAX - len(suffix)].rstrip("-") + suffix
    return candidate


def find_seller(session: Session, value: Any) -> Seller | None:
    """A seller by public id (text or UUID), a Seller itself, or None."""
    if isinstance(value, Seller):
        return value
    uid = parse_public_id(value) if isinstance(value, str) else None
    if uid is None:
        return None
    return session.scalars(sa.select(Seller).where(Seller.public_id == uid)).first()


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _check_top(
    session: Session, data: Mapping[str, Any], current: Tenant | None
) -> tuple[dict[str, Any], dict[str, str]]:
    """Name, slug, seller, currency and language; profile and settings are checked apart."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for key in data:
        if key not in COMPANY_FIELDS:
            errors[str(key)[:60]] = N_("Unknown field.")
    for key in ("name", "slug", "currency", "language"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            errors[key] = N_("Enter text.")
        elif isinstance(value, str) and _UNSTORABLE.search(value):
            errors[key] = N_("Remove the NUL character (or other character that cannot be stored).")

    if "name" in data or current is None:
        name = _text(data.get("name")) if "name" not in errors else None
        if "name" not in errors:
            if name is None:
                errors["name"] = N_("Enter the company's name.")
            elif len(name) > NAME_MAX:
                errors["name"] = N_("This is too long for the field.")
            else:
                clean["name"] = name

    if "slug" not in errors:
        slug = _text(data.get("slug"))
        if slug is not None:
            if len(slug) > SLUG_MAX or not SLUG.fullmatch(slug):
                errors["slug"] = N_(
                    "Use lower-case letters, digits and single dashes, such as acme-gmbh."
                )
            elif _slug_taken(session, slug, current):
                errors["slug"] = N_("Another company already has this slug.")
            else:
                clean["slug"] = slug
        elif current is None and "name" in clean:
            clean["slug"] = _free_slug(session, slugify(clean["name"]))
        elif current is None:
            pass  # the name's own error says enough
        elif "slug" in data:
            errors["slug"] = N_("Enter the slug.")

    if "seller" in data or current is None:
        seller = find_seller(session, data.get("seller"))
        if seller is None:
            errors["seller"] = (
                N_("Choose the seller that bills the company.")
                if data.get("seller") in (None, "")
                else N_("There is no such seller.")
            )
        else:
            clean["seller"] = seller

    if "currency" not in errors and ("currency" in data or current is None):
        currency = (_text(data.get("currency")) or "").upper()
        if not currency and current is None and "seller" in clean:
            currency = clean["seller"].default_currency
        if not currency:
            errors["currency"] = N_("Enter the company's billing currency.")
        elif not is_known_currency(currency):
            errors["currency"] = N_("Not an ISO 4217 currency code, such as EUR or USD.")
        elif (
            current is not None
            and currency != current.currency
            and _currency_in_use(session, current)
        ):
            errors["currency"] = N_(
                "The currency cannot change: the company has invoices or subscriptions in "
                "its current currency."
            )
        else:
            clean["currency"] = currency

    if "language" not in errors and "language" in data:
        language = (_text(data.get("language")) or "").lower()
        if language not in DEFAULT_LANGUAGES:
            errors["language"] = N_("Choose the language of the company's invoices.")
        else:
            clean["language"] = language
    return clean, errors


def _currency_in_use(session: Session, tenant: Tenant) -> bool:
    invoices = sa.select(Invoice.id).where(Invoice.tenant_id == tenant.id).limit(1)
    subscriptions = (
        sa.select(Subscription.id)
        .where(
            Subscription.tenant_id == tenant.id,
            Subscription.status != SubscriptionStatus.CANCELED,
        )
        .limit(1)
    )
    return session.scalar(invoices) is not None or session.scalar(subscriptions) is not None


def _profile_values(
    data: Mapping[str, Any], current: BillingProfile | None, language: str | None
) -> dict[str, Any] | None:
    """The profile input to validate (current values under the changed ones), or None."""
    given = data.get("billing_profile")
    if given is None and language is None:
        return None
    values: dict[str, Any] = {}
    if current is not None:
        values = dict(vars(ProfileInput.from_profile(current)))
    if isinstance(given, Mapping):
        values.update(given)
    if language is not None:
        values["language"] = language
    values.setdefault("language", "en")
    return values


def _check_profile(
    data: Mapping[str, Any], current: BillingProfile | None, language: str | None, errors: dict
) -> dict[str, Any] | None:
    given = data.get("billing_profile")
    if given is not None and not isinstance(given, Mapping):
        errors["billing_profile"] = N_("Send the billing profile as an object.")
        return None
    if isinstance(given, Mapping):
        known = set(ProfileInput.field_names())
        for key in given:
            if key not in known:
                errors[f"billing_profile.{str(key)[:60]}"] = N_("Unknown field.")
    values = _profile_values(data, current, language)
    if values is None:
        return None
    _clean, problems = validate_profile(values, tenant=None, languages=DEFAULT_LANGUAGES)
    for name, message in problems.items():
        errors["language" if name == "language" else f"billing_profile.{name}"] = message
    return values


def _check_settings(
    data: Mapping[str, Any], tenant: Tenant | None, session: Session, errors: dict
) -> dict[str, Any] | None:
    given = data.get("billing_settings")
    if given is None:
        return None
    if not isinstance(given, Mapping):
        errors["billing_settings"] = N_("Send the billing settings as an object.")
        return None
    # A company not created yet has the defaults (a transient tenant has no stored row).
    base = settings_dict(company_settings(session, tenant if tenant is not None else Tenant()))
    values = {**base, **given}
    try:
        validate_settings(values)  # only checked here: written once the company exists
    except SettingsInvalid as exc:
        for name, message in exc.errors.items():
            errors[f"billing_settings.{name}"] = message
    return values


def company_dict(session: Session, tenant: Tenant) -> dict[str, Any]:
    """The company's own fields and its profile's language, JSON-safe (audit entries)."""
    profile = get_billing_profile(session, tenant)
    return {
        "name": tenant.name,
        "slug": tenant.slug,
        "seller": str(tenant.seller.public_id) if tenant.seller else None,
        "currency": tenant.currency,
        "language": profile.language if profile else None,
        "archived_at": tenant.archived_at.isoformat() if tenant.archived_at else None,
    }


def _save_slug(session: Session, change: Callable[[], None]) -> None:
    """Make ``change`` and flush it in a savepoint: a slug a concurrent request has taken in
    the meantime is a field error, and the transaction stays usable.

    The savepoint begins before the change: beginning one flushes what is pending, and a
    unique violation in that flush would fail the whole transaction, not the savepoint.
    """
    savepoint = session.begin_nested()
    change()
    try:
        session.flush()
    except IntegrityError:
        savepoint.rollback()
        raise CompanyInvalid({"slug": N_("Another company already has this slug.")}) from None
    savepoint.commit()


def _insert_company(session: Session, tenant: Tenant, *, derived: bool) -> None:
    """Insert the new company. A slug derived from the name that a concurrent creation has
    taken meanwhile moves on to the next free one (the caller asked for no slug, so it is
    no error of theirs); a slug the caller chose stays a field error."""
    for _attempt in range(SLUG_ATTEMPTS):
        try:
            _save_slug(session, lambda: session.add(tenant))
            return
        except CompanyInvalid:
            if not derived:
                raise
        # The rollback took the company out of the session again; the winner has committed
        # (our insert waited for it), so the next free slug is seen.
        tenant.slug = _free_slug(session, slugify(tenant.name))
    raise CompanyInvalid({"slug": N_("Another company already has this slug.")})


def create_company(session: Session, data: Mapping[str, Any], actor: Actor) -> Tenant:
    """A new company from ``data``: ``name``, ``seller`` (public id) and ``billing_profile``
    are required; ``slug`` is derived from the name and ``currency`` taken from the seller
    when absent; ``language`` defaults to English; ``billing_settings`` may give some or
    all settings.

    :raise CompanyInvalid: with every problem at once; nothing is written then.
    """
    if not isinstance(data, Mapping):
        raise CompanyInvalid({"body": N_("Send the company's fields.")})
    clean, errors = _check_top(session, data, None)
    if data.get("billing_profile") is None:
        errors["billing_profile"] = N_("Enter the company's billing address and e-mail.")
    profile_values = _check_profile(data, None, clean.get("language"), errors)
    settings_values = _check_settings(data, None, session, errors)
    if errors:
        raise CompanyInvalid(errors)
    tenant = Tenant(
        name=clean["name"],
        slug=clean["slug"],
        # By id, not the relationship: the seller's list of companies would hold it while
        # the savepoint that inserts it begins (and flushes).
        seller_id=clean["seller"].id,
        currency=clean["currency"],
        is_active=True,
    )
    _insert_company(session, tenant, derived=_text(data.get("slug")) is None)
    profile = upsert_billing_profile(session, tenant, profile_values or {})
    profile.currency = tenant.currency
    session.flush()
    record_audit(
        session, actor, "company.create", "company", str(tenant.public_id), tenant_id=tenant.id,
        after=company_dict(session, tenant),
    )  # fmt: skip
    if settings_values is not None:
        update_company_settings(session, tenant, settings_values, actor)
    return tenant


def update_company(
    session: Session, tenant: Tenant, data: Mapping[str, Any], actor: Actor
) -> Tenant:
    """Change the fields in ``data`` (others keep their value; ``billing_profile`` and
    ``billing_settings`` may give only some of their fields). Locks the company's row.

    :raise CompanyInvalid: nothing is written then.
    :raise AdminActionRefused: ``archived`` for an archived company.
    """
    if not isinstance(data, Mapping):
        raise CompanyInvalid({"body": N_("Send the company's fields.")})
    lock(session, tenant)
    if tenant.archived_at is not None:
        raise AdminActionRefused(
            "archived", N_("The company is archived: its data can be read, not changed.")
        )
    before = company_dict(session, tenant)
    clean, errors = _check_top(session, data, tenant)
    current_profile = get_billing_profile(session, tenant)
    profile_values = _check_profile(data, current_profile, clean.get("language"), errors)
    settings_values = _check_settings(data, tenant, session, errors)
    if errors:
        raise CompanyInvalid(errors)

    def change() -> None:
        for name in ("name", "slug", "seller", "currency"):
            if name in clean:
                setattr(tenant, name, clean[name])

    _save_slug(session, change)
    if profile_values is not None:
        if current_profile is not None:
            lock(session, current_profile)
        profile = upsert_billing_profile(session, tenant, profile_values)
        profile.currency = tenant.currency
    elif current_profile is not None and "currency" in clean:
        current_profile.currency = tenant.currency
    session.flush()
    after = company_dict(session, tenant)
    if after != before or profile_values is not None:
        record_audit(
            session, actor, "company.update", "company", str(tenant.public_id),
            tenant_id=tenant.id, before=before,
            after={**after, **({"billing_profile": _jsonable(profile_values)}
                               if profile_values is not None else {})},
        )  # fmt: skip
    if settings_values is not None:
        update_company_settings(session, tenant, settings_values, actor)
    return tenant


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v if isinstance(v, str | int | bool | list | None) else str(v)
            for k, v in values.items()}  # fmt: skip


def archive_company(session: Session, tenant: Tenant, actor: Actor) -> Tenant:
    """Archive the company: no new invoices; its invoices and records stay readable.
    Locks the company's row.

    :raise AdminActionRefused: ``already_archived``.
    """
    lock(session, tenant)
    if tenant.archived_at is not None:
        raise AdminActionRefused("already_archived", N_("The company is already archived."))
    tenant.archived_at = utcnow()
    session.flush()
    record_audit(
        session, actor, "company.archive", "company", str(tenant.public_id), tenant_id=tenant.id,
        before={"archived_at": None}, after={"archived_at": tenant.archived_at.isoformat()},
    )  # fmt: skip
    return tenant


def list_companies(session: Session, *, archived: bool | None = None) -> Sequence[Tenant]:
    """Companies by name; ``archived`` True/False keeps only archived/current ones."""
    query = sa.select(Tenant).order_by(Tenant.name, Tenant.id)
    if archived is True:
        query = query.where(Tenant.archived_at.is_not(None))
    elif archived is False:
        query = query.where(Tenant.archived_at.is_(None))
    return session.scalars(query).all()


__all__ = [
    "COMPANY_FIELDS",
    "SETTINGS_FIELDS",
    "CompanyInvalid",
    "archive_company",
    "company_dict",
    "create_company",
    "find_seller",
    "company_list",
    "list_companies",
    "slugify",
    "update_company",
]


def company_list(
    session: Session,
    *,
    where: sa.ColumnElement[bool] | None = None,
    order_by: Sequence[sa.ColumnElement] = (),
    limit: int,
    offset: int = 0,
) -> tuple[list[tuple[Tenant, Seller, BillingProfile | None]], int]:
    """One page of companies with their seller and billing profile, and the total;
    filtering, counting, sorting and paging run in SQL (the company id breaks ties).

    :param where: a condition over ``Tenant``, ``Seller`` and ``BillingProfile`` columns.
    """
    query = (
        sa.select(Tenant, Seller, BillingProfile)
        .join(Seller, Seller.id == Tenant.seller_id)
        .outerjoin(BillingProfile, BillingProfile.tenant_id == Tenant.id)
    )
    if where is not None:
        query = query.where(where)
    total = session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    order = list(order_by) or [Tenant.name.asc()]
    rows = session.execute(query.order_by(*order, Tenant.id.asc()).limit(limit).offset(offset))
    return [(tenant, seller, profile) for tenant, seller, profile in rows], int(total)
