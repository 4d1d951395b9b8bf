"""Webhook payloads (JSON with a Slack-compatible `text`), their signature, and one delivery attempt."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from app import __version__
from app.db import json as json_codec
from app.schemas.incidents import Incident

SIGNATURE_HEADER = "X-Headwater-Signature"
TIMESTAMP_HEADER = "X-Headwater-Timestamp"

_ICON = {
    "run_failed": ":red_circle:",
    "data_quality": ":warning:",
    "late": ":hourglass:",
    "schema_change": ":scissors:",
}


def _names(items: list[str], limit: int = 5) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def text_summary(event: str, incident: Incident) -> str:
    """What a chat channel shows (Slack's `text`)."""
    if event.endswith("resolved"):
        return f":white_check_mark: Resolved: {incident.title}" + (
            f" — {incident.resolution}" if incident.resolution else ""
        )
    lines = [f"{_ICON.get(incident.kind, ':bell:')} {incident.title}"]
    impact = incident.impact
    if impact is not None and impact.totals.jobs + impact.totals.datasets:
        lines.append(
            f"Downstream: {impact.totals.jobs} jobs, {impact.totals.datasets} datasets"
            + (f", DAGs {_names([d.dagId for d in impact.dags])}" if impact.dags else "")
        )
        if impact.owners:
            lines.append(f"Owners: {_names(impact.owners, 10)}")
    for columns in incident.details.downstreamColumns or []:
        lines.append(f"Uses the changed columns: {columns.dataset.name} ({', '.join(columns.columns)})")
    lines.append(f"Plan the backfill: {incident.backfill.url}")
    return "\n".join(lines)


def payload(event: str, incident: Incident) -> dict[str, Any]:
    return {"event": event, "text": text_summary(event, incident), "incident": incident.model_dump(mode="json")}


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Outcome:
    ok: bool
    status_code: int | None
    error: str | None


def send(
    client: httpx.Client, url: str, secret: str | None, body: dict[str, Any], *, delivery_id: str, now: datetime
) -> Outcome:
    content = json_codec.dumps_bytes(body)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"Headwater/{__version__}",
        "X-Headwater-Event": str(body.get("event")),
        "X-Headwater-Delivery": delivery_id,
        TIMESTAMP_HEADER: str(int(now.timestamp())),
    }
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, content)
    try:
        response = client.post(url, content=content, headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code, None)
    return Outcome(False, response.status_code, f"HTTP {response.status_code}: {response.text[:200]}")
