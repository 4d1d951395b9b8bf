"""Which read queries could not use an index: EXPLAIN every SELECT the Marquez list/get endpoints run, on a
throwaway Postgres filled with benchmark events (`make bench-explain`).

The tables are small, so Postgres rightly prefers scanning them; sequential scans are switched off for the
EXPLAIN so that a remaining "Seq Scan" means the query has no index path at all.
"""

from __future__ import annotations

import re
import sys
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy import event, text

from app.api.lineage import validate_event
from app.api.request_body import parse_json_object
from app.db.engine import create_db_engine
from app.db.migrate import upgrade
from app.main import create_app
from app.services.ingest import ingest_event
from app.settings import Settings
from bench.ingest import generate_events
from tests.support.postgres import TemporaryPostgres

TABLES = ("jobs", "runs", "datasets", "dataset_versions", "facets", "lineage_events")


def _enc(name: str) -> str:
    return quote(name, safe="")


def _endpoints(conn) -> list[str]:
    job_ns, job = conn.execute(text("select namespace_name, name from jobs order by name limit 1")).one()
    ds_ns, ds = conn.execute(
        text("select namespace_name, name from datasets where current_version_id is not null limit 1")
    ).one()
    run = conn.execute(text("select id from runs limit 1")).scalar()
    job_path = f"/api/v1/namespaces/{_enc(job_ns)}/jobs/{_enc(job)}"
    ds_path = f"/api/v1/namespaces/{_enc(ds_ns)}/datasets/{_enc(ds)}"
    return [
        "/api/v1/namespaces",
        "/api/v1/jobs",
        "/api/v1/jobs?lastRunStates=COMPLETED",
        f"/api/v1/namespaces/{_enc(job_ns)}/jobs",
        job_path,
        f"{job_path}/runs",
        f"/api/v1/namespaces/{_enc(ds_ns)}/datasets",
        ds_path,
        f"{ds_path}/versions",
        f"/api/v1/jobs/runs/{run}",
        "/api/v1/events/lineage",
    ]


def main(events: int = 3000) -> int:
    unindexed = 0
    with TemporaryPostgres() as pg:
        settings = Settings(database_url=pg.url, migrate_on_start=False)
        engine = create_db_engine(settings)
        upgrade(engine)
        for body in generate_events(events):
            payload = parse_json_object(body)
            ingest_event(engine, payload, validate_event(payload))
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
            sizes = {name: conn.execute(text(f"select count(*) from {name}")).scalar() for name in TABLES}
            urls = _endpoints(conn)
        print("rows:", sizes)
        app = create_app(settings)
        recorded: list[tuple[str, object]] = []
        with TestClient(app) as client:
            app_engine = app.state.engine

            @event.listens_for(app_engine, "before_cursor_execute")
            def _record(conn, cursor, statement, parameters, context, executemany):
                if statement.lstrip().upper().startswith("SELECT"):
                    recorded.append((statement, parameters))

            for url in urls:
                start = len(recorded)
                assert client.get(url).status_code == 200, url
                print(f"\n{url}: {len(recorded) - start} queries")
                for statement, parameters in recorded[start:]:
                    with app_engine.connect() as conn:
                        conn.exec_driver_sql("SET enable_seqscan = off")
                        plan = [row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, parameters)]
                    scans = [line.strip() for line in plan if "Seq Scan" in line]
                    unindexed += bool(scans)
                    summary = re.sub(r"\s+", " ", statement)[:90]
                    print(f"  {'SCAN' if scans else 'ok  '} {plan[0].strip()[:55]:55} | {summary}")
                    for line in scans:
                        print(f"         {line[:110]}")
    print(f"\n{unindexed} queries without an index path")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000))
