"""The clinic's wall clock: times people type are read in the clinic's time zone, and times the store keeps
(UTC) are shown to people in it.

A server runs on UTC more often than not, and a receptionist in New York who types `--at 09:00` means nine
in New York, not five in the morning there. So every place a person types or reads a time goes through a
`ClinicClock` built from `clinic.timezone`: the CLI's options and tables, the pages (a Jinja filter) and
the CSV exports. Machines keep getting ISO-8601 with an offset (`--json`, the API, exports), which no one can
misread whatever zone they are in.

A leaf module like `config`: it knows zone names and phonenumbers' zone data, nothing of the rest.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

if TYPE_CHECKING:
    from smsgate.config import Config

__all__ = [
    "ClinicClock",
    "ClinicTimeError",
    "is_utc_zone",
    "load_zone",
    "machine_zone_name",
    "region_zones",
]


class ClinicTimeError(ValueError):
    """A time a person typed that cannot be read; the message shows forms that work."""


FORMS = '"09:00", "tomorrow 09:00", "2026-12-01 09:00", "2026-12-01" or "2026-12-01T09:00-05:00"'
_TIME = r"(?P<h>\d{1,2}):(?P<m>\d{2})(?::(?P<s>\d{2}))?"
_CLOCK_TIME = re.compile(rf"{_TIME}")
_RELATIVE = re.compile(rf"(?P<day>today|tomorrow)\s+{_TIME}", re.I)
_DATE = re.compile(r"(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})")
_DATE_TIME = re.compile(rf"(?P<y>\d{{4}})-(?P<mo>\d{{2}})-(?P<d>\d{{2}})[T ]{_TIME}")


def load_zone(name: str) -> ZoneInfo:
    """The zone called `name`, or `ClinicTimeError` naming the kind of name that works."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ClinicTimeError(f"{name!r} is not a time zone; use an IANA name such as \"America/New_York\" "
                              "or \"Europe/Berlin\"") from None


def machine_zone_name() -> str:
    """The zone this machine runs in: `$TZ`, else /etc/timezone, else where /etc/localtime points, else UTC
    (the first of them that names a zone zoneinfo knows)."""
    tz = os.environ.get("TZ", "").lstrip(":").strip()
    candidates = [tz] if tz and not tz.startswith("/") else []
    try:
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    except OSError:
        pass
    try:
        target = str(Path(tz if tz.startswith("/") else "/etc/localtime").resolve())
        if "/zoneinfo/" in target:
            candidates.append(target.split("/zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        try:
            load_zone(name)
        except ClinicTimeError:
            continue
        return name
    return "UTC"


def is_utc_zone(name: str) -> bool:
    """True for a zone that is UTC all year (UTC, Etc/UTC, Atlantic/Reykjavik); Europe/London is not."""
    zone = load_zone(name)
    year = datetime.now(UTC).year
    return all(datetime(year, month, 15, 12, tzinfo=zone).utcoffset() == timedelta(0) for month in (1, 7))


def region_zones(region: str) -> list[str]:
    """The zones phonenumbers puts a region's numbers in (from its example numbers, a landline's first);
    empty when it does not know."""
    import phonenumbers
    from phonenumbers import PhoneNumberType, timezone

    zones: list[str] = []
    for kind in (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE):
        example = phonenumbers.example_number_for_type(region.upper(), kind)
        if example is not None:
            zones.extend(z for z in timezone.time_zones_for_number(example) if z != "Etc/Unknown" and z not in zones)
    return zones


def _stored(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ClinicTimeError(f"{value!r} is not a stored time") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class ClinicClock:
    """Reads and writes times for people in one zone (the clinic's)."""

    zone: ZoneInfo

    @classmethod
    def named(cls, name: str) -> ClinicClock:
        return cls(load_zone(name))

    @classmethod
    def for_config(cls, config: Config) -> ClinicClock:
        """The clinic's clock. Loading the configuration settles `clinic.timezone` (the machine's zone when
        the file leaves it out); a Config built in code without one is on UTC, as the rules engine reads it."""
        return cls.named(config.clinic.timezone or "UTC")

    @property
    def name(self) -> str:
        return self.zone.key

    # -- people to the store ---------------------------------------------------------------------------

    def parse(self, text: str, *, now: datetime | None = None) -> datetime:
        """The moment a person meant by `text`, as an aware UTC datetime.

        `09:00` is the next nine o'clock in the clinic (today, or tomorrow once it has passed); `today 09:00`,
        `tomorrow 09:00`, `2026-12-01 09:00` (or with `T`) and `2026-12-01` (midnight) are clinic time; an ISO
        time with an offset or `Z` means what it says. A clinic time that does not exist (the hour clocks
        skip in spring) is refused; one that happens twice (autumn) is the first.
        """
        raw = (text or "").strip()
        now_local = (now or datetime.now(UTC)).astimezone(self.zone)
        if match := _CLOCK_TIME.fullmatch(raw):
            wall = datetime.combine(now_local.date(), self._time(match, raw))
            if self._attach(wall, raw) <= now_local:
                wall = datetime.combine(now_local.date() + timedelta(days=1), wall.time())
            return self._attach(wall, raw).astimezone(UTC)
        if match := _RELATIVE.fullmatch(raw):
            day = now_local.date() + timedelta(days=1 if match["day"].lower() == "tomorrow" else 0)
            return self._attach(datetime.combine(day, self._time(match, raw)), raw).astimezone(UTC)
        if match := _DATE.fullmatch(raw):
            return self._attach(datetime.combine(self._date(match, raw), time()), raw).astimezone(UTC)
        if _DATE_TIME.match(raw):
            try:
                moment = datetime.fromisoformat(raw.replace(" ", "T", 1))
            except ValueError:
                raise ClinicTimeError(f"{raw!r} is not a date and time; write it as {FORMS}") from None
            if moment.tzinfo is not None:
                return moment.astimezone(UTC)
            return self._attach(moment, raw).astimezone(UTC)
        raise ClinicTimeError(f"{raw!r} is not a time; write it as {FORMS} (clinic time, {self.name})")

    def _time(self, match: re.Match[str], raw: str) -> time:
        hour, minute, second = int(match["h"]), int(match["m"]), int(match["s"] or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise ClinicTimeError(f"{raw!r} is not a time of day; use 00:00 to 23:59")
        return time(hour, minute, second)

    def _date(self, match: re.Match[str], raw: str) -> date:
        try:
            return date(int(match["y"]), int(match["mo"]), int(match["d"]))
        except ValueError:
            raise ClinicTimeError(f"{raw!r} is not a date; write it as 2026-12-01") from None

    def _attach(self, wall: datetime, raw: str) -> datetime:
        local = wall.replace(tzinfo=self.zone, fold=0)
        if local.astimezone(UTC).astimezone(self.zone).replace(tzinfo=None) != wall.replace(tzinfo=None):
            raise ClinicTimeError(f"{raw!r} does not exist in {self.name} (the clocks skip that hour); "
                                  "choose a time an hour later or earlier")
        return local

    # -- the store to people ---------------------------------------------------------------------------

    def show(self, value: str | datetime | None) -> str:
        """A stored time as people read it: `2026-11-22 13:49 EST` in the clinic's zone; '' for none."""
        if value is None or value == "":
            return ""
        return _stored(value).astimezone(self.zone).strftime("%Y-%m-%d %H:%M %Z")

    def iso(self, value: str | datetime | None) -> str | None:
        """A stored time for machines and exports: ISO-8601 in the clinic's zone with its offset
        (`2026-11-22T13:49:17-05:00`); None for none."""
        if value is None or value == "":
            return None
        return _stored(value).astimezone(self.zone).isoformat(timespec="seconds")
