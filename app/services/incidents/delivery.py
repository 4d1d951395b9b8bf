"""Webhook payloads (JSON with a Slack-compatible `text`), their signature, and one delivery attempt.

Deliveries are signed as the Standard Webhooks specification says (https://www.standardwebhooks.com), so
receivers can verify them with its published libraries: `webhook-id` (the delivery's id, the same on every
retry), `webhook-timestamp` (the attempt's Unix time) and `webhook-signature: v1,<base64 HMAC-SHA256 of
"id.timestamp.body">`. The signature covers the timestamp, so a captured delivery cannot be replayed later
(receivers refuse timestamps outside a few minutes). The older `X-Headwater-Signature` (the body only) is still
sent, deprecated, while receivers move (setting `webhook_legacy_signature`)."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from app import __version__
from app.db import json as json_codec
from app.schemas.incidents import Incident

SIGNATURE_HEADER = "X-Headwater-Signature"  # deprecated: the body only, replayable
TIMESTAMP_HEADER = "X-Headwater-Timestamp"
SECRET_PREFIX = "whsec_"

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
    """The deprecated X-Headwater-Signature: HMAC-SHA256 of the body, keyed with the secret as written."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signing_key(secret: str) -> bytes:
    """The Standard Webhooks key of a secret: a `whsec_<base64>` secret is its decoded bytes; a secret of the
    older free form (any text) is its UTF-8 bytes — pass those bytes to a Standard Webhooks library."""
    if secret.startswith(SECRET_PREFIX):
        return base64.b64decode(secret[len(SECRET_PREFIX) :])
    return secret.encode()


def standard_signature(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(signing_key(secret), signed, hashlib.sha256).digest()).decode()


@dataclass
class Outcome:
    ok: bool
    status_code: int | None
    error: str | None


def send(
    client: httpx.Client,
    url: str,
    secret: str | None,
    body: dict[str, Any],
    *,
    delivery_id: str,
    now: datetime,
    legacy_signature: bool = True,
) -> Outcome:
    content = json_codec.dumps_bytes(body)
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": f"Headwater/{__version__}",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(timestamp),
        "X-Headwater-Event": str(body.get("event")),
        "X-Headwater-Delivery": delivery_id,
        TIMESTAMP_HEADER: str(timestamp),
    }
    if secret:
        headers["webhook-signature"] = standard_signature(secret, delivery_id, timestamp, content)
        if legacy_signature:
            headers[SIGNATURE_HEADER] = sign(secret, content)
    try:
        response = client.post(url, content=content, headers=headers)
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code, None)
    return Outcome(False, response.status_code, f"HTTP {response.status_code}: {response.text[:200]}")
