"""Reading a request body the way OpenLineage clients send it: possibly gzip-compressed, possibly chunked
without a Content-Length, bounded by a size limit (checked while streaming and after inflation)."""

from __future__ import annotations

import re
import zlib
from typing import Any

import orjson
from starlette.requests import Request

from app.api.errors import ApiError
from app.db import json as json_codec
from app.services.ingest.validation import find_nul, json_type


def _too_large(limit: int) -> ApiError:
    return ApiError(413, f"Request body is larger than the limit of {limit} bytes (HEADWATER_MAX_BODY_BYTES).")


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _inflate(body, limit, gzip=encoding != "deflate")
    raise ApiError(415, f"Unsupported Content-Encoding '{encoding}'; send identity or gzip.")


def _inflate(body: bytes, limit: int, *, gzip: bool) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS if gzip else zlib.MAX_WBITS)
    try:
        # max_length bounds memory: a small "gzip bomb" cannot expand past the limit.
        data = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise ApiError(400, f"Request body is not valid {'gzip' if gzip else 'deflate'} data: {exc}") from None
    if len(data) > limit or inflater.unconsumed_tail:
        raise _too_large(limit)
    if not inflater.eof:
        raise ApiError(400, "Request body is truncated: the compressed stream ends early.")
    return data


# Deepest JSON an event may be. Every reader (pydantic's serializer, orjson) stops at ~255 levels, and the
# read API wraps facets a few levels deeper still (an event inside a list inside a page): anything the server
# accepts must be servable back. Real facets are a handful of levels deep.
MAX_JSON_DEPTH = 128


# A string once its escapes are gone (see json_depth): no quote inside.
_PLAIN_STRING = re.compile(rb'"[^"]*"')
# Only brackets are kept, each as "[" or "]": depth does not care which kind.
_BRACKETS_ONLY = bytes.maketrans(b"{}", b"[]")
_NOT_A_BRACKET = bytes(b for b in range(256) if b not in b"{}[]")


def json_depth(body: bytes, limit: int) -> int:
    """Nesting depth of a JSON text already known to be valid (a scalar is 0, ``{}`` is 1), counted up to
    ``limit + 1``: the brackets outside strings, with the innermost pairs removed one level per pass. All the
    scanning runs in C (``bytes.replace``, one simple regex, ``bytes.translate``); a walk over the parsed value
    or the brackets costs a Python step per value of every event. Escaped backslashes go first, then escaped
    quotes, so every quote left opens or closes a string."""
    plain = body.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = _PLAIN_STRING.sub(b"", plain).translate(_BRACKETS_ONLY, _NOT_A_BRACKET)
    depth = 0
    while brackets and depth <= limit:
        brackets = brackets.replace(b"[]", b"")  # pairs made adjacent by this pass wait for the next
        depth += 1
    return depth


def nested_deeper_than(value: Any, body: bytes, limit: int) -> bool:
    """Whether the parsed ``value`` (``body``, the text it was parsed from) nests more than ``limit`` levels,
    as ``json_depth`` counts them. orjson's indented form puts a value inside ``k`` containers on a line
    indented ``2k`` spaces, so a line indented deeper than ``2 * limit`` is inside a container past the limit,
    and so is an empty container (``{}``/``[]``, the only lines that end that way) indented exactly that much.
    Writing that form and searching it runs in C: several times cheaper than ``json_depth``'s scans. What
    orjson will not write (past its 255 levels, integers beyond 64 bits) is counted by ``json_depth``."""
    try:
        indented = orjson.dumps(value, option=orjson.OPT_INDENT_2)
    except orjson.JSONEncodeError:
        return json_depth(body, limit) > limit
    at_limit = b"\n" + b" " * (2 * limit)
    if at_limit not in indented:
        return False
    return at_limit + b" " in indented or _empty_container_line(limit).search(indented) is not None


def _empty_container_line(limit: int) -> re.Pattern[bytes]:
    return re.compile(rb"\n {%d}(?! )[^\n]*(?:\{\}|\[\]),?(?:\n|$)" % (2 * limit))


def _parse(body: bytes, *, max_depth: int) -> Any:
    """Parse a JSON body. The standard library parser keeps integers of any size exactly (facets are stored
    verbatim); NaN/Infinity, invalid UTF-8 and nesting past ``max_depth`` are rejected with a 400."""
    if not body.strip():
        raise ApiError(400, "Request body is empty; expected an OpenLineage event as a JSON object.")
    try:
        value = json_codec.loads(body)
    except (ValueError, RecursionError) as exc:
        reason = "nesting is too deep" if isinstance(exc, RecursionError) else str(exc)
        raise ApiError(400, f"Request body is not valid JSON: {reason}") from None
    if isinstance(value, dict | list) and nested_deeper_than(value, body, max_depth):
        raise ApiError(
            400, f"Request body is not valid JSON: nesting is too deep (over {max_depth} levels, the limit)."
        )
    return value


def parse_json_object(body: bytes) -> dict[str, Any]:
    """One OpenLineage event: a JSON object with no NUL character in it (Postgres cannot store one)."""
    value = _parse(body, max_depth=MAX_JSON_DEPTH)
    if not isinstance(value, dict):
        raise ApiError(400, f"Request body must be a JSON object (an OpenLineage event), not {json_type(value)}.")
    if b"\\u0000" in body and (path := find_nul(value)) is not None:
        raise ApiError(422, f"{path}: contains a NUL character (\\u0000), which cannot be stored.")
    return value


def parse_json_array(body: bytes) -> list[Any]:
    """A batch of events: a JSON array, each element nested no deeper than one event may be. The elements
    are checked one by one by the caller, so that one bad event does not cost the others."""
    value = _parse(body, max_depth=MAX_JSON_DEPTH + 1)
    if not isinstance(value, list):
        raise ApiError(400, f"Request body must be a JSON array of OpenLineage events, not {json_type(value)}.")
    return value
