"""History is not news: an event Headwater received long after its eventTime (a migration, a replay through
/lineage/batch, `headwater import`) describes the past. It still builds the model, but opens no incident and
sends no webhook; nobody is paged for what happened years ago, and a replay cannot make incidents flap."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # ingest imports detection, which imports this
    from app.services.ingest.writer import EventContext


def is_news(event_time: datetime, received_at: datetime | None, max_age: timedelta) -> bool:
    """Was the event received within ``max_age`` of its time? (Unknown arrival: treated as news; an event
    from the future — a producer's clock running ahead — is news too.)"""
    return received_at is None or received_at - event_time <= max_age


def event_is_news(ctx: EventContext) -> bool:
    return is_news(ctx.time, ctx.received_at, ctx.incident_max_event_age)
