"""Version ids are Marquez's (app/services/identifiers.py): the fields are rendered sorted as Marquez sorts them
(by name, type and description, nulls first), however they are sorted in Python."""

from __future__ import annotations

import hashlib
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from app.services import identifiers as ids

_TEXT = st.sampled_from(["", "a", "b", "id", "ID", "int", "INT", "x y"])
_FIELDS = st.lists(
    st.fixed_dictionaries(
        {"name": _TEXT},
        optional={"type": st.one_of(st.none(), _TEXT), "description": st.one_of(st.none(), _TEXT)},
    ),
    max_size=8,
)


def _reference_version(fields: list[dict]) -> uuid.UUID:
    """Marquez's rendering, with the nulls-first comparison spelled out for every pair of parts."""
    triples = {
        (f["name"], f["type"].upper() if isinstance(f.get("type"), str) else None, f.get("description")) for f in fields
    }

    def nulls_first(triple):
        return [(part is not None, part or "") for part in triple]

    rendered = ":".join(":".join(p for p in t if p is not None) for t in sorted(triples, key=nulls_first))
    text = ":".join(["ns", "src", "table", "table", rendered, ""])
    return uuid.UUID(bytes=hashlib.md5(text.encode()).digest(), version=3)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(_FIELDS)
def test_a_dataset_version_id_is_marquezs_whatever_nulls_the_fields_have(fields):
    assert ids.dataset_version("ns", "src", "table", "table", fields, None, None) == _reference_version(fields)
    assert ids.dataset_version("ns", "src", "table", "table", fields[::-1], None, None) == _reference_version(fields)
