"""The reminder planner, one rule per test: pure inputs (appointment, plan, quiet hours, now, the reminders
already stored) in, the difference to apply out."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from smsgate.appointments.planner import latest_allowed, plan_reminders
from smsgate.appointments.plans import ReminderStep
from smsgate.keywords.hours import QuietHours
from smsgate.queue.appointments import Appointment, ReminderDiff, StoredReminder

NY = ZoneInfo("America/New_York")
LA = ZoneInfo("America/Los_Angeles")
QUIET = QuietHours("08:00", "21:00")
CONFIRM_48H = ReminderStep(name="48h", before=timedelta(hours=48), templates={"en": "Reply YES"}, confirm=True)
PLAIN_2H = ReminderStep(name="2h", before=timedelta(hours=2), templates={"en": "See you"})
PLAN = (CONFIRM_48H, PLAIN_2H)


def visit(start: datetime, status: str = "booked", **changes: object) -> Appointment:
    base = Appointment(
        id=1, external_id="A-1", contact_id=1, number="+12125550142", patient_name=None, first_name=None,
        language=None, contact_timezone=None, provider=None, location=None, appointment_type=None,
        start=start.astimezone(UTC), timezone="America/New_York", all_day=False, duration_minutes=30,
        status=status, notes=None, source="test", revision=None, modified_at=None, created_at="", updated_at="")
    return dataclasses.replace(base, **changes)


def stored(diff: ReminderDiff, *, first_id: int = 1) -> list[StoredReminder]:
    """The rows a store would hold after applying `diff` to an appointment with no reminders yet."""
    return [StoredReminder(first_id + i, 1, n.step, n.confirm, n.send_at, diff.for_start, "pending", None, None)
            for i, n in enumerate(diff.create)]


def local(at: datetime) -> datetime:
    return at.astimezone(NY)


WED_2PM = datetime(2026, 11, 25, 14, 0, tzinfo=NY)
A_WEEK_BEFORE = datetime(2026, 11, 18, 12, 0, tzinfo=NY)


def test_each_step_is_planned_its_time_before_the_visit() -> None:
    diff = plan_reminders(visit(WED_2PM), PLAN, QUIET, [NY], A_WEEK_BEFORE, [])
    assert [(n.step, local(n.send_at), n.confirm) for n in diff.create] == [
        ("48h", datetime(2026, 11, 23, 14, 0, tzinfo=NY), True),
        ("2h", datetime(2026, 11, 25, 12, 0, tzinfo=NY), False)]
    assert diff.cancel == () and diff.retime == () and diff.skipped == ()


def test_a_reminder_whose_time_has_passed_when_booked_is_skipped_not_sent_late() -> None:
    booked_3h_ahead = WED_2PM - timedelta(hours=3)
    diff = plan_reminders(visit(WED_2PM), PLAN, QUIET, [NY], booked_3h_ahead, [])
    assert [n.step for n in diff.create] == ["2h"]
    assert [s.step for s in diff.skipped] == ["48h"] and "had passed" in diff.skipped[0].reason


def test_a_reminder_in_quiet_hours_moves_earlier_to_the_last_allowed_minute_never_past_the_visit() -> None:
    early = datetime(2026, 11, 25, 8, 30, tzinfo=NY)  # 2 h before is 06:30, before texting is allowed
    diff = plan_reminders(visit(early), (PLAIN_2H,), QUIET, [NY], A_WEEK_BEFORE, [])
    (reminder,) = diff.create
    assert local(reminder.send_at) == datetime(2026, 11, 24, 20, 59, tzinfo=NY)
    assert reminder.send_at < early


def test_a_reminder_moved_out_of_quiet_hours_whose_new_time_has_passed_is_skipped() -> None:
    early = datetime(2026, 11, 25, 8, 30, tzinfo=NY)
    diff = plan_reminders(visit(early), (PLAIN_2H,), QUIET, [NY], datetime(2026, 11, 24, 22, 0, tzinfo=NY), [])
    assert diff.create == () and [s.step for s in diff.skipped] == ["2h"]


def test_quiet_hours_are_read_in_the_patients_zone() -> None:
    # 48 h before a 9:00 New York visit is 6:00 in Los Angeles: quiet there, so it moves to 20:59 LA time.
    diff = plan_reminders(visit(datetime(2026, 11, 25, 9, 0, tzinfo=NY)), (CONFIRM_48H,), QUIET, [LA],
                          A_WEEK_BEFORE, [])
    (reminder,) = diff.create
    assert reminder.send_at.astimezone(LA) == datetime(2026, 11, 22, 20, 59, tzinfo=LA)


def test_a_quiet_hours_move_across_the_start_of_daylight_saving_time_lands_on_local_wall_time() -> None:
    # Clocks go forward on Sunday 2027-03-14. 48 h before Monday 08:30 EDT is Saturday 07:30 EST: quiet,
    # so it moves to Friday 20:59 EST.
    monday = datetime(2027, 3, 15, 8, 30, tzinfo=NY)
    diff = plan_reminders(visit(monday), (CONFIRM_48H,), QUIET, [NY], datetime(2027, 3, 1, tzinfo=NY), [])
    (reminder,) = diff.create
    assert local(reminder.send_at).replace(tzinfo=None) == datetime(2027, 3, 12, 20, 59)
    assert local(reminder.send_at).utcoffset() == timedelta(hours=-5)


def test_a_cancelled_appointment_cancels_its_pending_and_its_queued_reminders() -> None:
    appointment = visit(WED_2PM)
    rows = stored(plan_reminders(appointment, PLAN, QUIET, [NY], A_WEEK_BEFORE, []))
    rows[0] = dataclasses.replace(rows[0], state="queued", message_id=77)
    diff = plan_reminders(visit(WED_2PM, "cancelled"), PLAN, QUIET, [NY], A_WEEK_BEFORE, rows)
    assert sorted((c.step, c.message_id) for c in diff.cancel) == [("2h", None), ("48h", 77)]
    assert all("cancelled" in c.reason for c in diff.cancel) and diff.create == ()


def test_a_moved_appointment_retimes_its_pending_reminders() -> None:
    rows = stored(plan_reminders(visit(WED_2PM), PLAN, QUIET, [NY], A_WEEK_BEFORE, []))
    thursday = WED_2PM + timedelta(days=1)
    diff = plan_reminders(visit(thursday), PLAN, QUIET, [NY], A_WEEK_BEFORE, rows)
    assert [(r.reminder_id, local(r.send_at)) for r in diff.retime] == [
        (1, datetime(2026, 11, 24, 14, 0, tzinfo=NY)), (2, datetime(2026, 11, 26, 12, 0, tzinfo=NY))]
    assert diff.create == () and diff.cancel == () and diff.for_start == thursday


def test_a_moved_appointment_cancels_a_queued_reminder_and_plans_the_step_for_the_new_time() -> None:
    rows = stored(plan_reminders(visit(WED_2PM), (CONFIRM_48H,), QUIET, [NY], A_WEEK_BEFORE, []))
    rows[0] = dataclasses.replace(rows[0], state="queued", message_id=5)
    diff = plan_reminders(visit(WED_2PM + timedelta(days=2)), (CONFIRM_48H,), QUIET, [NY], A_WEEK_BEFORE, rows)
    assert [(c.reminder_id, c.message_id, c.reason) for c in diff.cancel] == [(1, 5, "the appointment moved")]
    assert [n.step for n in diff.create] == ["48h"]


def test_an_appointment_moved_sooner_cancels_a_pending_reminder_whose_new_time_has_passed() -> None:
    rows = stored(plan_reminders(visit(WED_2PM), (CONFIRM_48H,), QUIET, [NY], A_WEEK_BEFORE, []))
    now = datetime(2026, 11, 21, 9, 0, tzinfo=NY)
    diff = plan_reminders(visit(datetime(2026, 11, 22, 14, 0, tzinfo=NY)), (CONFIRM_48H,), QUIET, [NY], now, rows)
    assert [c.reason for c in diff.cancel] == ["its new time has already passed"] and diff.retime == ()


def test_a_confirmed_appointment_gets_no_please_confirm_reminder_but_keeps_the_plain_one() -> None:
    rows = stored(plan_reminders(visit(WED_2PM), PLAN, QUIET, [NY], A_WEEK_BEFORE, []))
    diff = plan_reminders(visit(WED_2PM, "confirmed"), PLAN, QUIET, [NY], A_WEEK_BEFORE, rows)
    assert [(c.step, c.reason) for c in diff.cancel] == [("48h", "the patient has already confirmed")]
    assert diff.create == () and diff.retime == ()
    fresh = plan_reminders(visit(WED_2PM, "confirmed"), PLAN, QUIET, [NY], A_WEEK_BEFORE, [])
    assert [n.step for n in fresh.create] == ["2h"]


def test_a_rescheduled_appointment_asks_for_confirmation_again() -> None:
    diff = plan_reminders(visit(WED_2PM, "rescheduled"), PLAN, QUIET, [NY], A_WEEK_BEFORE, [])
    assert [n.step for n in diff.create] == ["48h", "2h"]


def test_planning_again_with_nothing_changed_changes_nothing() -> None:
    appointment = visit(WED_2PM)
    rows = stored(plan_reminders(appointment, PLAN, QUIET, [NY], A_WEEK_BEFORE, []))
    assert plan_reminders(appointment, PLAN, QUIET, [NY], A_WEEK_BEFORE + timedelta(days=1), rows).empty


def test_a_planned_reminder_is_kept_once_its_time_has_passed_and_it_was_not_sent_yet() -> None:
    appointment = visit(WED_2PM)
    rows = stored(plan_reminders(appointment, PLAN, QUIET, [NY], A_WEEK_BEFORE, []))
    just_after_the_48h_one = datetime(2026, 11, 23, 14, 5, tzinfo=NY)
    assert plan_reminders(appointment, PLAN, QUIET, [NY], just_after_the_48h_one, rows).empty


def test_a_queued_reminder_for_the_same_time_is_not_planned_again() -> None:
    appointment = visit(WED_2PM)
    rows = [dataclasses.replace(r, state="queued", message_id=9)
            for r in stored(plan_reminders(appointment, PLAN, QUIET, [NY], A_WEEK_BEFORE, []))]
    assert plan_reminders(appointment, PLAN, QUIET, [NY], A_WEEK_BEFORE, rows).empty


def test_a_step_taken_out_of_the_plan_cancels_its_pending_reminder() -> None:
    rows = stored(plan_reminders(visit(WED_2PM), PLAN, QUIET, [NY], A_WEEK_BEFORE, []))
    diff = plan_reminders(visit(WED_2PM), (PLAIN_2H,), QUIET, [NY], A_WEEK_BEFORE, rows)
    assert [(c.step, c.reason) for c in diff.cancel] == [("48h", "its step is no longer in the plan")]


def test_a_step_at_a_clock_time_goes_that_many_days_before_at_that_time() -> None:
    day_before_at_10 = ReminderStep(name="1d@10:00", before=timedelta(days=1), at=time(10, 0), templates={"en": "x"})
    diff = plan_reminders(visit(WED_2PM), (day_before_at_10,), QUIET, [NY], A_WEEK_BEFORE, [])
    assert local(diff.create[0].send_at) == datetime(2026, 11, 24, 10, 0, tzinfo=NY)


def test_a_same_day_step_whose_clock_time_is_after_the_visit_is_skipped() -> None:
    same_day_at_3pm = ReminderStep(name="0d@15:00", before=timedelta(0), at=time(15, 0), templates={"en": "x"})
    diff = plan_reminders(visit(WED_2PM), (same_day_at_3pm,), QUIET, [NY], A_WEEK_BEFORE, [])
    assert diff.create == () and diff.skipped[0].reason == "it would be sent after the visit starts"


def test_the_latest_allowed_minute_is_the_moment_itself_when_texting_is_allowed() -> None:
    noon = datetime(2026, 11, 24, 12, 0, tzinfo=NY)
    assert latest_allowed(noon, QUIET, [NY]) == noon


def test_the_latest_allowed_minute_satisfies_every_zone_of_the_patient() -> None:
    # 07:00 New York is 04:00 Los Angeles; allowed in both means before 21:00 New York the evening before.
    at = latest_allowed(datetime(2026, 11, 24, 7, 0, tzinfo=NY), QUIET, [NY, LA])
    assert at is not None and local(at) == datetime(2026, 11, 23, 20, 59, tzinfo=NY)
    assert QUIET.allowed(at, [NY, LA])
