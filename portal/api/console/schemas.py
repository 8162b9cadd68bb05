"""Models of the provider-console billing API (provider-console-billing-api.txt).

Resources use the reference's camelCase; money is integer minor units (``*Minor``) beside
``currency``; decimals are strings. Collections answer ``{data, meta: {pagingInfo}}``,
changes ``{errors, data, meta}``, errors ``{errors: [...], data: null, meta}``.

The models of query parameters, bodies and answers are the ones that validate requests and
the ones the OpenAPI document describes, so the two cannot disagree.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Generic, Literal, TypeVar, Union

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    RootModel,
    StrictBool,
    StringConstraints,
    Tag,
    WithJsonSchema,
    create_model,
)

from portal.api.console.query import (
    MAX_INTEGER,
    NO_NUL,
    QueryLanguage,
    clean_location,
    json_int,
    parse_date,
)

T = TypeVar("T")

#: Longest internal note (portal.catalog.settings.NOTES_MAX).
NOTES_MAX = 2000

_JSON = (
    "JSON in the query string (percent-encoded, like every query value); absent, empty or "
    "`null` means none."
)
_FILTER = (
    "Array of up to 10 FilterParameter, and-ed: a comparison `{property, operation, value}` "
    "or a group `{operation: and|or|not, items: [1 to 10 FilterParameter]}` (groups nest up "
    "to 4 levels). Comparisons by the property's type: equals and notEquals (value may be "
    "null), lessThan(OrEqual) and greaterThan(OrEqual) (not for booleans and enums), "
    "contains (text, case-insensitive), in (1 to 20 values); text values have at most 100 "
    "characters. " + _JSON
)
_SORT = "Array of 0 to 10 SortParameter `{property, direction}`, applied in order. " + _JSON
_SELECT = (
    "Array of up to 30 SelectParameter `{propertyPath}`: only those properties are "
    "returned, nested as in the resource. " + _JSON
)


class PagingInfo(BaseModel):
    total: int = Field(description="Resources matching the filter, on all pages.")
    count: int = Field(description="Resources in this answer.")
    offset: int


class ConsoleMeta(BaseModel):
    correlationId: str = Field(description="Also in the X-Correlation-Id header and the log.")
    pagingInfo: PagingInfo | None = None


class ConsoleErrorItem(BaseModel):
    code: int = Field(description="The HTTP status the error is sent with.")
    type: str
    message: str
    location: str = Field(description="Where the problem is, e.g. query/toDate or body/0.")


class ConsoleErrorResponse(BaseModel):
    errors: list[ConsoleErrorItem] = Field(min_length=1)
    data: None = None
    meta: ConsoleMeta


class CollectionResponse(BaseModel, Generic[T]):
    data: list[T]
    meta: ConsoleMeta


class ResourceResponse(BaseModel, Generic[T]):
    data: T
    meta: ConsoleMeta


class ActionResponse(BaseModel, Generic[T]):
    errors: list[ConsoleErrorItem] = Field(default_factory=list)
    data: T
    meta: ConsoleMeta


# --- resources -----------------------------------------------------------------------------


class CompanyBillingSettingsResource(BaseModel):
    companyUid: str = Field(json_schema_extra={"format": "uuid"})
    companyName: str
    billingDay: int = Field(ge=1, le=28)
    paymentTermsDays: int | None = Field(ge=0, le=365)
    autoFinalize: bool
    autoSend: bool
    autoCollect: bool
    showDraftsToTenant: bool
    discountPercent: str = Field(description="Decimal string, 0 to 100.")
    notes: str | None
    selfServiceQuantity: bool = Field(
        description="The company's owners and billing admins may change quantities."
    )
    selfServicePriceSwitch: bool = Field(
        description="They may switch an item to another price marked self-serve."
    )
    selfServiceCancel: bool = Field(
        description="They may cancel at period end, and resume before the end."
    )


class InvoiceTotals(BaseModel):
    linesMinor: int
    allowancesMinor: int
    chargesMinor: int
    taxExclusiveMinor: int
    taxMinor: int
    taxInclusiveMinor: int
    amountDueMinor: int
    amountPaidMinor: int
    amountCreditedMinor: int
    amountOpenMinor: int


class InvoiceResource(BaseModel):
    instanceUid: str = Field(json_schema_extra={"format": "uuid"})
    companyUid: str = Field(json_schema_extra={"format": "uuid"})
    companyName: str
    number: str | None
    status: Literal["Draft", "Finalized", "Sent", "Paid", "Uncollectible", "Void"]
    paidState: Literal["Paid", "Unpaid"]
    currency: str
    issueDate: dt.date | None
    dueDate: dt.date | None
    periodStart: dt.date | None
    periodEnd: dt.date | None
    totals: InvoiceTotals
    createdAt: dt.datetime = Field(description="RFC 3339 date-time in UTC.")
    finalizedAt: dt.datetime | None
    sentAt: dt.datetime | None
    paidAt: dt.datetime | None


class JobProgress(BaseModel):
    done: int
    total: int | None
    percent: int | None


class JobLinks(BaseModel):
    self: str = Field(description="This job.")
    csv: str | None = Field(None, description="The quota report as CSV, once there is one.")


class JobResource(BaseModel):
    jobUid: str = Field(json_schema_extra={"format": "uuid"})
    kind: Literal["invoice_generation", "quota_report"]
    status: Literal["queued", "running", "succeeded", "failed"]
    progress: JobProgress
    params: dict[str, Any]
    result: Any = None
    error: str | None = None
    createdAt: dt.datetime = Field(description="RFC 3339 date-time in UTC.")
    startedAt: dt.datetime | None = None
    finishedAt: dt.datetime | None = None
    links: JobLinks


class DeletedResource(BaseModel):
    instanceUid: str = Field(json_schema_extra={"format": "uuid"})
    deleted: bool


class PdfLink(RootModel[str]):
    """A URL that downloads the PDF for 10 minutes (the reference answers a bare string)."""


def selection_of(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` with every property optional: what ``select`` returns (nested alike)."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = selection_of(annotation)
        fields[name] = (annotation, Field(None, description=info.description))
    return create_model(
        f"{model.__name__}Selection",
        __doc__=f"The properties of {model.__name__} named by select (each optional).",
        **fields,
    )


CompanyBillingSettingsSelection = selection_of(CompanyBillingSettingsResource)
InvoiceSelection = selection_of(InvoiceResource)

#: A resource, or its selected properties when ``select`` is given.
SettingsOrSelection = Union[CompanyBillingSettingsResource, CompanyBillingSettingsSelection]  # noqa: UP007
InvoiceOrSelection = Union[InvoiceResource, InvoiceSelection]  # noqa: UP007


class SettingsCollection(CollectionResponse[SettingsOrSelection]):
    pass


class SettingsAnswer(ResourceResponse[SettingsOrSelection]):
    pass


class InvoiceCollection(CollectionResponse[InvoiceOrSelection]):
    pass


class InvoiceAnswer(ResourceResponse[InvoiceOrSelection]):
    pass


# --- query parameters ----------------------------------------------------------------------

if TYPE_CHECKING:  # what a validated value is: parse_date turns the text into a date
    DateParam = dt.date
else:
    DateParam = Annotated[
        str, AfterValidator(parse_date), WithJsonSchema({"type": "string", "format": "date"})
    ]


class JsonQuery(BaseModel):
    """Query parameters, some of them JSON (listed in ``json_params`` for the document)."""

    model_config = ConfigDict(extra="ignore")
    #: name -> the root model its JSON must match.
    json_params: ClassVar[dict[str, type[RootModel]]] = {}


def collection_query(
    name: str, language: QueryLanguage, examples: dict[str, list], *, date_range: bool = False
) -> type[JsonQuery]:
    """The query model of a collection over ``language``."""
    fields: dict[str, Any] = {
        "filter": (str | None, Field(None, description=_FILTER, examples=[examples["filter"]])),
        "sort": (str | None, Field(None, description=_SORT, examples=[examples["sort"]])),
        "select": (str | None, Field(None, description=_SELECT, examples=[examples["select"]])),
        "limit": (int, Field(100, ge=1, le=500, description="Resources per page.")),
        "offset": (int, Field(0, ge=0, le=2_147_483_647, description="Resources skipped.")),
    }
    if date_range:
        fields["fromDate"] = (
            DateParam,
            Field(description="First day of the range (issue date, or period start of drafts)."),
        )
        fields["toDate"] = (
            DateParam,
            Field(
                description="Last day of the range: not before fromDate and at most one year "
                "after it (the same day a year later at the latest), else 400."
            ),
        )
    model = create_model(name, __base__=JsonQuery, **fields)
    model.json_params = {
        "filter": language.filter,
        "sort": language.sort,
        "select": language.select,
    }
    return model


def select_query(name: str, language: QueryLanguage, example: list) -> type[JsonQuery]:
    """The query model of a single resource read (select only)."""
    model = create_model(
        name,
        __base__=JsonQuery,
        select=(str | None, Field(None, description=_SELECT, examples=[example])),
    )
    model.json_params = {"select": language.select}
    return model


class PaidStateQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["Paid", "Unpaid"]


class ReportQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    fromDate: DateParam = Field(description="First day of the report.")
    toDate: DateParam = Field(
        description="Last day of the report: not before fromDate, at most 366 days later, else 400."
    )


class GenerateQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    period: str | None = Field(
        None,
        pattern=r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])$",
        description="Month to invoice as YYYY-MM (1900-01 to 2999-12); the previous month "
        "when omitted.",
    )


class PdfDownloadQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    t: str | None = Field(
        None,
        max_length=500,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The signed token of the link (from Download Invoice); without it, or "
        "expired or altered, the answer is 404.",
    )


# --- JSON Patch of company billing settings ------------------------------------------------

_STRICT = ConfigDict(strict=True, extra="forbid")
NOTES = Annotated[str, StringConstraints(max_length=NOTES_MAX, pattern=NO_NUL)]
PERCENT = (
    json_int(0, 100)
    | Annotated[str, StringConstraints(pattern=r"^(100(\.0{1,4})?|[0-9]{1,2}(\.[0-9]{1,4})?)$")]
)
#: The value of each editable setting, as add and replace take it.
SETTING_VALUES: dict[str, Any] = {
    "billingDay": json_int(1, 28),
    "paymentTermsDays": json_int(0, 365) | None,
    "autoFinalize": StrictBool,
    "autoSend": StrictBool,
    "autoCollect": StrictBool,
    "showDraftsToTenant": StrictBool,
    "discountPercent": PERCENT,
    "notes": NOTES | None,
    "selfServiceQuantity": StrictBool,
    "selfServicePriceSwitch": StrictBool,
    "selfServiceCancel": StrictBool,
}
READ_ONLY_SETTINGS = ("companyUid", "companyName")
#: Settings that may be empty: ``remove`` clears them (the same as replacing with null).
NULLABLE_SETTINGS = ("paymentTermsDays", "notes")
_BOOLEANS = (
    "autoFinalize",
    "autoSend",
    "autoCollect",
    "showDraftsToTenant",
    "selfServiceQuantity",
    "selfServicePriceSwitch",
    "selfServiceCancel",
)
#: ``copy`` from -> to, grouped so that any current value of a source is valid at a target.
COPIES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Boolean": (_BOOLEANS, _BOOLEANS),
    "BillingDay": (("billingDay",), ("billingDay", "paymentTermsDays")),
    "PaymentTerms": (("paymentTermsDays",), ("paymentTermsDays",)),
    "Discount": (("discountPercent",), ("discountPercent",)),
    "Text": (("notes", "companyName", "companyUid"), ("notes",)),
}
_SCALAR = (
    json_int(-MAX_INTEGER, MAX_INTEGER)
    | StrictBool
    | Annotated[str, StringConstraints(max_length=NOTES_MAX, pattern=NO_NUL)]
    | None
)


def _pointers(names) -> Any:
    return Literal[tuple(f"/{name}" for name in names)]


def _patch_models() -> list[Any]:
    models: list[Any] = []
    for name, value in SETTING_VALUES.items():
        model = create_model(
            f"Set{name[0].upper()}{name[1:]}",
            __config__=_STRICT,
            __doc__=f"add or replace /{name}.",
            op=(Literal["add", "replace"], ...),
            path=(Literal[f"/{name}"], ...),
            value=(value, ...),
        )
        models.append(Annotated[model, Tag(f"set:/{name}")])
    test = create_model(
        "TestSetting",
        __config__=_STRICT,
        __doc__="test that a property has this value (409 when it has not).",
        op=(Literal["test"], ...),
        path=(_pointers((*READ_ONLY_SETTINGS, *SETTING_VALUES)), ...),
        value=(_SCALAR, ...),
    )
    models.append(Annotated[test, Tag("test")])
    remove = create_model(
        "RemoveSetting",
        __config__=_STRICT,
        __doc__="remove clears a setting that may be empty (as replace with null does).",
        op=(Literal["remove"], ...),
        path=(_pointers(NULLABLE_SETTINGS), ...),
    )
    models.append(Annotated[remove, Tag("remove")])
    for group, (sources, targets) in COPIES.items():
        copy = create_model(
            f"Copy{group}Setting",
            __config__=_STRICT,
            __doc__="copy a setting's value to another that accepts it.",
            op=(Literal["copy"], ...),
            from_=(_pointers(sources), Field(..., alias="from")),
            path=(_pointers(targets), ...),
        )
        models.append(Annotated[copy, Tag(f"copy:{group}")])
    for name in NULLABLE_SETTINGS:
        move = create_model(
            f"Move{name[0].upper()}{name[1:]}",
            __config__=_STRICT,
            __doc__="move a setting onto itself (nothing changes).",
            op=(Literal["move"], ...),
            from_=(Literal[f"/{name}"], Field(..., alias="from")),
            path=(Literal[f"/{name}"], ...),
        )
        models.append(Annotated[move, Tag(f"move:/{name}")])
    return models


def _patch_tag(item: Any) -> str | None:
    """Which operation model ``item`` (parsed JSON, or a model when dumped) is."""
    if isinstance(item, BaseModel):
        item = {"op": item.op, "path": item.path, "from": getattr(item, "from_", None)}  # type: ignore[attr-defined]
    if not isinstance(item, dict):
        return None
    op, path, source = item.get("op"), item.get("path"), item.get("from")
    if not isinstance(path, str):
        return None
    name = path[1:]
    if op in ("add", "replace") and name in SETTING_VALUES:
        return f"set:{path}"
    if op in ("test", "remove"):
        return op
    if op == "copy" and isinstance(source, str):
        for group, (sources, targets) in COPIES.items():
            if source[1:] in sources and name in targets:
                return f"copy:{group}"
    if op == "move" and source == path and name in NULLABLE_SETTINGS:
        return f"move:{path}"
    return None


def patch_problems(exc: Any) -> list[tuple[list, str, str]]:
    """``(location, message, type)`` of each problem SettingsPatch found."""
    return [
        (clean_location(err["loc"]), err["msg"], err["type"])
        for err in exc.errors(include_url=False, include_context=False, include_input=False)
    ]


PatchOperation = Annotated[
    Union[tuple(_patch_models())],  # noqa: UP007
    Discriminator(
        _patch_tag,
        custom_error_type="invalid_patch",
        custom_error_message=(
            "Each operation is add or replace of an editable setting "
            f"({', '.join('/' + n for n in SETTING_VALUES)}), test of any property, remove of "
            f"{' or '.join('/' + n for n in NULLABLE_SETTINGS)}, copy to a setting that "
            "accepts the source's values, or move of a setting onto itself; "
            f"/{' and /'.join(READ_ONLY_SETTINGS)} are read-only."
        ),
    ),
]


class SettingsPatch(RootModel[Annotated[list[PatchOperation], Field(max_length=100)]]):
    """An RFC 6902 JSON Patch of the settings: 0 to 100 operations, all or nothing.

    Operations name only the members they define (others are refused), and each is checked
    on its own: a value must suit the setting it lands on.
    """

    media_types: ClassVar[tuple[str, ...]] = ("application/json", "application/json-patch+json")
