"""The consent ledger: append-only, normalised numbers, and checked again at claim time."""

from __future__ import annotations

import sqlite3

import pytest

from smsgate.queue import Kind, MessageRejected, OptedOut, PartState, State, Store

A = "+12025550123"
B = "+12025550124"


def test_opt_out_after_a_campaign_was_queued_stops_it_at_claim_time(store: Store) -> None:
    ids = store.outbox.enqueue_many([{"to": A, "text": "Flu shots"}, {"to": B, "text": "Flu shots"}], campaign="flu")
    store.consent.record("+1 (202) 555-0123", "opt_out", source="sms", actor="rules", evidence="STOP")
    claims = store.outbox.claim("w", None, limit=10)
    assert [c.message.id for c in claims] == [ids[1]]
    stopped = store.outbox.get(ids[0])
    assert stopped.state == State.CANCELLED and "opted out" in (stopped.last_error or "")
    assert stopped.parts[0].state == PartState.FAILED
    assert store.outbox.history(ids[0])[-1]["actor"] == "policy"


def test_compliance_confirmation_still_goes_to_an_opted_out_number(store: Store) -> None:
    reminder = store.outbox.enqueue(A, "Reminder", kind=Kind.TRANSACTIONAL).id  # queued before the STOP
    store.consent.record(A, "opt_out", source="sms", actor="rules", evidence="STOP")
    store.outbox.enqueue(A, "You will receive no more messages.", kind=Kind.COMPLIANCE)
    (claim,) = store.outbox.claim("w", None, limit=5)
    assert claim.message.kind == Kind.COMPLIANCE
    assert store.outbox.get(reminder).state == State.CANCELLED, "the claim still checks what enqueue checked"


@pytest.mark.parametrize("kind", [Kind.TRANSACTIONAL, Kind.REPLY, Kind.BULK, Kind.MARKETING])
def test_queueing_for_an_opted_out_number_is_refused_with_the_reason_and_nothing_stored(store: Store,
                                                                                       kind: Kind) -> None:
    store.lists.create("newsletter", actor="admin")
    store.consent.record(A, "opt_in", source="web form", actor="staff:ana", scope="newsletter")
    store.consent.record("+1 (202) 555-0123", "opt_out", source="sms", actor="rules", evidence="STOP")
    with pytest.raises(OptedOut, match=r"\+12025550123 opted out of all messages \(sms, 2026-11-22T18:00:00"
                                       r"\.000000Z\).*nothing was queued.*START"):
        store.outbox.enqueue(A, "Reminder: Dr Rivera tomorrow 3:15 PM", kind=kind, scope="newsletter")
    assert store.query("SELECT COUNT(*) AS n FROM messages")[0]["n"] == 0


def test_a_retry_after_the_opt_out_gets_its_message_back_and_the_claim_cancels_it(store: Store) -> None:
    first = store.outbox.enqueue(A, "Reminder", idempotency_key="appt-42", created_by="token:1:crm")
    store.consent.record(A, "opt_out", source="sms", actor="rules", evidence="STOP")
    again = store.outbox.enqueue(A, "Reminder", idempotency_key="appt-42", created_by="token:1:crm")
    assert (again.id, again.created) == (first.id, False)
    assert store.outbox.claim("w", None) == [] and store.outbox.get(first.id).state == State.CANCELLED


def test_an_opt_out_of_one_scope_refuses_only_messages_of_that_scope(store: Store) -> None:
    store.consent.record(A, "opt_out", source="sms", actor="rules", scope="newsletter")
    with pytest.raises(OptedOut, match="opted out of 'newsletter'"):
        store.outbox.enqueue(A, "Our spring newsletter", kind=Kind.BULK, scope="newsletter")
    assert store.outbox.enqueue(A, "Reminder: Dr Rivera tomorrow", kind=Kind.TRANSACTIONAL).created


def test_a_message_for_an_opted_out_number_is_refused_when_queued(store: Store) -> None:
    store.consent.record(A, "opt_out", source="sms", actor="rules", evidence="STOP")
    with pytest.raises(MessageRejected, match="opted out of all messages"):
        store.outbox.enqueue(A, "Reminder", kind=Kind.TRANSACTIONAL)
    assert store.scalar("SELECT COUNT(*) FROM messages") == 0


def test_marketing_without_opt_in_is_refused_and_with_opt_in_goes(store: Store) -> None:
    store.lists.create("offers", actor="admin")
    with pytest.raises(MessageRejected, match=r"opted in to 'offers'.*consent ledger"):
        store.outbox.enqueue(A, "Spring offer", kind=Kind.MARKETING, scope="offers")
    assert store.query("SELECT COUNT(*) AS n FROM messages")[0]["n"] == 0
    (bulk_id,) = store.outbox.enqueue_many([{"to": A, "text": "Spring offer"}], kind=Kind.MARKETING,
                                           scope="offers")
    assert store.outbox.claim("w", None) == []
    assert "has not opted in to 'offers'" in (store.outbox.get(bulk_id).last_error or "")
    store.consent.record(A, "opt_in", scope="offers", source="web form", actor="staff:ana",
                         evidence="signed form 12")
    mid = store.outbox.enqueue(A, "Spring offer", kind=Kind.MARKETING, scope="offers").id
    assert [c.message.id for c in store.outbox.claim("w", None)] == [mid]


def test_latest_event_wins_and_history_keeps_everything(store: Store) -> None:
    store.consent.record(A, "opt_out", source="sms", actor="rules")
    assert store.consent.status(A).opted_out
    store.consent.record(A, "restore", source="sms", actor="rules", evidence="START")
    status = store.consent.status(A)
    assert not status.opted_in and not status.opted_out and status.last_evidence == "START"
    assert [e["event"] for e in store.consent.history(A)] == ["opt_out", "restore"]
    assert store.consent.opted_out_numbers() == set()


def test_scoped_opt_out_does_not_stop_other_scopes(store: Store) -> None:
    store.consent.record(A, "opt_out", source="sms", actor="rules", scope="newsletter")
    assert store.consent.status(A, "newsletter").opted_out
    assert not store.consent.status(A).opted_out


@pytest.mark.parametrize("table", ["consent_events", "audit_log"])
def test_append_only_tables_refuse_update_and_delete(store: Store, table: str) -> None:
    store.consent.record(A, "opt_out", source="sms", actor="rules")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.execute(f"UPDATE {table} SET actor = 'someone else'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.execute(f"DELETE FROM {table}")
    assert store.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"] >= 1


def test_unknown_consent_event_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="one of opt_in, opt_out, restore"):
        store.consent.record(A, "maybe", source="sms", actor="rules")
