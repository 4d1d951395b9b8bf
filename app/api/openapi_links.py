"""OpenAPI links: where an answer's identifiers can be used next, written into the OpenAPI document.

A client (or a generated SDK, or a stateful fuzzer such as schemathesis) reading the document learns that the
namespaces listed by `GET /namespaces` are what `GET /namespaces/{namespace}` takes, that a job's runs have the
ids `GET /jobs/runs/{run_id}` takes, and so on, instead of guessing names that do not exist.
"""

from __future__ import annotations

from typing import Any

_NS, _JOBS = "/api/v1/namespaces/{namespace}", "/api/v1/namespaces/{namespace}/jobs"
_JOB = "/api/v1/namespaces/{namespace}/jobs/{job}"
_DATASET = "/api/v1/namespaces/{namespace}/datasets/{dataset}"
_RUN = "/api/v1/jobs/runs/{run_id}"
_PLAN = "/api/v1/backfills/{planId}"
_INCIDENT = "/api/v1/incidents/{incidentId}"
_SUBSCRIPTION = "/api/v1/subscriptions/{subscriptionId}"


def _namespace(at: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    return {
        "GetNamespace": (_NS, "get", {"namespace": at}),
        "ListJobs": (_JOBS, "get", {"namespace": at}),
        "ListDatasets": ("/api/v1/namespaces/{namespace}/datasets", "get", {"namespace": at}),
    }


def _job(at: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    names = {"namespace": f"{at}/namespace", "job": f"{at}/name"}
    return {
        "GetJob": (_JOB, "get", names),
        "ListJobRuns": (f"{_JOB}/runs", "get", names),
        "ListJobVersions": (f"{_JOB}/versions", "get", names),
        "JobLineage": ("/api/v1/lineage", "get", {"nodeId": f"job:{{{at}/namespace}}:{{{at}/name}}"}),
    }


def _dataset(at: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    names = {"namespace": f"{at}/namespace", "dataset": f"{at}/name"}
    node = f"dataset:{{{at}/namespace}}:{{{at}/name}}"
    return {
        "GetDataset": (_DATASET, "get", names),
        "ListDatasetVersions": (f"{_DATASET}/versions", "get", names),
        "DatasetLineage": ("/api/v1/lineage", "get", {"nodeId": node}),
        "DatasetColumnLineage": ("/api/v1/column-lineage", "get", {"nodeId": node}),
    }


def _run(at: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    return {
        "GetRun": (_RUN, "get", {"run_id": at}),
        "GetRunFacets": (f"{_RUN}/facets", "get", {"run_id": at}),
        "UpstreamRunLineage": ("/api/v1/runlineage/upstream", "get", {"runId": at}),
        "RunImpact": ("/api/v1/impact", "get", {"runId": at}),
    }


def _plan(at: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    return {"GetPlan": (_PLAN, "get", {"planId": at})}


def _incident(at: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    return {
        "GetIncident": (_INCIDENT, "get", {"incidentId": at}),
        "ResolveIncident": (f"{_INCIDENT}/resolve", "post", {"incidentId": at}),
    }


def _subscription(at: str) -> dict[str, tuple[str, str, dict[str, str]]]:
    return {
        "GetSubscription": (_SUBSCRIPTION, "get", {"subscriptionId": at}),
        "ReplaceSubscription": (_SUBSCRIPTION, "put", {"subscriptionId": at}),
        "ListDeliveries": (f"{_SUBSCRIPTION}/deliveries", "get", {"subscriptionId": at}),
        "DeleteSubscription": (_SUBSCRIPTION, "delete", {"subscriptionId": at}),
    }


# (path, method, status) of an answer → its links: name → (target path, method, {parameter: JSON pointer}).
# A pointer is read from the answer's body; `{pointer}` inside a string embeds one.
LINKS: dict[tuple[str, str, str], dict[str, tuple[str, str, dict[str, str]]]] = {
    ("/api/v1/namespaces", "get", "200"): _namespace("/namespaces/0/name"),
    (_NS, "get", "200"): _namespace("/name"),
    (_NS, "put", "200"): _namespace("/name"),
    ("/api/v1/jobs", "get", "200"): _job("/jobs/0"),
    (_JOBS, "get", "200"): _job("/jobs/0"),
    (_JOB, "get", "200"): {**_job(""), **_run("/latestRun/id")},
    (_JOB, "put", "200"): _job(""),
    (f"{_JOB}/runs", "get", "200"): _run("/runs/0/id"),
    (f"{_JOB}/runs", "post", "201"): {
        **_run("/id"),
        "StartRun": (f"{_RUN}/{{action}}", "post", {"run_id": "/id", "action": "start"}),
    },
    (f"{_JOB}/versions", "get", "200"): {
        "GetJobVersion": (
            f"{_JOB}/versions/{{version}}",
            "get",
            {"namespace": "/versions/0/namespace", "job": "/versions/0/name", "version": "/versions/0/version"},
        )
    },
    ("/api/v1/namespaces/{namespace}/datasets", "get", "200"): _dataset("/datasets/0"),
    (_DATASET, "get", "200"): _dataset(""),
    (_DATASET, "put", "200"): _dataset(""),
    (f"{_DATASET}/versions", "get", "200"): {
        "GetDatasetVersion": (
            f"{_DATASET}/versions/{{version}}",
            "get",
            {"namespace": "/versions/0/namespace", "dataset": "/versions/0/name", "version": "/versions/0/version"},
        )
    },
    ("/api/v1/runs/failures", "get", "200"): {**_run("/failures/0/run/id"), **_job("/failures/0/job")},
    ("/api/v1/sources", "get", "200"): {
        "GetSource": ("/api/v1/sources/{source}", "get", {"source": "/sources/0/name"})
    },
    ("/api/v1/sources/{source}", "put", "200"): {"GetSource": ("/api/v1/sources/{source}", "get", {"source": "/name"})},
    ("/api/v1/backfills", "get", "200"): _plan("/plans/0/id"),
    ("/api/v1/backfills", "post", "201"): _plan("/id"),
    ("/api/v1/incidents", "get", "200"): _incident("/incidents/0/id"),
    ("/api/v1/subscriptions", "get", "200"): _subscription("/subscriptions/0/id"),
    ("/api/v1/subscriptions", "post", "201"): _subscription("/id"),
}


def _expression(value: str) -> str:
    """A JSON pointer into the body → an OpenAPI runtime expression; `{pointer}` parts embed one in a string;
    anything else is a constant."""
    if value.startswith("/") or value == "":
        return f"$response.body#{value}"
    if "{" in value:
        return value.replace("{/", "{$response.body#/").replace("{}", "{$response.body#}")
    return value


def document_links(document: dict[str, Any]) -> dict[str, Any]:
    """Add LINKS to the answers they belong to, naming each target by its operationId."""
    paths = document.get("paths", {})
    for (path, method, status), links in LINKS.items():
        response = paths[path][method]["responses"][status]
        response["links"] = {
            name: {
                "operationId": paths[target][target_method]["operationId"],
                "parameters": {parameter: _expression(value) for parameter, value in parameters.items()},
            }
            for name, (target, target_method, parameters) in sorted(links.items())
        }
    return document
