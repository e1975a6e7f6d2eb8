"""Shared setup for the waitlist tests: a clinic, a visit that gets cancelled, patients on the waitlist."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from smsgate.appointments.service import AppointmentService
from smsgate.config import Config, config_from_dict
from smsgate.queue import Store
from smsgate.queue.appointments import Appointment, AppointmentInput

NY = ZoneInfo("America/New_York")
HOOK = "http://127.0.0.1:9/clinic-hook"
# The store's clock starts at 2026-11-22 18:00 UTC (Sunday 13:00 in New York); the visit is on Tuesday.
VISIT = datetime(2026, 11, 24, 10, 30, tzinfo=NY)
CANCELLING = "+12125550142"
FIRST, SECOND, THIRD, FOURTH = "+12125550161", "+12125550162", "+12125550163", "+12125550164"


def waitlist_config(**waitlist: Any) -> Config:
    return config_from_dict({
        "clinic": {"name": "Rivera Clinic", "timezone": "America/New_York", "region": "US"},
        "waitlist": waitlist,
        "webhooks": [{"url": HOOK, "events": ["appointment.waitlist_filled"]}],
    })


def visit(**changes: Any) -> AppointmentInput:
    base = AppointmentInput(external_id="EHR-77", number=CANCELLING, start=VISIT, timezone="America/New_York",
                            duration_minutes=30, patient_name="Maria Lopez", provider="Dr. Rivera",
                            location="Main St", appointment_type="Cleaning")
    return dataclasses.replace(base, **changes)


def book_and_cancel(store: Store, config: Config, **changes: Any) -> Appointment:
    service = AppointmentService(config)
    service.upsert(store, visit(**changes), source="ics:export.ics")
    done = service.upsert(store, visit(status="cancelled", **changes), source="ics:export.ics")
    assert done.result.appointment is not None and done.result.appointment.status == "cancelled"
    return done.result.appointment


def messages_to(store: Store, number: str) -> list[dict[str, Any]]:
    return store.query("SELECT * FROM messages WHERE to_number = ? ORDER BY id", (number,))
