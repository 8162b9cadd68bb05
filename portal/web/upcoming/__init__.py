"""upcoming pages."""
