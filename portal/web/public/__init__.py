"""Public pages of signed invoice links (/i/<token>): no login, one invoice only."""
