"""Console setup of the parties: sellers (``/api/v1/organizations/sellers``) and companies
(``/api/v1/organizations/companies``), with the console's envelope, errors, idempotency,
collections and OpenAPI.

Companies are operations of the console surface itself (their path is its prefix). Sellers
live beside it, under their own prefix, as a surface built from the same parts: admin
tokens, ``{data, meta}`` / ``{errors, data, meta}``, 520 for server errors, X-Request-id,
filter/sort/select/limit/offset, and its own OpenAPI document
(``/api/v1/organizations/sellers/openapi.json``). A seller's logo is sent as the image
itself: ``PUT …/sellers/{sellerUid}/logo`` with ``Content-Type: image/png`` or
``image/svg+xml``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa
from flask import Response, request, url_for
from pydantic import ValidationError

from portal.api.console.collections import selected_paths, selection
from portal.api.console.common import company_or_404, not_found, token_actor
from portal.api.console.docs import DOC_EXTRAS
from portal.api.console.envelope import (
    check_request,
    console_envelope,
    console_error_body,
    console_status,
    echo_headers,
    listing,
    one,
    wire,
)
from portal.api.console.errors import ERRORS, refused
from portal.api.console.idempotency import idempotent
from portal.api.console.jsonpatch import apply_patch
from portal.api.console.query import Field, QueryLanguage, pointer_parts
from portal.api.console.schemas import ConsoleErrorResponse, collection_query, select_query
from portal.api.console.serializers import SETTINGS_COLUMNS
from portal.api.console.setup_schemas import (
    COMPANY_VALUES,
    PROFILE_PROPERTIES,
    SELLER_PROPERTIES,
    CompanyAnswer,
    CompanyChanged,
    CompanyCollection,
    CompanyCreate,
    CompanyPatch,
    CompanyResource,
    LogoUpload,
    SellerAnswer,
    SellerChanged,
    SellerCollection,
    SellerCreate,
    SellerPatch,
    SellerResource,
)
from portal.api.console.views import api as console_api
from portal.api.core import (
    Api,
    ApiError,
    error_entry,
    file_response,
    read_body,
    request_json,
)
from portal.api.openapi import register_docs
from portal.catalog.settings import SettingsInvalid
from portal.db import lock
from portal.extensions import db
from portal.ops.audit import AdminActionRefused
from portal.tenancy.companies import (
    CompanyInvalid,
    archive_company,
    company_list,
    create_company,
    update_company,
)
from portal.tenancy.models import BillingProfile, Seller, Tenant, TokenKind
from portal.tenancy.profiles import get_billing_profile
from portal.tenancy.sellers import (
    SellerInvalid,
    create_seller,
    seller_by_public_id,
    seller_list,
    set_seller_logo,
    update_seller,
)

SELLERS_PREFIX = "/api/v1/organizations/sellers"
_PATCH_TYPES = ("application/json", "application/json-patch+json")
_SELLER_CAMEL = {column: name for name, column in SELLER_PROPERTIES.items()}
_PROFILE_CAMEL = {column: name for name, column in PROFILE_PROPERTIES.items()}
_SETTINGS_CAMEL = {column: name for name, (column, _) in SETTINGS_COLUMNS.items()}
_TOP_CAMEL = {"name": "name", "slug": "slug", "seller": "sellerUid", "currency": "currency",
              "language": "language", "billing_profile": "billingProfile",
              "billing_settings": "billingSettings", "body": ""}  # fmt: skip
_SLUG_TAKEN = "Another company already has this slug."


# --- errors --------------------------------------------------------------------------------


def seller_invalid(exc: SellerInvalid) -> ApiError:
    """A seller the services refuse: 400, one error per property (``/vatId``)."""
    return ApiError(
        400,
        [
            error_entry(
                ["body", "" if field == "logo" else f"/{_SELLER_CAMEL.get(field, field)}"],
                message,
                "invalid_logo" if field == "logo" else "invalid_value",
            )
            for field, message in exc.errors.items()
        ],
    )


def _company_pointer(field: str) -> str:
    head, _, rest = field.partition(".")
    if head == "billing_profile" and rest:
        return f"/billingProfile/{_PROFILE_CAMEL.get(rest, rest)}"
    if head == "billing_settings" and rest:
        return f"/billingSettings/{_SETTINGS_CAMEL.get(rest, rest)}"
    camel = _TOP_CAMEL.get(head, head)
    return f"/{camel}" if camel else ""


def company_invalid(exc: CompanyInvalid) -> ApiError:
    """A company the services refuse: 400 per property; a slug already taken is a 409."""
    taken = exc.errors.get("slug") == _SLUG_TAKEN
    return ApiError(
        409 if taken and len(exc.errors) == 1 else 400,
        [
            error_entry(
                ["body", _company_pointer(field)],
                message,
                "slug_taken" if field == "slug" and message == _SLUG_TAKEN else "invalid_value",
            )
            for field, message in exc.errors.items()
        ],
    )


def _settings_invalid(exc: SettingsInvalid) -> ApiError:
    return company_invalid(
        CompanyInvalid({f"billing_settings.{k}": v for k, v in exc.errors.items()})
    )


# --- the sellers surface ---------------------------------------------------------------------

api = Api(
    "api_console_sellers",
    __name__,
    SELLERS_PREFIX,
    title="Provider console: sellers",
    area="admin",
    error_body=console_error_body,
    error_status=console_status,
    envelope=console_envelope,
    token_kind=TokenKind.ADMIN,
    error_schema=ConsoleErrorResponse,
    around=idempotent,
    errors={**ERRORS, SellerInvalid: seller_invalid},
)
bp = api.blueprint
bp.before_request(check_request)
bp.after_request(echo_headers)


def _seller(seller_uid: str) -> Seller:
    seller = seller_by_public_id(db.session, seller_uid)
    if seller is None:
        raise not_found(["path", "sellerUid"], "Seller")
    return seller


def seller_resource(seller: Seller, companies: int | None = None) -> dict[str, Any]:
    """The seller as the API shows it (camelCase; the logo as its size, hash and URL)."""
    if companies is None:
        companies = db.session.scalar(
            sa.select(sa.func.count()).where(Tenant.seller_id == seller.id)
        )
    resource: dict[str, Any] = {"sellerUid": str(seller.public_id)}
    for name, column in SELLER_PROPERTIES.items():
        resource[name] = getattr(seller, column)
    resource["logo"] = (
        {
            "mediaType": seller.logo_mime,
            "bytes": len(seller.logo),
            "sha256": seller.logo_sha256,
            "url": url_for("api_console_sellers.get_seller_logo", sellerUid=seller.public_id),
        }
        if seller.logo
        else None
    )
    resource["companies"] = int(companies or 0)
    resource["createdAt"] = seller.created_at
    resource["updatedAt"] = seller.updated_at
    return resource


SELLERS = QueryLanguage(
    "Seller",
    {
        "/sellerUid": Field(Seller.public_id, "uuid"),
        "/legalName": Field(Seller.legal_name, "string"),
        "/tradingName": Field(Seller.trading_name, "string"),
        "/city": Field(Seller.city, "string"),
        "/country": Field(Seller.country, "string"),
        "/vatId": Field(Seller.vat_id, "string"),
        "/email": Field(Seller.email, "string"),
        "/defaultCurrency": Field(Seller.default_currency, "string"),
        # Cast: filters take 64-bit values, the column is 32-bit (see collections.py).
        "/defaultPaymentTermsDays": Field(
            sa.cast(Seller.default_payment_terms_days, sa.BigInteger), "integer"
        ),
        "/createdAt": Field(Seller.created_at, "datetime"),
        "/updatedAt": Field(Seller.updated_at, "datetime"),
    },
    SellerResource,
)
_SELLER_SELECT = [{"propertyPath": "/legalName"}, {"propertyPath": "/vatId"}]
SellerCollectionQuery = collection_query(
    "SellerCollectionQuery",
    SELLERS,
    {
        "filter": [{"property": "/country", "operation": "equals", "value": "DE"}],
        "sort": [{"property": "/legalName", "direction": "ascending"}],
        "select": _SELLER_SELECT,
    },
)
SellerSelectQuery = select_query("SellerSelectQuery", SELLERS, _SELLER_SELECT)


@api.operation(
    "GET", "", "Get Sellers", query=SellerCollectionQuery, response=SellerCollection,
    tags=["Sellers"],
)  # fmt: skip
def get_sellers(query):
    """The operator's sellers, with filter, sort, select, limit and offset."""
    asked = selection(query, SELLERS)
    rows, total = seller_list(
        db.session, where=asked.where, order_by=asked.order_by, limit=query.limit,
        offset=query.offset,
    )  # fmt: skip
    return listing([seller_resource(s, n) for s, n in rows], total, asked.paths, query.offset)


def _created(resource: dict, location: str) -> Response:
    response = console_envelope(wire(resource), 201, errors=[])
    response.headers["Location"] = location
    return response


@api.operation(
    "POST", "", "Create Seller", body=SellerCreate, response=SellerChanged, status=201,
    scope="write", tags=["Sellers"],
)  # fmt: skip
def post_seller(body):
    """Create a seller. The services check what the schema cannot: VAT ID (for the
    country) and IBAN check digits, the BIC, the e-mail address, and number formats that
    numbering can render (both {year} and {seq}); each refusal is a 400 at its property."""
    data = {SELLER_PROPERTIES[k]: v for k, v in body.model_dump().items() if v is not None}
    seller = create_seller(db.session, data, token_actor())
    return _created(
        seller_resource(seller, 0),
        url_for("api_console_sellers.get_seller", sellerUid=seller.public_id),
    )


@api.operation(
    "GET", "/<sellerUid>", "Get Seller", query=SellerSelectQuery, response=SellerAnswer,
    tags=["Sellers"], errors=(404,),
)  # fmt: skip
def get_seller(sellerUid: str, query):
    """One seller."""
    return one(seller_resource(_seller(sellerUid)), selected_paths(query.select, SELLERS))


def _patch_body(model) -> list[dict]:
    patch = request_json(_PATCH_TYPES)
    try:
        checked = model.model_validate(patch, strict=True)
    except ValidationError as exc:
        raise ApiError(
            400,
            [
                error_entry(["body", *err["loc"]], err["msg"], err["type"])
                for err in exc.errors(include_url=False, include_context=False, include_input=False)
            ],
        ) from None
    return checked.model_dump(mode="json")


def _value_at(document: Any, pointer: str) -> Any:
    for part in pointer_parts(pointer):
        if not isinstance(document, dict) or part not in document:
            return None
        document = document[part]
    return document


def _changes(current: dict, patch: list[dict], editable) -> dict[str, Any]:
    """Editable pointer -> new value, for each property the patch changes."""
    patched = apply_patch(current, patch)
    return {
        pointer: _value_at(patched, pointer)
        for pointer in editable
        if _value_at(patched, pointer) != _value_at(current, pointer)
    }


@api.operation(
    "PATCH", "/<sellerUid>", "Modify Seller", query=SellerSelectQuery, response=SellerAnswer,
    scope="write", tags=["Sellers"], errors=(404, 409),
)  # fmt: skip
def patch_seller(sellerUid: str, query):
    """Change a seller with an RFC 6902 JSON Patch (add, replace, remove, test), as
    application/json or application/json-patch+json; all or nothing (a failing test is a
    409). Only invoices finalized afterwards show the change: issued ones keep the seller
    as they were issued."""
    # Locked before the patch is applied: its ``test`` operations compare against the row
    # as it is when this change is made, not as it was read before a concurrent one.
    seller = lock(db.session, _seller(sellerUid))
    current = wire(seller_resource(seller))
    changes = _changes(current, _patch_body(SellerPatch), [f"/{n}" for n in SELLER_PROPERTIES])
    if changes:
        data = {SELLER_PROPERTIES[pointer[1:]]: value for pointer, value in changes.items()}
        update_seller(db.session, seller, data, token_actor())
    return one(seller_resource(seller), selected_paths(query.select, SELLERS))


@api.operation(
    "PUT", "/<sellerUid>/logo", "Upload Seller Logo", response=SellerChanged, scope="write",
    tags=["Sellers"], errors=(404,),
)  # fmt: skip
def put_seller_logo(sellerUid: str):
    """Replace the seller's logo with the request body: a PNG (``Content-Type: image/png``;
    decoded, at most 4096 × 4096 pixels, and written again) or an SVG
    (``image/svg+xml``; rebuilt from an allow-list: no scripts, event handlers,
    foreignObject, embedded images, style sheets or outside references; no DTD), at most
    512 KB. The answer's ``logo`` describes the stored file."""
    seller = _seller(sellerUid)
    if request.mimetype not in LogoUpload.media_types:
        raise ApiError(
            400,
            [
                error_entry(
                    ["header", "Content-Type"],
                    "Send the image as image/png or image/svg+xml.",
                    "content_type",
                )
            ],
        )
    set_seller_logo(db.session, seller, read_body(), token_actor())
    return console_envelope(wire(seller_resource(seller)), errors=[])


@api.operation(
    "DELETE", "/<sellerUid>/logo", "Remove Seller Logo", response=SellerChanged,
    scope="write", tags=["Sellers"], errors=(404,),
)  # fmt: skip
def delete_seller_logo(sellerUid: str):
    """Remove the seller's logo: documents issued from now on show the name only."""
    seller = _seller(sellerUid)
    set_seller_logo(db.session, seller, None, token_actor())
    return console_envelope(wire(seller_resource(seller)), errors=[])


@api.operation(
    "GET", "/<sellerUid>/logo", "Download Seller Logo", files=("image/png", "image/svg+xml"),
    tags=["Sellers"], errors=(404,),
)  # fmt: skip
def get_seller_logo(sellerUid: str):
    """The stored (cleaned) logo file."""
    seller = _seller(sellerUid)
    if not seller.logo or not seller.logo_mime:
        raise not_found(["path", "sellerUid"], "Logo")
    extension = "png" if seller.logo_mime == "image/png" else "svg"
    response = file_response(seller.logo, seller.logo_mime, f"logo-{seller.public_id}.{extension}")
    # Opened directly, an SVG is a document: it may show itself and nothing else.
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'unsafe-inline'; sandbox"
    )
    return response


register_docs(
    api,
    dataclasses.replace(
        DOC_EXTRAS,
        description=(
            "The operator's sellers, beside the provider console (the same envelope, errors, "
            "admin tokens, X-Request-id idempotency and collections). "
            + (DOC_EXTRAS.description or "")
        ),
        path_params={
            **DOC_EXTRAS.path_params,
            "sellerUid": ({"type": "string", "format": "uuid"}, "Seller UID."),
        },
        bodies={"patch_seller": SellerPatch, "put_seller_logo": LogoUpload},
    ),
)


# --- companies, on the console surface ---------------------------------------------------------


def company_resource(tenant: Tenant, seller: Seller, profile: BillingProfile | None) -> dict:
    """The company as the API shows it, with its billing profile (camelCase)."""
    billing = None
    if profile is not None:
        billing = {name: getattr(profile, column) for name, column in PROFILE_PROPERTIES.items()}
        billing["einvoiceFormat"] = str(profile.einvoice_format)
        billing["ccEmails"] = list(profile.cc_emails or [])
        billing["taxExempt"] = bool(profile.tax_exempt)
        billing["paymentTermsDays"] = profile.payment_terms_days
    return {
        "companyUid": str(tenant.public_id),
        "name": tenant.name,
        "slug": tenant.slug,
        "sellerUid": str(seller.public_id),
        "sellerName": seller.legal_name,
        "currency": tenant.currency,
        "language": profile.language if profile is not None else None,
        "archived": tenant.archived_at is not None,
        "archivedAt": tenant.archived_at,
        "billingProfile": billing,
        "createdAt": tenant.created_at,
    }


def _company_answer(tenant: Tenant) -> dict:
    return company_resource(tenant, tenant.seller, get_billing_profile(db.session, tenant))


COMPANIES = QueryLanguage(
    "Company",
    {
        "/companyUid": Field(Tenant.public_id, "uuid"),
        "/name": Field(Tenant.name, "string"),
        "/slug": Field(Tenant.slug, "string"),
        "/sellerUid": Field(Seller.public_id, "uuid"),
        "/sellerName": Field(Seller.legal_name, "string"),
        "/currency": Field(Tenant.currency, "string"),
        "/language": Field(BillingProfile.language, "string"),
        "/archived": Field(Tenant.archived_at.is_not(None), "boolean"),
        "/archivedAt": Field(Tenant.archived_at, "datetime"),
        "/createdAt": Field(Tenant.created_at, "datetime"),
        "/billingProfile/country": Field(BillingProfile.country, "string"),
        "/billingProfile/city": Field(BillingProfile.city, "string"),
        "/billingProfile/billingEmail": Field(BillingProfile.billing_email, "string"),
    },
    CompanyResource,
)
_COMPANY_SELECT = [{"propertyPath": "/name"}, {"propertyPath": "/slug"}]
CompanyCollectionQuery = collection_query(
    "CompanyCollectionQuery",
    COMPANIES,
    {
        "filter": [{"property": "/archived", "operation": "equals", "value": False}],
        "sort": [{"property": "/name", "direction": "ascending"}],
        "select": _COMPANY_SELECT,
    },
)
CompanySelectQuery = select_query("CompanySelectQuery", COMPANIES, _COMPANY_SELECT)
_COMPANY_RAISES = {
    CompanyInvalid: company_invalid,
    SettingsInvalid: _settings_invalid,
    AdminActionRefused: refused(409, "path", "companyUid"),
}


@console_api.operation(
    "GET", "", "Get Companies", query=CompanyCollectionQuery, response=CompanyCollection,
    tags=["Companies"],
)  # fmt: skip
def get_companies(query):
    """Every company, archived ones too (filter ``/archived``), with filter, sort, select,
    limit and offset."""
    asked = selection(query, COMPANIES)
    rows, total = company_list(
        db.session, where=asked.where, order_by=asked.order_by, limit=query.limit,
        offset=query.offset,
    )  # fmt: skip
    resources = [company_resource(*row) for row in rows]
    return listing(resources, total, asked.paths, query.offset)


@console_api.operation(
    "POST", "", "Create Company", body=CompanyCreate, response=CompanyChanged, status=201,
    scope="write", tags=["Companies"], errors=(409,), raises=_COMPANY_RAISES,
)  # fmt: skip
def post_company(body):
    """Create a company billed by a seller, with its billing profile (checked as the
    tenant's own profile form checks it) and, optionally, billing settings. An unknown
    seller or a profile the rules refuse is a 400 at the property; a slug already taken
    is a 409."""
    values = body.model_dump()
    data: dict[str, Any] = {
        "name": values["name"],
        "seller": values["sellerUid"],
        "billing_profile": {
            PROFILE_PROPERTIES[k]: v for k, v in values["billingProfile"].items() if v is not None
        },
    }
    for name in ("slug", "currency", "language"):
        if values[name] is not None:
            data[name] = values[name]
    if values["billingSettings"] is not None:
        data["billing_settings"] = {
            SETTINGS_COLUMNS[k][0]: v for k, v in values["billingSettings"].items() if v is not None
        }
    tenant = create_company(db.session, data, token_actor())
    return _created(
        _company_answer(tenant), url_for("api_console.get_company", companyUid=tenant.public_id)
    )


@console_api.operation(
    "GET", "/<companyUid>", "Get Company", query=CompanySelectQuery, response=CompanyAnswer,
    tags=["Companies"], errors=(404,),
)  # fmt: skip
def get_company(companyUid: str, query):
    """One company (archived ones too: their history stays readable)."""
    return one(_company_answer(company_or_404(companyUid)), selected_paths(query.select, COMPANIES))


@console_api.operation(
    "PATCH", "/<companyUid>", "Modify Company", query=CompanySelectQuery,
    response=CompanyAnswer, scope="write", tags=["Companies"], errors=(404, 409),
    raises=_COMPANY_RAISES,
)  # fmt: skip
def patch_company(companyUid: str, query):
    """Change a company with an RFC 6902 JSON Patch (add, replace, remove, test) of its
    name, slug, sellerUid, currency, language and billingProfile properties; all or
    nothing. Billing settings change at …/billing/settings/. The currency cannot change
    once the company has invoices or subscriptions; an archived company is a 409."""
    # Locked (company, then profile, the services' order) before the patch's ``test``
    # operations compare against it.
    tenant = lock(db.session, company_or_404(companyUid))
    profile_row = get_billing_profile(db.session, tenant)
    if profile_row is not None:
        lock(db.session, profile_row)
    current = wire(_company_answer(tenant))
    changes = _changes(current, _patch_body(CompanyPatch), COMPANY_VALUES)
    if changes:
        data: dict[str, Any] = {}
        profile: dict[str, Any] = {}
        for pointer, value in changes.items():
            parts = pointer_parts(pointer)
            if parts[0] == "billingProfile":
                profile[PROFILE_PROPERTIES[parts[1]]] = value
            else:
                data[{"sellerUid": "seller"}.get(parts[0], parts[0])] = value
        if profile:
            data["billing_profile"] = profile
        update_company(db.session, tenant, data, token_actor())
    return one(_company_answer(tenant), selected_paths(query.select, COMPANIES))


@console_api.operation(
    "DELETE", "/<companyUid>", "Archive Company", response=CompanyChanged, scope="write",
    tags=["Companies"], errors=(404, 409), raises=_COMPANY_RAISES,
)  # fmt: skip
def delete_company(companyUid: str):
    """Archive the company: the invoice run and "generate now" skip it, nothing new is
    invoiced; its invoices, payments and records stay and can be read (GET still answers,
    with ``archived: true``). Archiving twice is a 409."""
    tenant = company_or_404(companyUid)
    archive_company(db.session, tenant, token_actor())
    return console_envelope(wire(_company_answer(tenant)), errors=[])
