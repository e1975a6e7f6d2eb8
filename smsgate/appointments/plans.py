"""The `[appointments]` settings and the `[[reminders]]` plans, checked when the configuration is loaded.

Each `[[reminders]]` table is one step: how long before the visit (`before = "48h"`), optionally at a
clock time (`at = "09:00"` with `before = "1d"`: the day before at nine), whether it asks the patient to
confirm (`confirm = true`), its text (one, or one per language: `template.es = "..."`) and the answers it
expects. A step with `types = [...]` belongs to the plan of those appointment types; every other
appointment gets the steps without `types`. No `[[reminders]]` at all means the built-in plan below;
`reminders = []` means none.

Every mistake is reported with the step and key it is in, and what to write instead, because a plan
that silently read "48 hours" as nothing would leave patients unreminded.

This module imports only the standard library, `wording` and `smsgate.templates`: `smsgate.config` imports it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time, timedelta
from typing import Any

from smsgate.templates import TemplateError

from .wording import LANGUAGES, check_template

__all__ = [
    "ANSWER_OUTCOMES",
    "DEFAULT_ANSWERS",
    "AppointmentsConfig",
    "ReminderConfigError",
    "ReminderStep",
    "RemindersConfig",
    "format_before",
    "parse_appointments",
    "parse_before",
]

ANSWER_OUTCOMES = ("confirmed", "cancelled", "reschedule")
# Already in the canonical form `keywords.answers.match_answer` compares replies in.
DEFAULT_ANSWERS: Mapping[str, str] = {"YES": "confirmed", "C": "confirmed", "CONFIRM": "confirmed",
                                      "NO": "cancelled", "1": "reschedule"}
ICS_PHONE_PLACES = ("X-PATIENT-PHONE", "ATTENDEE", "DESCRIPTION")
ICS_PHONE_PATTERN = r"(?i)(?:phone|tel|mobile|cell)\s*[:#.]?\s*(\+?[0-9(][0-9 ().-]{5,}[0-9])"
MAX_BEFORE = timedelta(days=60)

_DURATION = re.compile(r"^\s*(?:\d+\s*[wdhm]\s*)+$")
_DURATION_PART = re.compile(r"(\d+)\s*([wdhm])")
_UNITS = {"w": timedelta(weeks=1), "d": timedelta(days=1), "h": timedelta(hours=1), "m": timedelta(minutes=1)}
_PROPERTY = re.compile(r"^[A-Za-z0-9-]+$")
_STEP_KEYS = ("name", "before", "at", "confirm", "template", "answers", "types")
_APPOINTMENTS_KEYS = ("ics_phone", "ics_phone_pattern", "ics_name", "default_language", "no_reminders_for")

MISSING: Any = object()


class ReminderConfigError(ValueError):
    """A reminder plan or `[appointments]` setting that cannot be used; the message names the key."""


@dataclass(frozen=True)
class ReminderStep:
    """One reminder of a plan. `name` is its identity across re-plans (a reminder already planned for a
    step keeps its row when nothing about it changed); by default it is `before` written out, e.g. "48h"."""

    name: str
    before: timedelta
    templates: Mapping[str, str]
    at: time | None = None
    confirm: bool = False
    answers: Mapping[str, str] = field(default_factory=dict)
    types: frozenset[str] = frozenset()

    def template_for(self, language: str) -> str:
        return self.templates[language]


@dataclass(frozen=True)
class RemindersConfig:
    steps: tuple[ReminderStep, ...] = ()
    default_language: str = "en"
    no_reminders_for: frozenset[str] = frozenset()

    @classmethod
    def default(cls) -> RemindersConfig:
        """The plan used when the configuration has no `[[reminders]]`."""
        return cls(steps=DEFAULT_STEPS)

    def plan_for(self, appointment_type: str | None) -> tuple[ReminderStep, ...]:
        """The steps for an appointment of this type: its own plan if any step names the type, else the
        default plan; none for a type listed in `no_reminders_for`."""
        key = _type_key(appointment_type)
        if key and key in self.no_reminders_for:
            return ()
        own = tuple(s for s in self.steps if key and key in s.types)
        return own or tuple(s for s in self.steps if not s.types)


@dataclass(frozen=True)
class AppointmentsConfig:
    """Where importers find what the clinic's calendar does not say in a standard field."""

    ics_phone: tuple[str, ...] = ICS_PHONE_PLACES
    ics_phone_pattern: str = ICS_PHONE_PATTERN
    ics_name: str = "X-PATIENT-NAME"
    default_language: str = "en"
    no_reminders_for: tuple[str, ...] = ()


DEFAULT_STEPS = (
    ReminderStep(
        name="48h", before=timedelta(hours=48), confirm=True, answers=DEFAULT_ANSWERS,
        templates={
            "en": "Hi {first_name}, this is {clinic}: your appointment is on {weekday}, {date} at {time}. "
                  "Reply YES to confirm, NO to cancel or 1 to reschedule.",
            "es": "Hola {first_name}, le escribe {clinic}: su cita es el {weekday} {date} a las {time}. "
                  "Responda SI para confirmar, NO para cancelar o 1 para cambiarla.",
        }),
    ReminderStep(
        name="2h", before=timedelta(hours=2),
        templates={
            "en": "{clinic}: a reminder of your appointment on {weekday} at {time}. See you soon!",
            "es": "{clinic}: le recordamos su cita del {weekday} a las {time}. ¡Hasta pronto!",
        }),
)


def _type_key(value: str | None) -> str:
    return " ".join((value or "").split()).lower()


def parse_before(text: str) -> timedelta:
    """ "48h", "2d", "90m", "1w", "1h30m" -> a duration."""
    if not isinstance(text, str) or not _DURATION.match(text):
        raise ReminderConfigError(f"{text!r} is not a duration; write it as \"48h\", \"2h\", \"30m\", \"7d\" "
                                  "or \"1h30m\"")
    return sum((int(n) * _UNITS[u] for n, u in _DURATION_PART.findall(text.lower())), timedelta())


def format_before(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes and minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)}d"
    if minutes and minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"


def _clock(text: Any, where: str) -> time:
    m = re.match(r"^\s*(\d{1,2}):(\d{2})\s*$", text) if isinstance(text, str) else None
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ReminderConfigError(f"{where} = {text!r} is not a time of day; write it as \"09:00\"")
    return time(int(m.group(1)), int(m.group(2)))


def _templates(value: Any, where: str, default_language: str) -> dict[str, str]:
    if isinstance(value, str):
        value = {default_language: value}
    if not isinstance(value, dict) or not value:
        raise ReminderConfigError(f"{where} is missing; give the text, e.g. template = \"Hi {{first_name}}, ...\", "
                                  "or one per language: template.en = \"...\" and template.es = \"...\"")
    out: dict[str, str] = {}
    for lang, text in value.items():
        key = str(lang).strip().lower()
        if key not in LANGUAGES:
            raise ReminderConfigError(f"{where}.{lang}: smsgate writes dates in {', '.join(sorted(LANGUAGES))}, "
                                      f"not {lang!r}; use one of those language codes")
        if not isinstance(text, str) or not text.strip():
            raise ReminderConfigError(f"{where}.{lang} must be a non-empty text")
        try:
            check_template(text)
        except TemplateError as exc:
            raise ReminderConfigError(f"{where}.{lang}: {exc}") from None
        out[key] = text.strip()
    if default_language not in out:
        raise ReminderConfigError(
            f"{where} has no {default_language!r} text, which patients whose language is unknown (or has no "
            f"text) receive; add {where}.{default_language} = \"...\" (or change appointments.default_language)")
    return out


def _answers(value: Any, where: str, confirm: bool) -> Mapping[str, str]:
    if value is MISSING:
        return DEFAULT_ANSWERS if confirm else {}
    # Imported here, not at the top: smsgate.config imports this module, and smsgate.keywords imports
    # smsgate.config; by the time a file is being read, both are loaded.
    from smsgate.keywords.answers import WordMapError, parse_word_map

    if not isinstance(value, str | dict):
        raise ReminderConfigError(f"{where} must be a text such as \"YES=confirmed,NO=cancelled,1=reschedule\"")
    try:
        parsed = parse_word_map(value, example="YES=confirmed,NO=cancelled,1=reschedule")
    except WordMapError as exc:
        raise ReminderConfigError(f"{where}: {exc}") from None
    out = {word: outcome.lower() for word, outcome in parsed.items()}
    bad = sorted({o for o in out.values() if o not in ANSWER_OUTCOMES})
    if bad:
        raise ReminderConfigError(f"{where}: {bad[0]!r} is not something an answer can do; use "
                                  f"{', '.join(ANSWER_OUTCOMES)}")
    return out


def _step(raw: Any, where: str, default_language: str) -> ReminderStep:
    if not isinstance(raw, dict):
        raise ReminderConfigError(f"{where} must be a table ([[reminders]] followed by its keys)")
    unknown = sorted(set(raw) - set(_STEP_KEYS))
    if unknown:
        raise ReminderConfigError(f"unknown key {where}.{unknown[0]}; known keys here: {', '.join(_STEP_KEYS)}")
    if "before" not in raw:
        raise ReminderConfigError(f"{where} has no `before`; say how long before the visit, e.g. before = \"48h\"")
    try:
        before = parse_before(raw["before"])
    except ReminderConfigError as exc:
        raise ReminderConfigError(f"{where}.before: {exc}") from None
    at = _clock(raw["at"], f"{where}.at") if "at" in raw else None
    if at is not None and before % timedelta(days=1):
        raise ReminderConfigError(f"{where}: with at = \"{at:%H:%M}\", before counts whole days (\"0d\" the same "
                                  f"day, \"1d\" the day before), not {raw['before']!r}")
    if at is None and not before:
        raise ReminderConfigError(f"{where}.before = {raw['before']!r}: a reminder must come before the visit")
    if before > MAX_BEFORE:
        raise ReminderConfigError(f"{where}.before = {raw['before']!r} is more than {MAX_BEFORE.days} days")
    confirm = raw.get("confirm", False)
    if not isinstance(confirm, bool):
        raise ReminderConfigError(f"{where}.confirm must be true or false, not {confirm!r}")
    types_raw = raw.get("types", [])
    if isinstance(types_raw, str):
        types_raw = [types_raw]
    if not isinstance(types_raw, list) or not all(isinstance(t, str) and t.strip() for t in types_raw):
        raise ReminderConfigError(f"{where}.types must be a list of appointment types, e.g. types = [\"new patient\"]")
    name = raw.get("name")
    if name is None:
        name = "".join(str(raw["before"]).split()).lower() + (f"@{at:%H:%M}" if at is not None else "")
    if not isinstance(name, str) or not name.strip() or len(name) > 40:
        raise ReminderConfigError(f"{where}.name must be a short text (1-40 characters)")
    return ReminderStep(
        name=name.strip(), before=before, at=at, confirm=confirm,
        templates=_templates(raw.get("template"), f"{where}.template", default_language),
        answers=_answers(raw.get("answers", MISSING), f"{where}.answers", confirm),
        types=frozenset(_type_key(t) for t in types_raw),
    )


def _words(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ReminderConfigError(f"{where} must be a list of texts")
    return tuple(v.strip() for v in value)


def _appointments(raw: Any) -> AppointmentsConfig:
    if raw is MISSING or raw is None:
        return AppointmentsConfig()
    if not isinstance(raw, dict):
        raise ReminderConfigError("appointments must be a table ([appointments])")
    unknown = sorted(set(raw) - set(_APPOINTMENTS_KEYS))
    if unknown:
        raise ReminderConfigError(f"unknown key appointments.{unknown[0]}; known keys here: "
                                  f"{', '.join(_APPOINTMENTS_KEYS)}")
    cfg = AppointmentsConfig()
    places = _words(raw["ics_phone"], "appointments.ics_phone") if "ics_phone" in raw else cfg.ics_phone
    if not places:
        raise ReminderConfigError("appointments.ics_phone is empty; name where the patient's number is, e.g. "
                                  "[\"X-PATIENT-PHONE\", \"ATTENDEE\", \"DESCRIPTION\"]")
    for place in places:
        if not _PROPERTY.match(place):
            raise ReminderConfigError(f"appointments.ics_phone: {place!r} is not an iCalendar property name; use "
                                      "ATTENDEE (a tel: attendee), DESCRIPTION (with ics_phone_pattern) or a "
                                      "property such as X-PATIENT-PHONE")
    pattern = raw.get("ics_phone_pattern", cfg.ics_phone_pattern)
    try:
        compiled = re.compile(pattern) if isinstance(pattern, str) else None
    except re.error as exc:
        raise ReminderConfigError(f"appointments.ics_phone_pattern is not a regular expression ({exc})") from None
    if compiled is None or compiled.groups != 1:
        raise ReminderConfigError("appointments.ics_phone_pattern must be a regular expression with exactly one "
                                  "group (...) around the number, e.g. \"Phone: (\\\\+?[0-9 ()-]+)\"")
    name = raw.get("ics_name", cfg.ics_name)
    if not isinstance(name, str) or not _PROPERTY.match(name):
        raise ReminderConfigError(f"appointments.ics_name = {name!r} is not an iCalendar property name, e.g. "
                                  "\"X-PATIENT-NAME\"")
    language = raw.get("default_language", cfg.default_language)
    if not isinstance(language, str) or language.strip().lower() not in LANGUAGES:
        raise ReminderConfigError(f"appointments.default_language = {language!r}; use one of "
                                  f"{', '.join(sorted(LANGUAGES))}")
    skip = _words(raw["no_reminders_for"], "appointments.no_reminders_for") if "no_reminders_for" in raw else ()
    return AppointmentsConfig(
        ics_phone=tuple(p.upper() for p in places), ics_phone_pattern=pattern, ics_name=name.upper(),
        default_language=language.strip().lower(), no_reminders_for=skip)


def parse_appointments(appointments: Any = MISSING,
                       reminders: Any = MISSING) -> tuple[AppointmentsConfig, RemindersConfig]:
    """The `[appointments]` table and the `[[reminders]]` array as TOML gives them (MISSING when absent)."""
    settings = _appointments(appointments)
    skip = frozenset(_type_key(t) for t in settings.no_reminders_for)
    if reminders is MISSING:
        default = RemindersConfig.default()
        if settings.default_language not in DEFAULT_STEPS[0].templates:
            raise ReminderConfigError(f"the built-in reminders have no {settings.default_language!r} text; write "
                                      "your own [[reminders]] with a template in that language")
        return settings, RemindersConfig(default.steps, settings.default_language, skip)
    if isinstance(reminders, dict):
        raise ReminderConfigError("reminders must be written [[reminders]] (two brackets), one table per reminder")
    if not isinstance(reminders, list):
        raise ReminderConfigError("reminders must be a list of [[reminders]] tables, or [] for no reminders")
    steps = tuple(_step(raw, f"reminders[{i}]", settings.default_language) for i, raw in enumerate(reminders))
    names: dict[tuple[str, str], int] = {}
    times: dict[tuple[str, timedelta, time | None], int] = {}
    for i, step in enumerate(steps):
        for plan in sorted(step.types) or [""]:
            which = f"the plan for {plan!r}" if plan else "the default plan"
            when = (plan, step.before, step.at)
            if when in times:
                raise ReminderConfigError(
                    f"reminders[{times[when]}] and reminders[{i}] of {which} would both be sent "
                    f"{format_before(step.before)} before the visit; remove one or change its `before`")
            if (plan, step.name) in names:
                raise ReminderConfigError(
                    f"reminders[{names[(plan, step.name)]}] and reminders[{i}] of {which} are both named "
                    f"{step.name!r}; give one of them a name = \"...\" of its own")
            names[(plan, step.name)] = times[when] = i
    return settings, RemindersConfig(steps, settings.default_language, skip)
