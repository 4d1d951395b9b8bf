"""Marquez API: the raw event log."""

from __future__ import annotations

import uuid
from datetime import timedelta

from tests.support.events import T0, iso, run_event
from tests.support.marquez_spec import assert_conforms


def test_events_window_order_and_paging(client, engine):
    events = [
        run_event("START", job=("ns", f"j{i}"), run_id=uuid.uuid4(), time=T0 + timedelta(hours=i)) for i in range(4)
    ]
    static = {"eventTime": iso(T0), "producer": "x", "dataset": {"namespace": "db", "name": "t"}}
    for event in [*events, static]:
        assert client.post("/api/v1/lineage", json=event).status_code == 201

    body = client.get("/api/v1/events/lineage").json()
    assert_conforms(body, "/events/lineage")
    assert body["totalCount"] == 4  # RunEvents only
    assert body["events"] == list(reversed(events))  # verbatim, newest first

    window = client.get(
        "/api/v1/events/lineage",
        params={"after": iso(T0 + timedelta(hours=1)), "before": iso(T0 + timedelta(hours=3)), "sortDirection": "ASC"},
    ).json()
    assert [e["job"]["name"] for e in window["events"]] == ["j1", "j2"] and window["totalCount"] == 2
    paged = client.get("/api/v1/events/lineage", params={"limit": 1, "offset": 1}).json()
    assert [e["job"]["name"] for e in paged["events"]] == ["j2"]
    bad = client.get("/api/v1/events/lineage", params={"before": "soon"})
    assert bad.status_code == 400 and "before" in bad.json()["message"]
