"""Tests of operator setup (issue 16): sellers, companies, catalog, subscriptions."""
