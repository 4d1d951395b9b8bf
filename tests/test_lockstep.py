"""Units of work run side by side with their multi-row writes merged (app/db/lockstep.py), and the applier
applying a batch's independent events that way (app/services/ingest/applier.py)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import bindparam, select
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError

from app.db import lockstep as lockstep_module
from app.db import tables as t
from app.db.dialect import execute_rows
from app.db.engine import write_transaction
from app.db.lockstep import LOCKSTEP, Lockstep
from app.services.ingest.applier import apply_pending
from app.services.ingest.statements import statements_for
from tests.support import model
from tests.support.events import T0, dataset, run_event


def _facet(entity: uuid.UUID, name: str, key: str) -> dict:
    return {
        "entity_id": entity,
        "name": name,
        "kind": "DATASET",
        "facet": {"k": key},
        "event_key": key,
        "lineage_event_id": None,
    }


class _Statements:
    """Counts the statements an engine runs while it is used as a context manager."""

    def __init__(self, engine):
        self.engine, self.count = engine, 0

    def _count(self, *args, **kwargs) -> None:
        self.count += 1

    def __enter__(self):
        sa_event.listen(self.engine, "before_cursor_execute", self._count)
        return self

    def __exit__(self, *exc) -> None:
        sa_event.remove(self.engine, "before_cursor_execute", self._count)


def test_each_unit_gets_its_own_returning_rows_and_shared_keys_keep_unit_order(engine):
    """Three units upsert facets (later key wins, RETURNING the rows won). The first two write the same row:
    the second's rows run in a statement after the first's, as if it came second, and it wins nothing
    there (its key is older); each unit sees exactly the rows it won."""
    e1, e2, e3 = (uuid.UUID(int=i) for i in (1, 2, 3))
    results: dict[str, list] = {}

    def unit(name: str, rows: list[dict]):
        def run() -> None:
            stmt = statements_for(connection.dialect.name).upsert_facets
            results[name] = sorted((str(r[0]), r[1]) for r in execute_rows(connection, stmt, rows))

        return run

    with write_transaction(engine) as connection:
        lockstep = Lockstep(connection)
        lockstep.run(
            [
                unit("first", [_facet(e1, "a", "2")]),
                unit("second", [_facet(e1, "a", "1"), _facet(e2, "b", "1")]),
                unit("third", [_facet(e3, "c", "1")]),
            ]
        )
        assert LOCKSTEP not in connection.info
    assert results == {"first": [(str(e1), "a")], "second": [(str(e2), "b")], "third": [(str(e3), "c")]}
    assert lockstep.statements == 2  # first and third together, then second
    f = t.facets.c
    with engine.connect() as conn:
        keys = dict(conn.execute(select(f.name, f.event_key)).all())
    assert keys == {"a": "2", "b": "1", "c": "1"}


def test_a_unit_that_raises_fails_the_whole_run(engine):
    def good() -> None:
        execute_rows(
            connection, statements_for(connection.dialect.name).upsert_facets, [_facet(uuid.uuid4(), "a", "1")]
        )
        execute_rows(
            connection, statements_for(connection.dialect.name).upsert_facets, [_facet(uuid.uuid4(), "b", "1")]
        )

    def bad() -> None:
        execute_rows(
            connection, statements_for(connection.dialect.name).upsert_facets, [_facet(uuid.uuid4(), "a", "1")]
        )
        raise KeyError("a mapping bug")

    with engine.connect() as connection:
        with pytest.raises(KeyError, match="a mapping bug"):
            Lockstep(connection).run([good, bad])
        assert LOCKSTEP not in connection.info  # the connection is an ordinary one again
        connection.rollback()
    assert model.all_rows(engine, t.facets) == []


def test_halves_taking_turns_see_what_the_other_half_wrote_in_the_steps_before(engine, monkeypatch):
    """On Postgres the units run in two halves, one's statements executing while the other's Python runs (here
    from two units on). A unit still sees what every other unit wrote in the steps before its read, whether the
    read goes out with its step (pipelined) or at once (its statement's first use, which waits for the half in
    flight)."""
    monkeypatch.setattr(lockstep_module, "MIN_HALF", 1)
    f = t.facets.c
    units = 6
    read = select(f.event_key).where(f.entity_id == bindparam("p_entity"), f.name == bindparam("p_name"))
    seen: dict[int, list] = {}

    def unit(i: int):
        def run() -> None:
            upsert = statements_for(connection.dialect.name).upsert_facets
            neighbour = {"p_entity": uuid.UUID(int=(i + 1) % units + 1)}
            seen[i] = []
            for name, key in (("a", "1"), ("b", "2")):
                execute_rows(connection, upsert, [_facet(uuid.UUID(int=i + 1), name, key)])
                seen[i].append(connection.execute(read, {**neighbour, "p_name": name}).scalar())

        return run

    with write_transaction(engine) as connection:
        lockstep = Lockstep(connection)
        lockstep.run([unit(i) for i in range(units)])
        assert LOCKSTEP not in connection.info
    assert seen == {i: ["1", "2"] for i in range(units)}


def test_a_statement_the_database_refuses_in_a_half_raises_as_sqlalchemy_raises_it(engine, monkeypatch):
    """A refused row (no kind: NOT NULL) reaches the applier as SQLAlchemy's IntegrityError, as outside the
    lockstep, so its retry and fallback rules apply; the connection is an ordinary one again."""
    monkeypatch.setattr(lockstep_module, "MIN_HALF", 1)

    def unit(kind: str | None):
        def run() -> None:
            row = {**_facet(uuid.uuid4(), "a", "1"), "kind": kind}
            execute_rows(connection, statements_for(connection.dialect.name).upsert_facets, [row])
            execute_rows(connection, statements_for(connection.dialect.name).upsert_facets, [{**row, "name": "b"}])

        return run

    with pytest.raises(IntegrityError):
        with engine.begin() as connection:
            try:
                Lockstep(connection).run([unit("DATASET"), unit("DATASET"), unit(None), unit("DATASET")])
            finally:
                assert LOCKSTEP not in connection.info  # an ordinary connection again, rolled back on the way out
    assert model.all_rows(engine, t.facets) == []


def _independent_run_events(count: int) -> list[dict]:
    """START and COMPLETE of ``count`` jobs that all read one table and each write their own."""
    events = []
    for i in range(count):
        for state, minutes in (("START", 0), ("COMPLETE", 5)):
            events.append(
                run_event(
                    state,
                    job=("lockstep", f"job_{i}"),
                    run_id=uuid.UUID(int=i + 1),
                    time=T0 + timedelta(minutes=i + minutes),
                    inputs=[dataset("db", "shared_source", columns=[("id", "int")])],
                    outputs=[dataset("db", f"out_{i}", columns=[("id", "int"), ("name", "text")])],
                )
            )
    return events


def test_a_batch_applies_its_independent_events_with_shared_statements(engine):
    """Twenty jobs reading the same table, each writing its own: applied as one batch they build the same
    model as one event per transaction, with far fewer statements (the same write of every event is one)."""
    events = _independent_run_events(20)
    model.store_events(engine, events)
    with _Statements(engine) as one_by_one:
        while apply_pending(engine, limit=1).applied:
            pass
    expected = model.snapshot(engine)

    from tests.conftest import empty_tables

    empty_tables(engine)
    model.store_events(engine, events)
    with _Statements(engine) as batched:
        assert apply_pending(engine, limit=len(events)).applied == len(events)
    assert model.describe_difference(expected, model.snapshot(engine)) == ""
    assert batched.count < one_by_one.count / 2, (batched.count, one_by_one.count)
