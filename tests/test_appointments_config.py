"""`[[reminders]]` plans and `[appointments]` settings: read by smsgate.config, every mistake named with its
key when the file is loaded; reminder texts filled per language."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from smsgate.appointments.plans import DEFAULT_ANSWERS, RemindersConfig, parse_appointments
from smsgate.appointments.service import AppointmentService
from smsgate.appointments.wording import LANGUAGES, check_template, language_for, local_values, render
from smsgate.config import Config, ConfigError, config_from_dict, load_config
from smsgate.queue import Store
from smsgate.queue.appointments import AppointmentInput

WORKED_EXAMPLE = '''
[clinic]
name = "Riverside Family Clinic"
timezone = "America/New_York"

[appointments]
ics_phone = ["X-PATIENT-PHONE", "ATTENDEE"]
default_language = "en"
no_reminders_for = ["Walk-in"]

[[reminders]]
before = "48h"
confirm = true
template.en = "Hi {first_name}, your visit with {provider} is {weekday}, {date} at {time}. Reply YES, NO or 1."
template.es = "Hola {first_name}, su cita con {provider} es el {weekday} {date} a las {time}. Responda SI, NO o 1."

[[reminders]]
before = "0d"
at = "08:00"
template = "{clinic}: see you today at {time} at {location}."

[[reminders]]
types = ["New patient"]
before = "7d"
confirm = true
answers = "YES=confirmed, NO=cancelled, 2=reschedule"
template = "Welcome {first_name}! Your first visit is {weekday} {date} at {time}. Reply YES to confirm."
'''

# A configuration built from a dict names the clinic's zone, as `smsgate init` writes it.
CLINIC = {"clinic": {"timezone": "America/New_York"}}


def load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "smsgate.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_the_worked_example_of_the_guide_loads_as_it_reads(tmp_path: Path) -> None:
    cfg = load(tmp_path, WORKED_EXAMPLE)
    default = cfg.reminders.plan_for("Cleaning")
    assert [(s.name, s.before, s.at, s.confirm) for s in default] == [
        ("48h", timedelta(hours=48), None, True), ("0d@08:00", timedelta(0), time(8, 0), False)]
    assert default[0].answers == DEFAULT_ANSWERS and default[1].answers == {}
    assert set(default[0].templates) == {"en", "es"}
    new_patient = cfg.reminders.plan_for("new  PATIENT")
    assert [s.name for s in new_patient] == ["7d"]
    assert new_patient[0].answers == {"YES": "confirmed", "NO": "cancelled", "2": "reschedule"}
    assert cfg.reminders.plan_for("walk-in") == ()
    assert cfg.appointments.ics_phone == ("X-PATIENT-PHONE", "ATTENDEE")


def test_the_guide_shows_the_worked_example_this_test_loads() -> None:
    guide = (Path(__file__).resolve().parent.parent / "docs" / "appointments.md").read_text(encoding="utf-8")
    assert WORKED_EXAMPLE.strip() in guide


def test_the_worked_example_plans_and_words_the_reminders_as_the_guide_says(tmp_path: Path) -> None:
    cfg = load(tmp_path, WORKED_EXAMPLE)
    service = AppointmentService(cfg)
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    with Store.open(tmp_path / "s.db", clock=lambda: now) as store:
        done = service.upsert(store, AppointmentInput(
            external_id="A-1", number="+12125550142", start=datetime(2026, 11, 26, 10, 0, tzinfo=NY),
            timezone="America/New_York", first_name="Maria", provider="Dr. Rivera", location="14 Main St",
            appointment_type="Cleaning"), source="guide")
        appointment = store.appointments.get(done.result.appointment_id or 0)
        rows = store.appointments.reminders(appointment.id)
        planned = [(r.step, f"{r.send_at.astimezone(NY):%a %H:%M}") for r in rows]
        assert planned == [("48h", "Tue 10:00"), ("0d@08:00", "Thu 08:00")]
        steps = service.steps_for(appointment)
        assert service.reminder_text(appointment, steps[0])[1] == (
            "Hi Maria, your visit with Dr. Rivera is Thursday, November 26 at 10:00 AM. Reply YES, NO or 1.")
        assert service.reminder_text(appointment, steps[1])[1] == (
            "Riverside Family Clinic: see you today at 10:00 AM at 14 Main St.")
        store.execute("UPDATE contacts SET language = 'es' WHERE number = '+12125550142'")
        appointment = store.appointments.get(appointment.id)
        assert service.reminder_text(appointment, steps[0])[1] == (
            "Hola Maria, su cita con Dr. Rivera es el jueves 26 de noviembre a las 10:00. Responda SI, NO o 1.")
        # No Spanish text for the day-of step: the default language's.
        assert service.reminder_text(appointment, steps[1])[0] == "en"


def test_without_reminders_the_built_in_plan_applies_and_reminders_empty_means_none() -> None:
    assert [s.name for s in Config().reminders.plan_for(None)] == ["48h", "2h"]
    assert [s.name for s in config_from_dict(CLINIC).reminders.plan_for("x")] == ["48h", "2h"]
    assert config_from_dict({**CLINIC, "reminders": []}).reminders.plan_for(None) == ()


def test_every_built_in_template_uses_only_fields_smsgate_fills() -> None:
    for step in RemindersConfig.default().steps:
        for text in step.templates.values():
            check_template(text)


@pytest.mark.parametrize(("reminders", "message"), [
    ([{"before": "48 hours", "template": "x"}], r"reminders\[0\]\.before: '48 hours' is not a duration"),
    ([{"template": "x"}], r"reminders\[0\] has no `before`"),
    ([{"before": "2h"}], r"reminders\[0\]\.template is missing"),
    ([{"before": "2h", "template": "Hi {frist_name}"}], r"reminders\[0\]\.template\.en: \{frist_name\} is not a field"),
    ([{"before": "2h", "template": "Hi {first_name"}], r"unmatched '\{'"),
    ([{"before": "2h", "template": {"es": "Hola"}}], r"reminders\[0\]\.template has no 'en' text"),
    ([{"before": "2h", "template": {"en": "Hi", "xx": "?"}}], r"reminders\[0\]\.template\.xx: smsgate writes dates in"),
    ([{"before": "2h", "template": "x", "confirm": "yes"}], r"reminders\[0\]\.confirm must be true or false"),
    ([{"before": "2h", "template": "x", "answers": "YES=maybe"}], r"'maybe' is not something an answer can do"),
    ([{"before": "2h", "template": "x", "answers": "YES"}], r"reminders\[0\]\.answers: 'YES': write each answer"),
    ([{"before": "2h", "template": "x", "at": "25:00"}], r"reminders\[0\]\.at = '25:00' is not a time of day"),
    ([{"before": "36h", "template": "x", "at": "09:00"}], r"before counts whole days"),
    ([{"before": "0h", "template": "x"}], r"must come before the visit"),
    ([{"before": "90d", "template": "x"}], r"more than 60 days"),
    ([{"before": "2h", "template": "x", "when": "soon"}], r"unknown key reminders\[0\]\.when"),
    ([{"before": "2h", "template": "x"}, {"before": "2h", "template": "y"}], r"would both be sent 2h before"),
    ([{"before": "2h", "template": "x", "name": "a"}, {"before": "3h", "template": "y", "name": "a"}],
     r"are both named 'a'"),
    ({"before": "2h", "template": "x"}, r"\[\[reminders\]\] \(two brackets\)"),
])
def test_a_reminder_plan_mistake_names_the_step_and_key(reminders: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({**CLINIC, "reminders": reminders})


def test_the_same_before_in_two_plans_is_not_a_duplicate() -> None:
    cfg = config_from_dict({**CLINIC, "reminders": [{"before": "2h", "template": "x"},
                                          {"before": "2h", "template": "y", "types": ["surgery"]}]})
    assert [s.templates["en"] for s in cfg.reminders.plan_for("surgery")] == ["y"]


@pytest.mark.parametrize(("settings", "message"), [
    ({"ics_phone": []}, "ics_phone is empty"),
    ({"ics_phone": ["X PATIENT"]}, "is not an iCalendar property name"),
    ({"ics_phone_pattern": "("}, "is not a regular expression"),
    ({"ics_phone_pattern": "phone: [0-9]+"}, "exactly one group"),
    ({"default_language": "klingon"}, "appointments.default_language = 'klingon'"),
    ({"colour": "blue"}, "unknown key appointments.colour"),
])
def test_an_appointments_setting_mistake_names_the_key(settings: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from_dict({**CLINIC, "appointments": settings})


def test_a_mistake_in_the_file_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"smsgate\.toml: reminders\[1\]\.before"):
        load(tmp_path, '[[reminders]]\nbefore = "2h"\ntemplate = "x"\n[[reminders]]\nbefore = "soon"\ntemplate = "y"\n')


def test_a_default_language_the_built_in_texts_lack_needs_a_plan_of_ones_own() -> None:
    with pytest.raises(ConfigError, match="built-in reminders have no 'de' text"):
        config_from_dict({**CLINIC, "appointments": {"default_language": "de"}})
    settings, plans = parse_appointments({"default_language": "de"}, [{"before": "1d", "template": "Termin {date}"}])
    assert plans.default_language == "de" and settings.default_language == "de"


# --- wording ------------------------------------------------------------------------------------------------

NY = ZoneInfo("America/New_York")


def test_english_reads_weekday_month_day_and_a_12_hour_clock() -> None:
    values = local_values(datetime(2026, 11, 24, 14, 5, tzinfo=NY), all_day=False, language="en", first_name="Maria")
    assert (values["weekday"], values["date"], values["time"]) == ("Tuesday", "November 24", "2:05 PM")
    midnight = local_values(datetime(2026, 11, 24, 0, 30, tzinfo=NY), all_day=False, language="en", first_name=None)
    assert midnight["time"] == "12:30 AM" and midnight["first_name"] == "there"


def test_spanish_reads_day_de_month_and_a_24_hour_clock() -> None:
    values = local_values(datetime(2026, 11, 25, 9, 30, tzinfo=NY), all_day=False, language="es", first_name="Ana")
    assert (values["weekday"], values["date"], values["time"]) == ("miércoles", "25 de noviembre", "9:30")
    text = render("Hola {first_name}, su cita es el {weekday} {date} a las {time}.", values)
    assert text == "Hola Ana, su cita es el miércoles 25 de noviembre a las 9:30."


def test_every_language_has_seven_weekdays_and_twelve_months() -> None:
    for lang in LANGUAGES.values():
        assert len(lang.weekdays) == 7 and len(lang.months) == 12


def test_an_all_day_appointment_has_no_clock_time() -> None:
    values = local_values(datetime(2026, 11, 27, tzinfo=NY), all_day=True, language="es", first_name="Wei")
    assert values["time"] == "todo el día"


def test_a_contacts_language_picks_its_text_and_an_unknown_one_falls_back() -> None:
    assert language_for("es-MX", ["en", "es"], "en") == "es"
    assert language_for("ES_us", ["en", "es"], "en") == "es"
    assert language_for("fr", ["en", "es"], "en") == "en"
    assert language_for(None, ["en", "es"], "en") == "en"


def test_a_value_is_inserted_as_text_never_read_as_a_template() -> None:
    assert render("Hi {first_name} {{literal}}", {"first_name": "{provider}"}) == "Hi {provider} {literal}"
