"""Run `headwater serve` as a real process (uvicorn, real sockets) for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.ports import ReservedPort


def free_port() -> int:
    """A port free at the time of asking, not held (benchmarks' own servers); tests hold theirs: ReservedPort."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    def __init__(self, database_url: str, *, workers: int = 1, log_path: Path | None = None, env: dict | None = None):
        self.database_url = database_url
        # Held until the server stops (tests/support/ports.py): no other process can take them in between.
        self._reserved = [ReservedPort(), ReservedPort()]
        self.port, self.admin_port = (reserved.port for reserved in self._reserved)
        self.workers = workers
        self.log_path = log_path
        self.extra_env = env or {}
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> LiveServer:
        env = {
            **os.environ,
            "HEADWATER_DATABASE_URL": self.database_url,
            "HEADWATER_HOST": "127.0.0.1",
            "HEADWATER_PORT": str(self.port),
            "HEADWATER_ADMIN_PORT": str(self.admin_port),
            "HEADWATER_WORKERS": str(self.workers),
            "HEADWATER_LOG_LEVEL": "warning",
            # Tests read what they wrote: a read waits for the applier however loaded the machine is (the
            # bounded wait and its lag headers have their own test).
            "HEADWATER_READ_WAIT_SECONDS": "60",
            **self.extra_env,
        }
        log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; see {self.log_path}")
            try:
                health = httpx.get(f"{self.url}/api/v1/health", timeout=1)
                if health.status_code == 200:
                    return self
                last = f"HTTP {health.status_code} {health.text[:200]}"
            except httpx.HTTPError as error:
                last = repr(error)  # refused: not listening yet; a timeout: listening, not answering
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not become healthy within {timeout}s (last health check: {last})")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for reserved in self._reserved:
            reserved.release()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
