"""overview pages."""
