"""The suite's histories carry fixed dates (November 2024, …) and many tests expect incidents from them, as if
they were happening as they are posted. Headwater takes events received long after their eventTime as history
(no incident, no webhook: HEADWATER_INCIDENT_MAX_EVENT_AGE), so those tests configure a server that takes a
century-old event as news. The rule itself is tested with its default (tests/test_incidents.py)."""

from __future__ import annotations

from datetime import timedelta

CENTURY = timedelta(days=36500)
AS_NEWS = {"incident_max_event_age": CENTURY}  # Settings overrides
AS_NEWS_ENV = {"HEADWATER_INCIDENT_MAX_EVENT_AGE": str(int(CENTURY.total_seconds()))}  # a `headwater serve`'s
