"""Validate response bodies against Marquez's reference OpenAPI document (tests/fixtures/marquez/openapi.yml,
a verbatim copy of Marquez's spec/openapi.yml).

Marquez writes absent optional values as null (its object mapper keeps nulls) although the document does not
mark them nullable, so properties not listed as required also accept null here. Extra properties are allowed,
as the document allows them.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

SPEC_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "marquez" / "openapi.yml"
_URI = "urn:marquez-openapi"


def _nullable_optionals(node: Any) -> Any:
    if isinstance(node, dict):
        node = {k: _nullable_optionals(v) for k, v in node.items()}
        if isinstance(node.get("properties"), dict):
            required = set(node.get("required", []))
            node["properties"] = {
                name: schema if name in required else {"anyOf": [schema, {"type": "null"}]}
                for name, schema in node["properties"].items()
            }
        return node
    if isinstance(node, list):
        return [_nullable_optionals(v) for v in node]
    return node


def _fix_known_defects(schemas: dict) -> None:
    """Where the document contradicts what Marquez serves (and clients read), follow Marquez:
    - DatasetVersion.tags is typed `string`; Marquez returns an array of tag names, as for Dataset.tags;
    - FacetsResult.facets (GET /jobs/runs/{id}/facets) is typed as one facet; Marquez returns a map of facet
      name → facet, like every other `facets` field;
    - GraphNode.data is `oneOf: [Dataset, Job]`, but both schemas accept any object, so no node could ever
      match exactly one: the discriminator (the node's `type`) is what picks, so it is checked as anyOf;
    - SearchResult.name and .updatedAt have an empty `type:`; they are a string and a date-time string;
    - NodeType lists JOB and DATASET; column lineage nodes are DATASET_FIELD."""
    schemas["DatasetVersion"]["properties"]["tags"] = {"type": "array", "items": {"type": "string"}}
    schemas["FacetsResult"]["properties"]["facets"] = {"$ref": "#/components/schemas/RunFacets"}
    schemas["SearchResult"]["properties"]["name"]["type"] = "string"
    schemas["SearchResult"]["properties"]["updatedAt"]["type"] = "string"
    schemas["NodeType"]["enum"] = [*schemas["NodeType"]["enum"], "DATASET_FIELD"]
    data = schemas["GraphNode"]["properties"]["data"]
    data["anyOf"] = data.pop("oneOf")


@cache
def _spec() -> dict:
    spec = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    _fix_known_defects(spec["components"]["schemas"])
    spec["components"]["schemas"] = _nullable_optionals(spec["components"]["schemas"])
    return spec


@cache
def _registry() -> Registry:
    return Registry().with_resource(_URI, Resource.from_contents(_spec(), default_specification=DRAFT7))


def response_schema(path: str, method: str = "get", status: str = "200") -> dict:
    """The JSON schema the reference document gives for ``path`` (as written there, e.g.
    ``/namespaces/{namespace}``)."""
    operation = _spec()["paths"][path][method]
    responses = operation["responses"]
    response = responses.get(status) or responses[int(status)]  # the document spells some codes unquoted
    schema = response["content"]["application/json"]["schema"]
    if "$ref" in schema:
        return {"$ref": _URI + schema["$ref"]}
    return schema


def assert_conforms(body: Any, path: str, method: str = "get", status: str = "200") -> None:
    validator = Draft7Validator(response_schema(path, method, status), registry=_registry())
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:10])
