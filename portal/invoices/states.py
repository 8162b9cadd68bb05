"""Invoice and credit-note states and the transitions allowed between them."""

from __future__ import annotations

import enum

from portal.domain.tax import VatCategory


class InvoiceStatus(enum.StrEnum):
    """Lifecycle of an invoice: draft → finalized → sent → paid | uncollectible, and void."""

    DRAFT = "draft"
    FINALIZED = "finalized"
    SENT = "sent"
    PAID = "paid"
    UNCOLLECTIBLE = "uncollectible"
    VOID = "void"

    @property
    def is_open(self) -> bool:
        """Issued and still awaiting payment."""
        return self in OPEN_STATUSES


OPEN_STATUSES = frozenset({InvoiceStatus.FINALIZED, InvoiceStatus.SENT})

#: Allowed transitions. Paid → sent exists for an admin marking a payment as not received.
TRANSITIONS: dict[InvoiceStatus, frozenset[InvoiceStatus]] = {
    InvoiceStatus.DRAFT: frozenset({InvoiceStatus.FINALIZED}),
    InvoiceStatus.FINALIZED: frozenset(
        {InvoiceStatus.SENT, InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE, InvoiceStatus.VOID}
    ),
    InvoiceStatus.SENT: frozenset(
        {InvoiceStatus.PAID, InvoiceStatus.UNCOLLECTIBLE, InvoiceStatus.VOID}
    ),
    InvoiceStatus.PAID: frozenset({InvoiceStatus.SENT}),
    InvoiceStatus.UNCOLLECTIBLE: frozenset({InvoiceStatus.PAID, InvoiceStatus.VOID}),
    InvoiceStatus.VOID: frozenset(),
}


class InvalidTransition(Exception):
    """An invoice was asked to move to a state it cannot reach from its current one."""

    def __init__(self, current: InvoiceStatus, target: InvoiceStatus):
        super().__init__(f"an invoice cannot go from {current} to {target}")
        self.current = current
        self.target = target


def check_transition(current: InvoiceStatus, target: InvoiceStatus) -> None:
    """Raise :class:`InvalidTransition` unless ``current`` may move to ``target``."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(current, target)


class InvoiceKind(enum.StrEnum):
    """Why an invoice exists; with tenant and period it identifies a generated invoice."""

    SUBSCRIPTION = "subscription"  # the periodic invoice of a subscription
    USAGE = "usage"  # usage billed separately from the subscription
    MANUAL = "manual"  # created by an admin
    PRORATION = "proration"  # immediate charge for a mid-period change


class LineKind(enum.StrEnum):
    """What an invoice line charges for."""

    SUBSCRIPTION = "subscription"
    USAGE = "usage"
    PRORATION = "proration"
    MANUAL = "manual"


class CreditNoteStatus(enum.StrEnum):
    """Lifecycle of a credit note."""

    DRAFT = "draft"
    ISSUED = "issued"
    VOID = "void"


class DocumentType(enum.StrEnum):
    """Which number sequence a document draws from."""

    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


__all__ = [
    "CreditNoteStatus",
    "DocumentType",
    "InvalidTransition",
    "InvoiceKind",
    "InvoiceStatus",
    "LineKind",
    "OPEN_STATUSES",
    "TRANSITIONS",
    "VatCategory",
    "check_transition",
]
