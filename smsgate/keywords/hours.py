"""Business hours, holidays and quiet hours, in the right time zone.

Business hours ("is the clinic open?") are read in the clinic's zone. Quiet hours ("may we text this
person now?") are read in the recipient's zone: the contact's own, else the zones of the number's
prefix, else the clinic's; when a number may be in several zones, a time is allowed only if it is
allowed in every one of them (the most restrictive reading, as the FCC rule on calling times suggests).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "BusinessHours",
    "HoursError",
    "QuietHours",
    "Window",
    "parse_window",
    "zone",
]

DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_SPEC = re.compile(
    r"^\s*(?P<days>[A-Za-z,\- ]+?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$"
)
_HOLIDAY = re.compile(r"^\s*(?:(?P<year>\d{4})-)?(?P<month>\d{2})-(?P<day>\d{2})\s*$")


class HoursError(ValueError):
    """An hours, holiday or time-zone setting smsgate cannot read; the message shows the expected form."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(f"{name!r} is not a time zone; write an IANA name such as \"America/New_York\"") from None


def _hhmm(text: str, spec: str) -> time | None:
    """A clock time; 24:00 (end of day) is returned as None."""
    h, m = (int(x) for x in text.split(":"))
    if h == 24 and m == 0:
        return None
    if not (0 <= h < 24 and 0 <= m < 60):
        raise HoursError(f"{text!r} in {spec!r} is not a time of day; write it as 08:00")
    return time(h, m)


def _days(text: str, spec: str) -> frozenset[int]:
    text = text.strip().upper()
    if text in ("DAILY", "EVERY DAY", "ALL", "MON-SUN"):
        return frozenset(range(7))
    if text in ("WEEKDAYS",):
        return frozenset(range(5))
    if text in ("WEEKENDS",):
        return frozenset({5, 6})
    out: set[int] = set()
    for item in text.replace(" ", "").split(","):
        if "-" in item:
            a, b = item.split("-", 1)
            ia, ib = _day(a, spec), _day(b, spec)
            i = ia
            while True:
                out.add(i)
                if i == ib:
                    break
                i = (i + 1) % 7
        else:
            out.add(_day(item, spec))
    return frozenset(out)


_FULL_DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")


def _day(token: str, spec: str) -> int:
    key = token[:3]
    if len(token) < 3 or key not in DAYS or not _FULL_DAYS[DAYS.index(key)].startswith(token):
        raise HoursError(f"{token!r} in {spec!r} is not a day; write Mon, Tue, ... as in \"Mon-Fri 08:00-18:00\"")
    return DAYS.index(key)


@dataclass(frozen=True)
class Window:
    """One line such as "Mon-Fri 08:00-18:00"; an end before the start runs past midnight."""

    days: frozenset[int]
    start: time
    end: time | None  # None: until midnight

    def contains(self, local: datetime) -> bool:
        t = local.time().replace(tzinfo=None)
        if self.end is None or self.start < self.end:
            end_ok = self.end is None or t < self.end
            return local.weekday() in self.days and self.start <= t and end_ok
        # Overnight: the part before midnight belongs to the listed day, the rest to the day after.
        if t >= self.start:
            return local.weekday() in self.days
        return t < self.end and (local.weekday() - 1) % 7 in self.days


def parse_window(spec: str) -> Window:
    m = _SPEC.match(spec or "")
    if not m:
        raise HoursError(f"{spec!r} is not a business-hours line; write it as \"Mon-Fri 08:00-18:00\"")
    start = _hhmm(m["start"], spec)
    if start is None:
        raise HoursError(f"{spec!r}: a window cannot start at 24:00")
    return Window(_days(m["days"], spec), start, _hhmm(m["end"], spec))


def parse_windows(specs: Iterable[str]) -> tuple[Window, ...]:
    return tuple(parse_window(s) for s in specs)


@dataclass(frozen=True)
class Holiday:
    month: int
    day: int
    year: int | None  # None: every year

    def matches(self, d: date) -> bool:
        return d.month == self.month and d.day == self.day and (self.year is None or d.year == self.year)


def parse_holiday(text: str) -> Holiday:
    m = _HOLIDAY.match(text or "")
    if not m:
        raise HoursError(f"{text!r} is not a holiday date; write 2026-12-24 (one day) or 12-25 (every year)")
    year = int(m["year"]) if m["year"] else None
    try:
        date(year or 2000, int(m["month"]), int(m["day"]))
    except ValueError:
        raise HoursError(f"{text!r} is not a real date") from None
    return Holiday(int(m["month"]), int(m["day"]), year)


class BusinessHours:
    """When the clinic is open, in its own time zone."""

    def __init__(self, specs: Sequence[str], holidays: Sequence[str], tz: str) -> None:
        self.windows = parse_windows(specs)
        self.holidays = tuple(parse_holiday(h) for h in holidays)
        self.tz = zone(tz)

    def is_open(self, when: datetime) -> bool:
        local = when.astimezone(self.tz)
        if any(h.matches(local.date()) for h in self.holidays):
            return False
        return any(w.contains(local) for w in self.windows)


class QuietHours:
    """Texting is allowed from `start` to `end` (local time of the recipient); other times are quiet."""

    def __init__(self, start: str, end: str) -> None:
        spec = f"Daily {start}-{end}"
        self.window = parse_window(spec)

    def allowed(self, when: datetime, zones: Sequence[ZoneInfo]) -> bool:
        return all(self.window.contains(when.astimezone(z)) for z in zones)

    def next_allowed(self, when: datetime, zones: Sequence[ZoneInfo]) -> datetime | None:
        """The earliest instant at or after `when` allowed in every zone, or None if none within 8 days."""
        if self.allowed(when, zones):
            return when
        candidates: set[datetime] = set()
        for z in zones:
            local = when.astimezone(z)
            for offset in range(9):
                day = local.date() + timedelta(days=offset)
                start = datetime.combine(day, self.window.start, tzinfo=z)
                if start > when:
                    candidates.add(start)
        for c in sorted(candidates):
            if self.allowed(c, zones):
                return c
        return None
