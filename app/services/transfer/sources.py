"""Where imported events come from. Each source yields its events in chunks, oldest first where it can, each
chunk with the position to resume from once the chunk is stored (what a checkpoint file keeps)."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

import httpx

from app.db import json as json_codec
from app.schemas.openlineage import parse_timestamp
from app.services.ingest import event_hash


@dataclass(frozen=True)
class SourceEvent:
    """One record of the source: its JSON value, or why it could not be read; ``where`` names it in reports."""

    value: Any
    where: str
    unreadable: str | None = None


@dataclass(frozen=True)
class Chunk:
    events: list[SourceEvent]
    resume_from: str | None  # the position after this chunk (None: the source cannot resume mid-way)


class Source(Protocol):
    identity: str  # what a checkpoint belongs to

    def estimated_total(self) -> int | None: ...

    def chunks(self, size: int, resume_from: str | None) -> Iterator[Chunk]: ...


def _time_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def event_time_of(value: Any) -> datetime | None:
    """The eventTime of a JSON value, if it has a readable one (validation reports the others)."""
    if isinstance(value, dict):
        try:
            return parse_timestamp(value.get("eventTime"))
        except ValueError:
            return None
    return None


# --- JSON Lines -----------------------------------------------------------------------------------------


class JsonLinesFile:
    """Events one JSON object per line (what `headwater export` and OpenLineage's file transport write),
    gzip-compressed or not (told by its first bytes, not its name). Resumes by line number."""

    def __init__(self, path: Path):
        self.path = path
        self.identity = f"file:{path.resolve()}"

    def _open(self) -> IO[bytes]:
        with open(self.path, "rb") as probe:
            compressed = probe.read(2) == b"\x1f\x8b"
        return gzip.open(self.path, "rb") if compressed else open(self.path, "rb")

    def estimated_total(self) -> int | None:
        with self._open() as stream:
            return sum(1 for line in stream if line.strip())

    def chunks(self, size: int, resume_from: str | None) -> Iterator[Chunk]:
        skip = int(resume_from or 0)
        batch: list[SourceEvent] = []
        line_number = 0
        with self._open() as stream:
            for line_number, line in enumerate(stream, start=1):
                if line_number <= skip or not line.strip():
                    continue
                try:
                    batch.append(SourceEvent(json_codec.loads(line), f"line {line_number}"))
                except ValueError as exc:
                    batch.append(SourceEvent(None, f"line {line_number}", f"not JSON: {exc}"))
                if len(batch) >= size:
                    yield Chunk(batch, str(line_number))
                    batch = []
        if batch:
            yield Chunk(batch, str(line_number))


# --- A Marquez database -----------------------------------------------------------------------------------


def postgres_dsn(url: str) -> str:
    """A libpq DSN from what a user may paste: ``postgresql://``, ``postgres://`` or SQLAlchemy's
    ``postgresql+psycopg://``."""
    for prefix in ("postgresql+psycopg://", "postgresql+psycopg2://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


class MarquezDatabase:
    """A Marquez database's raw event table, ``lineage_events`` (every event Marquez accepted, as received), read
    in one read-only transaction through a server-side cursor, ordered by event time. Only ``event_time`` and
    ``event`` are read, which every Marquez version has. Resumes from an event time: the events at that instant
    are read again and found already stored."""

    def __init__(self, dsn: str, *, since: datetime | None = None, until: datetime | None = None):
        self.dsn = postgres_dsn(dsn)
        self.since, self.until = since, until
        import psycopg

        info = psycopg.conninfo.conninfo_to_dict(self.dsn)
        self.identity = f"marquez-db:{info.get('host', '')}:{info.get('port', '')}/{info.get('dbname', '')}"

    def _where(self, resume_from: str | None) -> tuple[str, list[Any]]:
        clauses, params = [], []
        since = self.since
        if resume_from is not None:
            resumed = datetime.fromisoformat(resume_from)
            since = resumed if since is None else max(since, resumed)
        if since is not None:
            clauses.append("event_time >= %s")
            params.append(since)
        if self.until is not None:
            clauses.append("event_time < %s")
            params.append(self.until)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def _connect(self):
        import psycopg

        connection = psycopg.connect(self.dsn, autocommit=False)
        connection.read_only = True  # never writes to Marquez, whatever happens here
        return connection

    @staticmethod
    def _has_created_at(connection) -> bool:
        found = connection.execute(
            "SELECT 1 FROM information_schema.columns WHERE table_name = 'lineage_events'"
            " AND column_name = 'created_at' AND table_schema = ANY (current_schemas(false))"
        ).fetchone()
        return found is not None

    def estimated_total(self) -> int | None:
        where, params = self._where(None)
        with self._errors_told(), self._connect() as connection:
            return connection.execute(f"SELECT count(*) FROM lineage_events{where}", params).fetchone()[0]

    def chunks(self, size: int, resume_from: str | None) -> Iterator[Chunk]:
        with self._errors_told():
            yield from self._chunks(size, resume_from)

    @contextmanager
    def _errors_told(self):
        import psycopg

        try:
            yield
        except psycopg.Error as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SourceError(f"the Marquez database ({self.identity}): {reason}") from exc

    def _chunks(self, size: int, resume_from: str | None) -> Iterator[Chunk]:
        where, params = self._where(resume_from)
        with self._connect() as connection, connection.transaction():
            # Events of one instant in the order Marquez received them (created_at, where the install has it,
            # then the rows' physical order): Headwater applies same-instant events in arrival order too. With
            # the event_time index, Postgres sorts only within an instant (an incremental sort).
            arrival = "created_at, ctid" if self._has_created_at(connection) else "ctid"
            query = f"SELECT event_time, event::text FROM lineage_events{where} ORDER BY event_time, {arrival}"
            with connection.cursor(name="headwater_import") as cursor:
                cursor.itersize = size
                cursor.execute(query, params)
                while rows := cursor.fetchmany(size):
                    batch = []
                    for event_time, text in rows:
                        where_ = f"row with event_time {_time_text(event_time)}"
                        try:
                            batch.append(SourceEvent(json_codec.loads(text), where_))
                        except ValueError as exc:  # `event` of type json (not jsonb) can hold anything
                            batch.append(SourceEvent(None, where_, f"not JSON: {exc}"))
                    yield Chunk(batch, _time_text(rows[-1][0]))


# --- A Marquez server ---------------------------------------------------------------------------------------


class MarquezApi:
    """A Marquez (or Headwater) server's ``GET /api/v1/events/lineage``, oldest first. It answers RunEvents only
    (Marquez keeps dataset and job events out of it). Pages move on by event time rather than by a growing
    offset, so events arriving during the import do not shift what is read; the events at a page's last
    instant are asked for again and dropped by hash (an offset walks through an instant that holds more than a
    page)."""

    def __init__(
        self,
        url: str,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        api_key: str | None = None,
        timeout: float = 60.0,
        client: httpx.Client | None = None,
    ):
        self.url = url.rstrip("/")
        self.since, self.until = since, until
        self.identity = f"marquez-api:{self.url}"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = client or httpx.Client(base_url=self.url, headers=headers, timeout=timeout)

    def _page(self, after: datetime | None, offset: int, limit: int) -> dict:
        params: dict[str, Any] = {"sortDirection": "asc", "limit": limit, "offset": offset}
        if after is not None:
            params["after"] = _time_text(after)
        if self.until is not None:
            params["before"] = _time_text(self.until)
        try:
            response = self.client.get("/api/v1/events/lineage", params=params)
        except httpx.HTTPError as exc:
            raise SourceError(f"{self.url}/api/v1/events/lineage: {exc}") from exc
        if response.status_code != 200:
            raise SourceError(
                f"GET {self.url}/api/v1/events/lineage answered {response.status_code}: {response.text[:300]}"
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("events"), list):
            raise SourceError(f"{self.url}/api/v1/events/lineage did not answer a Marquez event list")
        return body

    def estimated_total(self) -> int | None:
        total = self._page(self.since, 0, 1).get("totalCount")
        return total if isinstance(total, int) else None

    def chunks(self, size: int, resume_from: str | None) -> Iterator[Chunk]:
        after = self.since
        if resume_from is not None:
            resumed = datetime.fromisoformat(resume_from)
            after = resumed if after is None else max(after, resumed)
        offset = 0
        boundary: set[str] = set()  # hashes of events already yielded at the instant `after`
        while True:
            events = self._page(after, offset, size)["events"]
            fresh = []
            for value in events:
                digest = event_hash(value) if isinstance(value, dict) else None
                if digest is not None and digest in boundary:
                    continue
                fresh.append(value)
            times = [event_time_of(value) for value in events]
            last = next((moment for moment in reversed(times) if moment is not None), None)
            if last is not None and (after is None or last > after):
                after, offset = last, 0
                boundary = {event_hash(v) for v, m in zip(events, times, strict=True) if m == last}
            else:  # the whole page is at one instant: step through it by offset
                offset += len(events)
                boundary |= {event_hash(v) for v in events if isinstance(v, dict)}
            if fresh:
                yield Chunk(
                    [SourceEvent(v, f"event at {v.get('eventTime') if isinstance(v, dict) else '?'}") for v in fresh],
                    _time_text(after) if after is not None else None,
                )
            if len(events) < size:
                return


class SourceError(Exception):
    """The source cannot be read (an HTTP error, a database error): the import stops, resumable."""
