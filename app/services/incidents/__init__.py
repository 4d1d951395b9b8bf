"""Incidents: detected at ingest (failed runs, failed quality checks, schema changes) or by the server's periodic
check (late datasets); their downstream impact from the backfill module; webhook notifications through an outbox."""
