"""Part rows written when a bulk message leaves the queue, the one-statement send bookkeeping, and the
m040 index/table migration, on real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlite_utils import Database

from smsgate.queue import PartState, State, Store
from smsgate.queue.schema import migrations

A = "+12025550123"
B = "+12025550124"
LONG = "Reminder from the clinic: " + "please bring your insurance card and a list of medicines. " * 4


def part_rows(path: Path, message_id: int) -> list[tuple[int, str]]:
    """Part rows as another process sees them: only what was committed."""
    with sqlite3.connect(path) as other:
        return other.execute("SELECT part_no, state FROM message_parts WHERE message_id = ? ORDER BY part_no",
                             (message_id,)).fetchall()


def test_bulk_message_has_no_part_rows_until_claimed_then_all_are_committed_with_the_claim(store: Store) -> None:
    [mid] = store.outbox.enqueue_many([{"to": A, "text": LONG}])
    queued = store.outbox.get(mid)
    assert part_rows(store.path, mid) == []
    assert queued.parts_total >= 2
    assert [p.state for p in queued.parts] == [PartState.PENDING] * queued.parts_total
    modem = store.modems.upsert("m1", state="ready")
    [claim] = store.outbox.claim("w", modem)
    assert part_rows(store.path, mid) == [(n, "pending") for n in range(1, queued.parts_total + 1)]
    assert [p.part_no for p in claim.pending_parts] == list(range(1, queued.parts_total + 1))
    for n in range(1, queued.parts_total + 1):
        store.outbox.mark_submitting(claim, n)
        assert part_rows(store.path, mid)[n - 1] == (n, "submitting")
        done = store.outbox.mark_part_submitted(claim, n, tp_mr=n)
        assert done == (n == queued.parts_total)
    assert store.outbox.get(mid).state == State.SUBMITTED


def test_cancelling_a_never_claimed_bulk_message_fails_all_its_parts(store: Store) -> None:
    [mid] = store.outbox.enqueue_many([{"to": A, "text": LONG}])
    store.outbox.cancel(mid, "staff")
    msg = store.outbox.get(mid)
    assert msg.state == State.CANCELLED
    assert {state for _, state in part_rows(store.path, mid)} == {"failed"}
    assert len(part_rows(store.path, mid)) == msg.parts_total


def test_bulk_refused_at_claim_for_opt_out_gets_failed_part_rows(store: Store) -> None:
    [mid] = store.outbox.enqueue_many([{"to": A, "text": "Flu shots this week"}])
    store.consent.record(A, "opt_out", source="sms", actor="test", evidence="STOP")
    assert store.outbox.claim("w", None) == []
    assert store.outbox.get(mid).state == State.CANCELLED
    assert part_rows(store.path, mid) == [(1, "failed")]


def test_bulk_ids_follow_existing_rows_and_match_their_items(store: Store) -> None:
    first = store.outbox.enqueue(B, "earlier message").id
    ids = store.outbox.enqueue_many([{"to": A, "text": "one"}, {"to": B, "text": "two"}, {"to": A, "text": "three"}])
    assert ids == [first + 1, first + 2, first + 3]
    assert [(store.outbox.get(i).to_number, store.outbox.get(i).body) for i in ids] == [
        (A, "one"), (B, "two"), (A, "three")]


def test_sending_creates_contact_and_thread_once_and_keeps_first_texted_time(store: Store) -> None:
    modem = store.modems.upsert("m1", state="ready")
    ids = store.outbox.enqueue_many([{"to": A, "text": "first"}, {"to": A, "text": "second"}])
    sent = []
    for _ in ids:
        [claim] = store.outbox.claim("w", modem)
        store.outbox.mark_submitting(claim, 1)
        assert store.outbox.mark_part_submitted(claim, 1, tp_mr=claim.message.id)
        sent.append(store.outbox.get(claim.message.id))
    contacts = store.query("SELECT id, first_texted_at FROM contacts WHERE number = ?", (A,))
    threads = store.query("SELECT id, last_message_at FROM conversations WHERE contact_id = ?", (contacts[0]["id"],))
    assert len(contacts) == 1 and len(threads) == 1
    assert {m.conversation_id for m in sent} == {threads[0]["id"]}
    history = store.query("SELECT at FROM audit_log WHERE action = 'message.submitted' ORDER BY id")
    assert contacts[0]["first_texted_at"] == history[0]["at"]
    assert threads[0]["last_message_at"] == history[1]["at"]
    assert store.query("SELECT sent_count FROM modems WHERE id = ?", (modem,))[0]["sent_count"] == 2


def test_api_send_cap_counts_only_api_messages_of_that_token(store: Store) -> None:
    store.outbox.enqueue(A, "via api", created_by="token:1:crm", source="api")
    store.outbox.enqueue(B, "via api", created_by="token:1:crm", source="api")
    store.outbox.enqueue(A, "other token", created_by="token:2:x", source="api")
    store.outbox.enqueue_many([{"to": A, "text": "campaign"}], created_by="token:1:crm")
    assert store.outbox.sends_since("token:1:crm", 60) == 2


def test_m040_keeps_every_part_and_message_of_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    db = Database(conn)
    migrations.apply(db, stop_before="m040_lean_queue_writes")
    now = "2026-01-01T00:00:00.000000Z"
    conn.execute("INSERT INTO messages (id, to_number, body, kind, priority, parts_total, encoding, due_at,"
                 " created_by, source, created_at, updated_at, state) VALUES (7, ?, 'x', 'bulk', 2, 2, 'gsm7', ?,"
                 " 't', 't', ?, ?, 'submitted')", (A, now, now, now))
    conn.execute("INSERT INTO message_parts (message_id, part_no, state, tp_mr, modem_id, recipient, submitted_at)"
                 " VALUES (7, 1, 'submitted', 12, 3, ?, ?), (7, 2, 'submitted', 13, 3, ?, ?)", (A, now, A, now))
    conn.close()
    with Store.open(path) as store:
        assert [p.tp_mr for p in store.outbox.get(7).parts] == [12, 13]
        indexes = {r["name"] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'index'")}
        assert {"messages_due", "messages_api_sends", "messages_lease", "parts_report"} <= indexes
        assert not {"messages_state_created", "messages_creator", "messages_conversation"} & indexes
        assert store.integrity_check() == ["ok"]
        plan = " ".join(r["detail"] for r in store.query(
            "EXPLAIN QUERY PLAN SELECT * FROM messages WHERE state = 'queued' AND due_at <= ?"
            " ORDER BY priority, due_at, created_at, id LIMIT 1", (now,)))
        assert "messages_due" in plan and "TEMP B-TREE" not in plan
