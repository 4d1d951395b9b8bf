"""Run several units of work side by side in one transaction, each multi-row write of theirs merged with the
same write of the others into one statement.

Each unit (an applier's event) runs in a greenlet of its own, with ``unit_connection`` as its connection.
Its ``execute_rows`` calls pause it, and so (on Postgres) do its single statements; when every unit is
paused or done, the paused calls are grouped by statement: each group of ``execute_rows`` runs as one
statement with all their rows, and the single statements of every group go to the server together in one
pipeline (one round trip, no per-statement work in SQLAlchemy), then every unit resumes with its own share
of the results. So a batch of N events costs about as many multi-row statements as one event, with one copy
of the model's rules: the units are the ordinary per-event code.

What the caller guarantees: the units touch disjoint rows, except rows they only insert-if-missing or that
are merged here with a conflict key (two units' rows for the same key run in two statements, in unit order,
as one after the other would). Nothing a unit reads may depend on another unit's write of the same step.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from greenlet import GreenletExit, greenlet
from sqlalchemy import Connection
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData

# Where a connection that is running units side by side keeps its scheduler (Connection.info).
LOCKSTEP = "headwater.lockstep"


@dataclass
class _Paused:
    unit: greenlet
    stmt: Any
    rows: list[dict[str, Any]] | None  # execute_rows; None: a single statement with ``params``
    params: dict[str, Any] | None = None
    result: Any = field(default_factory=list)


class _UnitConnection:
    """The connection as the units see it: their single statements pause them (Postgres), the rest is the
    connection's own."""

    def __init__(self, connection: Connection, lockstep: Lockstep):
        self._connection = connection
        self._lockstep = lockstep

    def execute(self, stmt: Any, parameters: Any = None, **kwargs: Any) -> Any:
        lockstep = self._lockstep
        if (
            lockstep.pipelined
            and not kwargs
            and isinstance(parameters, dict | None)
            and lockstep.pausing()
            and lockstep.seen_before(stmt, parameters)
        ):
            return lockstep.scheduler.switch((stmt, None, parameters))
        return self._connection.execute(stmt, parameters, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)


class Lockstep:
    def __init__(self, connection: Connection):
        self.connection = connection
        self.scheduler = greenlet.getcurrent()
        self.statements = 0  # merged statements run (for tests and profiles)
        # Single statements are pipelined on Postgres (psycopg); SQLite runs them where they are.
        self.pipelined = connection.dialect.name == "postgresql"
        self.unit_connection = _UnitConnection(connection, self)
        self._compiled: dict[tuple[int, tuple[str, ...]], tuple[Any, Any]] = {}

    def pausing(self) -> bool:
        """Whether an ``execute_rows`` call now comes from a unit (the scheduler's own calls run at once)."""
        return greenlet.getcurrent() is not self.scheduler

    def pause(self, stmt: Any, rows: list[dict[str, Any]]) -> list:
        """Called by a unit's ``execute_rows``: wait for the merged statement, return this unit's RETURNING rows."""
        return self.scheduler.switch((stmt, rows, None))

    def run(self, units: Sequence[Callable[[], None]], after_step: Callable[[], None] = lambda: None) -> None:
        units_left = [greenlet(unit) for unit in units]
        self.connection.info[LOCKSTEP] = self
        try:
            resume: list[tuple[greenlet, Any]] = [(unit, None) for unit in units_left]
            started = False
            while resume:
                paused: list[_Paused] = []
                for unit, value in resume:
                    request = unit.switch(value) if started else unit.switch()
                    if not unit.dead:
                        paused.append(_Paused(unit, *request))
                started = True
                self._run_merged(paused)
                after_step()
                resume = [(p.unit, p.result) for p in paused]
        finally:
            del self.connection.info[LOCKSTEP]
            for unit in units_left:
                if not unit.dead:
                    unit.throw(GreenletExit)

    def _run_merged(self, paused: list[_Paused]) -> None:
        from app.db.dialect import execute_rows

        singles = [p for p in paused if p.rows is None]
        if singles:
            self._run_pipeline(singles)
        groups: dict[tuple[int, tuple[str, ...]], list[_Paused]] = {}
        for p in paused:
            if p.rows is not None:
                groups.setdefault((id(p.stmt), tuple(p.rows[0])), []).append(p)
        for group in groups.values():
            stmt = group[0].stmt
            returned = [c.name for c in getattr(stmt, "_returning", ())]
            conflict = conflict_key(stmt)
            # RETURNING starts with the conflict key (then whatever else the units read back), or is the key.
            key = conflict if conflict and returned[: len(conflict)] == conflict else (returned or conflict)
            if len(group) == 1 or key is None or not set(key) <= set(group[0].rows[0]):
                # One unit, or nothing to tell the units' rows apart by: a statement each, its rows its own.
                for p in group:
                    result = execute_rows(self.connection, stmt, p.rows)
                    p.result = list(result) if returned else []
                    self.statements += 1
                continue
            row_key = _key_of(key)
            keys = {id(p): [row_key(row) for row in p.rows] for p in group}
            for round_ in _rounds(group, keys):
                result = execute_rows(self.connection, stmt, [row for p in round_ for row in p.rows])
                self.statements += 1
                if returned:
                    # RETURNING starts with the key's columns, in its order: each row goes back to the unit that
                    # sent it.
                    owner = {k: p for p in round_ for k in keys[id(p)]}
                    width = len(key)
                    for row in result:
                        owner[tuple(row)[:width]].result.append(row)

    def _run_pipeline(self, paused: list[_Paused]) -> None:
        """Each paused single statement as SQLAlchemy would send it (compiled once, IN lists expanded, bind
        processors applied), all in one psycopg pipeline; each unit gets a buffered result with its rows and
        row count. Listeners of ``before_cursor_execute`` still see every statement."""
        raw = self.connection.connection.driver_connection
        dispatch = self.connection.dispatch.before_cursor_execute
        # The same SQL text from several units is one executemany: psycopg converts the query once and only
        # dumps each unit's parameters, instead of a cursor and a conversion per statement.
        groups: dict[str, list[tuple[_Paused, dict[str, Any]]]] = {}
        for p in paused:
            compiled = self._compiled_for(p.stmt, tuple(sorted(p.params or ())))
            state = compiled.construct_expanded_state(p.params or {})
            processors = state.processors
            params = {k: processors[k](v) if k in processors else v for k, v in state.parameters.items()}
            groups.setdefault(state.statement, []).append((p, params))
        cursors = []
        with raw.pipeline():
            for sql, members in groups.items():
                cursor = raw.cursor()
                for _, params in members:
                    dispatch(self.connection, cursor, sql, params, None, False)
                cursor.executemany(sql, [params for _, params in members], returning=True)
                cursors.append((cursor, members))
        for cursor, members in cursors:
            # One SQL text: the same columns for every member, so they share one description of them.
            description = cursor.description
            metadata = SimpleResultMetaData([column.name for column in description] if description else [])
            for i, (p, _) in enumerate(members):
                if i:
                    cursor.nextset()
                result = IteratorResult(metadata, iter(cursor.fetchall() if description else []))
                result.rowcount = cursor.rowcount
                p.result = result
            cursor.close()

    def seen_before(self, stmt: Any, parameters: dict[str, Any] | None) -> bool:
        """Whether this statement object ran before in this lockstep (with parameters of the same keys); it is
        remembered now. Statements built once and reused (app/services/ingest/statements.py) are compiled here
        once and pipelined from their second use; one built for a single use runs where it is, through
        SQLAlchemy's own compiled cache, rather than being compiled here every time."""
        key = (id(stmt), tuple(sorted(parameters or ())))
        known = self._compiled.get(key)
        if known is not None and known[0] is stmt:
            return True
        self._compiled[key] = (stmt, None)  # the reference keeps the id from being reused
        return False

    def _compiled_for(self, stmt: Any, keys: tuple[str, ...]) -> Any:
        """As SQLAlchemy compiles it for parameters with these keys (an INSERT or UPDATE without explicit
        values sets the columns the parameters name)."""
        _, compiled = self._compiled[(id(stmt), keys)]
        if compiled is None:
            compiled = stmt.compile(dialect=self.connection.dialect, column_keys=list(keys))
            self._compiled[(id(stmt), keys)] = (stmt, compiled)
        return compiled


def _key_of(names: list[str]) -> Callable[[dict[str, Any]], tuple]:
    """A row's values of these columns, as a tuple (also for one column, as RETURNING rows are compared)."""
    if len(names) == 1:
        name = names[0]
        return lambda row: (row[name],)
    return operator.itemgetter(*names)


def conflict_key(stmt: Any) -> list[str] | None:
    """The columns two rows of one statement must not share: the ON CONFLICT target, else the primary key."""
    target = getattr(getattr(stmt, "_post_values_clause", None), "inferred_target_elements", None)
    if target:
        return [getattr(c, "name", c) for c in target]
    primary = [c.name for c in stmt.table.primary_key.columns]
    return primary or None


def _rounds(group: list[_Paused], keys: dict[int, list[tuple]]) -> list[list[_Paused]]:
    """The group split so that no key appears twice in one statement: a unit goes into the first round after
    the last one holding any of its keys, so units sharing a row keep their order."""
    if len({k for unit_keys in keys.values() for k in unit_keys}) == sum(map(len, keys.values())):
        return [group]  # no key is shared (the usual case): one statement
    rounds: list[list[_Paused]] = []
    last_round: dict[tuple, int] = {}
    for p in group:
        mine = set(keys[id(p)])
        index = max((last_round[k] + 1 for k in mine if k in last_round), default=0)
        if index == len(rounds):
            rounds.append([])
        rounds[index].append(p)
        for k in mine:
            last_round[k] = index
    return rounds
