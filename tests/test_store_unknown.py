"""What becomes of an `unknown` message without a person: settled by the network's answer (a status report from
the modem that sent it, for its number, received after its last attempt started, whose TP-MR we never
learnt), re-sent when it is a STOP/START/HELP confirmation nobody can show arrived, or re-sent under
`sending.resend_unknown`. Only what none of these resolves waits for a person, and the reason is recorded."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import FakeClock

from smsgate.queue import Kind, PartState, State, Store
from smsgate.queue.clock import ts
from smsgate.queue.outbox import AUTOMATIC_RESEND, COMPLIANCE_RESEND

A = "+12025550123"
B = "+12025550124"
LONG = "Your lab results are in. " * 16  # three parts


def killed_mid_send(store: Store, clock: FakeClock, modem: int, to: str = A, text: str = "reminder",
                    *, sent_parts: int = 0) -> int:
    """A message whose part `sent_parts + 1` was being written when the daemon died (lease expired)."""
    mid = store.outbox.enqueue(to, text).id
    (claim,) = store.outbox.claim(f"host:1:{modem}", modem)
    for n in range(1, sent_parts + 1):
        store.outbox.mark_submitting(claim, n)
        store.outbox.mark_part_submitted(claim, n, tp_mr=40 + n)
    store.outbox.mark_submitting(claim, sent_parts + 1)
    clock.advance(200)  # past the lease: the sender is gone
    assert store.outbox.expire_leases()["unknown"] == 1
    assert store.outbox.get(mid).state == State.UNKNOWN
    return mid


def report(store: Store, clock: FakeClock, modem: int, mr: int, outcome: str = "delivered", *,
           to: str = A, known: bool = False, stamped: datetime | None = None) -> int:
    clock.advance(5)
    match = store.reports.record(modem_id=modem, tp_mr=mr, recipient=to, status_code=0, outcome=outcome,
                                 dedupe_key=f"{modem}-{mr}-{outcome}-{clock().timestamp()}",
                                 sc_timestamp=ts(stamped or clock()), discharge_time=ts(clock()))
    assert (match.message_id is not None) == known  # a TP-MR nobody knows stays unmatched
    return match.report_id


def history(store: Store, mid: int, action: str) -> list[dict[str, Any]]:
    return [e["detail"] for e in store.outbox.history(mid) if e["action"] == action]


@pytest.mark.parametrize(("outcome", "state"), [("delivered", State.DELIVERED), ("failed", State.UNDELIVERABLE),
                                                ("pending", State.SUBMITTED)])
def test_an_unknown_message_with_one_matching_report_is_settled_and_the_evidence_recorded(
        store: Store, clock: FakeClock, outcome: str, state: State) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    mid = killed_mid_send(store, clock, m1)
    rid = report(store, clock, m1, 77, outcome)
    assert store.reports.settle_unknown() == {"settled": 1, "ambiguous": 0}
    msg = store.outbox.get(mid)
    assert msg.state == state and msg.parts[0].tp_mr == 77 and msg.error_class is None
    (evidence,) = history(store, mid, "message.submitted")
    assert evidence["report_ids"] == [rid] and evidence["tp_mr"] == 77 and evidence["modem_id"] == m1
    rep = store.query("SELECT * FROM status_reports WHERE id = ?", (rid,))[0]
    assert evidence["sc_timestamp"] == rep["sc_timestamp"] and evidence["discharge_time"] == rep["discharge_time"]
    assert (rep["message_id"], rep["part_no"]) == (mid, 1)
    assert store.modems.get(m1)["sent_count"] == 1


def test_a_pending_then_a_delivered_report_with_one_reference_are_one_send(store: Store, clock: FakeClock) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    mid = killed_mid_send(store, clock, m1)
    first = report(store, clock, m1, 77, "pending")
    second = report(store, clock, m1, 77, "delivered")
    assert store.reports.settle_unknown()["settled"] == 1
    assert store.outbox.get(mid).state == State.DELIVERED
    assert history(store, mid, "message.submitted")[0]["report_ids"] == [first, second]


def test_reports_from_before_the_attempt_another_modem_or_another_number_are_no_evidence(
        store: Store, clock: FakeClock) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    m2 = store.modems.upsert("m2", state="ready")
    report(store, clock, m1, 76)  # arrived before this message was ever handed to the modem
    mid = killed_mid_send(store, clock, m1)
    report(store, clock, m2, 77)
    report(store, clock, m1, 78, to=B)
    assert store.reports.settle_unknown() == {"settled": 0, "ambiguous": 0}
    assert store.outbox.get(mid).state == State.UNKNOWN
    assert len(store.reports.unmatched()) == 3


def test_a_report_the_service_centre_stamped_long_before_the_send_belongs_to_an_older_message(
        store: Store, clock: FakeClock) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    mid = killed_mid_send(store, clock, m1)
    report(store, clock, m1, 77, stamped=clock() - timedelta(hours=2))
    assert store.reports.settle_unknown() == {"settled": 0, "ambiguous": 0}
    assert store.outbox.get(mid).state == State.UNKNOWN


def test_two_unknown_messages_to_one_number_on_one_modem_are_left_for_a_person_with_the_reason(
        store: Store, clock: FakeClock) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    first = killed_mid_send(store, clock, m1, text="first")
    second = killed_mid_send(store, clock, m1, text="second")
    rid = report(store, clock, m1, 77)
    assert store.reports.settle_unknown() == {"settled": 0, "ambiguous": 2}
    for mid in (first, second):
        msg = store.outbox.get(mid)
        assert msg.state == State.UNKNOWN
        assert "2 unsure messages" in (msg.last_error or "") and "a person decides" in (msg.last_error or "")
        (note,) = history(store, mid, "evidence.ambiguous")
        assert note["report_ids"] == [rid] and sorted(note["messages"]) == [first, second]
    assert store.reports.settle_unknown() == {"settled": 0, "ambiguous": 2}
    assert len(history(store, first, "evidence.ambiguous")) == 1  # said once, not every round


def test_two_unknown_messages_to_one_number_are_told_apart_by_when_their_reports_came(
        store: Store, clock: FakeClock) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    first = killed_mid_send(store, clock, m1, text="first")
    report(store, clock, m1, 77)  # before "second" was handed to the modem: it cannot be second's
    second = killed_mid_send(store, clock, m1, text="second")
    report(store, clock, m1, 78)  # first's answer is known (77), so 78 can only be second's
    assert store.reports.settle_unknown() == {"settled": 2, "ambiguous": 0}
    assert [store.outbox.get(m).parts[0].tp_mr for m in (first, second)] == [77, 78]
    assert all(store.outbox.get(m).state == State.DELIVERED for m in (first, second))


def test_a_later_report_with_the_first_messages_reference_is_the_first_messages(
        store: Store, clock: FakeClock) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    first = killed_mid_send(store, clock, m1, text="first")
    report(store, clock, m1, 77, "pending")
    second = killed_mid_send(store, clock, m1, text="second")
    report(store, clock, m1, 77, "delivered")  # first's final report, not an answer for second
    assert store.reports.settle_unknown() == {"settled": 1, "ambiguous": 0}
    assert store.outbox.get(first).state == State.DELIVERED
    assert store.outbox.get(second).state == State.UNKNOWN and not history(store, second, "evidence.ambiguous")


def test_reports_with_different_references_after_one_unsure_send_are_left_for_a_person(
        store: Store, clock: FakeClock) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    mid = killed_mid_send(store, clock, m1)
    report(store, clock, m1, 77)
    report(store, clock, m1, 80)
    assert store.reports.settle_unknown() == {"settled": 0, "ambiguous": 1}
    msg = store.outbox.get(mid)
    assert msg.state == State.UNKNOWN and "TP-MR 77, 80" in (msg.last_error or "")
    assert history(store, mid, "evidence.ambiguous")[0]["tp_mrs"] == [77, 80]


def test_no_evidence_is_taken_while_another_send_to_that_number_from_that_modem_is_in_flight(
        store: Store, clock: FakeClock) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    mid = killed_mid_send(store, clock, m1)
    store.outbox.enqueue(A, "next one")
    (claim,) = store.outbox.claim("host:2:m1", m1)
    store.outbox.mark_submitting(claim, 1)
    report(store, clock, m1, 77)  # could be the report of the send in flight, come before its +CMGS answer
    assert store.reports.settle_unknown() == {"settled": 0, "ambiguous": 0}
    assert store.outbox.get(mid).state == State.UNKNOWN
    store.outbox.mark_part_submitted(claim, 1, tp_mr=78)
    assert store.reports.settle_unknown()["settled"] == 1
    assert store.outbox.get(mid).state == State.DELIVERED


def test_a_half_sent_message_whose_unsure_part_is_proven_sent_sends_the_rest_from_the_same_sim(
        store: Store, clock: FakeClock) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    m2 = store.modems.upsert("m2", state="ready")
    mid = killed_mid_send(store, clock, m1, text=LONG, sent_parts=1)
    report(store, clock, m1, 41, known=True)  # part 1's report matches by its TP-MR
    report(store, clock, m1, 77)  # part 2's: it went out
    assert store.reports.settle_unknown()["settled"] == 1
    msg = store.outbox.get(mid)
    assert msg.state == State.QUEUED
    assert [p.state for p in msg.parts] == [PartState.DELIVERED, PartState.DELIVERED, PartState.PENDING]
    assert store.outbox.claim("host:2:m2", m2) == []  # part 3 only from m1, where parts 1 and 2 came from
    (rest,) = store.outbox.claim("host:2:m1", m1)
    assert [p.part_no for p in rest.pending_parts] == [3]


# -- STOP/START/HELP confirmations: a duplicate is harmless, a missing one a compliance failure ---------------

def confirmation_killed_mid_send(store: Store, clock: FakeClock, modem: int) -> int:
    mid = store.outbox.enqueue(A, "Rivera Clinic: no more messages. Reply START to resubscribe.", kind=Kind.COMPLIANCE,
                               source="rules", created_by="rules").id
    (claim,) = store.outbox.claim(f"host:1:{modem}", modem)
    store.outbox.mark_submitting(claim, 1)
    clock.advance(200)
    store.outbox.expire_leases()
    return mid


def test_a_confirmation_left_unknown_without_evidence_is_resent_once_after_the_window(
        store: Store, clock: FakeClock) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    mid = confirmation_killed_mid_send(store, clock, m1)
    assert store.outbox.resend_unconfirmed(after_s=600, actor="modemd") == []  # the network may still answer
    clock.advance(601)
    assert store.outbox.resend_unconfirmed(after_s=600, actor="modemd") == [mid]
    assert store.outbox.get(mid).state == State.QUEUED
    (entry,) = [e for e in store.outbox.history(mid) if e["action"] == "message.queued" and e["actor"] == "modemd"]
    assert entry["detail"]["reason"] == COMPLIANCE_RESEND
    # Caught mid-send again: once is the limit, counted in the file, so a crash-looping daemon stops.
    (claim,) = store.outbox.claim("host:2:m1", m1)
    store.outbox.mark_submitting(claim, 1)
    clock.advance(200)
    store.outbox.expire_leases()
    clock.advance(601)
    assert store.outbox.resend_unconfirmed(after_s=600, actor="modemd") == []
    msg = store.outbox.get(mid)
    assert msg.state == State.UNKNOWN and "a person decides" in (msg.last_error or "")


def test_a_confirmation_the_network_answered_for_is_not_resent(store: Store, clock: FakeClock) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    mid = confirmation_killed_mid_send(store, clock, m1)
    report(store, clock, m1, 12)
    store.reports.settle_unknown()
    clock.advance(601)
    assert store.outbox.resend_unconfirmed(after_s=600, actor="modemd") == []
    assert store.outbox.get(mid).state == State.DELIVERED


def test_only_confirmations_are_resent_without_resend_unknown(store: Store, clock: FakeClock) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    reminder = killed_mid_send(store, clock, m1)
    clock.advance(601)
    assert store.outbox.resend_unconfirmed(after_s=600, actor="modemd") == []
    assert store.outbox.get(reminder).state == State.UNKNOWN


# -- sending.resend_unknown covers a message caught mid-send by a stop or a crash too --------------------------

def test_resend_unknown_puts_back_a_message_caught_mid_send_at_most_its_limit(store: Store, clock: FakeClock) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    mid = store.outbox.enqueue(A, "reminder").id
    for _ in range(2):
        (claim,) = store.outbox.claim("host:1:m1", m1)
        store.outbox.mark_submitting(claim, 1)
        clock.advance(200)
        assert store.outbox.expire_leases(resend_limit=2) == {"requeued": 0, "unknown": 1, "resent": 1}
        assert store.outbox.get(mid).state == State.QUEUED
    (claim,) = store.outbox.claim("host:1:m1", m1)
    store.outbox.mark_submitting(claim, 1)
    clock.advance(200)
    assert store.outbox.expire_leases(resend_limit=2) == {"requeued": 0, "unknown": 1, "resent": 0}
    assert store.outbox.get(mid).state == State.UNKNOWN  # at the limit: a person decides
    reasons = [e["detail"].get("reason") for e in store.outbox.history(mid) if e["action"] == "message.queued"][1:]
    assert reasons == [AUTOMATIC_RESEND, AUTOMATIC_RESEND]
