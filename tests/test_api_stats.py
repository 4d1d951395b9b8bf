"""GET /api/v1/stats/*: the dashboard's counts over the last day or week."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.support.events import dataset, run_event


def post(client, kind, job, when):
    event = run_event(kind, job=("ns", job), run_id=uuid.uuid4(), time=when, outputs=[dataset("db", f"{job}_out")])
    assert client.post("/api/v1/lineage", json=event).status_code == 201


def test_lineage_events_by_hour(client, engine):
    now = datetime.now(UTC)
    post(client, "START", "a", now - timedelta(minutes=1))
    post(client, "COMPLETE", "a", now - timedelta(minutes=1))
    post(client, "FAIL", "b", now - timedelta(hours=3))
    post(client, "START", "old", now - timedelta(days=3))  # outside the last 24 hours
    body = client.get("/api/v1/stats/lineage-events", params={"period": "day"}).json()
    assert len(body) == 24
    assert set(body[0]) == {"startInterval", "endInterval", "fail", "start", "complete", "abort"}

    def bucket_of(moment):
        return next(
            b
            for b in body
            if datetime.fromisoformat(b["startInterval"]) <= moment < datetime.fromisoformat(b["endInterval"])
        )

    recent = bucket_of(now - timedelta(minutes=1))
    assert (recent["start"], recent["complete"]) == (1, 1)
    assert bucket_of(now - timedelta(hours=3))["fail"] == 1
    assert sum(b["start"] for b in body) == 1


def test_week_needs_a_time_zone(client, engine):
    post(client, "COMPLETE", "a", datetime.now(UTC) - timedelta(days=2))
    week = client.get("/api/v1/stats/lineage-events", params={"period": "WEEK", "timezone": "Europe/Paris"})
    assert week.status_code == 200
    body = week.json()
    assert len(body) == 7 and sum(b["complete"] for b in body) == 1
    assert body[-1]["startInterval"].endswith(("+01:00", "+02:00"))  # local midnights
    assert client.get("/api/v1/stats/lineage-events", params={"period": "WEEK"}).status_code == 400
    assert client.get("/api/v1/stats/jobs", params={"period": "WEEK", "timezone": "Mars/Olympus"}).status_code == 400


def test_cumulative_counts(client, engine):
    now = datetime.now(UTC)
    post(client, "COMPLETE", "early", now - timedelta(days=5))
    post(client, "COMPLETE", "recent", now - timedelta(minutes=5))
    jobs = client.get("/api/v1/stats/jobs").json()
    assert jobs[0]["count"] == 1 and jobs[-1]["count"] == 2  # existing at the end of each hour
    datasets = client.get("/api/v1/stats/datasets", params={"period": "week", "timezone": "UTC"}).json()
    assert datasets[-1]["count"] == 2
    assert client.get("/api/v1/stats/sources").json()[-1]["count"] == 1  # the default source
    assert client.get("/api/v1/stats/widgets").status_code == 404
