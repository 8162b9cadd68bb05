"""Invoices: invoices, lines, credit notes, numbering and states."""
