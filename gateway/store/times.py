"""Times in the store: UTC, ISO-8601 text, microseconds; sortable as text in any database."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def iso(ts: datetime | None) -> str | None:
    """A store timestamp (UTC ISO text) for an aware datetime, or None."""
    if ts is None:
        return None
    if ts.tzinfo is None:
        raise ValueError("naive datetime given to the store; use an aware one (UTC)")
    return ts.astimezone(UTC).isoformat(timespec="microseconds")


def parse(text: str | None) -> datetime | None:
    """An aware datetime from a store timestamp, or None."""
    return None if text is None else datetime.fromisoformat(text)
