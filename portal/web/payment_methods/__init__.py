"""payment_methods pages."""
