"""Development helpers that are not part of the running portal."""
