"""API keys. Off unless HEADWATER_API_KEYS is set; then writes need ``Authorization: Bearer <key>``,
which is what openlineage-python's ``api_key`` auth and Marquez's clients send. With HEADWATER_PROTECT_READS,
reads need a read+write key; a write-only key (``key:write``) can send events but not read them back."""

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


def _role(presented: str | None, roles: list[tuple[str, str]]) -> str | None:
    # compare_digest against every key: the time taken does not reveal which key, or how much, matched.
    found = None
    for key, role in roles:
        if presented is not None and hmac.compare_digest(presented.encode(), key.encode()):
            found = role
    return found


def _writes(request: Request) -> bool:
    """A write route: its write-key dependency decides, and a write-only key may use it."""
    route = request.scope.get("route")
    return any(d.dependency is require_write_key for d in getattr(route, "dependencies", ()))


_UNAUTHORIZED = "Missing or invalid API key: send 'Authorization: Bearer <key>'."


def check_write_key(request: Request, settings: Settings) -> None:
    """Raise 401 unless the request may write: no keys are configured, or it presents one."""
    roles = settings.api_key_roles
    if roles and _role(_presented_key(request), roles) is None:
        raise ApiError(401, _UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})


async def require_write_key(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> None:
    check_write_key(request, settings)


async def require_read_key(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> None:
    roles = settings.api_key_roles
    if not roles or not settings.protect_reads or _writes(request):
        return
    role = _role(_presented_key(request), roles)
    if role is None:
        raise ApiError(401, _UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    if role != "readwrite":
        raise ApiError(403, "This API key may only write: reading needs a read+write key.")


async def require_read_write_key(request: Request, settings: Annotated[Settings, Depends(get_settings)]) -> None:
    """Configuration that holds credentials (webhook URLs embed tokens): with keys set, only a read+write key
    reads it, whatever HEADWATER_PROTECT_READS says."""
    roles = settings.api_key_roles
    if not roles:
        return
    role = _role(_presented_key(request), roles)
    if role is None:
        raise ApiError(401, _UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"})
    if role != "readwrite":
        raise ApiError(403, "This API key may only write: reading subscriptions needs a read+write key.")
