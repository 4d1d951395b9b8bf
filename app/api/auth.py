"""API keys. Off unless HEADWATER_API_KEYS is set; then writes need ``Authorization: Bearer <key>``,
which is what openlineage-python's ``api_key`` auth and Marquez's clients send."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from app.api.deps import get_settings
from app.api.errors import ApiError
from app.settings import Settings


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def require_write_key(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> None:
    keys = settings.api_key_list
    if not keys:
        return
    presented = _presented_key(request)
    # compare_digest against every key: the time taken does not reveal which key, or how much, matched.
    matched = False
    for key in keys:
        matched |= presented is not None and hmac.compare_digest(presented.encode(), key.encode())
    if not matched:
        raise ApiError(
            401,
            "Missing or invalid API key: send 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": "Bearer"},
        )
