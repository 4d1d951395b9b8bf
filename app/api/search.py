"""Search (Marquez API: GET /search)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import EngineDep
from app.api.enums import CaseInsensitiveEnum
from app.api.errors import ApiError
from app.api.pagination import MAX_PAGE_VALUE
from app.schemas.marquez import SearchResultList
from app.services import search as search_service

router = APIRouter(prefix="/api/v1", tags=["search"])


class SearchFilter(CaseInsensitiveEnum):
    dataset = "dataset"
    job = "job"


class SearchSort(CaseInsensitiveEnum):
    name = "name"
    update_at = "update_at"


@router.get("/search", response_model=SearchResultList, summary="Search jobs and datasets by name")
def search(
    engine: EngineDep,
    # Names are at most 1,024 characters, so a longer q matches nothing; it would also overflow SQLite's LIKE.
    q: Annotated[str, Query(max_length=1024, description="Text to find in job and dataset names (case-insensitive).")],
    filter: SearchFilter | None = None,
    sort: SearchSort = SearchSort.name,
    limit: Annotated[int, Query(ge=0, le=MAX_PAGE_VALUE)] = 10,
    namespace: Annotated[str | None, Query(max_length=1024)] = None,
    before: Annotated[date | None, Query(description="Updated before this date (YYYY-MM-DD).")] = None,
    after: Annotated[date | None, Query(description="Updated after this date (YYYY-MM-DD).")] = None,
) -> SearchResultList:
    if not q.strip():
        raise ApiError(400, "q: must not be blank")
    results, total = search_service.search(
        engine,
        q.strip(),
        kind=filter.value.upper() if filter else None,
        sort=sort.value if sort is SearchSort.name else "updated_at",
        limit=limit,
        namespace=namespace,
        before=before,
        after=after,
    )
    return SearchResultList(totalCount=total, results=results)
