"""Marquez's paging parameters: ``limit`` (default 100) and ``offset`` (default 0), both non-negative
and at most 2³¹-1 (Marquez reads them as Java ints; larger values would overflow the databases' integers)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query

MAX_PAGE_VALUE = 2**31 - 1


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


async def _page(
    limit: Annotated[int, Query(ge=0, le=MAX_PAGE_VALUE, description="Maximum number of results.")] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_PAGE_VALUE, description="Number of results to skip.")] = 0,
) -> Page:
    return Page(limit, offset)


PageParams = Annotated[Page, Depends(_page)]
