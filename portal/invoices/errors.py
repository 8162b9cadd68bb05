"""Errors raised by invoice services."""

from portal.invoices.states import InvalidTransition


class InvoiceError(Exception):
    """Base class of invoice errors."""


class InvoiceNotDraft(InvoiceError):
    """A draft-only change was asked of an issued invoice."""


class DocumentFrozen(InvoiceError):
    """An issued invoice or credit note was asked to change what it printed."""


class InvoiceHasNoLines(InvoiceError):
    """An invoice without lines cannot be finalized."""


__all__ = [
    "DocumentFrozen",
    "InvalidTransition",
    "InvoiceError",
    "InvoiceHasNoLines",
    "InvoiceNotDraft",
]
