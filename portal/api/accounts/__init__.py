"""The account billing API (reference: account-billing-api.txt), for admin API tokens."""
