"""The tag catalogue (Marquez API)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends

from app.api.auth import require_write_key
from app.api.deps import EngineDep
from app.api.pagination import PageParams
from app.schemas.marquez import CreatedTag, Tag, TagList
from app.services import tags

router = APIRouter(prefix="/api/v1", tags=["tags"])


@router.get("/tags", response_model=TagList, summary="List tags")
def list_tags(engine: EngineDep, page: PageParams) -> TagList:
    return TagList(tags=tags.list_tags(engine, limit=page.limit, offset=page.offset))


@router.put(
    "/tags/{tag:name}",
    response_model=Tag,
    summary="Create or update a tag (returns the tag, as Marquez's code does; its document says a TagList)",
    dependencies=[Depends(require_write_key)],
)
def put_tag(tag: str, engine: EngineDep, body: Annotated[CreatedTag | None, Body()] = None) -> Tag:
    return tags.put_tag(engine, tag, body.description if body else None)
