"""JSON encoding for stored documents: orjson's speed, with the standard library as the fallback for what
orjson refuses (integers beyond 64 bits), so facets are kept exactly as sent."""

from __future__ import annotations

import json
from typing import Any

import orjson


class UnstorableJSON(ValueError):
    """A value that no database can store as JSON text (e.g. a lone UTF-16 surrogate)."""


def dumps_bytes(value: Any, *, sort_keys: bool = False) -> bytes:
    # UTC datetimes end in "Z", as pydantic writes them in every other response.
    options = orjson.OPT_UTC_Z | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    try:
        return orjson.dumps(value, option=options)
    except orjson.JSONEncodeError:
        text = json.dumps(value, sort_keys=sort_keys, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        try:
            return text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise UnstorableJSON(f"contains text that is not valid Unicode ({exc.reason})") from None


def dumps(value: Any) -> str:
    return dumps_bytes(value).decode("utf-8")


def loads(data: str | bytes) -> Any:
    return json.loads(data)
