"""Fuzzing every operation of Headwater's own OpenAPI document (openapi/openapi.json) with schemathesis.

Each operation gets requests generated from its declared parameters and bodies (and, by schemathesis, near
misses of them), sent to the app on the test database, with a few events already stored so that some
generated names hit real rows. The checks, and why these:

- not_a_server_error: no input may produce a 5xx; bad input is a 4xx with a JSON error;
- status_code_conformance: every status the app answers is one the document declares for the operation,
  so clients (and generated SDKs) know every outcome;
- content_type_conformance: the body's media type is the declared one (JSON errors, JSON documents);
- response_schema_conformance: the body matches the declared response schema.

Left out: positive_data_acceptance / negative_data_rejection. The document describes shapes, not every rule
(a name that does not exist is schema-valid and still a 404; Marquez-compatible endpoints accept more than
the document spells out), so those would report the document's looseness, not the app's faults.

Deterministic (derandomized hypothesis) and bounded per operation, so it runs in about a minute per database.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation.case import Case

from app.openapi_doc import DOCUMENT
from tests.support.events import T0, dataset, run_event

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES_PER_OPERATION = 15

schema = schemathesis.openapi.from_path(str(DOCUMENT))


@pytest.fixture
def fuzz_client(client):
    """The app with a small pipeline stored: a namespace, a job with a completed run, datasets."""
    run_id = uuid.UUID(int=1, version=4)
    for kind, minutes in (("START", 0), ("COMPLETE", 5)):
        event = run_event(
            kind,
            job=("default", "etl"),
            run_id=run_id,
            time=T0 + timedelta(minutes=minutes),
            inputs=[dataset("default", "source", columns=[("id", "int")])],
            outputs=[dataset("default", "target", columns=[("id", "int")])],
        )
        assert client.post("/api/v1/lineage", json=event).status_code == 201
    return client


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_conforms_and_never_fails(case: Case, fuzz_client):
    kwargs = case.as_transport_kwargs(base_url=str(fuzz_client.base_url))
    kwargs.pop("cookies", None)
    if isinstance(kwargs.get("data"), bytes | str):  # a raw (non-form) body
        kwargs["content"] = kwargs.pop("data")
    response = fuzz_client.request(**kwargs)
    case.validate_response(response, checks=CHECKS)
