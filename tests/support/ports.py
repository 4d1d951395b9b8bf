"""Loopback ports the OS chooses, held until the server given one is done with it.

Asking the OS for a free port (bind to port 0) and closing the socket before the server binds it leaves a gap in
which any other process may take the port: another suite's server asking for a free port too, or an outgoing
connection given it as its local port. The server then fails to start ("address already in use"), or, worse, the
test reaches someone else's server there. A ReservedPort keeps its socket bound, not listening, with SO_REUSEADDR
until released: the kernel gives the port to no other port-0 bind and no outgoing connection meanwhile, while a
server that sets SO_REUSEADDR itself, as uvicorn and PostgreSQL do, can still bind and listen on it. A held port
that no server listens on refuses every connection, however long the test takes.
"""

from __future__ import annotations

import socket


class ReservedPort:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind((host, 0))
        self.port: int = self._socket.getsockname()[1]

    def release(self) -> None:
        self._socket.close()

    def __enter__(self) -> int:
        return self.port

    def __exit__(self, *exc) -> None:
        self.release()
