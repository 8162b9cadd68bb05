"""Payments: payment methods, payments, refunds and the webhook inbox."""
