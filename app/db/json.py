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


# Every digit becomes "1" and every other byte "0": a run of 18 digits is then a plain substring search.
_DIGITS_AS_ONES = bytes(0x31 if 0x30 <= b <= 0x39 else 0x30 for b in range(256))
_LONG_DIGIT_RUN = b"1" * 18


def has_long_integer(text: bytes) -> bool:
    """A run of 18 or more digits anywhere (a superset of the integers past 64 bits); scanned in C."""
    return _LONG_DIGIT_RUN in text.translate(_DIGITS_AS_ONES)


def loads(data: str | bytes) -> Any:
    """orjson is several times faster, but reads integers past 64 bits as floats: a document with a long run
    of digits anywhere, and whatever orjson refuses, goes to the standard parser, which keeps them exact."""
    raw = data.encode() if isinstance(data, str) else bytes(data)
    if not has_long_integer(raw):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError:
            pass
    return json.loads(raw, parse_constant=_not_json)


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
