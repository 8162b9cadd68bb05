"""Notifications: e-mails through an outbox, and signed links for billing contacts."""
