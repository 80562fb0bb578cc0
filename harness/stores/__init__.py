"""Migrated databases for store tests: one per backend, and the kit's event tables under a prefix."""
