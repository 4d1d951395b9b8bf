"""Marquez API: namespaces and sources, validated against Marquez's reference OpenAPI document."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import select

from app.db import tables as t
from tests.support.events import T0, dataset, facet, run_event
from tests.support.marquez_spec import assert_conforms
from tests.support.model import applied

PG = "postgres://db.example:5432"
S3 = "s3://bucket"


def enc(name: str) -> str:
    """How clients put a name in a path segment (marquez-python uses quote(name, safe=''))."""
    return quote(name, safe="")


@pytest.fixture
def seeded(client):
    source = facet("DatasourceDatasetFacet", name=PG, uri=PG)
    event = run_event(
        "COMPLETE",
        job=("Airflow Prod", "dag.task"),
        run_id=uuid.uuid4(),
        time=T0,
        inputs=[dataset(PG, "shop.public.orders", facets={"dataSource": source})],
        outputs=[dataset(S3, "path/to/file.parquet", columns=[("id", "int")])],
    )
    assert client.post("/api/v1/lineage", json=event).status_code == 201
    return client


def test_list_namespaces(seeded):
    response = seeded.get("/api/v1/namespaces")
    assert response.status_code == 200
    body = response.json()
    assert_conforms(body, "/namespaces")
    assert [n["name"] for n in body["namespaces"]] == sorted(["Airflow Prod", PG, S3])
    first = body["namespaces"][0]
    assert set(first) == {"name", "createdAt", "updatedAt", "ownerName", "description", "isHidden"}
    assert first["ownerName"] == "anonymous" and first["description"] is None and first["isHidden"] is False
    assert first["createdAt"] == "2024-11-01T02:00:00Z"


def test_paging_and_bad_paging(seeded):
    body = seeded.get("/api/v1/namespaces", params={"limit": 1, "offset": 1}).json()
    assert [n["name"] for n in body["namespaces"]] == [PG]
    response = seeded.get("/api/v1/namespaces", params={"limit": -1})
    assert response.status_code == 400
    assert response.json()["code"] == 400 and "limit" in response.json()["message"]


@pytest.mark.parametrize("asked", [PG, PG.upper(), "airflow prod", "Airflow Prod"])
def test_get_namespace_with_hostile_and_differently_cased_names(seeded, asked):
    response = seeded.get(f"/api/v1/namespaces/{enc(asked)}")
    assert response.status_code == 200, response.text
    assert_conforms(response.json(), "/namespaces/{namespace}")
    assert response.json()["name"].lower() == asked.lower()


def test_missing_namespace_is_a_marquez_404(client, engine):
    response = client.get(f"/api/v1/namespaces/{enc('nope://x')}")
    assert response.status_code == 404
    assert response.json() == {"code": 404, "message": "Namespace 'nope://x' not found."}


def test_put_namespace_creates_and_updates(client, engine):
    name = "team/analytics@prod"
    response = client.put(f"/api/v1/namespaces/{enc(name)}", json={"ownerName": "data-eng", "description": "Analytics"})
    assert response.status_code == 200, response.text
    assert_conforms(response.json(), "/namespaces/{namespace}", "put")
    assert (response.json()["name"], response.json()["ownerName"]) == (name, "data-eng")
    updated = client.put(f"/api/v1/namespaces/{enc(name)}", json={"ownerName": "platform"}).json()
    assert (updated["ownerName"], updated["description"]) == ("platform", None)
    assert client.get(f"/api/v1/namespaces/{enc(name)}").json()["ownerName"] == "platform"
    bad = client.put(f"/api/v1/namespaces/{enc(name)}", json={"description": "no owner"})
    assert bad.status_code == 400 and "ownerName" in bad.json()["message"]


def test_delete_namespace_hides_it_and_its_contents_until_an_event_names_it(seeded, engine):
    response = seeded.delete(f"/api/v1/namespaces/{enc(S3)}")
    assert response.status_code == 200
    assert_conforms(response.json(), "/namespaces/{namespace}", "delete")
    assert response.json()["isHidden"] is True
    with applied(engine).connect() as conn:
        hidden = conn.execute(select(t.datasets.c.is_hidden).where(t.datasets.c.namespace_name == S3)).scalars().all()
    assert hidden == [True]
    event = run_event("START", job=("other", "j"), run_id=uuid.uuid4(), time=T0, outputs=[dataset(S3, "new.csv")])
    assert seeded.post("/api/v1/lineage", json=event).status_code == 201
    assert seeded.get(f"/api/v1/namespaces/{enc(S3)}").json()["isHidden"] is False


def test_sources(seeded):
    body = seeded.get("/api/v1/sources").json()
    assert_conforms(body, "/sources")
    by_name = {s["name"]: s for s in body["sources"]}
    assert by_name[PG]["type"] == "POSTGRESQL" and by_name[PG]["connectionUrl"] == PG
    one = seeded.get(f"/api/v1/sources/{enc(PG)}")
    assert one.status_code == 200
    assert_conforms(one.json(), "/sources/{source}")
    assert seeded.get("/api/v1/sources/nope").json() == {"code": 404, "message": "Source 'nope' not found."}
    put = seeded.put("/api/v1/sources/warehouse", json={"type": "snowflake", "connectionUrl": "snowflake://acme"})
    assert put.status_code == 200
    assert_conforms(put.json(), "/sources/{source}", "put")
    assert put.json()["type"] == "SNOWFLAKE"


def test_the_spec_check_itself_rejects_a_wrong_shape():
    with pytest.raises(AssertionError, match="createdAt"):
        assert_conforms({"namespaces": [{"name": "x", "createdAt": 5}]}, "/namespaces")
