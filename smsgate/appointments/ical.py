"""Appointments from an iCalendar file (RFC 5545), read without a calendar library.

What is read, per VEVENT: UID (the appointment's id), DTSTART with DTEND or DURATION, STATUS (CANCELLED
cancels; so does a calendar sent with METHOD:CANCEL), SEQUENCE and LAST-MODIFIED (so an older copy is
refused), LOCATION, DESCRIPTION (the notes), ORGANIZER's name or X-PROVIDER (the provider), CATEGORIES
or X-APPOINTMENT-TYPE (the type), and the patient's number from the places `[appointments] ics_phone`
names, in order: a property such as X-PATIENT-PHONE, a `tel:` ATTENDEE, or a pattern in DESCRIPTION.

Times: a TZID is looked up by name in the time-zone database; a TZID that is not a zone name (Outlook
writes "Eastern Standard Time") is mapped through its VTIMEZONE's X-LIC-LOCATION, then a small table of
Windows names, else the event is refused with a sentence saying so. A time ending in Z is UTC; a time
with neither (a "floating" time) and an all-day date (VALUE=DATE) are read in the clinic's zone.

Recurring events (RRULE, RDATE, RECURRENCE-ID) are refused: an appointment happens once, and a series
would need its own reminders per visit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from smsgate.queue.appointments import AppointmentInput

from .plans import AppointmentsConfig
from .sources import ItemError, ParsedFile, SourceError

__all__ = ["IcsOptions", "parse_ics", "unfold"]

_NAME = re.compile(r"[A-Za-z0-9-]+")
_PARAM_VALUE = re.compile(r'[^";:,]*')
_DATETIME = re.compile(r"^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(Z?)$")
_DATE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_DURATION = re.compile(r"^([+-])?P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$")
_TEXT_ESCAPE = re.compile(r"\\([\\;,nN])")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")

# Windows time-zone names (Outlook, Exchange) -> IANA, for the zones a clinic is likeliest to be in.
WINDOWS_ZONES = {
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Atlantic Standard Time": "America/Halifax",
    "Newfoundland Standard Time": "America/St_Johns",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "SA Pacific Standard Time": "America/Bogota",
    "E. South America Standard Time": "America/Sao_Paulo",
    "GMT Standard Time": "Europe/London",
    "W. Europe Standard Time": "Europe/Berlin",
    "Romance Standard Time": "Europe/Paris",
    "UTC": "UTC",
}


@dataclass(frozen=True)
class IcsOptions:
    clinic_zone: str
    phone_places: tuple[str, ...]
    phone_pattern: re.Pattern[str]
    name_property: str

    @classmethod
    def from_settings(cls, settings: AppointmentsConfig, clinic_zone: str) -> IcsOptions:
        return cls(clinic_zone, settings.ics_phone, re.compile(settings.ics_phone_pattern), settings.ics_name)


@dataclass(frozen=True)
class Prop:
    name: str
    params: dict[str, list[str]]
    value: str
    line: int

    def param(self, name: str) -> str | None:
        values = self.params.get(name)
        return values[0] if values else None


@dataclass
class Component:
    name: str
    line: int
    props: list[Prop] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def first(self, name: str) -> Prop | None:
        return next((p for p in self.props if p.name == name), None)

    def all(self, name: str) -> list[Prop]:
        return [p for p in self.props if p.name == name]

    def walk(self) -> Iterator[Component]:
        """This component and all below it, without recursion (a hostile file may nest thousands deep)."""
        todo = [self]
        while todo:
            comp = todo.pop()
            yield comp
            todo.extend(reversed(comp.children))


def unfold(text: str) -> list[tuple[int, str]]:
    """Logical lines with the number of the physical line each starts on. A line that begins with a space
    or a tab continues the one before it (RFC 5545 section 3.1); bare LF and CR line ends are accepted."""
    out: list[tuple[int, str]] = []
    for number, line in enumerate(re.split(r"\r\n|\n|\r", text), 1):
        if line[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + line[1:])
        elif line.strip():
            out.append((number, line))
    return out


def _broken(raw: str, line: int, why: str) -> SourceError:
    shown = raw if len(raw) <= 60 else raw[:57] + "..."
    return SourceError(f"line {line}: {shown!r} {why}")


def parse_line(raw: str, line: int) -> Prop:
    """One content line: NAME *(;PARAM=value[,value]) : value."""
    m = _NAME.match(raw)
    if m is None:
        raise _broken(raw, line, "is not an iCalendar property line (NAME:value)")
    name, pos = m.group(0).upper(), m.end()
    params: dict[str, list[str]] = {}
    while pos < len(raw) and raw[pos] == ";":
        pm = _NAME.match(raw, pos + 1)
        if pm is None or pm.end() >= len(raw) or raw[pm.end()] != "=":
            raise _broken(raw, line, "has a parameter without NAME=value")
        pname, pos = pm.group(0).upper(), pm.end() + 1
        values: list[str] = []
        while True:
            if pos < len(raw) and raw[pos] == '"':
                end = raw.find('"', pos + 1)
                if end < 0:
                    raise _broken(raw, line, "has a quoted parameter value that is never closed")
                values.append(raw[pos + 1:end])
                pos = end + 1
            else:
                vm = _PARAM_VALUE.match(raw, pos)
                assert vm is not None  # the pattern matches the empty string
                values.append(vm.group(0))
                pos = vm.end()
            if pos < len(raw) and raw[pos] == ",":
                pos += 1
                continue
            break
        params[pname] = values
    if pos >= len(raw) or raw[pos] != ":":
        raise _broken(raw, line, "is not an iCalendar property line (NAME:value); if it continues the line "
                                 "before, it lost the space that folded lines start with")
    return Prop(name, params, raw[pos + 1:], line)


def parse_components(text: str) -> tuple[Component, list[str]]:
    """The component tree; malformed lines and unbalanced BEGIN/END are noted on the component they are in
    (the file's own problems are returned beside the tree)."""
    root = Component("", 0)
    stack = [root]
    for line, raw in unfold(text):
        try:
            prop = parse_line(raw, line)
        except SourceError as exc:
            stack[-1].errors.append(str(exc))
            continue
        if prop.name == "BEGIN":
            comp = Component(prop.value.strip().upper(), line)
            # No component nests inside one of its own kind: a second BEGIN:VEVENT means the first was
            # never ended, and the new one belongs beside it, not inside it.
            if comp.name in (c.name for c in stack[1:]):
                while True:
                    lost = stack.pop()
                    lost.errors.append(f"line {lost.line}: BEGIN:{lost.name} is never ended (END:{lost.name})")
                    if lost.name == comp.name:
                        break
            stack[-1].children.append(comp)
            stack.append(comp)
        elif prop.name == "END":
            name = prop.value.strip().upper()
            if name not in (c.name for c in stack[1:]):
                stack[-1].errors.append(f"line {line}: END:{name} has no BEGIN:{name} before it")
                continue
            while stack[-1].name != name:
                lost = stack.pop()
                lost.errors.append(f"line {lost.line}: BEGIN:{lost.name} is never ended (END:{lost.name})")
            stack.pop()
        else:
            stack[-1].props.append(prop)
    for lost in stack[1:]:
        lost.errors.append(f"line {lost.line}: BEGIN:{lost.name} is never ended; the file may be cut short")
    return root, root.errors


def text_value(value: str) -> str:
    """A TEXT value with its escapes (\\n, \\, \\; \\\\) undone."""
    return _TEXT_ESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), value)


def _iana(name: str) -> str | None:
    candidate = name.strip().strip('"')
    if not candidate or candidate.startswith(".") or ".." in candidate:
        return None
    try:
        ZoneInfo(candidate)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return None
    return candidate


class _Zones:
    """TZIDs of one file resolved to zone names, each once."""

    def __init__(self, vtimezones: dict[str, Component]) -> None:
        self.vtimezones = vtimezones
        self.cache: dict[str, str] = {}

    def resolve(self, tzid: str) -> str:
        if tzid in self.cache:
            return self.cache[tzid]
        found = _iana(tzid)
        parts = [p for p in tzid.split("/") if p]
        # "/mozilla.org/20050126_1/America/New_York" and other prefixed names: the zone is the tail.
        for i in range(1, len(parts)):
            if found is None:
                found = _iana("/".join(parts[i:]))
        vtz = self.vtimezones.get(tzid)
        location = vtz.first("X-LIC-LOCATION") if vtz is not None else None
        if found is None and location is not None:
            found = _iana(location.value)
        if found is None and tzid.strip() in WINDOWS_ZONES:
            found = WINDOWS_ZONES[tzid.strip()]
        if found is None:
            where = ("its VTIMEZONE has no X-LIC-LOCATION naming one" if vtz is not None
                     else "the file has no VTIMEZONE for it")
            raise SourceError(f"TZID {tzid!r} is not a time-zone name smsgate knows and {where}; export the "
                              "calendar with IANA zone names (e.g. America/New_York) or in UTC")
        self.cache[tzid] = found
        return found


@dataclass(frozen=True)
class _When:
    at: datetime
    zone: str
    all_day: bool


def _when(prop: Prop, zones: _Zones, clinic_zone: str) -> _When:
    value = prop.value.strip()
    what = f"{prop.name} {value!r} (line {prop.line})"
    is_date = (prop.param("VALUE") or "").upper() == "DATE" or _DATE.match(value) is not None
    try:
        if is_date:
            m = _DATE.match(value)
            if m is None:
                raise ValueError
            day = date(int(m[1]), int(m[2]), int(m[3]))
            return _When(datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo(clinic_zone)), clinic_zone, True)
        m = _DATETIME.match(value)
        if m is None:
            raise ValueError
        naive = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), min(int(m[6]), 59))
    except ValueError:
        raise SourceError(f"{what} is not a date-time; iCalendar writes 20260310T143000 (or 20260310 with "
                          "VALUE=DATE)") from None
    if m[7]:
        return _When(naive.replace(tzinfo=UTC), clinic_zone, False)
    tzid = prop.param("TZID")
    zone = zones.resolve(tzid) if tzid else clinic_zone
    return _When(naive.replace(tzinfo=ZoneInfo(zone)), zone, False)


def _duration(prop: Prop) -> timedelta:
    m = _DURATION.match(prop.value.strip().upper())
    if m is None or not any(m.groups()[1:]):
        raise SourceError(f"DURATION {prop.value!r} (line {prop.line}) is not a duration such as PT30M or PT1H")
    if m[1] == "-":
        raise SourceError(f"DURATION {prop.value!r} (line {prop.line}) is negative")
    w, d, h, mi, s = (int(x or 0) for x in m.groups()[1:])
    return timedelta(weeks=w, days=d, hours=h, minutes=mi, seconds=s)


def _int(prop: Prop | None) -> int | None:
    if prop is None:
        return None
    try:
        return int(prop.value.strip())
    except ValueError:
        raise SourceError(f"{prop.name} {prop.value!r} (line {prop.line}) is not a whole number") from None


def _patient(event: Component, options: IcsOptions) -> tuple[str, str | None]:
    """The patient's number (as written) and name, from the places configured."""
    tel = next((a for a in event.all("ATTENDEE") if a.value.strip().lower().startswith("tel:")), None)
    name_prop = event.first(options.name_property)
    name = text_value(name_prop.value).strip() if name_prop is not None else None
    if not name and tel is not None:
        name = (tel.param("CN") or "").strip() or None
    for place in options.phone_places:
        if place == "ATTENDEE":
            if tel is not None:
                return tel.value.strip()[4:].split(";")[0], name
        elif place == "DESCRIPTION":
            desc = event.first("DESCRIPTION")
            found = options.phone_pattern.search(text_value(desc.value)) if desc is not None else None
            if found is not None:
                return found.group(1), name
        else:
            prop = event.first(place)
            if prop is not None and prop.value.strip():
                value = text_value(prop.value).strip()
                return (value[4:] if value.lower().startswith("tel:") else value), name
    raise SourceError(f"no patient number: looked in {', '.join(options.phone_places)}; say where your calendar "
                      "puts it with [appointments] ics_phone (and ics_phone_pattern for DESCRIPTION)")


def _first_name(name: str | None) -> str | None:
    if not name:
        return None
    if "," in name:  # "Doe, Jane"
        rest = name.split(",", 1)[1].split()
        return rest[0] if rest else None
    return name.split()[0]


def _cn(prop: Prop) -> str | None:
    return (prop.param("CN") or "").strip() or None


def _first_item(prop: Prop) -> str | None:
    """The first of a comma-separated list (CATEGORIES:Cleaning,Hygiene)."""
    return text_value(_UNESCAPED_COMMA.split(prop.value)[0]).strip() or None


def _event(event: Component, zones: _Zones, options: IcsOptions, cancelled_calendar: bool) -> AppointmentInput:
    problems = [e for c in event.walk() for e in c.errors]
    if problems:
        raise SourceError("; ".join(problems))
    for repeat in ("RRULE", "RDATE", "RECURRENCE-ID"):
        prop = event.first(repeat)
        if prop is not None:
            raise SourceError(f"it is a recurring event ({repeat}, line {prop.line}); export each appointment "
                              "as a single event")
    uid = event.first("UID")
    if uid is None or not uid.value.strip():
        raise SourceError("it has no UID, the id smsgate keys appointments by")
    dtstart = event.first("DTSTART")
    if dtstart is None:
        raise SourceError("it has no DTSTART (start time)")
    start = _when(dtstart, zones, options.clinic_zone)
    dtend, dur = event.first("DTEND"), event.first("DURATION")
    if dtend is not None and dur is not None:
        raise SourceError(f"it has both DTEND (line {dtend.line}) and DURATION (line {dur.line}); RFC 5545 "
                          "allows one of them")
    length: timedelta | None
    if dtend is not None:
        end = _when(dtend, zones, options.clinic_zone)
        if end.all_day != start.all_day:
            raise SourceError(f"DTSTART and DTEND (line {dtend.line}) must both be dates or both date-times")
        length = (end.at.date() - start.at.date()) if start.all_day else end.at - start.at
        if length < timedelta():
            raise SourceError(f"it ends (line {dtend.line}) before it starts")
    elif dur is not None:
        length = _duration(dur)
    else:
        length = timedelta(days=1) if start.all_day else None
    status_prop = event.first("STATUS")
    status = "cancelled" if cancelled_calendar or (
        status_prop is not None and status_prop.value.strip().upper() == "CANCELLED") else "booked"
    number, name = _patient(event, options)
    modified = event.first("LAST-MODIFIED")
    organizer = event.first("ORGANIZER")
    provider = event.first("X-PROVIDER")
    kind = event.first("X-APPOINTMENT-TYPE") or event.first("CATEGORIES")

    def text(prop: Prop | None) -> str | None:
        return (text_value(prop.value).strip() or None) if prop is not None else None

    return AppointmentInput(
        external_id=text_value(uid.value).strip(),
        number=number,
        start=start.at,
        timezone=start.zone,
        status=status,
        duration_minutes=int(length.total_seconds() // 60) if length is not None else None,
        all_day=start.all_day,
        patient_name=name,
        first_name=_first_name(name),
        provider=text(provider) or (_cn(organizer) if organizer is not None else None),
        location=text(event.first("LOCATION")),
        appointment_type=_first_item(kind) if kind is not None else None,
        notes=text(event.first("DESCRIPTION")),
        revision=_int(event.first("SEQUENCE")),
        modified_at=_when(modified, zones, "UTC").at if modified is not None else None,
    )


def parse_ics(text: str, options: IcsOptions) -> ParsedFile:
    """Every VEVENT of the file as an `AppointmentInput`, or an error naming it and its line."""
    out = ParsedFile("ics")
    root, problems = parse_components(text)
    calendars = [c for c in root.children if c.name == "VCALENDAR"]
    if not calendars:
        out.errors.append(ItemError("file", "this is not an iCalendar file (no BEGIN:VCALENDAR); export the "
                                            "calendar as .ics"))
        return out
    out.errors.extend(ItemError("file", p) for p in problems)
    vtimezones: dict[str, Component] = {}
    for cal in calendars:
        for c in cal.children:
            tzid = c.first("TZID") if c.name == "VTIMEZONE" else None
            if tzid is not None:
                vtimezones[tzid.value.strip()] = c
    zones = _Zones(vtimezones)
    for cal in calendars:
        out.errors.extend(ItemError("file", p) for p in cal.errors)
        method = cal.first("METHOD")
        cancelled = method is not None and method.value.strip().upper() == "CANCEL"
        for event in (c for c in cal.children if c.name == "VEVENT"):
            uid = event.first("UID")
            origin = f"VEVENT at line {event.line}"
            label = origin + (f" (UID {uid.value.strip()})" if uid is not None else "")
            try:
                out.items.append(replace(_event(event, zones, options, cancelled), origin=origin))
            except SourceError as exc:
                out.errors.append(ItemError(label, str(exc)))
    return out
