"""Command-line tools run beside the system: seeding a table, backfilling list-index keys."""
