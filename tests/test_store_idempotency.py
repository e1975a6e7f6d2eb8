"""Idempotency keys: scoped to whoever queued with them, and a replay must be the same request."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from smsgate.queue import IdempotencyConflict, Kind, Store
from smsgate.queue.schema import migrations

A = "+12025550123"
B = "+12025550124"


def count(store: Store) -> int:
    return int(store.scalar("SELECT COUNT(*) FROM messages"))


def test_the_same_key_from_two_creators_queues_a_message_for_each(store: Store) -> None:
    first = store.outbox.enqueue(A, "Your results are ready", idempotency_key="appt-42", created_by="token:1:crm")
    other = store.outbox.enqueue(A, "Your results are ready", idempotency_key="appt-42", created_by="token:2:lab")
    again = store.outbox.enqueue(A, "Your results are ready", idempotency_key="appt-42", created_by="token:2:lab")
    assert first.created and other.created and not again.created
    assert first.id != other.id == again.id
    assert store.outbox.get(other.id).created_by == "token:2:lab"


BASE: dict[str, Any] = {"to": A, "text": "Reply YES to confirm", "kind": "transactional", "not_before": None,
                        "expect": {"YES": "confirmed"}, "follow_up": None, "scope": None}


@pytest.mark.parametrize(("change", "named"), [
    ({"to": B}, "recipient"), ({"text": "Reply NO"}, "text"), ({"kind": "bulk"}, "kind"),
    ({"not_before": datetime(2030, 1, 1, 9, tzinfo=UTC)}, "send time"),
    ({"expect": {"YES": "cancelled"}}, "expected answers"), ({"expect": None}, "expected answers"),
    ({"follow_up": {"YES": "See you"}}, "follow-up"), ({"scope": "newsletter"}, "consent scope"),
])
def test_a_replay_that_differs_in_any_field_is_a_conflict_naming_it(store: Store, change: dict[str, Any],
                                                                      named: str) -> None:
    def send(fields: dict[str, Any]) -> Any:
        return store.outbox.enqueue(fields["to"], fields["text"], kind=fields["kind"],
                                    not_before=fields["not_before"], expect=fields["expect"],
                                    follow_up=fields["follow_up"], scope=fields["scope"],
                                    idempotency_key="appt-42", created_by="token:1:crm")

    first = send(BASE)
    assert send(BASE).id == first.id
    with pytest.raises(IdempotencyConflict, match=rf"'appt-42' was already used for message #{first.id} "
                                                  rf"with a different {named}.*new key"):
        send({**BASE, **change})
    assert count(store) == 1


def test_campaign_keys_are_scoped_to_their_creator_too(store: Store) -> None:
    rows = [{"to": A, "text": "Flu shots", "idempotency_key": "k1"}]
    mine = store.outbox.enqueue_many(rows, created_by="import:front-desk")
    theirs = store.outbox.enqueue_many(rows, created_by="import:lab")
    assert mine != theirs and store.outbox.enqueue_many(rows, created_by="import:lab") == theirs
    single = store.outbox.enqueue(A, "Flu shots", idempotency_key="k1", created_by="cli")
    assert single.created and count(store) == 3
    with pytest.raises(IdempotencyConflict, match=r"row 1: .*'k1'.*different kind"):
        store.outbox.enqueue_many(rows, created_by="import:lab", kind=Kind.TRANSACTIONAL)


def test_m055_scopes_existing_keys_to_their_creator_and_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.apply(Database(conn), stop_before="m055_idempotency_scope")
    now = "2026-01-01T00:00:00.000000Z"
    for mid, key, creator in ((7, "appt-42", "token:1:crm"), (8, None, "cli"), (9, "auto:3:confirm", "rules")):
        conn.execute("INSERT INTO messages (id, to_number, body, kind, priority, parts_total, encoding, due_at,"
                     " idempotency_key, created_by, source, created_at, updated_at, state) VALUES"
                     " (?, ?, 'Your results are ready', 'transactional', 1, 1, 'gsm7', ?, ?, ?, 'api', ?, ?,"
                     " 'submitted')", (mid, A, now, key, creator, now, now))
        conn.execute("INSERT INTO message_parts (message_id, part_no, state, tp_mr, modem_id, recipient)"
                     " VALUES (?, 1, 'submitted', ?, 3, ?)", (mid, mid, A))
    conn.close()
    with Store.open(path) as store:
        assert [m.id for m in store.outbox.recent()] == [9, 8, 7]
        assert [store.outbox.get(m).parts[0].tp_mr for m in (7, 8, 9)] == [7, 8, 9]
        assert store.integrity_check() == ["ok"]
        scopes = store.query("SELECT id, idempotency_scope FROM messages ORDER BY id")
        assert [(r["id"], r["idempotency_scope"]) for r in scopes] == [(7, "token:1:crm"), (8, None), (9, "rules")]
        replay = store.outbox.enqueue(A, "Your results are ready", idempotency_key="appt-42",
                                      created_by="token:1:crm")
        assert (replay.id, replay.created) == (7, False)
        assert store.outbox.enqueue(A, "Your results are ready", idempotency_key="appt-42",
                                    created_by="token:2:lab").created
        indexes = {r["name"] for r in store.query("SELECT name FROM sqlite_master WHERE type = 'index'"
                                                  " AND tbl_name = 'messages'")}
        assert {"messages_due", "messages_api_sends", "messages_lease", "messages_idempotency"} <= indexes
        assert not any(name.startswith("sqlite_autoindex_messages") for name in indexes)
        plan = " ".join(r["detail"] for r in store.query(
            "EXPLAIN QUERY PLAN SELECT id FROM messages WHERE idempotency_scope = ? AND idempotency_key = ?",
            ("cli", "k")))
        assert "messages_idempotency" in plan
        with pytest.raises(sqlite3.IntegrityError):
            store.execute("INSERT INTO message_parts (message_id, part_no, recipient) VALUES (999, 1, ?)", (A,))
