"""Operator setup (issue 16): the catalog, companies, sellers, subscriptions, usage, charges."""
