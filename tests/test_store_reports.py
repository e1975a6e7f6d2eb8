"""Status reports matched by (modem, TP-MR, recipient, window); late reports never undo a newer state."""

from __future__ import annotations

from smsgate.queue import PartState, State, Store
from smsgate.queue.records import Claim

A = "+12025550123"
LONG = "Your lab results are in. " * 12


def send(store: Store, claim: Claim, first_mr: int) -> None:
    for n, p in enumerate(claim.pending_parts):
        store.outbox.mark_submitting(claim, p.part_no)
        store.outbox.mark_part_submitted(claim, p.part_no, tp_mr=(first_mr + n) % 256)


def report(store: Store, modem: int, mr: int, outcome: str, key: str, recipient: str = A):
    return store.reports.record(modem_id=modem, tp_mr=mr, recipient=recipient, status_code=0,
                                outcome=outcome, dedupe_key=key)


def test_multipart_message_is_delivered_only_when_every_part_is(store: Store) -> None:
    m = store.modems.upsert("m1", state="ready")
    mid = store.outbox.enqueue(A, LONG).id
    (c,) = store.outbox.claim("w", m)
    send(store, c, 254)
    msg = store.outbox.get(mid)
    assert [p.tp_mr for p in msg.parts] == [254, 255, 0][: msg.parts_total]
    for p in msg.parts[:-1]:
        assert report(store, m, p.tp_mr, "delivered", f"r{p.part_no}").new_state is None  # type: ignore[arg-type]
    last = msg.parts[-1]
    assert report(store, m, last.tp_mr, "delivered", "rlast").new_state == "delivered"  # type: ignore[arg-type]
    assert store.outbox.get(mid).state == State.DELIVERED


def test_report_matches_newest_part_with_that_tp_mr_across_wraparound(store: Store, clock) -> None:
    m = store.modems.upsert("m1", state="ready")
    old = store.outbox.enqueue(A, "first").id
    (c,) = store.outbox.claim("w", m)
    send(store, c, 9)
    clock.advance(600)
    new = store.outbox.enqueue(A, "second").id
    (c,) = store.outbox.claim("w", m)
    send(store, c, 9)  # the TP-MR came round again
    match = report(store, m, 9, "delivered", "r")
    assert match.message_id == new
    assert store.outbox.get(old).state == State.SUBMITTED


def test_report_from_another_modem_or_recipient_does_not_match(store: Store) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    m2 = store.modems.upsert("m2", state="ready")
    store.outbox.enqueue(A, "hi")
    (c,) = store.outbox.claim("w", m1)
    send(store, c, 5)
    assert report(store, m2, 5, "delivered", "x").message_id is None
    assert report(store, m1, 5, "delivered", "y", recipient="+12025550199").message_id is None
    assert len(store.reports.unmatched()) == 2


def test_report_arriving_before_its_tp_mr_is_kept_and_matched_later(store: Store) -> None:
    m = store.modems.upsert("m1", state="ready")
    mid = store.outbox.enqueue(A, "hi").id
    (c,) = store.outbox.claim("w", m)
    store.outbox.mark_submitting(c, 1)
    early = report(store, m, 77, "delivered", "early")
    assert early.message_id is None
    store.outbox.mark_part_submitted(c, 1, tp_mr=77)
    assert store.reports.rematch() == 1
    assert store.outbox.get(mid).state == State.DELIVERED
    assert store.reports.unmatched() == []


def test_old_unmatched_report_is_not_matched_to_a_much_later_send(store: Store, clock) -> None:
    m = store.modems.upsert("m1", state="ready")
    report(store, m, 12, "failed", "stale")
    clock.advance(3 * 3600)
    mid = store.outbox.enqueue(A, "hi").id
    (c,) = store.outbox.claim("w", m)
    send(store, c, 12)
    assert store.reports.rematch() == 0
    assert store.outbox.get(mid).state == State.SUBMITTED


def test_late_failure_report_cannot_undo_delivered(store: Store) -> None:
    m = store.modems.upsert("m1", state="ready")
    mid = store.outbox.enqueue(A, "hi").id
    (c,) = store.outbox.claim("w", m)
    send(store, c, 3)
    report(store, m, 3, "delivered", "ok")
    report(store, m, 3, "failed", "late")
    msg = store.outbox.get(mid)
    assert msg.state == State.DELIVERED and msg.parts[0].state == PartState.DELIVERED


def test_same_report_twice_is_stored_once(store: Store) -> None:
    m = store.modems.upsert("m1", state="ready")
    store.outbox.enqueue(A, "hi")
    (c,) = store.outbox.claim("w", m)
    send(store, c, 3)
    first = report(store, m, 3, "delivered", "dup")
    again = report(store, m, 3, "delivered", "dup")
    assert again.report_id == first.report_id
    assert store.query("SELECT COUNT(*) AS n FROM status_reports")[0]["n"] == 1


def test_failed_report_makes_the_message_undeliverable(store: Store) -> None:
    m = store.modems.upsert("m1", state="ready")
    mid = store.outbox.enqueue(A, "hi").id
    (c,) = store.outbox.claim("w", m)
    send(store, c, 4)
    assert report(store, m, 4, "failed", "f").new_state == "undeliverable"
    assert store.outbox.get(mid).state == State.UNDELIVERABLE
