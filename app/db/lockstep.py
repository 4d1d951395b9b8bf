"""Run several units of work side by side in one transaction, each multi-row write of theirs merged with the
same write of the others into one statement.

Each unit (an applier's event) runs in a greenlet of its own, with ``unit_connection`` as its connection.
Its ``execute_rows`` calls pause it, and so (on Postgres) do its single statements; when every unit is
paused or done, the paused calls are grouped by statement: each group of ``execute_rows`` runs as one
statement with all their rows, and the single statements of every group go to the server together in one
pipeline (one round trip, no per-statement work in SQLAlchemy), then every unit resumes with its own share
of the results. So a batch of N events costs about as many multi-row statements as one event, with one copy
of the model's rules: the units are the ordinary per-event code.

On Postgres, units that are many enough run in two halves that take turns (``run``): one half's statements
of a step execute on the server while this process runs the other half's Python, so the two cores work at
the same time rather than in turn. A statement a unit runs at once (not paused in a step) first waits for
what is in flight.

What the caller guarantees: the units touch disjoint rows, except rows they only insert-if-missing or that
are merged here with a conflict key (two units' rows for the same key run in two statements, in unit order,
as one after the other would). Nothing a unit reads may depend on another unit's write of the same step.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from greenlet import GreenletExit, greenlet
from sqlalchemy import Connection, event
from sqlalchemy.engine.result import IteratorResult, SimpleResultMetaData
from sqlalchemy.exc import DBAPIError

# Where a connection that is running units side by side keeps its scheduler (Connection.info).
LOCKSTEP = "headwater.lockstep"
# Units in each half, at least, for the halves to take turns (fewer: one group, as the statements per step
# double when they do).
MIN_HALF = 16
_START = object()  # a unit not started yet


@dataclass
class _Paused:
    unit: greenlet
    stmt: Any
    rows: list[dict[str, Any]] | None  # execute_rows; None: a single statement with ``params``
    params: dict[str, Any] | None = None
    result: Any = field(default_factory=list)


@dataclass
class _Flight:
    """One half's statements of a step, sent: ``pending`` collects each statement's results."""

    cohort: int
    paused: list[_Paused]
    pending: list[Callable[[], None]]


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
        self._pipeline: Any = None  # psycopg's, open while statements are in flight
        self._pipeline_context: Any = None
        self._flight: _Flight | None = None
        self._finished: dict[int, list[tuple[greenlet, Any]]] = {}  # halves whose step is over, to resume
        self._after_step: Callable[[], None] = lambda: None

    def pausing(self) -> bool:
        """Whether an ``execute_rows`` call now comes from a unit (the scheduler's own calls run at once)."""
        return greenlet.getcurrent() is not self.scheduler

    def pause(self, stmt: Any, rows: list[dict[str, Any]]) -> list:
        """Called by a unit's ``execute_rows``: wait for the merged statement, return this unit's RETURNING rows."""
        return self.scheduler.switch((stmt, rows, None))

    def run(self, units: Sequence[Callable[[], None]], after_step: Callable[[], None] = lambda: None) -> None:
        """Run the units to the end, step by step. On Postgres two halves of them take turns: while the server
        executes one half's statements of a step, this process runs the other half's Python up to its next
        statements (then collects the first half's results, sends the second's, and so on). The statements
        still execute in the order one step of all units would run them (the first half's, then the second's;
        no unit reads what another writes in the same step), but the server and Python work at the same time
        instead of in turn."""
        greenlets = [greenlet(unit) for unit in units]
        halves = self.pipelined and len(greenlets) >= 2 * MIN_HALF
        cohorts = [greenlets[: len(greenlets) // 2], greenlets[len(greenlets) // 2 :]] if halves else [greenlets]
        resume: dict[int, list[tuple[greenlet, Any]]] = {i: [(u, _START) for u in c] for i, c in enumerate(cohorts)}
        self._after_step = after_step
        self.connection.info[LOCKSTEP] = self
        if self.pipelined:
            # A statement run at once (not paused in a step) waits for what is in flight, outside the pipeline.
            event.listen(self.connection, "before_execute", self._before_execute)
        failed = True
        try:
            while resume or self._flight is not None:
                for i in sorted(resume):
                    paused = self._step(resume.pop(i))
                    self._finish()  # the other half's statements, executed meanwhile
                    self._end_steps(resume)
                    if paused:
                        self._send(i, paused)
                if not resume:
                    self._finish()
                    self._end_steps(resume)
            failed = False
        finally:
            if self.pipelined:
                event.remove(self.connection, "before_execute", self._before_execute)
            self._close_pipeline(failed)
            del self.connection.info[LOCKSTEP]
            for unit in greenlets:
                if not unit.dead:
                    unit.throw(GreenletExit)

    @staticmethod
    def _step(resume: list[tuple[greenlet, Any]]) -> list[_Paused]:
        """Each unit run up to its next statement (or its end)."""
        paused = []
        for unit, value in resume:
            request = unit.switch() if value is _START else unit.switch(value)
            if not unit.dead:
                paused.append(_Paused(unit, *request))
        return paused

    def _end_steps(self, resume: dict[int, list[tuple[greenlet, Any]]]) -> None:
        """The halves whose statements executed resume next; ``after_step`` runs here, between two halves'
        Python (never in the middle of one's, as it would for a flight a unit's own statement finished), so
        it speaks only for statements that are sent before any later step's."""
        if self._finished:
            self._after_step()
            resume.update(self._finished)
            self._finished.clear()

    def _before_execute(self, *args: Any) -> None:
        """Before a statement that does not wait for a step: what is in flight is done, the pipeline closed."""
        self._finish()
        self._close_pipeline(False)

    def _send(self, cohort: int, paused: list[_Paused]) -> None:
        """The paused units' statements, merged, on their way to the server; ``_finish`` collects the results.
        SQLite: run at once."""
        if not self.pipelined:
            self._run_merged(paused)
            self._flight = _Flight(cohort, paused, [])
            return
        if self._pipeline is None:
            self._pipeline_context = self._raw().pipeline()
            self._pipeline = self._pipeline_context.__enter__()
        pending: list[Callable[[], None]] = []
        singles = [p for p in paused if p.rows is None]
        if singles:
            pending.extend(self._send_singles(singles))
        for stmt, rounds, keys, returned in self._merged_groups(paused):
            for round_ in rounds:
                pending.append(self._send_rows(stmt, round_, keys, returned))
        self._flight = _Flight(cohort, paused, pending)

    def _finish(self) -> None:
        """The statements in flight executed: each unit of their half gets its results."""
        flight, self._flight = self._flight, None
        if flight is None:
            return
        try:
            if flight.pending:
                self._pipeline.sync()  # every result of the half's statements is in
            for collect in flight.pending:
                collect()
        except psycopg.Error as exc:  # raw driver errors, as SQLAlchemy would have raised them
            raise DBAPIError.instance(None, None, exc, psycopg.Error) from exc
        self._finished[flight.cohort] = [(p.unit, p.result) for p in flight.paused]

    def _close_pipeline(self, failed: bool) -> None:
        context, self._pipeline_context, self._pipeline = self._pipeline_context, None, None
        if context is None:
            return
        try:
            context.__exit__(None, None, None)
        except Exception:
            if not failed:
                raise  # otherwise the error that stopped the units is the one to see

    def _raw(self) -> Any:
        return self.connection.connection.driver_connection

    def _run_merged(self, paused: list[_Paused]) -> None:
        """SQLite: the step's statements, each group as one ``execute_rows``."""
        from app.db.dialect import execute_rows

        for stmt, rounds, keys, returned in self._merged_groups(paused):
            for round_ in rounds:
                result = execute_rows(self.connection, stmt, [row for p in round_ for row in p.rows])
                self.statements += 1
                _route(round_, result, keys, returned)

    def _merged_groups(self, paused: list[_Paused]):
        """The paused ``execute_rows`` calls grouped by statement, each group split into rounds of units whose
        rows share no key: (statement, rounds, each unit's row keys that RETURNING rows are routed by or None,
        returning?)."""
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
                yield stmt, [[p] for p in group], None, bool(returned)
                continue
            row_key = _key_of(key)
            keys = {id(p): [row_key(row) for row in p.rows] for p in group}
            yield stmt, _rounds(group, keys), keys, bool(returned)

    def _send_rows(self, stmt: Any, round_: list[_Paused], keys: dict[int, list[tuple]] | None, returned: bool):
        from app.db.dialect import rows_statement

        sql, params = rows_statement(self.connection, stmt, [row for p in round_ for row in p.rows])
        cursor = self._raw().cursor()
        self.connection.dispatch.before_cursor_execute(self.connection, cursor, sql, params, None, False)
        cursor.execute(sql, params)
        self.statements += 1

        def collect() -> None:
            description = cursor.description
            rows = cursor.fetchall() if description else []
            metadata = SimpleResultMetaData([column.name for column in description] if description else [])
            _route(round_, IteratorResult(metadata, iter(rows)), keys, returned)
            cursor.close()

        return collect

    def _send_singles(self, paused: list[_Paused]) -> list[Callable[[], None]]:
        """Each paused single statement as SQLAlchemy would send it (compiled once, IN lists expanded, bind
        processors applied), into the pipeline; each unit gets a buffered result with its rows and row count.
        Listeners of ``before_cursor_execute`` still see every statement."""
        raw = self._raw()
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
        pending = []
        for sql, members in groups.items():
            cursor = raw.cursor()
            for _, params in members:
                dispatch(self.connection, cursor, sql, params, None, False)
            cursor.executemany(sql, [params for _, params in members], returning=True)
            pending.append(functools.partial(_collect_singles, cursor, members))
        return pending

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


def _collect_singles(cursor: Any, members: list[tuple[_Paused, dict[str, Any]]]) -> None:
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


def _route(round_: list[_Paused], result: Any, keys: dict[int, list[tuple]] | None, returned: bool) -> None:
    """A merged statement's RETURNING rows back to the units that sent them: by the key they start with (each
    unit's row keys, ``keys``), or, for a statement of one unit's rows, all of them."""
    if not returned:
        for p in round_:
            p.result = []
        return
    if keys is None:
        (p,) = round_
        p.result = list(result)
        return
    owner = {k: p for p in round_ for k in keys[id(p)]}
    width = len(next(iter(owner)))  # every key has the conflict key's columns
    for row in result:
        owner[tuple(row)[:width]].result.append(row)


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
