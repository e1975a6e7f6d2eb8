"""Reminder texts: `{first_name}`, `{date}` and the like filled in the patient's language.

A template is checked when the configuration is loaded (an unknown field is an error then, not a
`KeyError` the night the reminders go out). Filling is one pass over a fixed list of fields: a value
(a patient's name, a provider typed by staff) is inserted as text and never read again as a template.

Dates, weekdays and times are written per language from the small tables below (no locale database):
"Tuesday, March 10 at 2:30 PM" in English, "martes 10 de marzo a las 14:30" in Spanish.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from smsgate import templates

__all__ = ["FIELDS", "LANGUAGES", "check_template", "language_for", "local_values", "render"]

FIELDS = frozenset({"first_name", "name", "provider", "location", "type", "date", "time", "weekday", "clinic",
                    "contact"})

@dataclass(frozen=True)
class Language:
    weekdays: tuple[str, ...]  # Monday first, as datetime.weekday()
    months: tuple[str, ...]
    date: Callable[[datetime, Language], str]
    time: Callable[[datetime], str]
    all_day: str
    nobody: str  # what {first_name} reads when the patient's first name is unknown


def _time_12h(dt: datetime) -> str:
    hour = dt.hour % 12 or 12
    return f"{hour}:{dt.minute:02d} {'AM' if dt.hour < 12 else 'PM'}"


def _time_24h(dt: datetime) -> str:
    return f"{dt.hour}:{dt.minute:02d}"


def _time_fr(dt: datetime) -> str:
    return f"{dt.hour}h{dt.minute:02d}"


LANGUAGES: dict[str, Language] = {
    "en": Language(
        ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
        ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
         "November", "December"),
        lambda d, lang: f"{lang.months[d.month - 1]} {d.day}", _time_12h, "all day", "there"),
    "es": Language(
        ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
        ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto", "septiembre", "octubre",
         "noviembre", "diciembre"),
        lambda d, lang: f"{d.day} de {lang.months[d.month - 1]}", _time_24h, "todo el día", ""),
    "fr": Language(
        ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
        ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
         "novembre", "décembre"),
        lambda d, lang: f"{'1er' if d.day == 1 else d.day} {lang.months[d.month - 1]}", _time_fr,
        "toute la journée", ""),
    "pt": Language(
        ("segunda-feira", "terça-feira", "quarta-feira", "quinta-feira", "sexta-feira", "sábado", "domingo"),
        ("janeiro", "fevereiro", "março", "abril", "maio", "junho", "julho", "agosto", "setembro", "outubro",
         "novembro", "dezembro"),
        lambda d, lang: f"{d.day} de {lang.months[d.month - 1]}", _time_24h, "o dia todo", ""),
    "de": Language(
        ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
        ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August", "September", "Oktober",
         "November", "Dezember"),
        lambda d, lang: f"{d.day}. {lang.months[d.month - 1]}", _time_24h, "ganztägig", ""),
}


def check_template(template: str) -> list[str]:
    """The fields `template` uses, or `TemplateError` naming the unknown one and the known ones."""
    return templates.check_template(template, FIELDS)


def render(template: str, values: Mapping[str, str | None]) -> str:
    """Fill `template`; a field with no value reads empty (the values from `local_values` have their
    fallbacks already)."""
    return templates.render(template, values, fields=FIELDS, fallback={})


def language_for(tag: str | None, available: Iterable[str], default: str) -> str:
    """The template language for a contact's language tag ("es", "es-MX", "ES_us"): its primary subtag
    when the plan has a text in it, else `default`."""
    if tag:
        primary = re.split(r"[-_]", tag.strip().lower(), maxsplit=1)[0]
        if primary in set(available):
            return primary
    return default


def local_values(start: datetime, *, all_day: bool, language: str, first_name: str | None,
                 name: str | None = None, provider: str | None = None, location: str | None = None,
                 appointment_type: str | None = None, clinic: str = "", contact: str = "") -> dict[str, str]:
    """The fields of a reminder, `start` already in the appointment's zone, written in `language`."""
    lang = LANGUAGES[language]
    return {
        "first_name": (first_name or "").strip() or lang.nobody,
        "name": (name or first_name or "").strip() or lang.nobody,
        "provider": provider or "",
        "location": location or clinic,
        "type": appointment_type or "",
        "date": lang.date(start, lang),
        "time": lang.all_day if all_day else lang.time(start),
        "weekday": lang.weekdays[start.weekday()],
        "clinic": clinic,
        "contact": contact,
    }
