"""The outbound queue on a real SQLite file: enqueue, idempotency, priorities, leases and the state machine."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smsgate.queue import IllegalTransition, Kind, LeaseLost, MessageRejected, PartState, SendPolicy, State, Store

A = "+12025550123"
B = "+12025550124"
LONG = "Reminder from the clinic: " + "please bring your insurance card and a list of medicines. " * 4


def count(store: Store, table: str) -> int:
    return store.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"]


def test_enqueue_stores_normalised_number_and_one_pending_part_per_segment(store: Store) -> None:
    r = store.outbox.enqueue("+1 (202) 555-0123", LONG)
    msg = store.outbox.get(r.id)
    assert r.created and msg.state == State.QUEUED
    assert msg.to_number == A
    assert r.parts == msg.parts_total == len(msg.parts) >= 2
    assert all(p.state == PartState.PENDING for p in msg.parts)
    assert [h["action"] for h in store.outbox.history(r.id)] == ["message.queued"]


def test_same_idempotency_key_yields_the_first_message(store: Store) -> None:
    first = store.outbox.enqueue(A, "Your results are ready", idempotency_key="appt-42")
    again = store.outbox.enqueue(A, "Your results are ready", idempotency_key="appt-42")
    assert again.id == first.id and first.created and not again.created
    assert count(store, "messages") == 1


def test_same_idempotency_key_with_other_text_is_refused_clearly(store: Store) -> None:
    store.outbox.enqueue(A, "Your results are ready", idempotency_key="appt-42")
    with pytest.raises(MessageRejected, match=r"appt-42.*different text.*new key"):
        store.outbox.enqueue(A, "Something else", idempotency_key="appt-42")
    assert count(store, "messages") == 1


@pytest.mark.parametrize(
    ("number", "why"),
    [
        ("", "empty"),
        ("hello", "letters"),
        ("5550123", "country code"),
        ("+1202", "too short|wrong number of digits"),
        ("+999123456789", "country code"),
        ("+12025550123456789", "too long|wrong number of digits"),
    ],
)
def test_invalid_number_is_refused_with_reason_and_nothing_stored(store: Store, number: str, why: str) -> None:
    with pytest.raises(MessageRejected, match=why) as err:
        store.outbox.enqueue(number, "hello")
    assert "international form" in str(err.value)
    assert count(store, "messages") == 0 and count(store, "message_parts") == 0


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_text_is_refused(store: Store, text: str) -> None:
    with pytest.raises(MessageRejected, match="empty"):
        store.outbox.enqueue(A, text)
    assert count(store, "messages") == 0


def test_over_long_text_is_refused_with_part_count_and_nothing_stored(store: Store) -> None:
    with pytest.raises(MessageRejected, match=r"needs \d+ SMS parts .*at most 2"):
        store.outbox.enqueue(A, "x" * 1000, policy=SendPolicy(max_parts=2))
    with pytest.raises(MessageRejected, match="ucs2"):
        store.outbox.enqueue(A, "é€😀" * 100, policy=SendPolicy(max_parts=3))
    assert count(store, "messages") == 0 and count(store, "message_parts") == 0


@pytest.mark.parametrize(("text", "why"), [("a\x00b", r"NUL character \(U\+0000\) at character 2"),
                                         ("name\tdate", r"tab \(U\+0009\) at character 5"),
                                         ("half \ud83d emoji", r"lone UTF-16 surrogate \(U\+D83D\)")])
def test_text_with_a_control_character_or_lone_surrogate_is_refused_and_nothing_stored(store: Store, text: str,
                                                                                        why: str) -> None:
    with pytest.raises(MessageRejected, match=why):
        store.outbox.enqueue(A, text)
    with pytest.raises(MessageRejected, match="row 2: .*" + why):
        store.outbox.enqueue_many([{"to": A, "text": "fine"}, {"to": B, "text": text}])
    with pytest.raises(MessageRejected, match="follow-up 'YES': .*" + why):
        store.outbox.enqueue(A, "Reply YES", expect={"YES": "confirmed"}, follow_up={"YES": text})
    assert count(store, "messages") == 0 and count(store, "contacts") == 0


def test_line_breaks_are_kept_in_a_text(store: Store) -> None:
    msg = store.outbox.get(store.outbox.enqueue(A, "Dr Rivera\r\nTomorrow 3:15 PM\nReply YES").id)
    assert msg.body == "Dr Rivera\r\nTomorrow 3:15 PM\nReply YES" and msg.encoding == "gsm7"


def test_bulk_enqueue_is_all_or_nothing_and_names_the_bad_row(store: Store) -> None:
    rows = [{"to": A, "text": "Flu shots this week"}, {"to": "not-a-number", "text": "x"}]
    with pytest.raises(MessageRejected, match="row 2"):
        store.outbox.enqueue_many(rows)
    assert count(store, "messages") == 0
    ids = store.outbox.enqueue_many([{"to": A, "text": "Flu shots"}, {"to": B, "text": LONG}], campaign="flu")
    assert len(ids) == 2
    assert [store.outbox.get(i).parts_total for i in ids] == [1, len(store.outbox.get(ids[1]).parts)]
    assert store.outbox.get(ids[0]).kind == Kind.BULK


def test_bulk_enqueue_respects_idempotency_keys(store: Store) -> None:
    first = store.outbox.enqueue_many([{"to": A, "text": "Flu shots", "idempotency_key": "k1"}])
    again = store.outbox.enqueue_many([{"to": A, "text": "Flu shots", "idempotency_key": "k1"},
                                      {"to": B, "text": "Flu shots", "idempotency_key": "k2"}])
    assert again[0] == first[0] and count(store, "messages") == 2
    with pytest.raises(MessageRejected, match="k1"):
        store.outbox.enqueue_many([{"to": B, "text": "other", "idempotency_key": "k1"}])
    assert count(store, "messages") == 2


def test_replies_go_before_transactional_before_bulk(store: Store) -> None:
    bulk = store.outbox.enqueue(A, "campaign", kind=Kind.BULK).id
    trans = store.outbox.enqueue(A, "reminder", kind=Kind.TRANSACTIONAL).id
    reply = store.outbox.enqueue(A, "answer", kind=Kind.REPLY).id
    order = [c.message.id for c in store.outbox.claim("w", None, limit=3)]
    assert order == [reply, trans, bulk]


def test_not_before_holds_a_message_until_its_time(store: Store, clock) -> None:
    store.outbox.enqueue(A, "later", not_before=clock() + timedelta(hours=1))
    assert store.outbox.claim("w", None) == []
    assert store.outbox.next_due() == clock() + timedelta(hours=1)
    clock.advance(3601)
    assert len(store.outbox.claim("w", None)) == 1


def test_sticky_sender_waits_for_its_ready_modem_and_fails_over_when_it_is_down(store: Store) -> None:
    m1 = store.modems.upsert("front-desk", state="ready")
    m2 = store.modems.upsert("back-office", state="ready")
    mid = store.outbox.enqueue(A, "hi", preferred_modem_id=m1).id
    assert store.outbox.claim("w2", m2) == []
    store.modems.update(m1, state="no_signal")
    (claim,) = store.outbox.claim("w2", m2)
    assert claim.message.id == mid and claim.message.modem_id == m2
    assert claim.message.failover_from == m1
    assert store.outbox.history(mid)[-1]["detail"]["failover_from"] == m1


def test_required_modem_is_never_used_by_another(store: Store) -> None:
    m1 = store.modems.upsert("front-desk", state="offline")
    m2 = store.modems.upsert("back-office", state="ready")
    store.outbox.enqueue(A, "hi", required_modem_id=m1)
    assert store.outbox.claim("w2", m2) == []
    assert len(store.outbox.claim("w1", m1)) == 1


def test_sticky_sender_comes_from_the_modem_the_patient_last_texted(store: Store) -> None:
    m1 = store.modems.upsert("front-desk", state="ready")
    store.inbox.store(modem_id=m1, sender=A, body="hello?", dedupe_key="in-1")
    msg = store.outbox.get(store.outbox.enqueue(A, "answer", kind=Kind.REPLY).id)
    assert msg.preferred_modem_id == m1


def test_full_send_path_reaches_delivered_and_never_goes_back(store: Store) -> None:
    m1 = store.modems.upsert("front-desk", state="ready")
    mid = store.outbox.enqueue(A, "hi").id
    (claim,) = store.outbox.claim("w", m1)
    store.outbox.mark_submitting(claim, 1)
    assert store.outbox.get(mid).state == State.SUBMITTING
    assert store.outbox.mark_part_submitted(claim, 1, tp_mr=7) is True
    store.reports.record(modem_id=m1, tp_mr=7, recipient=A, status_code=0, outcome="delivered",
                         dedupe_key="r1")
    assert store.outbox.get(mid).state == State.DELIVERED
    with pytest.raises(IllegalTransition):
        store.outbox.transition(mid, State.DELIVERED, State.SUBMITTED, "test")
    with pytest.raises(IllegalTransition, match="delivered to queued"):
        store.outbox.resend(mid, "staff")
    with pytest.raises(IllegalTransition):
        store.outbox.cancel(mid, "staff")
    actions = [h["action"] for h in store.outbox.history(mid)]
    assert actions == ["message.queued", "message.claimed", "message.submitting", "message.submitted",
                       "message.delivered"]
    assert store.modems.get(m1)["sent_count"] == 1


def test_transition_from_a_stale_state_is_refused(store: Store) -> None:
    mid = store.outbox.enqueue(A, "hi").id
    store.outbox.claim("w", None)
    with pytest.raises(IllegalTransition, match="claimed to cancelled"):
        store.outbox.transition(mid, State.QUEUED, State.CANCELLED, "late-writer")
    assert store.outbox.get(mid).state == State.CLAIMED


def test_expired_lease_returns_the_message_to_the_queue(store: Store, clock) -> None:
    mid = store.outbox.enqueue(A, "hi").id
    (claim,) = store.outbox.claim("w1", None, lease_seconds=30)
    assert store.outbox.expire_leases() == {"requeued": 0, "unknown": 0, "resent": 0}
    clock.advance(31)
    assert store.outbox.expire_leases() == {"requeued": 1, "unknown": 0, "resent": 0}
    msg = store.outbox.get(mid)
    assert msg.state == State.QUEUED and msg.lease_owner is None and msg.attempts == 0
    (again,) = store.outbox.claim("w2", None)
    assert again.message.id == mid
    with pytest.raises(LeaseLost):
        store.outbox.mark_submitting(claim, 1)
    store.outbox.mark_submitting(again, 1)


def test_dead_owner_lease_is_reclaimed_before_expiry(store: Store) -> None:
    store.outbox.enqueue(A, "hi")
    store.outbox.claim("pid-123", None, lease_seconds=300)
    assert store.outbox.expire_leases(owner_is_dead=lambda owner: owner == "pid-123")["requeued"] == 1


def test_message_caught_submitting_when_lease_expires_becomes_unknown_not_requeued(store: Store, clock) -> None:
    mid = store.outbox.enqueue(A, "hi").id
    (claim,) = store.outbox.claim("w1", None, lease_seconds=30)
    store.outbox.mark_submitting(claim, 1)
    clock.advance(31)
    assert store.outbox.expire_leases() == {"requeued": 0, "unknown": 1, "resent": 0}
    msg = store.outbox.get(mid)
    assert msg.state == State.UNKNOWN and msg.parts[0].state == PartState.UNKNOWN
    assert "may have gone" in (msg.last_error or "")
    assert store.outbox.claim("w2", None) == []
    store.outbox.resend(mid, "staff")
    assert store.outbox.get(mid).state == State.QUEUED
    with pytest.raises(LeaseLost):  # staff decided meanwhile: the old sender's late answer is refused
        store.outbox.mark_part_submitted(claim, 1, tp_mr=3)


def test_late_tp_mr_from_the_expired_sender_settles_an_unknown_message(store: Store, clock) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    mid = store.outbox.enqueue(A, "hi").id
    (claim,) = store.outbox.claim("w1", m1, lease_seconds=30)
    store.outbox.mark_submitting(claim, 1)
    clock.advance(31)
    store.outbox.expire_leases()
    assert store.outbox.mark_part_submitted(claim, 1, tp_mr=3) is True
    msg = store.outbox.get(mid)
    assert msg.state == State.SUBMITTED and msg.parts[0].tp_mr == 3 and msg.parts[0].modem_id == m1
    impostor = type(claim)(claim.message, "someone-else", claim.lease_until)
    with pytest.raises(LeaseLost):
        store.outbox.mark_part_submitted(impostor, 1, tp_mr=4)


def test_renewed_lease_is_not_expired(store: Store, clock) -> None:
    store.outbox.enqueue(A, "hi")
    (claim,) = store.outbox.claim("w1", None, lease_seconds=30)
    clock.advance(20)
    claim = store.outbox.renew(claim, lease_seconds=30)
    clock.advance(20)
    assert store.outbox.expire_leases()["requeued"] == 0
    store.outbox.mark_submitting(claim, 1)


def test_retry_never_resends_a_part_the_network_accepted(store: Store, clock) -> None:
    mid = store.outbox.enqueue(A, LONG).id
    (claim,) = store.outbox.claim("w", None)
    store.outbox.mark_submitting(claim, 1)
    assert store.outbox.mark_part_submitted(claim, 1, tp_mr=10) is False
    store.outbox.mark_submitting(claim, 2)
    assert store.outbox.retry_later(claim, "CMS ERROR 38: network out of order", delay=60) is True
    msg = store.outbox.get(mid)
    assert msg.state == State.QUEUED and msg.attempts == 1
    assert [p.state for p in msg.parts][:2] == [PartState.SUBMITTED, PartState.PENDING]
    clock.advance(61)
    (claim2,) = store.outbox.claim("w", None)
    assert 1 not in [p.part_no for p in claim2.pending_parts]
    with pytest.raises(IllegalTransition):
        store.outbox.mark_submitting(claim2, 1)
    for p in claim2.pending_parts:
        store.outbox.mark_submitting(claim2, p.part_no)
        done = store.outbox.mark_part_submitted(claim2, p.part_no, tp_mr=10 + p.part_no)
    assert done and store.outbox.get(mid).state == State.SUBMITTED
    assert store.outbox.get(mid).parts[0].tp_mr == 10


def test_retry_gives_up_after_max_attempts_and_counts_against_the_modem(store: Store, clock) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    mid = store.outbox.enqueue(A, "hi", policy=SendPolicy(max_attempts=2)).id
    (c,) = store.outbox.claim("w", m1)
    assert store.outbox.retry_later(c, "busy", delay=0) is True
    (c,) = store.outbox.claim("w", m1)
    assert store.outbox.retry_later(c, "busy", delay=0) is False
    msg = store.outbox.get(mid)
    assert msg.state == State.FAILED and "gave up after 2 attempts" in (msg.last_error or "")
    assert msg.parts[0].state == PartState.FAILED
    assert store.modems.get(m1)["failed_count"] == 1


def test_ambiguous_error_marks_unknown_and_staff_decide(store: Store) -> None:
    mid = store.outbox.enqueue(A, "hi").id
    (c,) = store.outbox.claim("w", None)
    store.outbox.mark_submitting(c, 1)
    store.outbox.mark_unknown(c, 1, "timeout after the PDU was written")
    assert store.outbox.get(mid).state == State.UNKNOWN
    store.outbox.cancel(mid, "staff", "phoned the patient instead")
    msg = store.outbox.get(mid)
    assert msg.state == State.CANCELLED and msg.last_error == "phoned the patient instead"


def test_automatic_resends_are_counted_in_the_file_so_a_restarted_daemon_does_not_start_again(
        store: Store, db_path) -> None:
    mid = store.outbox.enqueue(A, "hi").id

    def ambiguous_send(s: Store) -> None:
        (c,) = s.outbox.claim("w", None)
        s.outbox.mark_submitting(c, 1)
        s.outbox.mark_unknown(c, 1, "timeout after the PDU was written")

    ambiguous_send(store)
    store.outbox.resend(mid, "staff")  # a person's decision is not an automatic resend
    for _ in range(2):
        ambiguous_send(store)
        assert store.outbox.resend_automatically(mid, "modemd:m1:resend_unknown", limit=2) is True
    ambiguous_send(store)
    with Store.open(db_path) as restarted:
        assert restarted.outbox.resend_automatically(mid, "modemd:m1:resend_unknown", limit=2) is False
        assert restarted.outbox.get(mid).state == State.UNKNOWN  # left for a person
        reasons = [e["detail"].get("reason") for e in restarted.outbox.history(mid) if e["action"] == "message.queued"]
        assert reasons.count("re-sent by staff") == 1 and len(reasons) == 4


def test_permanent_failure_and_modem_requeue(store: Store) -> None:
    m1 = store.modems.upsert("m1", state="ready")
    a = store.outbox.enqueue(A, "one").id
    b = store.outbox.enqueue(B, "two").id
    c1, c2 = store.outbox.claim("w", m1, limit=2)
    store.outbox.fail(c1, "CMS ERROR 28: unidentified subscriber", code=28)
    store.outbox.requeue(c2, "modem went away")
    assert store.outbox.get(a).state == State.FAILED
    assert store.outbox.get(a).parts[0].state == PartState.FAILED
    assert store.outbox.get(b).state == State.QUEUED and store.outbox.get(b).attempts == 0
    assert store.modems.get(m1)["failed_count"] == 1


def test_cancel_of_unknown_message_is_reported_as_not_found(store: Store) -> None:
    from smsgate.queue import NotFound

    with pytest.raises(NotFound, match="#999"):
        store.outbox.cancel(999, "staff")


def test_rest_of_a_half_sent_multipart_message_prefers_the_sim_that_sent_its_first_part(store: Store) -> None:
    first = store.modems.upsert("m1", state="ready")
    second = store.modems.upsert("m2", state="ready")
    result = store.outbox.enqueue("+12025550123", "x" * 400)
    assert result.parts == 3
    claim = store.outbox.claim("host:1:m1", first)[0]
    store.outbox.mark_submitting(claim, 1)
    store.outbox.mark_part_submitted(claim, 1, tp_mr=5)
    store.outbox.requeue(claim, "modem m1 needs a reset")
    assert store.outbox.claim("host:1:m2", second) == []  # the rest waits for m1 while m1 is ready
    for passing in ("starting", "initialising", "recovering", "no_network"):
        store.modems.update(first, state=passing)  # a restart or re-initialisation is waited out
        assert store.outbox.claim("host:1:m2", second) == []
    store.modems.update(first, state="ready")
    rest = store.outbox.claim("host:1:m1", first)[0]
    assert [p.state.value for p in rest.message.parts] == ["submitted", "pending", "pending"]
    assert rest.message.concat_ref == claim.message.concat_ref  # the same reference: the phone joins them


def _half_sent_by(store: Store, modem_id: int, *, preferred: int | None = None) -> tuple[int, int]:
    """A 3-part message whose part 1 went out from `modem_id` and whose part 2 was left unsure."""
    mid = store.outbox.enqueue("+12025550123", "x" * 400, preferred_modem_id=preferred).id
    (claim,) = store.outbox.claim(f"host:1:{modem_id}", modem_id)
    store.outbox.mark_submitting(claim, 1)
    store.outbox.mark_part_submitted(claim, 1, tp_mr=5)
    store.outbox.mark_submitting(claim, 2)
    store.outbox.mark_unknown(claim, 2, "+CMS ERROR: 500")
    return mid, claim.message.concat_ref


@pytest.mark.parametrize("who", ["staff", "resend_unknown"])
def test_a_resent_half_sent_multipart_message_keeps_to_the_sim_that_sent_its_first_part(
        store: Store, who: str) -> None:
    first = store.modems.upsert("m1", state="ready")
    second = store.modems.upsert("m2", state="offline")
    # The patient last texted m2, which was down: m1 took the message over and sent part 1.
    mid, ref = _half_sent_by(store, first, preferred=second)
    store.modems.update(second, state="ready")
    if who == "staff":
        store.outbox.resend(mid, "cli")  # `smsgate resend`
    else:
        assert store.outbox.resend_automatically(mid, "modemd:m1:resend_unknown", limit=5)
    assert store.outbox.claim("host:1:m2", second) == []  # parts 2..3 from m2 would never be joined
    (rest,) = store.outbox.claim("host:1:m1", first)
    assert [p.state.value for p in rest.message.parts] == ["submitted", "pending", "pending"]
    assert rest.message.concat_ref == ref


def test_when_the_sim_that_sent_the_first_parts_is_down_the_whole_message_goes_again_from_another(
        store: Store) -> None:
    first = store.modems.upsert("m1", state="ready")
    second = store.modems.upsert("m2", state="ready")
    mid, ref = _half_sent_by(store, first)
    store.outbox.resend(mid, "cli")
    store.modems.update(first, state="offline")
    (whole,) = store.outbox.claim("host:1:m2", second)
    # Not parts 2..3 from another number (never joined), but all three, under a new reference.
    assert [p.state.value for p in whole.message.parts] == ["pending", "pending", "pending"]
    assert whole.message.concat_ref != ref
    assert store.outbox.get(mid).concat_ref == whole.message.concat_ref
    assert whole.message.failover_from == first
    (entry,) = [e for e in store.outbox.history(mid) if e["action"] == "parts.restarted"]
    assert entry["detail"]["sent_from_modem"] == first and entry["detail"]["parts_sent"] == [1]
    assert entry["detail"]["old_ref"] == ref and entry["detail"]["new_ref"] == whole.message.concat_ref
    parts = store.query("SELECT tp_mr, modem_id, submitted_at FROM message_parts WHERE message_id = ?", (mid,))
    assert all(p["tp_mr"] is None and p["modem_id"] is None and p["submitted_at"] is None for p in parts)
