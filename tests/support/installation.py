"""A realistic installation, posted over the API as its producers would: two Airflow DAGs over three days (the
ETL task failing on the second, which opens an incident), a dbt model with column lineage, a failed
data-quality check and owners, and (for the fuzzing of the API) a source, tags, a webhook subscription and a
saved backfill plan. Used by the UI tests and by tests/test_fuzz_openapi.py."""

from __future__ import annotations

import uuid
from datetime import timedelta
from urllib.parse import quote

from tests.support.events import POSTGRES_NS, T0, column_lineage, dataset, facet, run_event
from tests.test_backfill_plans import DAY, NOV, bookings_day


def room_revenue(http) -> None:
    """A dbt model (a name with '/') reading room_bookings with a failed data-quality test, writing a dataset
    whose name has a space, with schema, column lineage, SQL, documentation and owners."""
    run_id = uuid.uuid4()
    inputs = [
        dataset(
            POSTGRES_NS,
            "bookings.public.room_bookings",
            columns=[("room_id", "INTEGER"), ("amount", "DECIMAL")],
            input_facets={
                "dataQualityAssertions": facet(
                    "DataQualityAssertionsDatasetFacet",
                    assertions=[
                        {"assertion": "not_null", "success": False, "column": "room_id"},
                        {"assertion": "row_count_above_0", "success": True},
                    ],
                )
            },
        )
    ]
    outputs = [
        dataset(
            POSTGRES_NS,
            "analytics.public.room revenue",
            columns=[("room_id", "INTEGER"), ("revenue", "DECIMAL")],
            facets={
                "columnLineage": column_lineage(
                    {
                        "revenue": [(POSTGRES_NS, "bookings.public.room_bookings", "amount")],
                        "room_id": [(POSTGRES_NS, "bookings.public.room_bookings", "room_id")],
                    }
                ),
                "documentation": facet("DocumentationDatasetFacet", description="Revenue per room and day"),
            },
        )
    ]
    job_facets = {
        "sql": facet(
            "SQLJobFacet",
            query="SELECT room_id, sum(amount) AS revenue FROM room_bookings GROUP BY room_id",
            dialect="postgres",
        ),
        "documentation": facet("DocumentationJobFacet", description="Sums booking amounts per room"),
        "ownership": facet("OwnershipJobFacet", owners=[{"name": "team-finance", "type": "team"}]),
    }
    for event_type, offset in (("START", timedelta(0)), ("COMPLETE", timedelta(minutes=2))):
        event = run_event(
            event_type,
            job=("dbt-prod", "analytics/room_revenue"),
            run_id=run_id,
            time=T0 + 5 * DAY + offset,
            inputs=inputs,
            outputs=outputs,
            job_facets=job_facets,
        )
        assert http.post("/api/v1/lineage", json=event).status_code == 201


def three_days(http, *, failed_day: int | None = 1) -> dict[int, str]:
    """The room-bookings DAGs for 1–3 November; the ETL task fails on `failed_day`."""
    return {
        day: bookings_day(http, NOV + day * DAY, state="FAIL" if day == failed_day else "COMPLETE") for day in range(3)
    }


def ok(response, status: int = 200):
    assert response.status_code == status, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json() if response.content else None


def full_installation(http) -> None:
    """Everything a user of every endpoint would have: the pipelines above, plus what only the API writes."""
    runs = three_days(http)
    room_revenue(http)
    ok(http.put("/api/v1/sources/warehouse", json={"type": "POSTGRESQL", "connectionUrl": POSTGRES_NS}))
    ok(http.put("/api/v1/tags/PII", json={"description": "Personal data"}))
    table = "bookings.public.room_bookings"
    ok(http.post(f"/api/v1/namespaces/{quote(POSTGRES_NS, safe='')}/datasets/{table}/fields/room_id/tags/PII"))
    ok(http.post("/api/v1/namespaces/airflow-prod/jobs/bookings_etl.load_room_bookings/tags/PII"))
    ok(
        http.post(
            "/api/v1/subscriptions",
            json={"url": "http://127.0.0.1:9/hook", "namespaces": ["airflow-prod"], "description": "bookings team"},
        ),
        201,
    )
    plan = ok(http.post("/api/v1/backfills", json={"runId": runs[1], "name": "Bookings outage, 2 Nov"}), 201)
    # An Airflow that does not answer (nothing listens on port 9): the plan, started, waits for it.
    airflow = {"baseUrl": "http://127.0.0.1:9", "namespaces": ["airflow-prod"], "username": "hw", "password": "pw"}
    ok(http.put("/api/v1/airflow-connections/prod", json=airflow))
    ok(http.post(f"/api/v1/backfills/{plan['id']}/run", json={"startedBy": "fuzz"}), 202)
    # A plan for each operation that changes a plan's state, in the state it applies to (`fuzz:<operation>`).
    for operation, before in (("run", []), ("pause", ["run"]), ("resume", ["run", "pause"]), ("cancel", ["run"])):
        other = ok(http.post("/api/v1/backfills", json={"runId": runs[1], "name": f"fuzz:{operation}"}), 201)
        for step in before:
            ok(http.post(f"/api/v1/backfills/{other['id']}/{step}", json={}), 202 if step == "run" else 200)
    # Scratch things for the destructive operations (DELETE), so deleting never hides the installation: the
    # `doomed` ones are deleted outright, the others lose their tags.
    ok(http.put("/api/v1/namespaces/scratch", json={"ownerName": "fuzz"}))
    ok(http.put("/api/v1/namespaces/scratch.doomed", json={"ownerName": "fuzz"}))
    for name in ("scratch.table", "scratch.doomed_table"):
        table = {"type": "DB_TABLE", "physicalName": name, "sourceName": "warehouse", "tags": ["PII"]}
        ok(
            http.put(
                f"/api/v1/namespaces/scratch/datasets/{name}",
                json={**table, "fields": [{"name": "id", "tags": ["PII"]}]},
            )
        )
    for name in ("scratch.job", "scratch.doomed_job"):
        outputs = [{"namespace": "scratch", "name": "scratch.table"}]
        ok(
            http.put(
                f"/api/v1/namespaces/scratch/jobs/{name}", json={"type": "BATCH", "inputs": [], "outputs": outputs}
            )
        )
        ok(http.post(f"/api/v1/namespaces/scratch/jobs/{name}/tags/PII"))
    ok(http.put("/api/v1/airflow-connections/scratch", json={**airflow, "namespaces": ["scratch"]}))
    scratch = {"url": "http://127.0.0.1:9/scratch", "namespaces": ["scratch"], "description": "scratch"}
    ok(http.post("/api/v1/subscriptions", json=scratch), 201)
