"""The request-body checks that run on every event, written for speed (app/api/request_body.py), against their
plain definitions."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from app.api.request_body import json_depth, nested_deeper_than
from app.db import json as json_codec
from app.db.json import has_long_integer

# Strings full of what could fool a scan: quotes, backslashes, brackets.
tricky_text = st.text(alphabet='"\\[]{}ab\n', max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | tricky_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(tricky_text, inner, max_size=4),
    max_leaves=30,
)


def walked_depth(value) -> int:
    if isinstance(value, list):
        return 1 + max(map(walked_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(walked_depth, value.values()), default=0)
    return 0


@given(json_values, st.booleans())
def test_json_depth_counts_the_brackets_outside_strings(value, indented):
    body = json.dumps(value, indent=2 if indented else None).encode()
    assert json_depth(body, limit=128) == walked_depth(value)


def test_json_depth_stops_counting_past_the_limit():
    assert json_depth(b"[" * 5000 + b"]" * 5000, limit=128) == 129


@given(json_values, st.integers(min_value=1, max_value=5))
def test_nested_deeper_than_agrees_with_the_walked_depth(value, limit):
    """Limits of a few levels, so that values nested just past, at and under the limit all come up (empty
    containers at the limit, the case the indented form must look at twice, included)."""
    body = json.dumps(value).encode()
    assert nested_deeper_than(value, body, limit) == (walked_depth(value) > limit)


def test_nested_deeper_than_counts_what_orjson_will_not_write():
    deep = json.loads("[" * 300 + "]" * 300)  # past orjson's 255 levels
    assert nested_deeper_than(deep, json.dumps(deep).encode(), 128)
    big = {"a": [[{"n": 2**70}]]}  # an integer orjson will not write, 4 levels
    assert nested_deeper_than(big, json.dumps(big).encode(), 3)
    assert not nested_deeper_than(big, json.dumps(big).encode(), 4)


@given(st.integers())
def test_a_long_integer_is_one_with_18_or_more_digits(number):
    body = json.dumps({"value": number, "text": "12345"}).encode()
    assert has_long_integer(body) == (len(str(abs(number))) >= 18)


@given(json_values)
def test_stored_documents_read_back_as_the_standard_parser_reads_them(value):
    """app/db/json.loads (what both databases' JSON columns are read with) takes orjson's fast path only where
    it agrees with the standard parser: integers of any size come back exact."""
    text = json.dumps(value)
    assert json_codec.loads(text) == json.loads(text)
    assert json_codec.loads(text.encode()) == json.loads(text)
