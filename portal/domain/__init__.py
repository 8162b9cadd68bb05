"""Pure billing rules and arithmetic: no Flask, no database."""
