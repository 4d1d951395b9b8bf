"""Dashboard statistics (Marquez API: GET /stats/lineage-events|jobs|datasets|sources)."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Path, Query

from app.api.deps import EngineDep
from app.api.enums import CaseInsensitiveEnum
from app.api.errors import ApiError
from app.services import stats

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])


class Period(CaseInsensitiveEnum):
    DAY = "DAY"
    WEEK = "WEEK"


def _spans(period: Period, timezone: str | None):
    zone = None
    if period is Period.WEEK:
        if not timezone:
            raise ApiError(400, "timezone: required with period=WEEK (e.g. Europe/Paris)")
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ApiError(400, f"timezone: unknown time zone '{timezone}'") from None
    return stats.buckets(period.value, zone)


PeriodParam = Annotated[Period, Query(description="DAY: the last 24 hours by hour; WEEK: the last 7 days by day.")]
ZoneParam = Annotated[str | None, Query(description="IANA time zone of the days (needed with WEEK).")]
_KINDS = ("jobs", "datasets", "sources")
# Declared as an enum in the document; any other kind is still answered with Marquez's 404, not a 400.
KindParam = Annotated[str, Path(description="What to count.", json_schema_extra={"enum": list(_KINDS)})]


@router.get("/lineage-events", summary="Events received per hour or day, by type")
def lineage_events(engine: EngineDep, period: PeriodParam = Period.DAY, timezone: ZoneParam = None) -> list[dict]:
    return stats.lineage_event_counts(engine, _spans(period, timezone))


@router.get("/{kind}", summary="Jobs, datasets or sources known at the end of each hour or day")
def counts(
    kind: KindParam, engine: EngineDep, period: PeriodParam = Period.DAY, timezone: ZoneParam = None
) -> list[dict]:
    if kind not in _KINDS:
        raise ApiError(404, f"No statistics for '{kind}': use lineage-events, jobs, datasets or sources.")
    return stats.cumulative_counts(engine, kind, _spans(period, timezone))
