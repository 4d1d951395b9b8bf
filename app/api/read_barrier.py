"""Read-your-writes over HTTP: every API request other than ingest itself first waits until the events
acknowledged before it began are applied to the model (app/services/ingest/barrier.py). An answer given after
``HEADWATER_READ_WAIT_SECONDS`` without that says how far behind it is, in two headers."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Ingest does not wait for the model (GET /api/v1/lineage, the graph, does), and health reports the lag instead
# of waiting it out.
_INGEST = ("/api/v1/lineage", "/api/v1/lineage/batch")
_HEALTH = "/api/v1/health"
UNAPPLIED_HEADER = b"x-headwater-unapplied-events"
LAG_HEADER = b"x-headwater-apply-lag-seconds"


class ReadBarrierMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not path.startswith("/api/")
            or path == _HEALTH
            or (scope["method"] == "POST" and path in _INGEST)
        ):
            await self.app(scope, receive, send)
            return
        runtime = getattr(scope["app"].state, "ingest", None)
        lag = await run_in_threadpool(runtime.barrier.wait) if runtime is not None else None
        if lag is None:
            await self.app(scope, receive, send)
            return

        async def send_with_lag(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [*message.get("headers", ())]
                headers.append((UNAPPLIED_HEADER, str(lag.unapplied).encode()))
                headers.append((LAG_HEADER, f"{lag.seconds:.3f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_lag)
