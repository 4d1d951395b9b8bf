"""Graceful shutdown: a request in flight when SIGTERM arrives is still answered and stored, new connections
are refused, and `headwater serve` exits 0."""

from __future__ import annotations

import json
import signal
import socket
import time
import uuid

import pytest
from sqlalchemy import func, select

from app.db import tables as t
from tests.support.events import T0, dataset, run_event
from tests.support.live_server import LiveServer
from tests.support.model import applied


def _refuses_connections(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except OSError:
        return True


@pytest.mark.parametrize("workers", [1, 2])
def test_request_in_flight_at_sigterm_completes_and_server_exits_0(database_url, engine, tmp_path, workers):
    event = run_event(
        "COMPLETE",
        job=("shutdown", "job"),
        run_id=uuid.uuid4(),
        time=T0,
        outputs=[dataset("db", "big_table", columns=[(f"column_{i}", "text") for i in range(2000)])],
    )
    body = json.dumps(event).encode()
    log = tmp_path / "server.log"
    server = LiveServer(database_url, workers=workers, log_path=log, env={"HEADWATER_LOG_LEVEL": "info"}).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as client:
            # A client that asks before sending its large body: the server's "100 Continue" says the request has
            # reached the endpoint, which is now waiting for the body.
            client.sendall(
                b"POST /api/v1/lineage HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body)
            )
            assert client.recv(100).startswith(b"HTTP/1.1 100 Continue")
            server.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            while b"Waiting for connections to close" not in log.read_bytes():  # uvicorn is shutting down
                assert time.monotonic() < deadline, "the server did not start shutting down"
                time.sleep(0.05)
            if workers == 1:  # (with several, the supervisor holds the socket open till the workers are done)
                assert _refuses_connections(server.port)
            assert server.process.poll() is None  # still finishing the request in flight
            client.sendall(body)
            response = client.recv(4096)
        assert response.startswith(b"HTTP/1.1 201"), response
        assert server.process.wait(30) == 0
    finally:
        server.stop()
    with applied(engine).connect() as conn:  # the server applied what it acknowledged before it stopped
        assert conn.execute(select(func.count()).select_from(t.lineage_events)).scalar() == 1
        assert len(conn.execute(select(t.dataset_versions.c.fields)).scalar_one()) == 2000
