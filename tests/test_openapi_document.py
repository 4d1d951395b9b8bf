"""The checked-in OpenAPI document matches the app, and migrations match the table definitions."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app.db.dialect import declared_for
from app.db.tables import metadata
from app.openapi_doc import DOCUMENT, render


def test_checked_in_openapi_document_is_current():
    assert DOCUMENT.read_text(encoding="utf-8") == render(), "openapi/openapi.json is stale: run `make openapi`"


@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_migrations_build_exactly_the_declared_tables(engine):
    with engine.connect() as conn:
        # Objects declared for the other database only (.ddl_if) are left out: Postgres' trigram indexes.
        opts = {"compare_type": True, "include_object": declared_for(conn.dialect.name)}
        context = MigrationContext.configure(conn, opts=opts)
        assert compare_metadata(context, metadata) == []


def test_interactive_docs_are_served(client):
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").json()["info"]["title"] == "Headwater"


def test_migrations_set_the_declared_storage_parameters(engine):
    """What compare_metadata does not look at: the tables' storage parameters (``postgresql_with``), the event
    log's payload compression (LZ4 where the server has it) and the columns' collations (event keys: "C")."""
    if engine.dialect.name != "postgresql":
        pytest.skip("storage parameters are Postgres'")
    declared = {
        table.name: sorted(f"{k}={v}" for k, v in table.dialect_options["postgresql"]["with"].items())
        for table in metadata.sorted_tables
        if table.dialect_options["postgresql"]["with"]
    }
    assert "run_io" in declared
    with engine.connect() as conn:
        stored = dict(
            conn.exec_driver_sql(
                "SELECT relname, reloptions FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
            ).all()
        )
        assert {name: sorted(stored[name] or []) for name in declared} == declared
        assert not [name for name, options in stored.items() if options and name not in declared]
        has_lz4 = conn.exec_driver_sql(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        ).scalar()
        compression = conn.exec_driver_sql(
            "SELECT attcompression FROM pg_attribute"
            " WHERE attrelid = 'lineage_events'::regclass AND attname = 'payload'"
        ).scalar()
        assert compression == ("l" if has_lz4 else "")
        collated = {
            (table.name, column.name): column.type.dialect_impl(conn.dialect).collation
            for table in metadata.sorted_tables
            for column in table.columns
            if getattr(column.type.dialect_impl(conn.dialect), "collation", None)
        }
        assert ("facets", "event_key") in collated
        stored_collations = conn.exec_driver_sql(
            "SELECT table_name, column_name, collation_name FROM information_schema.columns"
            " WHERE table_schema = 'public' AND collation_name IS NOT NULL"
        ).all()
        assert {(table, column): collation for table, column, collation in stored_collations} == collated
