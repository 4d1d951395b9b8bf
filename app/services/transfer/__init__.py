"""Moving lineage history in and out of Headwater: `headwater import` (a Marquez server's events API, a Marquez
database's raw event table, a JSON Lines file) and `headwater export` (JSON Lines). Imported events go through
Headwater's own ingest (`store.store_events`), so they build exactly what posting them would."""
