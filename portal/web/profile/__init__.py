"""The tenant's billing profile page."""
