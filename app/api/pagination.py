"""Marquez's paging parameters: ``limit`` (default 100) and ``offset`` (default 0), both non-negative."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Query


@dataclass(frozen=True)
class Page:
    limit: int
    offset: int


def _page(
    limit: Annotated[int, Query(ge=0, description="Maximum number of results.")] = 100,
    offset: Annotated[int, Query(ge=0, description="Number of results to skip.")] = 0,
) -> Page:
    return Page(limit, offset)


PageParams = Annotated[Page, Depends(_page)]
