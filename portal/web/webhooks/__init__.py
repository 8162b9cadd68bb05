"""Provider webhooks."""
