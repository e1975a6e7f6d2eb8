"""One conversation per contact and SIM, whatever the order of events: queued, received, sent, failed over."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from smsgate.queue import Store
from smsgate.queue.inbox import inbound_key
from smsgate.queue.schema import migrations

A = "+12025550123"
B = "+12025550124"


def modem(store: Store, name: str) -> int:
    return store.modems.upsert(name, state="ready")


def receive(store: Store, modem_id: int, sender: str, body: str) -> int:
    inbound, _ = store.inbox.store(modem_id=modem_id, sender=sender, body=body,
                                   dedupe_key=inbound_key(f"modem{modem_id}", f"{sender}{body}"))
    return int(inbound.conversation_id or 0)


def send_next(store: Store, modem_id: int) -> int:
    """Claim the next due message on `modem_id` and record it sent; returns its conversation."""
    (claim,) = store.outbox.claim("worker", modem_id)
    for part in claim.message.parts:
        store.outbox.mark_submitting(claim, part.part_no)
        store.outbox.mark_part_submitted(claim, part.part_no, tp_mr=claim.message.id % 256)
    return int(store.outbox.get(claim.message.id).conversation_id or 0)


def threads(store: Store, number: str) -> list[tuple[int, int]]:
    """(conversation id, SIM) of every thread of `number`, SIM 0 meaning "not sent through one yet"."""
    return [(r["id"], r["modem_id"]) for r in store.query(
        "SELECT c.id, c.modem_id FROM conversations c JOIN contacts k ON k.id = c.contact_id WHERE k.number = ?"
        " ORDER BY c.id", (number,))]


def inbox_rows(store: Store, number: str) -> list[dict[str, Any]]:
    return [r for r in store.conversations.threads(status=None, limit=100) if r["number"] == number]


def test_a_reminder_sent_to_a_new_number_leaves_one_conversation_on_the_sim_that_sent_it(store: Store) -> None:
    m1 = modem(store, "front")
    queued = store.outbox.enqueue(A, "Reminder: Dr Rivera tomorrow 3:15 PM").id
    (waiting,) = threads(store, A)
    assert waiting[1] == 0, "queued before a SIM was chosen"
    conv = send_next(store, m1)
    assert threads(store, A) == [(waiting[0], m1)], "the thread it waited in became the SIM's, same id"
    assert conv == waiting[0] and len(inbox_rows(store, A)) == 1
    assert receive(store, m1, A, "YES") == conv, "the answer lands in the same thread"
    assert [h["id"] for h in store.conversations.history(conv) if h["direction"] == "out"] == [queued]


def test_inbound_first_then_a_reminder_is_one_conversation(store: Store) -> None:
    m1 = modem(store, "front")
    conv = receive(store, m1, A, "Can I move my appointment?")
    store.outbox.enqueue(A, "Reminder: Dr Rivera tomorrow 3:15 PM")
    assert send_next(store, m1) == conv
    assert threads(store, A) == [(conv, m1)] and len(inbox_rows(store, A)) == 1


def test_the_patient_writing_in_while_a_reminder_waits_joins_the_waiting_thread(store: Store) -> None:
    m1 = modem(store, "front")
    store.outbox.enqueue(A, "Reminder: Dr Rivera tomorrow 3:15 PM")
    (waiting,) = threads(store, A)
    assert receive(store, m1, A, "Is parking free?") == waiting[0]
    assert threads(store, A) == [(waiting[0], m1)]
    assert send_next(store, m1) == waiting[0] and threads(store, A) == [(waiting[0], m1)]


def test_two_sims_give_two_conversations_and_no_empty_one(store: Store) -> None:
    m1, m2 = modem(store, "front"), modem(store, "lab")
    front, lab = receive(store, m1, A, "hello front"), receive(store, m2, A, "hello lab")
    store.outbox.enqueue(A, "Your results are ready")  # the sticky SIM: lab, where A last wrote
    assert send_next(store, m2) == lab
    assert threads(store, A) == [(front, m1), (lab, m2)]
    store.outbox.enqueue(B, "Reminder: Dr Rivera tomorrow")
    first = send_next(store, m1)
    store.outbox.enqueue(B, "Results are ready", required_modem_id=m2)
    second = send_next(store, m2)
    assert threads(store, B) == [(first, m1), (second, m2)]
    assert all(r["last_message_at"] for r in inbox_rows(store, B))


def test_a_message_that_fails_over_to_another_sim_leaves_no_empty_thread_behind(store: Store) -> None:
    m1, m2 = modem(store, "front"), modem(store, "lab")
    store.outbox.enqueue(A, "Reminder: Dr Rivera tomorrow", preferred_modem_id=m1)
    (waiting,) = threads(store, A)
    assert waiting[1] == m1
    store.modems.update(m1, state="offline")
    assert send_next(store, m2) == waiting[0]
    assert threads(store, A) == [(waiting[0], m2)]


def test_a_campaign_message_takes_over_the_waiting_thread_instead_of_starting_another(store: Store) -> None:
    m1 = modem(store, "front")
    store.outbox.enqueue(A, "Reminder for next week", not_before=store.clock().replace(year=2030))
    (waiting,) = threads(store, A)
    store.outbox.enqueue_many([{"to": A, "text": "Flu shots this week"}], campaign="flu")
    assert send_next(store, m1) == waiting[0]
    assert threads(store, A) == [(waiting[0], m1)]


def test_a_waiting_thread_keeps_its_assignment_and_unread_when_it_becomes_the_sims(store: Store) -> None:
    m1 = modem(store, "front")
    store.outbox.enqueue(A, "Reminder: Dr Rivera tomorrow")
    (waiting,) = threads(store, A)
    store.conversations.update(waiting[0], actor="web:ada", assigned_to="ada", team="billing")
    send_next(store, m1)
    row = store.conversations.get(waiting[0])
    assert (row["modem_id"], row["assigned_to"], row["team"]) == (m1, "ada", "billing")


def test_a_leftover_waiting_thread_is_merged_into_the_sims_with_its_state(store: Store) -> None:
    """A database from before this rule can hold both; the next send through the SIM merges them."""
    m1 = modem(store, "front")
    conv = receive(store, m1, A, "hello")
    store.conversations.update(conv, actor="test", status="done", unread=0)
    store.outbox.enqueue(A, "Reminder", required_modem_id=m1)
    contact = store.contacts.ensure(A)
    store.execute("INSERT INTO conversations (contact_id, modem_id, created_at, assigned_to, unread)"
                  " VALUES (?, 0, ?, 'ada', 2)", (contact, store.now()))
    (husk,) = [c for c, sim in threads(store, A) if sim == 0]
    store.execute("UPDATE messages SET conversation_id = ?, required_modem_id = NULL", (husk,))
    assert send_next(store, m1) == conv
    assert threads(store, A) == [(conv, m1)]
    row = store.conversations.get(conv)
    assert (row["assigned_to"], row["unread"], row["status"]) == ("ada", 2, "open")
    merged = [e for e in store.audit.entries(limit=20) if e["action"] == "conversation.merged"]
    assert merged and merged[0]["subject_id"] == conv and merged[0]["detail"]["from"] == husk


def test_m056_merges_each_empty_no_sim_thread_into_the_contacts_sim_thread(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.apply(Database(conn), stop_before="m056_one_conversation_per_contact_and_sim")
    now, later = "2026-01-01T00:00:00.000000Z", "2026-01-02T00:00:00.000000Z"
    conn.execute("INSERT INTO modems (id, name, created_at, updated_at) VALUES (3, 'front', ?, ?), (4, 'lab', ?, ?)",
                 (now, now, now, now))
    conn.execute("INSERT INTO contacts (id, number, created_at, updated_at) VALUES (1, ?, ?, ?), (2, ?, ?, ?)",
                 (A, now, now, B, now, now))
    # A: a husk (no SIM) holding a queued message and an assignment, beside two SIM threads, the lab one
    # newer and done; B: only a no-SIM thread (nothing sent yet), which stays.
    conn.execute("INSERT INTO conversations (id, contact_id, modem_id, status, assigned_to, unread, last_message_at,"
                 " created_at) VALUES (10, 1, 0, 'open', 'ada', 0, ?, ?), (11, 1, 3, 'open', NULL, 1, ?, ?),"
                 " (12, 1, 4, 'done', NULL, 0, ?, ?), (13, 2, 0, 'open', NULL, 0, ?, ?)",
                 (later, now, now, now, later, now, now, now))
    for mid, conv in ((7, 10), (8, 12), (9, 13)):
        conn.execute("INSERT INTO messages (id, to_number, body, kind, priority, parts_total, encoding, due_at,"
                     " created_by, source, created_at, updated_at, conversation_id) VALUES"
                     " (?, ?, 'x', 'transactional', 1, 1, 'gsm7', ?, 'cli', 'cli', ?, ?, ?)",
                     (mid, B if conv == 13 else A, now, now, now, conv))
    conn.close()
    with Store.open(path) as store:
        assert threads(store, A) == [(11, 3), (12, 4)] and threads(store, B) == [(13, 0)]
        assert store.outbox.get(7).conversation_id == 12 and store.outbox.get(9).conversation_id == 13
        row = store.conversations.get(12)
        assert (row["assigned_to"], row["status"], row["last_message_at"]) == ("ada", "done", later)
        (entry,) = [e for e in store.audit.entries(limit=20) if e["action"] == "conversation.merged"]
        assert (entry["actor"], entry["subject_id"], entry["detail"]) == ("migration", 12, {"from": 10})
        assert store.integrity_check() == ["ok"]
