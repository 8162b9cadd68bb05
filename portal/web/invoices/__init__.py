"""invoices pages."""
