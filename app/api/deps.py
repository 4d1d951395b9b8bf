"""Shared FastAPI dependencies: the engine and settings live on the app built by the factory.

They are ``async def`` because they do no I/O: FastAPI runs a plain ``def`` dependency in its thread pool, a
thread hand-off per dependency per request that cost the ingest endpoint more than parsing the event."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import Engine

from app.settings import Settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


EngineDep = Annotated[Engine, Depends(get_engine)]
