"""Per-modem sending limits: a rate in parts per minute, a daily cap and a monthly distinct-recipient cap.

Carriers count SMS parts, not messages (jasmin#708), and block SIMs that text too many people in a month
(android-sms-gateway#270: 500 SMS/day, 250 recipients/month), so all three are counted per SIM.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from smsgate.queue import Store
from smsgate.queue.clock import ts


class TokenBucket:
    """Parts per minute with a small burst; a rate of 0 means unlimited."""

    def __init__(self, per_minute: float, *, burst_seconds: float = 5.0) -> None:
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate * burst_seconds)
        self._tokens = self.capacity
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self) -> float:
        """Seconds until one part may go (0 when it may go now)."""
        if self.unlimited:
            return 0.0
        with self._lock:
            self._refill()
            return 0.0 if self._tokens >= 1.0 else (1.0 - self._tokens) / self.rate

    def take(self, stop: threading.Event) -> bool:
        """Wait for a token and take it; False when `stop` was set first."""
        if self.unlimited:
            return not stop.is_set()
        while True:
            with self._lock:
                self._refill()
                if self._tokens >= 1.0:
                    self._tokens -= 1.0
                    return True
                wait = (1.0 - self._tokens) / self.rate
            if stop.wait(wait):
                return False


@dataclass
class Caps:
    """Daily parts and monthly recipients of one modem, counted from the store and kept up to date."""

    daily_cap: int
    monthly_recipient_cap: int
    tz: ZoneInfo
    day: str = ""
    month: str = ""
    parts_today: int = 0
    recipients: set[str] = field(default_factory=set)

    def refresh(self, store: Store, modem_id: int, now: datetime) -> None:
        local = now.astimezone(self.tz)
        day, month = local.strftime("%Y-%m-%d"), local.strftime("%Y-%m")
        if day == self.day and month == self.month:
            return
        day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        month_start = day_start.replace(day=1)
        self.parts_today = store.modems.parts_sent_since(modem_id, ts(day_start))
        self.recipients = store.modems.recipients_since(modem_id, ts(month_start))
        self.day, self.month = day, month

    def daily_left(self) -> int | None:
        return None if self.daily_cap <= 0 else max(0, self.daily_cap - self.parts_today)

    def recipient_allowed(self, number: str) -> bool:
        if self.monthly_recipient_cap <= 0 or number in self.recipients:
            return True
        return len(self.recipients) < self.monthly_recipient_cap

    def count_part(self, number: str) -> None:
        self.parts_today += 1
        self.recipients.add(number)

    def next_day(self, now: datetime) -> datetime:
        local = now.astimezone(self.tz)
        return (local.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)).astimezone(now.tzinfo)
