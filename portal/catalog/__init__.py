"""Catalog: plans, prices, subscriptions and company billing settings."""
