# Models built at import (create_model, Literal of computed values) are beyond what mypy
# reads as types; pydantic checks them when it builds them.
# mypy: disable-error-code="valid-type,call-overload,arg-type,misc,assignment"
# mypy: disable-error-code="maybe-unrecognized-str-typeform"
"""Models of the console's setup operations on sellers and companies (setup_parties.py).

The schema states what JSON Schema can: types, lengths, countries, currencies, languages,
the slug's shape. What it cannot (VAT ID and IBAN check digits, a valid e-mail address, a
number format numbering can render, an existing seller, a free slug) the services check;
their refusals are 400s (a taken slug a 409) located at the property, as for settings.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    StrictBool,
    StringConstraints,
    Tag,
    create_model,
)

from portal.api.console.query import NO_NUL, json_int
from portal.api.console.schemas import (
    SETTING_VALUES,
    ActionResponse,
    CollectionResponse,
    ResourceResponse,
)
from portal.domain.money import known_currencies
from portal.domain.tax import COUNTRY_CODES
from portal.tenancy.companies import SLUG_MAX
from portal.tenancy.logos import LOGO_MAX_BYTES
from portal.tenancy.models import EInvoiceFormat
from portal.tenancy.profiles import DEFAULT_LANGUAGES, MAX_CC_EMAILS
from portal.tenancy.sellers import TEXT_FIELDS

_STRICT = ConfigDict(strict=True, extra="forbid")
#: Text with at least one character that is not white space (and no NUL).
_FILLED = r"^[^\x00]*[^\x00\s][^\x00]*$"


def text(max_length: int, *, filled: bool = False) -> Any:
    return Annotated[
        str, StringConstraints(max_length=max_length, pattern=_FILLED if filled else NO_NUL)
    ]


Country = Literal[tuple(sorted(COUNTRY_CODES))]
Currency = Literal[tuple(sorted(known_currencies()))]
Language = Literal[tuple(DEFAULT_LANGUAGES)]
EInvoice = Literal[tuple(f.value for f in EInvoiceFormat)]
Slug = Annotated[str, StringConstraints(max_length=SLUG_MAX, pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$")]
Uid = Annotated[str, Field(json_schema_extra={"format": "uuid"}, max_length=36)]
Terms = json_int(0, 365)


# --- sellers -----------------------------------------------------------------------------------

#: API property -> seller column, in the resource's order.
SELLER_PROPERTIES: dict[str, str] = {
    "legalName": "legal_name",
    "tradingName": "trading_name",
    "addressLine1": "address_line1",
    "addressLine2": "address_line2",
    "postalCode": "postal_code",
    "city": "city",
    "region": "region",
    "country": "country",
    "vatId": "vat_id",
    "taxNumber": "tax_number",
    "registration": "registration",
    "email": "email",
    "phone": "phone",
    "website": "website",
    "iban": "iban",
    "bic": "bic",
    "bankName": "bank_name",
    "invoiceNumberFormat": "invoice_number_format",
    "creditNoteNumberFormat": "credit_note_number_format",
    "defaultCurrency": "default_currency",
    "defaultPaymentTermsDays": "default_payment_terms_days",
    "invoiceFooter": "invoice_footer",
    "emailSenderName": "email_sender_name",
}
_SELLER_REQUIRED = ("legalName", "addressLine1", "postalCode", "city", "country", "email")
_SELLER_OTHER_TEXT = {
    "vat_id": 30,
    "email": 254,
    "iban": 42,
    "bic": 11,
    "invoice_number_format": 60,
    "credit_note_number_format": 60,
}


def _seller_value(name: str) -> Any:
    column = SELLER_PROPERTIES[name]
    if name == "country":
        return Country
    if name == "defaultCurrency":
        return Currency
    if name == "defaultPaymentTermsDays":
        return Terms
    limit = TEXT_FIELDS.get(column) or _SELLER_OTHER_TEXT[column]
    return text(limit, filled=name in _SELLER_REQUIRED)


#: The value each editable seller property takes (null clears an optional one).
SELLER_VALUES: dict[str, Any] = {
    name: _seller_value(name) if name in _SELLER_REQUIRED or name in (
        "invoiceNumberFormat", "creditNoteNumberFormat", "defaultCurrency",
        "defaultPaymentTermsDays",
    ) else _seller_value(name) | None
    for name in SELLER_PROPERTIES
}  # fmt: skip
SELLER_NULLABLE = tuple(
    name for name in SELLER_PROPERTIES if name not in _SELLER_REQUIRED and name not in (
        "invoiceNumberFormat", "creditNoteNumberFormat", "defaultCurrency",
        "defaultPaymentTermsDays",
    )
)  # fmt: skip


class SellerLogo(BaseModel):
    mediaType: Literal["image/png", "image/svg+xml"]
    bytes: int = Field(description="Size of the stored (cleaned) file.")
    sha256: str = Field(description="SHA-256 of the stored file, hex.")
    url: str = Field(description="Downloads the stored file.")


def _seller_resource() -> type[BaseModel]:
    fields: dict[str, Any] = {
        "sellerUid": (Uid, ...),
        **{name: (value, ...) for name, value in SELLER_VALUES.items()},
        "logo": (SellerLogo | None, ...),
        "companies": (int, Field(..., description="Companies this seller bills.")),
        "createdAt": (dt.datetime, ...),
        "updatedAt": (dt.datetime, ...),
    }
    return create_model(
        "SellerResource",
        __doc__="One of the operator's legal entities: what invoices finalized from now on "
        "print as the seller.",
        **fields,
    )


SellerResource = _seller_resource()


def _seller_create() -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, value in SELLER_VALUES.items():
        if name in _SELLER_REQUIRED:
            fields[name] = (value, ...)
        elif name in SELLER_NULLABLE:
            fields[name] = (value, None)
        else:  # number formats, currency and terms have defaults
            fields[name] = (value | None, None)
    return create_model(
        "SellerCreate",
        __config__=_STRICT,
        __doc__="A new seller; number formats default to INV-{year}-{seq:05d} and "
        "CN-{year}-{seq:05d}, the currency to EUR, payment terms to 14 days.",
        **fields,
    )


SellerCreate = _seller_create()


# --- companies ---------------------------------------------------------------------------------

#: API property of the billing profile -> its field (ProfileInput, BillingProfile column).
PROFILE_PROPERTIES: dict[str, str] = {
    "companyName": "company_name",
    "addressLine1": "address_line1",
    "addressLine2": "address_line2",
    "postalCode": "postal_code",
    "city": "city",
    "region": "region",
    "country": "country",
    "vatId": "vat_id",
    "taxExempt": "tax_exempt",
    "taxExemptionReason": "tax_exemption_reason",
    "billingEmail": "billing_email",
    "ccEmails": "cc_emails",
    "contactName": "contact_name",
    "phone": "phone",
    "buyerReference": "buyer_reference",
    "purchaseOrder": "purchase_order",
    "peppolEndpointId": "peppol_endpoint_id",
    "peppolEndpointScheme": "peppol_endpoint_scheme",
    "einvoiceFormat": "einvoice_format",
}
_PROFILE_REQUIRED = ("companyName", "addressLine1", "postalCode", "city", "country",
                     "billingEmail")  # fmt: skip
_PROFILE_LENGTHS = {
    "companyName": 200, "addressLine1": 200, "addressLine2": 200, "postalCode": 20,
    "city": 100, "region": 100, "vatId": 30, "taxExemptionReason": 200, "billingEmail": 254,
    "contactName": 200, "phone": 40, "buyerReference": 100, "purchaseOrder": 100,
    "peppolEndpointId": 100,
}  # fmt: skip


def _profile_value(name: str) -> Any:
    if name == "country":
        return Country
    if name == "taxExempt":
        return StrictBool
    if name == "ccEmails":
        return Annotated[list[text(254, filled=True)], Field(max_length=MAX_CC_EMAILS)]
    if name == "einvoiceFormat":
        return EInvoice
    if name == "peppolEndpointScheme":
        return Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")]
    return text(_PROFILE_LENGTHS[name], filled=name in _PROFILE_REQUIRED)


#: The value each billing profile property takes (null clears an optional one).
PROFILE_VALUES: dict[str, Any] = {
    name: _profile_value(name)
    if name in (*_PROFILE_REQUIRED, "taxExempt", "ccEmails", "einvoiceFormat")
    else _profile_value(name) | None
    for name in PROFILE_PROPERTIES
}
PROFILE_NULLABLE = tuple(
    name
    for name in PROFILE_PROPERTIES
    if name not in (*_PROFILE_REQUIRED, "taxExempt", "ccEmails", "einvoiceFormat")
)

BillingProfileResource = create_model(
    "CompanyBillingProfile",
    __doc__="Who the company's invoices are addressed to (the tenant's billing profile); "
    "paymentTermsDays is the seller's default when the profile was made.",
    **{name: (value, ...) for name, value in PROFILE_VALUES.items()},
    paymentTermsDays=(int, ...),
)
BillingProfileInput = create_model(
    "CompanyBillingProfileInput",
    __config__=_STRICT,
    __doc__="The billing profile of a new company, checked as the tenant's profile form is.",
    **{
        name: (value, ...) if name in _PROFILE_REQUIRED else (value | None, None)
        for name, value in PROFILE_VALUES.items()
    },
)
BillingSettingsInput = create_model(
    "CompanyBillingSettingsInput",
    __config__=_STRICT,
    __doc__="Billing settings of a new company (as in the settings resource); the defaults "
    "for the others.",
    **{name: (value | None, None) for name, value in SETTING_VALUES.items()},
)


class CompanyResource(BaseModel):
    companyUid: str = Field(json_schema_extra={"format": "uuid"})
    name: str
    slug: str
    sellerUid: str = Field(json_schema_extra={"format": "uuid"})
    sellerName: str
    currency: str = Field(description="ISO 4217; every invoice of the company uses it.")
    language: Language | None = Field(description="Language of invoices and e-mails.")
    archived: bool
    archivedAt: dt.datetime | None
    billingProfile: BillingProfileResource | None
    createdAt: dt.datetime


class CompanyCreate(BaseModel):
    """A new company. ``slug`` is made from the name when omitted (``-2``… when taken),
    ``currency`` is the seller's default currency when omitted, ``language`` English."""

    model_config = _STRICT

    name: text(200, filled=True)
    slug: Slug | None = None
    sellerUid: Uid
    currency: Currency | None = None
    language: Language | None = None
    billingProfile: BillingProfileInput
    billingSettings: BillingSettingsInput | None = None


#: Editable company properties (JSON pointers) -> the value they take.
COMPANY_VALUES: dict[str, Any] = {
    "/name": text(200, filled=True),
    "/slug": Slug,
    "/sellerUid": Uid,
    "/currency": Currency,
    "/language": Language,
    **{f"/billingProfile/{name}": value for name, value in PROFILE_VALUES.items()},
}
COMPANY_NULLABLE = tuple(f"/billingProfile/{name}" for name in PROFILE_NULLABLE)
COMPANY_READ_ONLY = ("/companyUid", "/sellerName", "/archived", "/archivedAt", "/createdAt",
                     "/billingProfile/paymentTermsDays")  # fmt: skip


# --- selections and answers ------------------------------------------------------------------


def _optional_model(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", None)
    if args and type(None) in args:
        models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
    return None


def selection_of(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` with every property optional, nested (optional) models alike: what
    ``select`` returns."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        nested = _optional_model(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = selection_of(annotation)
        elif nested is not None:
            annotation = selection_of(nested) | None
        fields[name] = (annotation, Field(None, description=info.description))
    return create_model(
        f"{model.__name__}Selection",
        __doc__=f"The properties of {model.__name__} named by select (each optional).",
        **fields,
    )


SellerOrSelection = Union[SellerResource, selection_of(SellerResource)]  # noqa: UP007
CompanyOrSelection = Union[CompanyResource, selection_of(CompanyResource)]  # noqa: UP007


class SellerCollection(CollectionResponse[SellerOrSelection]):
    pass


class SellerAnswer(ResourceResponse[SellerOrSelection]):
    pass


class SellerChanged(ActionResponse[SellerResource]):
    pass


class CompanyCollection(CollectionResponse[CompanyOrSelection]):
    pass


class CompanyAnswer(ResourceResponse[CompanyOrSelection]):
    pass


class CompanyChanged(ActionResponse[CompanyResource]):
    pass


# --- JSON Patch of a seller or a company -------------------------------------------------------


def patch_model(
    prefix: str, values: dict[str, Any], nullable: tuple[str, ...], read_only: tuple[str, ...]
) -> type[RootModel]:
    """An RFC 6902 JSON Patch of a resource: add or replace of an editable property (with a
    value it takes), remove of one that may be empty, test of any property."""
    models: list[Any] = []
    for pointer, value in values.items():
        title = "".join(part[:1].upper() + part[1:] for part in pointer.split("/"))
        model = create_model(
            f"{prefix}Set{title}",
            __config__=_STRICT,
            __doc__=f"add or replace {pointer}.",
            op=(Literal["add", "replace"], ...),
            path=(Literal[pointer], ...),
            value=(value, ...),
        )
        models.append(Annotated[model, Tag(f"set:{pointer}")])
    remove = create_model(
        f"{prefix}Remove",
        __config__=_STRICT,
        __doc__="remove clears a property that may be empty (as replace with null does).",
        op=(Literal["remove"], ...),
        path=(Literal[nullable], ...),
    )
    models.append(Annotated[remove, Tag("remove")])
    scalar = (
        json_int(-(2**62), 2**62)
        | StrictBool
        | Annotated[str, StringConstraints(max_length=2000, pattern=NO_NUL)]
        | None
    )
    test = create_model(
        f"{prefix}Test",
        __config__=_STRICT,
        __doc__="test that a property has this value (409 when it has not).",
        op=(Literal["test"], ...),
        path=(Literal[(*read_only, *values)], ...),
        value=(scalar, ...),
    )
    models.append(Annotated[test, Tag("test")])

    def tag(item: Any) -> str | None:
        if isinstance(item, BaseModel):
            item = {"op": getattr(item, "op", None), "path": getattr(item, "path", None)}
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            return None
        op, path = item.get("op"), item["path"]
        if op in ("add", "replace") and path in values:
            return f"set:{path}"
        if op == "remove" and path in nullable:
            return "remove"
        if op == "test":
            return "test"
        return None

    operation = Annotated[
        Union[tuple(models)],  # noqa: UP007
        Discriminator(
            tag,
            custom_error_type="invalid_patch",
            custom_error_message=(
                "Each operation is add or replace of an editable property, remove of one that "
                "may be empty, or test of any property; "
                f"{', '.join(read_only)} are read-only."
            ),
        ),
    ]
    return create_model(
        f"{prefix}Patch",
        __base__=RootModel[Annotated[list[operation], Field(max_length=100)]],
        __doc__=f"An RFC 6902 JSON Patch of the {prefix.lower()}: 0 to 100 operations, all or "
        "nothing.",
    )


SellerPatch = patch_model(
    "Seller",
    {f"/{name}": value for name, value in SELLER_VALUES.items()},
    tuple(f"/{name}" for name in SELLER_NULLABLE),
    ("/sellerUid", "/companies", "/createdAt", "/updatedAt"),
)
setattr(SellerPatch, "media_types", ("application/json", "application/json-patch+json"))  # noqa: B010
CompanyPatch = patch_model("Company", COMPANY_VALUES, COMPANY_NULLABLE, COMPANY_READ_ONLY)
setattr(CompanyPatch, "media_types", ("application/json", "application/json-patch+json"))  # noqa: B010


class LogoUpload(RootModel[bytes]):
    """The image itself: a PNG (decoded and written again) or an SVG (sanitized), at most
    512 KB."""

    media_types: ClassVar[tuple[str, ...]] = ("image/png", "image/svg+xml")
    model_config = ConfigDict(json_schema_extra={"maxLength": LOGO_MAX_BYTES})
