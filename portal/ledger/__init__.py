"""Ledger: every financial event as a movement; a tenant's balance is their sum."""
