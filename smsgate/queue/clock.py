"""Time as the store writes it: UTC ISO-8601 text with microseconds and `Z`, so text order is time order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def ts(dt: datetime) -> str:
    """Format an aware datetime for storage."""
    if dt.tzinfo is None:
        raise ValueError("naive datetime given to the store; pass an aware datetime (UTC)")
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
