"""Calls from the CLI to a running Headwater server's API (`--server`), with the errors said the same way."""

from __future__ import annotations

from typing import Any

import httpx
import typer


def request_server(
    server: str, api_key: str | None, method: str, path: str, *, timeout: float = 60, **request: Any
) -> httpx.Response:
    """The server's answer, or exit 1 with what went wrong: not reachable, or its JSON error's message."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.request(method, server.rstrip("/") + path, headers=headers, timeout=timeout, **request)
    except httpx.HTTPError as exc:
        typer.echo(f"error: cannot reach {server}: {exc}", err=True)
        raise typer.Exit(1) from None
    if response.status_code >= 300:
        try:
            message = response.json().get("message", response.text)
        except ValueError:
            message = response.text
        typer.echo(f"error: {response.status_code} {message}", err=True)
        raise typer.Exit(1)
    return response
