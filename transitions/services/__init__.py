"""Use cases: plain functions with explicit dependencies and named errors; each owns its transaction."""
