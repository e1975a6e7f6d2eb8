"""Consent per purpose, through the store: the rules table of docs/contacts.md, applied the same
way when a message is queued and when it is claimed for a modem."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from smsgate.queue import ConsentRefused, Kind, MessageRejected, State, Store
from smsgate.queue.schema import migrations

A = "+12025550123"

# (events as (event, scope), kind, list) -> the refusal code, or None when the message may go.
RULES: list[tuple[list[tuple[str, str]], Kind, str | None, str | None]] = [
    ([], Kind.TRANSACTIONAL, None, None),
    ([], Kind.MARKETING, "news", "no_opt_in"),
    ([("opt_in", "news")], Kind.MARKETING, "news", None),
    ([("opt_in", "news")], Kind.MARKETING, "flu", "no_opt_in"),
    ([("opt_in", "news"), ("opt_out", "all")], Kind.MARKETING, "news", "opted_out"),
    ([("opt_in", "news"), ("opt_out", "all")], Kind.TRANSACTIONAL, None, "opted_out"),
    ([("opt_in", "news"), ("opt_out", "all"), ("restore", "all")], Kind.MARKETING, "news", None),
    ([("opt_in", "news"), ("opt_out", "all"), ("restore", "all")], Kind.BULK, None, None),
    ([("opt_in", "news"), ("opt_out", "news"), ("opt_out", "all"), ("restore", "all")], Kind.MARKETING, "news",
     "list_opted_out"),
    ([("opt_in", "news"), ("opt_out", "news"), ("opt_out", "all"), ("restore", "all")], Kind.TRANSACTIONAL, None,
     None),
    ([("opt_out", "all"), ("opt_in", "news")], Kind.MARKETING, "news", None),
    ([("opt_out", "all"), ("opt_in", "news")], Kind.TRANSACTIONAL, None, "opted_out"),
    ([("restore", "all")], Kind.MARKETING, "news", "no_opt_in"),
    ([("opt_in", "news"), ("opt_out", "news"), ("restore", "news")], Kind.MARKETING, "news", None),
    ([("opt_out", "news"), ("restore", "news")], Kind.MARKETING, "news", "no_opt_in"),
    ([("opt_out", "transactional")], Kind.TRANSACTIONAL, None, "transactional_opted_out"),
    ([("opt_out", "transactional")], Kind.REPLY, None, "transactional_opted_out"),
    ([("opt_in", "news"), ("opt_out", "transactional")], Kind.MARKETING, "news", None),
    ([("opt_out", "transactional"), ("restore", "all")], Kind.TRANSACTIONAL, None, "transactional_opted_out"),
    ([("opt_out", "all"), ("restore", "transactional")], Kind.TRANSACTIONAL, None, None),
    ([("opt_in", "news"), ("opt_out", "news")], Kind.BULK, "news", "list_opted_out"),
    ([("opt_in", "news"), ("opt_out", "news")], Kind.BULK, None, None),
    ([("opt_out", "all")], Kind.COMPLIANCE, None, None),
    ([("opt_in", "news")], Kind.MARKETING, None, "no_list"),
]


def _ids(row: tuple[list[tuple[str, str]], Kind, str | None, str | None]) -> str:
    events, kind, list_name, _ = row
    return f"{' '.join(f'{e}:{s}' for e, s in events) or 'nothing'} -> {kind.value}:{list_name}"


@pytest.fixture
def lists(store: Store) -> Store:
    for name in ("news", "flu"):
        store.lists.create(name, actor="admin")
    return store


@pytest.mark.parametrize("row", RULES, ids=[_ids(r) for r in RULES])
def test_the_rules_table_decides_at_enqueue(
        lists: Store, row: tuple[list[tuple[str, str]], Kind, str | None, str | None]) -> None:
    events, kind, list_name, expected = row
    for event, scope in events:
        lists.consent.record(A, event, scope=scope, source="test", actor="test")
    refusal = lists.consent.may_send(A, kind, list_name)
    assert (refusal.code if refusal else None) == expected, refusal
    if expected is None:
        lists.outbox.enqueue(A, "Hello", kind=kind, scope=list_name)
    else:
        with pytest.raises(ConsentRefused) as raised:
            lists.outbox.enqueue(A, "Hello", kind=kind, scope=list_name)
        assert raised.value.code == expected
        assert lists.scalar("SELECT COUNT(*) FROM messages") == 0


@pytest.mark.parametrize("row", [r for r in RULES if r[2] or r[1] is not Kind.MARKETING],
                         ids=[_ids(r) for r in RULES if r[2] or r[1] is not Kind.MARKETING])
def test_the_same_rules_decide_at_claim_for_a_message_queued_before_the_events(
        lists: Store, row: tuple[list[tuple[str, str]], Kind, str | None, str | None]) -> None:
    events, kind, list_name, expected = row
    (mid,) = lists.outbox.enqueue_many([{"to": A, "text": "Hello"}], kind=kind, scope=list_name)
    for event, scope in events:
        lists.consent.record(A, event, scope=scope, source="test", actor="test")
    claimed = [c.message.id for c in lists.outbox.claim("w", None)]
    if expected is None:
        assert claimed == [mid]
    else:
        message = lists.outbox.get(mid)
        assert claimed == [] and message.state == State.CANCELLED
        refusal = lists.consent.may_send(A, kind, list_name)
        assert refusal is not None and message.last_error == refusal.reason


def test_a_marketing_message_without_a_list_is_refused_with_a_sentence_saying_to_name_one(lists: Store) -> None:
    lists.consent.record(A, "opt_in", scope="news", source="web form", actor="staff", evidence="form 12")
    with pytest.raises(MessageRejected, match=r"must name its list \(`--list NAME`"):
        lists.outbox.enqueue(A, "Spring offer", kind=Kind.MARKETING)
    with pytest.raises(MessageRejected, match="must name its list"):
        lists.outbox.enqueue_many([{"to": A, "text": "Spring offer"}], kind=Kind.MARKETING)
    assert lists.scalar("SELECT COUNT(*) FROM messages") == 0


def test_marketing_to_a_list_that_does_not_exist_says_how_to_see_the_lists(lists: Store) -> None:
    with pytest.raises(ConsentRefused, match=r"no list named 'newsleter'.*smsgate lists list") as raised:
        lists.outbox.enqueue(A, "Spring offer", kind=Kind.MARKETING, scope="Newsleter")
    assert raised.value.code == "unknown_list"
    with pytest.raises(ConsentRefused, match="no list named 'newsleter'"):
        lists.outbox.enqueue_many([{"to": A, "text": "Spring offer"}], kind=Kind.MARKETING, scope="newsleter")


def test_a_campaign_keeps_its_list_and_is_claimed_only_for_numbers_opted_in_to_it(lists: Store) -> None:
    numbers = ["+12025550101", "+12025550102", "+12025550103"]
    lists.consent.record(numbers[0], "opt_in", scope="news", source="import", actor="import", evidence="row 2")
    lists.consent.record(numbers[1], "opt_in", scope="flu", source="import", actor="import", evidence="row 3")
    ids = lists.outbox.enqueue_many([{"to": n, "text": "Flu shots are here"} for n in numbers],
                                    kind=Kind.MARKETING, scope="NEWS", campaign="november")
    assert {lists.outbox.get(i).scope for i in ids} == {"news"}
    assert [c.message.id for c in lists.outbox.claim("w", None, limit=5)] == [ids[0]]
    assert "has not opted in to 'news'" in (lists.outbox.get(ids[1]).last_error or "")


def test_an_opt_in_must_name_the_list_it_grants(store: Store) -> None:
    for scope in ("all", "transactional"):
        with pytest.raises(ValueError, match="opt-in is given for one list"):
            store.consent.record(A, "opt_in", scope=scope, source="web", actor="staff")
    assert store.consent.history() == []


def test_a_bare_restore_grants_no_marketing_consent_that_never_existed(lists: Store) -> None:
    lists.consent.record(A, "restore", source="sms", actor="rules", evidence="inbound #1: START")
    with pytest.raises(ConsentRefused, match="has not opted in to 'news'"):
        lists.outbox.enqueue(A, "Spring offer", kind=Kind.MARKETING, scope="news")


def test_the_ledger_rebuilt_for_restore_keeps_every_event_and_stays_append_only(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    migrations.apply(Database(conn), stop_before="m080_consent_restore_event")
    conn.execute("INSERT INTO consent_events (number, event, scope, at, source, actor) VALUES"
                 " (?, 'opt_in', 'all', '2026-01-01T00:00:00.000000Z', 'web form', 'staff'),"
                 " (?, 'opt_out', 'all', '2026-01-02T00:00:00.000000Z', 'sms', 'rules')", (A, A))
    conn.commit()
    conn.close()
    with Store.open(path) as store:
        assert [(e["id"], e["event"]) for e in store.consent.history(A)] == [(1, "opt_in"), (2, "opt_out")]
        store.consent.record(A, "restore", source="sms", actor="rules")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            store.execute("DELETE FROM consent_events")
        # An old global opt-in counts as a restore: it never stood for one list's marketing.
        assert store.consent.may_send(A, Kind.TRANSACTIONAL) is None
