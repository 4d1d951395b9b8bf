"""Names with slashes in URL paths.

Marquez names contain `/` (`s3://bucket/path/file.parquet`); clients percent-encode it (`%2F`) inside a path
segment. Starlette routes on the *decoded* path, where such a slash would split the segment, so this
middleware rebuilds the routing path from the raw one with encoded slashes replaced by a private-use marker,
and the ``name`` path convertor (``{namespace:name}``) turns the marker back into ``/``.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import Path
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

ENCODED_SLASH = "\ue000"

# A name a write takes from the path: stored, so capped as event names are (1024 characters, as in Marquez);
# reads take any length and answer 404.
WrittenName = Annotated[str, Path(max_length=1024)]


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
        if scope["type"] == "http" and _has_nul(raw or b"", scope.get("query_string", b"")):
            # No database can index a name holding U+0000 (Postgres cannot store it in text at all).
            message = "The URL contains a NUL character (%00), which no name or parameter may hold."
            await JSONResponse({"code": 400, "message": message}, 400)(scope, receive, send)
            return
        if raw:
            raw = raw.split(b"?", 1)[0]
            if b"%2f" in raw.lower():
                segments = raw.decode("latin-1").split("/")
                path = "/".join(unquote(s).replace("/", ENCODED_SLASH) for s in segments)
                scope = {**scope, "path": path}
        await self.app(scope, receive, send)


def _has_nul(raw_path: bytes, query: bytes) -> bool:
    return b"%00" in raw_path or b"%00" in query or b"\x00" in raw_path or b"\x00" in query
