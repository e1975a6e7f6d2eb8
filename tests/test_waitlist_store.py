"""`store.waitlist` on a real SQLite file: entries, matching a freed slot, and the first YES winning, also
when two processes' stores answer at the same moment."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import FakeClock
from waitlist_support import FIRST, SECOND, THIRD, VISIT

from smsgate.queue import Store
from smsgate.queue.waitlist import Slot, WaitlistError


def slot(store: Store, *, provider: str | None = "Dr. Rivera", location: str | None = "Main St",
         start: datetime = VISIT, hours: float = 2) -> Slot:
    """A freed slot as a cancellation leaves it (the event and appointment rows it points at exist)."""
    from smsgate.queue.appointments import AppointmentInput

    done = store.appointments.upsert(AppointmentInput(
        external_id=f"X-{start.isoformat()}-{provider}-{location}", number="+12125550142", start=start,
        timezone="America/New_York", provider=provider, location=location), source="test")
    assert done.appointment_id is not None
    event = store.appointments.events(done.appointment_id)[-1]
    return store.waitlist.open_slot(event_id=event.id, appointment_id=done.appointment_id, provider=provider,
                                    location=location, appointment_type=None, start=start,
                                    timezone="America/New_York", duration_minutes=30,
                                    expires_at=store.clock() + timedelta(hours=hours))


def test_a_patient_waits_once_and_a_second_entry_is_refused_naming_the_first(store: Store) -> None:
    entry = store.waitlist.add("+1 (212) 555-0161", source="staff", actor="cli", provider="Dr. Rivera")
    assert entry.number == FIRST and entry.state == "waiting" and entry.provider == "Dr. Rivera"
    with pytest.raises(WaitlistError, match=rf"already on the waitlist \(entry #{entry.id}\)"):
        store.waitlist.add(FIRST, source="sms", actor="rules")
    store.waitlist.remove(entry.id, actor="cli")
    assert store.waitlist.add(FIRST, source="sms", actor="rules").id != entry.id


def test_a_window_that_ends_before_it_starts_and_a_bad_number_are_refused_and_nothing_is_stored(
        store: Store) -> None:
    with pytest.raises(WaitlistError, match=r"ends .* before it starts"):
        store.waitlist.add(FIRST, source="api", actor="api", earliest=VISIT, latest=VISIT - timedelta(days=1))
    with pytest.raises(WaitlistError, match="number"):
        store.waitlist.add("call me", source="api", actor="api")
    with pytest.raises(WaitlistError, match="no appointment #99"):
        store.waitlist.add(FIRST, source="api", actor="api", appointment_id=99)
    assert store.waitlist.entries(states=("waiting", "filled", "removed")) == []


def test_a_slot_matches_the_provider_place_and_window_asked_for_first_come_first(store: Store) -> None:
    anyone = store.waitlist.add(FIRST, source="staff", actor="cli")
    store.waitlist.add(SECOND, source="staff", actor="cli", provider="Dr. Chen")
    in_window = store.waitlist.add(THIRD, source="staff", actor="cli", provider="dr. rivera", location="MAIN ST",
                                   earliest=VISIT - timedelta(hours=1), latest=VISIT + timedelta(hours=1))
    store.waitlist.add("+12125550164", source="staff", actor="cli", latest=VISIT - timedelta(days=1))
    found = store.waitlist.matching(slot(store), exclude_contact=None, limit=10)
    assert [e.id for e in found] == [anyone.id, in_window.id]
    assert [e.id for e in store.waitlist.matching(slot(store), exclude_contact=anyone.contact_id, limit=1)] == \
        [in_window.id]


def test_the_first_yes_wins_and_a_later_one_is_told_the_slot_is_taken(store: Store) -> None:
    a = store.waitlist.add(FIRST, source="staff", actor="cli")
    b = store.waitlist.add(SECOND, source="staff", actor="cli")
    s = slot(store)
    offer_a = store.waitlist.record_offer(s.id, a.id, message_id=None)
    offer_b = store.waitlist.record_offer(s.id, b.id, message_id=None)
    assert store.waitlist.take(offer_b.id, store.clock()) == "won"
    assert store.waitlist.take(offer_a.id, store.clock()) == "taken"
    assert store.waitlist.slot(s.id).filled_offer_id == offer_b.id
    assert store.waitlist.get(b.id).state == "filled" and store.waitlist.get(a.id).state == "waiting"


def test_a_yes_after_the_offer_expired_does_not_fill_the_slot(store: Store, clock: FakeClock) -> None:
    a = store.waitlist.add(FIRST, source="staff", actor="cli")
    s = slot(store, hours=2)
    offer = store.waitlist.record_offer(s.id, a.id, message_id=None)
    clock.advance(2 * 3600)
    assert store.waitlist.take(offer.id, clock()) == "expired"
    assert store.waitlist.slot(s.id).state == "open" and store.waitlist.get(a.id).state == "waiting"


def test_two_yes_at_the_same_moment_through_two_stores_have_exactly_one_winner(
        db_path: Path, store: Store, clock: FakeClock) -> None:
    def answer(offer_id: int, barrier: threading.Barrier, results: dict[int, str]) -> None:
        with Store.open(db_path, clock=clock) as own:
            barrier.wait(timeout=10)
            results[offer_id] = own.waitlist.take(offer_id, clock())

    for i in range(20):  # twenty slots, each raced for by two patients on two connections
        for number in (FIRST, SECOND):
            waiting = store.waitlist.waiting(number)
            if waiting is not None:
                store.waitlist.remove(waiting.id, actor="test")
        a = store.waitlist.add(FIRST, source="staff", actor="cli")
        b = store.waitlist.add(SECOND, source="staff", actor="cli")
        s = slot(store, start=VISIT + timedelta(minutes=i))
        offers = [store.waitlist.record_offer(s.id, e.id, message_id=None).id for e in (a, b)]
        barrier = threading.Barrier(2)
        results: dict[int, str] = {}
        threads = [threading.Thread(target=answer, args=(o, barrier, results)) for o in offers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(results.values()) == ["taken", "won"]
        winner = next(o for o, r in results.items() if r == "won")
        assert store.waitlist.slot(s.id).filled_offer_id == winner
        assert [e.state for e in (store.waitlist.get(a.id), store.waitlist.get(b.id))].count("filled") == 1
