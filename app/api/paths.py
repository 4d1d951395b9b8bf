"""Names with slashes in URL paths.

Marquez names contain `/` (`s3://bucket/path/file.parquet`); clients percent-encode it (`%2F`) inside a path
segment. Starlette routes on the *decoded* path, where such a slash would split the segment, so this
middleware rebuilds the routing path from the raw one with encoded slashes replaced by a private-use marker,
and the ``name`` path convertor (``{namespace:name}``) turns the marker back into ``/``.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from starlette.convertors import Convertor, register_url_convertor
from starlette.types import ASGIApp, Receive, Scope, Send

ENCODED_SLASH = "\ue000"


class NameConvertor(Convertor[str]):
    regex = "[^/]+"

    def convert(self, value: str) -> str:
        return value.replace(ENCODED_SLASH, "/")

    def to_string(self, value: str) -> str:
        return quote(value, safe="")


register_url_convertor("name", NameConvertor())


class EncodedSlashMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = scope.get("raw_path") if scope["type"] == "http" else None
        if raw:
            raw = raw.split(b"?", 1)[0]
            if b"%2f" in raw.lower():
                segments = raw.decode("latin-1").split("/")
                path = "/".join(unquote(s).replace("/", ENCODED_SLASH) for s in segments)
                scope = {**scope, "path": path}
        await self.app(scope, receive, send)
