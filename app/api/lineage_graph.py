"""The lineage graph (Marquez API: GET /lineage, with Headwater's direction and node cap) and run-level
lineage (GET /runlineage/upstream)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.api.deps import EngineDep
from app.api.enums import CaseInsensitiveEnum
from app.api.errors import ApiError
from app.db.json import dumps_bytes
from app.schemas.marquez import LineageGraph, UpstreamRunLineage
from app.services import column_lineage, lineage, run_lineage

router = APIRouter(prefix="/api/v1", tags=["lineage"])


class Direction(CaseInsensitiveEnum):
    upstream = "upstream"
    downstream = "downstream"
    both = "both"


@router.get("/lineage", response_model=LineageGraph, summary="The lineage graph around a job or dataset")
def get_lineage(
    engine: EngineDep,
    nodeId: Annotated[str, Query(description="dataset:<namespace>:<name> or job:<namespace>:<name>")],
    depth: Annotated[int, Query(ge=0, le=1000, description="Job hops from the node (Marquez's default 20).")] = 20,
    direction: Annotated[Direction, Query(description="Headwater: walk upstream, downstream or both.")] = (
        Direction.both
    ),
    maxNodes: Annotated[
        int, Query(ge=1, le=100_000, description="Headwater: stop walking past this many nodes (truncated: true).")
    ] = 5000,
) -> Response:
    try:
        node = lineage.NodeId.parse(nodeId)
    except ValueError as exc:
        raise ApiError(400, f"nodeId: {exc}") from None
    graph, truncated = lineage.lineage_graph(engine, node, depth=depth, direction=direction.value, max_nodes=maxNodes)
    # The nodes are already JSON-ready dicts in Marquez's shape: serialize once, not dump-and-revalidate.
    return Response(dumps_bytes({"graph": graph, "truncated": truncated}), media_type="application/json")


@router.get(
    "/runlineage/upstream",
    response_model=UpstreamRunLineage,
    summary="The runs that produced the dataset versions a run read, and so on upstream",
)
def get_upstream_run_lineage(
    engine: EngineDep,
    runId: Annotated[uuid.UUID, Query(description="The run to start from.")],
    depth: Annotated[int, Query(ge=0, le=1000)] = 20,
) -> UpstreamRunLineage:
    return UpstreamRunLineage(runs=run_lineage.upstream_runs(engine, runId, depth=depth))


@router.get("/column-lineage", response_model=LineageGraph, summary="Column-level lineage of a dataset, field or job")
def get_column_lineage(
    engine: EngineDep,
    nodeId: Annotated[
        str,
        Query(
            description="dataset:<ns>:<name>, datasetField:<ns>:<name>:<field> or job:<ns>:<name>, optionally "
            "followed by #<version> (a dataset version, or a job version for a job) to start from the column "
            "lineage of that version instead of the current one."
        ),
    ],
    depth: Annotated[int, Query(ge=0, le=1000)] = 20,
    withDownstream: bool = False,
) -> Response:
    if "#" in nodeId and withDownstream:
        raise ApiError(400, "nodeId: a versioned node (#version) cannot be combined with withDownstream=true")
    try:
        graph = column_lineage.column_lineage_graph(engine, nodeId, depth=depth, with_downstream=withDownstream)
    except ValueError as exc:
        raise ApiError(400, f"nodeId: {exc}") from None
    return LineageGraph(graph=graph)
