"""The reminder planner: given an appointment, its plan, the quiet hours and now, which reminders to
create, cancel or re-time. Pure: no database, no clock; the caller passes the reminders already stored.

The rules, and why:
- A step's time is `before` ahead of the start (or `at` o'clock, `before` days ahead, in the appointment's
  zone). If that falls in quiet hours it moves EARLIER, to the last minute texting is allowed: later
  could land after the visit, and "2 h before an 8:30 visit" is better sent at 20:59 the evening before.
- A reminder whose time has already passed when it is planned is skipped, never sent late: a 48 h
  reminder for a visit booked 3 h ahead would otherwise go out at once, next to the 2 h one.
- A reminder already planned keeps its row while nothing about it changed, even once its time has passed
  (the sender may simply not have picked it up yet); a moved appointment re-times its pending reminders,
  or cancels those whose new time has passed.
- A cancelled, completed or no-show appointment cancels every reminder still waiting, including one
  already queued (the caller stops its message if it has not gone out).
- A confirmed appointment gets no further step with `confirm = true`, but still the plain ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from smsgate.keywords.hours import QuietHours
from smsgate.queue.appointments import (
    ACTIVE_STATUSES,
    Appointment,
    NewReminder,
    ReminderCancel,
    ReminderDiff,
    ReminderRetime,
    ReminderSkip,
    StoredReminder,
)

from .plans import ReminderStep

__all__ = ["latest_allowed", "plan_reminders", "send_time"]

_SEARCH_DAYS = 9


def latest_allowed(when: datetime, quiet: QuietHours, zones: Sequence[ZoneInfo]) -> datetime | None:
    """The latest minute at or before `when` that is outside quiet hours in every zone (None when there
    is none in the nine days before)."""
    if quiet.allowed(when, zones):
        return when
    window = quiet.window
    overnight = window.end is not None and window.end < window.start
    best: datetime | None = None
    for z in zones:
        local_day = when.astimezone(z).date()
        for back in range(_SEARCH_DAYS):
            day = local_day - timedelta(days=back)
            if window.end is None:
                end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=z)
            else:
                end = datetime.combine(day + timedelta(days=1) if overnight else day, window.end, tzinfo=z)
            candidate = end.astimezone(UTC) - timedelta(minutes=1)
            if candidate <= when and quiet.allowed(candidate, zones):
                # Earlier days only give earlier candidates: this is this zone's latest.
                if best is None or candidate > best:
                    best = candidate
                break
    return best


def send_time(step: ReminderStep, appointment: Appointment) -> datetime:
    """When the step would go, before quiet hours are considered (UTC)."""
    if step.at is None:
        return appointment.start - step.before
    tz = ZoneInfo(appointment.timezone)
    day = appointment.start.astimezone(tz).date() - timedelta(days=step.before.days)
    return datetime.combine(day, step.at, tzinfo=tz).astimezone(UTC)


def _wanted(step: ReminderStep, appointment: Appointment, quiet: QuietHours,
            zones: Sequence[ZoneInfo]) -> tuple[datetime | None, str]:
    if step.confirm and appointment.status == "confirmed":
        return None, "the patient has already confirmed"
    at = send_time(step, appointment)
    moved = latest_allowed(at, quiet, zones)
    if moved is None:
        return None, "no time outside quiet hours before the visit"
    if moved >= appointment.start:
        return None, "it would be sent after the visit starts"
    return moved, ""


def plan_reminders(appointment: Appointment, steps: Sequence[ReminderStep], quiet: QuietHours,
                   zones: Sequence[ZoneInfo], now: datetime, existing: Sequence[StoredReminder]) -> ReminderDiff:
    """What to do with `appointment`'s reminders now (see the module docstring for the rules)."""
    start = appointment.start
    active = appointment.status in ACTIVE_STATUSES
    create: list[NewReminder] = []
    cancel: list[ReminderCancel] = []
    retime: list[ReminderRetime] = []
    skipped: list[ReminderSkip] = []
    pending = {r.step: r for r in existing if r.state == "pending"}
    done: set[str] = set()
    for r in existing:
        if r.state != "queued":
            continue
        if not active:
            cancel.append(ReminderCancel(r.id, r.step, r.message_id, f"the appointment is {appointment.status}"))
        elif r.for_start != start:
            cancel.append(ReminderCancel(r.id, r.step, r.message_id, "the appointment moved"))
        else:
            done.add(r.step)
    if not active:
        for r in pending.values():
            cancel.append(ReminderCancel(r.id, r.step, None, f"the appointment is {appointment.status}"))
        return ReminderDiff(start, cancel=tuple(cancel),
                            skipped=tuple(ReminderSkip(s.name, f"the appointment is {appointment.status}")
                                          for s in steps))
    names = set()
    for step in steps:
        names.add(step.name)
        have = pending.get(step.name)
        at, why = _wanted(step, appointment, quiet, zones)
        if at is None:
            if have is not None:
                cancel.append(ReminderCancel(have.id, step.name, None, why))
            else:
                skipped.append(ReminderSkip(step.name, why))
        elif have is not None and have.send_at == at and have.for_start == start:
            continue
        elif at <= now:
            if have is not None:
                cancel.append(ReminderCancel(have.id, step.name, None, "its new time has already passed"))
            elif step.name not in done:
                local = at.astimezone(ZoneInfo(appointment.timezone))
                skipped.append(ReminderSkip(step.name, f"its time ({local:%Y-%m-%d %H:%M}) had passed when the "
                                                       "appointment was planned"))
        elif have is not None:
            retime.append(ReminderRetime(have.id, step.name, at))
        elif step.name not in done:
            create.append(NewReminder(step.name, at, step.confirm))
    for name, r in pending.items():
        if name not in names:
            cancel.append(ReminderCancel(r.id, name, None, "its step is no longer in the plan"))
    return ReminderDiff(start, create=tuple(create), cancel=tuple(cancel), retime=tuple(retime),
                        skipped=tuple(skipped))
