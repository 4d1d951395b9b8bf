"""The raw event log (Marquez API: GET /events/lineage)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import EngineDep
from app.api.enums import CaseInsensitiveEnum
from app.api.errors import ApiError
from app.api.pagination import PageParams
from app.schemas.marquez import LineageEventList
from app.schemas.openlineage import parse_timestamp
from app.services import events

router = APIRouter(prefix="/api/v1", tags=["events"])


class SortDirection(CaseInsensitiveEnum):
    asc = "asc"
    desc = "desc"


def _instant(name: str, value: str) -> datetime:
    try:
        return parse_timestamp(value)
    except ValueError as exc:
        raise ApiError(400, f"{name}: {exc}") from None


@router.get("/events/lineage", response_model=LineageEventList, summary="List received RunEvents")
def list_lineage_events(
    engine: EngineDep,
    page: PageParams,
    sortDirection: SortDirection = SortDirection.desc,
    before: Annotated[str, Query(description="Events before this instant (exclusive).")] = "2030-01-01T00:00:00+00:00",
    after: Annotated[str, Query(description="Events at or after this instant.")] = "1970-01-01T00:00:00+00:00",
) -> LineageEventList:
    found, total = events.list_run_events(
        engine,
        after=_instant("after", after),
        before=_instant("before", before),
        ascending=sortDirection is SortDirection.asc,
        limit=page.limit,
        offset=page.offset,
    )
    return LineageEventList(events=found, totalCount=total)
