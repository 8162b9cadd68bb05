"""settings pages."""
