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
