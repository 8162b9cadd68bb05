"""Tenancy: sellers, tenants, users, memberships, roles, API tokens and billing profiles."""
