"""Filling a cancelled slot from the waitlist, through the rules engine and a real store: WAITLIST, the
offers a cancellation sends, the first YES booking the slot (also with two YES at once), the others told
it is taken, late answers, consent, and the clinic's webhook."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import FakeClock
from keywords_support import receive, send_all
from waitlist_support import (
    CANCELLING,
    FIRST,
    FOURTH,
    HOOK,
    SECOND,
    THIRD,
    VISIT,
    book_and_cancel,
    messages_to,
    waitlist_config,
)

from smsgate.appointments.service import AppointmentService
from smsgate.appointments.waitlist import OFFER_OUTCOME, handle_answer, offer_freed_slots
from smsgate.config import Config
from smsgate.keywords import RulesEngine
from smsgate.modemd.hooks import default_on_inbound
from smsgate.queue import Kind, State, Store


@pytest.fixture
def config() -> Config:
    return waitlist_config(offer_to=2)


@pytest.fixture
def engine(config: Config) -> RulesEngine:
    return RulesEngine(config, on_answer=lambda s, m, o, n: handle_answer(s, config, m, o, n))


@pytest.fixture
def modem(store: Store) -> int:
    return store.modems.upsert("front-desk", state="ready")


def offers_out(store: Store, config: Config, modem: int) -> None:
    """A cancellation noticed and its offers handed to the modem."""
    offer_freed_slots(store, config)
    send_all(store, config, modem)


def test_waitlist_by_text_puts_the_patient_on_the_list_once(store: Store, engine: RulesEngine, modem: int) -> None:
    _, out = receive(store, engine, FIRST, "Waitlist mornings please", modem)
    assert out.action == "keyword" and out.keyword == "WAITLIST"
    entry = store.waitlist.waiting(FIRST)
    assert entry is not None and entry.source == "sms" and entry.notes == "mornings please"
    _, again = receive(store, engine, FIRST, "WAITLIST", modem)
    assert again.keyword == "WAITLIST" and len(store.waitlist.entries()) == 1
    replies = [m["body"] for m in messages_to(store, FIRST)]
    assert "you are on the waitlist" in replies[0] and "already on the waitlist" in replies[1]


def test_a_cancellation_offers_the_slot_to_the_first_matching_patients_as_transactional_messages(
        store: Store, config: Config) -> None:
    for number in (FIRST, SECOND, THIRD):
        store.waitlist.add(number, source="staff", actor="cli")
    store.waitlist.add(FOURTH, source="staff", actor="cli", provider="Dr. Chen")
    book_and_cancel(store, config)
    done = offer_freed_slots(store, config)
    (slot,) = done.slots
    assert (slot.provider, slot.location, slot.appointment_type, slot.duration_minutes) == \
        ("Dr. Rivera", "Main St", "Cleaning", 30)
    assert slot.start == VISIT and slot.expires_at == "2026-11-22T20:00:00.000000Z"  # default offer_hours: 2
    (first,) = messages_to(store, FIRST)
    # A first message to the number carries the opt-out footer, like any transactional text.
    assert first["body"] == ("Rivera Clinic: An earlier slot opened: Tue 10:30 with Dr. Rivera. Reply YES to take it."
                             " Reply STOP to opt out.")
    assert first["kind"] == Kind.TRANSACTIONAL and json.loads(first["expect"]) == {"YES": OFFER_OUTCOME}
    assert len(messages_to(store, SECOND)) == 1
    assert messages_to(store, THIRD) == [] and messages_to(store, FOURTH) == []  # offer_to = 2; not his doctor
    assert messages_to(store, CANCELLING) == []
    again = offer_freed_slots(store, config)
    assert again.slots == [] and len(store.query("SELECT * FROM messages WHERE source = 'waitlist'")) == 2


def test_an_opted_out_patient_gets_no_offer_and_the_next_in_line_gets_one(store: Store, config: Config) -> None:
    for number in (FIRST, SECOND, THIRD):
        store.waitlist.add(number, source="staff", actor="cli")
    store.consent.record(SECOND, "opt_out", source="sms", actor="rules")
    book_and_cancel(store, config)
    done = offer_freed_slots(store, config)
    assert messages_to(store, SECOND) == []
    assert len(messages_to(store, FIRST)) == 1 and len(messages_to(store, THIRD)) == 1
    refused = [o for o in done.offers if o.state == "refused"]
    assert len(refused) == 1 and refused[0].reason and "opted out" in refused[0].reason.lower()


def test_a_cancelled_visit_that_already_started_frees_nothing(store: Store, config: Config, clock: FakeClock) -> None:
    store.waitlist.add(FIRST, source="staff", actor="cli")
    clock.now = VISIT + timedelta(minutes=5)
    book_and_cancel(store, config)
    assert offer_freed_slots(store, config).slots == [] and messages_to(store, FIRST) == []


def test_the_first_yes_books_the_slot_and_the_second_is_told_it_was_taken(
        store: Store, config: Config, engine: RulesEngine, modem: int) -> None:
    store.waitlist.add(FIRST, source="staff", actor="cli")
    store.waitlist.add(SECOND, source="staff", actor="cli")
    cancelled = book_and_cancel(store, config)
    offers_out(store, config, modem)
    _, won = receive(store, engine, SECOND, "yes!", modem)
    assert won.action == "answer" and won.answer_outcome == OFFER_OUTCOME
    _, late = receive(store, engine, FIRST, "Yes", modem)
    assert late.action == "answer"
    booked = store.appointments.by_external_id("waitlist-1")
    assert booked is not None and booked.number == SECOND and booked.status == "confirmed"
    assert (booked.start, booked.provider, booked.location, booked.duration_minutes, booked.appointment_type,
            booked.source) == (VISIT, "Dr. Rivera", "Main St", 30, "Cleaning", "waitlist")
    assert store.waitlist.waiting(SECOND) is None and store.waitlist.waiting(FIRST) is not None
    assert messages_to(store, SECOND)[-1]["body"] == "You have the slot: Tue 10:30 with Dr. Rivera. See you then!"
    assert messages_to(store, FIRST)[-1]["body"] == "That slot has been taken, you stay on the waitlist."
    (hook,) = store.query("SELECT * FROM webhook_deliveries")
    body = json.loads(hook["payload"])
    assert hook["url"] == HOOK and body["event"] == "appointment.waitlist_filled"
    assert body["data"]["appointment"] == "waitlist-1" and body["data"]["number"] == SECOND
    assert body["data"]["slot"] == {"cancelled_appointment": cancelled.external_id, "provider": "Dr. Rivera",
                                    "location": "Main St", "start": "2026-11-24T15:30:00.000000Z",
                                    "timezone": "America/New_York", "duration_minutes": 30, "type": "Cleaning"}


def test_the_winner_with_a_later_appointment_has_it_moved_into_the_slot(
        store: Store, config: Config, engine: RulesEngine, modem: int) -> None:
    service = AppointmentService(config)
    later = service.upsert(store, book_later(), source="ics:export.ics").result.appointment
    assert later is not None
    store.waitlist.add(FIRST, source="staff", actor="cli", appointment_id=later.id)
    book_and_cancel(store, config)
    offers_out(store, config, modem)
    receive(store, engine, FIRST, "YES", modem)
    moved = store.appointments.get(later.id)
    assert moved.start == VISIT and moved.status == "confirmed" and moved.source == "waitlist"
    assert "rescheduled" in [e.kind for e in store.appointments.events(later.id)]
    assert store.appointments.by_external_id("waitlist-1") is None


def book_later():  # type: ignore[no-untyped-def]
    from waitlist_support import visit

    return visit(external_id="EHR-90", number=FIRST, start=VISIT + timedelta(days=14), patient_name="Ann Lee")


def test_a_yes_after_the_offer_expired_is_told_so_and_the_patient_stays_on_the_list(
        store: Store, config: Config, engine: RulesEngine, modem: int, clock: FakeClock) -> None:
    store.waitlist.add(FIRST, source="staff", actor="cli")
    book_and_cancel(store, config)
    offers_out(store, config, modem)
    clock.advance(2 * 3600 + 60)
    expired = offer_freed_slots(store, config).expired
    assert len(expired) == 1
    receive(store, engine, FIRST, "yes", modem)
    assert messages_to(store, FIRST)[-1]["body"] == "That offer has expired, you stay on the waitlist."
    assert store.waitlist.waiting(FIRST) is not None and store.appointments.by_external_id("waitlist-1") is None


def test_offers_still_in_the_outbox_are_withdrawn_when_the_slot_is_taken(
        store: Store, config: Config, engine: RulesEngine, modem: int) -> None:
    store.waitlist.add(FIRST, source="staff", actor="cli")
    store.waitlist.add(SECOND, source="staff", actor="cli")
    book_and_cancel(store, config)
    offer_freed_slots(store, config)
    first_offer, second_offer = (messages_to(store, n)[0] for n in (FIRST, SECOND))
    claims = store.outbox.claim("test-worker", modem, limit=1)  # only the first offer has gone out
    assert [c.message.id for c in claims] == [first_offer["id"]]
    for p in claims[0].pending_parts:
        store.outbox.mark_submitting(claims[0], p.part_no)
        store.outbox.mark_part_submitted(claims[0], p.part_no, tp_mr=1)
    receive(store, engine, FIRST, "YES", modem)
    assert store.outbox.get(second_offer["id"]).state == State.CANCELLED


def test_an_answer_to_another_message_is_not_the_waitlists(store: Store, config: Config, engine: RulesEngine,
                                                            modem: int) -> None:
    res = store.outbox.enqueue(FIRST, "Reply YES to confirm", expect={"YES": "confirmed"},
                               follow_up={"YES": "Thanks, see you!"})
    send_all(store, config, modem)
    assert handle_answer(store, config, res.id, "confirmed", store.clock()) is False
    _, out = receive(store, engine, FIRST, "yes", modem)
    assert out.answer_outcome == "confirmed" and messages_to(store, FIRST)[-1]["body"] == "Thanks, see you!"


def test_the_daemons_rules_engine_hands_offer_answers_to_the_waitlist(store: Store, config: Config,
                                                                       modem: int) -> None:
    store.waitlist.add(FIRST, source="staff", actor="cli")
    book_and_cancel(store, config)
    offers_out(store, config, modem)
    with store.transaction():
        inbound, _ = store.inbox.store(modem_id=modem, sender=FIRST, body="YES", dedupe_key="daemon-1")
        default_on_inbound(config)(store, inbound)
    assert store.waitlist.waiting(FIRST) is None and store.appointments.by_external_id("waitlist-1") is not None


def test_two_yes_at_the_same_moment_through_the_engine_book_the_slot_once(
        db_path: Path, store: Store, config: Config, modem: int, clock: FakeClock) -> None:
    store.waitlist.add(FIRST, source="staff", actor="cli")
    store.waitlist.add(SECOND, source="staff", actor="cli")
    book_and_cancel(store, config)
    offers_out(store, config, modem)
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def answer(number: str) -> None:
        try:
            with Store.open(db_path, clock=clock) as own:
                engine = RulesEngine(config, on_answer=lambda s, m, o, n: handle_answer(s, config, m, o, n))
                barrier.wait(timeout=10)
                receive(own, engine, number, "YES", modem)
        except BaseException as exc:  # handed to the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=answer, args=(n,)) for n in (FIRST, SECOND)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    states = sorted(o["state"] for o in store.query("SELECT state FROM waitlist_offers"))
    assert states == ["taken", "won"]
    assert len(store.query("SELECT * FROM appointments WHERE source = 'waitlist'")) == 1
    assert len(store.query("SELECT * FROM webhook_deliveries")) == 1
    last = sorted(messages_to(store, n)[-1]["body"] for n in (FIRST, SECOND))
    assert last == ["That slot has been taken, you stay on the waitlist.",
                    "You have the slot: Tue 10:30 with Dr. Rivera. See you then!"]


def test_waitlist_settings_out_of_range_stop_smsgate_with_the_key_named() -> None:
    from smsgate.config import ConfigError

    with pytest.raises(ConfigError, match=r"waitlist\.offer_to = 0 is out of range"):
        waitlist_config(offer_to=0)
    with pytest.raises(ConfigError, match=r"waitlist\.offer_hours"):
        waitlist_config(offer_hours=0)
