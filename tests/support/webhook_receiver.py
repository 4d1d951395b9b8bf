"""A real HTTP server on loopback that records the webhook calls it receives, answering with the status codes
it is told to (e.g. 500 then 200)."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        expected = "sha256=" + hmac.new(secret.encode(), self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("x-headwater-signature", ""), expected)


class WebhookReceiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self._answers: dict[str, list[int]] = {}
        self._held: dict[str, threading.Event] = {}
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._lock:
                    receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                    answers = receiver._answers.get(self.path)
                    code = answers.pop(0) if answers else 200
                    held = receiver._held.get(self.path)
                if held is not None:
                    held.wait(30)
                self.send_response(code)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def answer(self, path: str, *codes: int) -> None:
        """Answer the next calls to ``path`` with these codes (200 afterwards)."""
        self._answers[path] = list(codes)

    def hold(self, path: str) -> threading.Event:
        """Record calls to ``path`` at once but answer them only when the returned event is set (a slow
        receiver)."""
        self._held[path] = threading.Event()
        return self._held[path]

    def calls(self, path: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if path is None or r.path == path]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 15) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.calls(path)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} calls to {path or 'any path'}, got {len(self.calls(path))}")

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        for held in self._held.values():
            held.set()
        self._server.shutdown()
        self._server.server_close()
