"""Timestamps in custom statuses: ISO-8601 UTC with a `Z`."""

from datetime import UTC, datetime


def iso_utc(moment: datetime) -> str:
    """Render a datetime as ISO-8601 UTC with a `Z` suffix (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
