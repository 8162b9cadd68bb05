"""Admin operations: the one place admin writes happen, for pages and the console API."""
