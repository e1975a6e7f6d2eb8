"""Inbound messages: stored once per SMS, threaded per contact and SIM, fragments kept until reassembled."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlite_utils import Database

from smsgate.queue import NotFound, Store, inbound_key
from smsgate.queue.schema import migrations

A = "+12025550123"


def test_reading_the_same_sms_twice_stores_it_once(store: Store) -> None:
    m1 = store.modems.upsert("front-desk", imei="359000000000001")
    key = inbound_key("359000000000001", "0791ab")
    first, created = store.inbox.store(modem_id=m1, sender="+1 202 555 0123", body="YES", dedupe_key=key,
                                       pdu="0791AB")
    again, created_again = store.inbox.store(modem_id=m1, sender=A, body="YES", dedupe_key=key)
    assert created and not created_again and again.id == first.id
    assert first.sender == A
    assert store.query("SELECT COUNT(*) AS n FROM inbound")[0]["n"] == 1
    assert store.modems.get(m1)["received_count"] == 1
    assert store.query("SELECT pdu FROM inbound")[0]["pdu"] == "0791AB"


def test_inbound_key_depends_on_receiving_sim_and_ignores_hex_case() -> None:
    assert inbound_key("sim-1", "0791ab") == inbound_key("sim-1", "0791AB")
    assert inbound_key("sim-1", "0791AB") != inbound_key("sim-2", "0791AB")


def test_inbound_threads_per_contact_and_sim_and_counts_unread(store: Store) -> None:
    m1 = store.modems.upsert("front-desk")
    m2 = store.modems.upsert("back-office")
    a, _ = store.inbox.store(modem_id=m1, sender=A, body="one", dedupe_key="k1")
    b, _ = store.inbox.store(modem_id=m1, sender=A, body="two", dedupe_key="k2")
    c, _ = store.inbox.store(modem_id=m2, sender=A, body="three", dedupe_key="k3")
    assert a.conversation_id == b.conversation_id != c.conversation_id
    assert store.conversations.get(a.conversation_id)["unread"] == 2  # type: ignore[arg-type]
    assert store.contacts.get(A)["last_modem_id"] == m2  # type: ignore[index]
    assert [m.id for m in store.inbox.unhandled()] == [a.id, b.id, c.id]
    store.inbox.mark_handled(a.id, keyword="YES", action="confirmed")
    assert [m.id for m in store.inbox.unhandled()] == [b.id, c.id]


def test_alphanumeric_sender_is_kept_as_given(store: Store) -> None:
    msg, _ = store.inbox.store(modem_id=None, sender="CARRIER", body="Your balance", dedupe_key="k")
    assert msg.sender == "CARRIER"


def test_undecodable_message_is_kept_with_its_pdu(store: Store) -> None:
    msg, _ = store.inbox.store(modem_id=None, sender=A, body="", dedupe_key="k", pdu="07FFFF",
                               decode_error="TP-DCS 0xF4 not supported")
    assert store.inbox.get(msg.id).decode_error == "TP-DCS 0xF4 not supported"
    with pytest.raises(NotFound):
        store.inbox.get(999)


def test_fragments_are_kept_once_until_the_group_is_complete(store: Store, clock) -> None:
    common = {"modem_id": None, "sender": A, "ref": 0x42, "ref_bits": 8, "total": 3}
    store.inbox.add_fragment(**common, seq=2, body="world ", dedupe_key="f2")
    store.inbox.add_fragment(**common, seq=2, body="world ", dedupe_key="f2")
    group = store.inbox.add_fragment(**common, seq=1, body="hello ", dedupe_key="f1")
    assert [f["seq"] for f in group] == [1, 2]
    other = store.inbox.add_fragment(**{**common, "ref": 0x43}, seq=1, body="x", dedupe_key="g1")
    assert len(other) == 1
    clock.advance(3600)
    stale = store.inbox.stale_fragment_groups(older_than=store.now())
    assert {g["ref"] for g in stale} == {0x42, 0x43}
    store.inbox.drop_fragments([f["id"] for f in group])
    assert store.inbox.fragment_group(group[0]["group_id"]) == []


# One sender, one SIM, one reference and part count, two messages: phones that draw the reference at random
# collide about once in 256 pairs, inside the reassembly window that keeps a finished message's parts.
PAIR = {"modem_id": None, "sender": A, "ref": 0x42, "ref_bits": 8, "total": 2}
EARLY, LATE = "2026-11-22T17:59:10.000000Z", "2026-11-22T17:59:40.000000Z"


def keys(group: list[dict[str, object]]) -> list[object]:
    return [f["dedupe_key"] for f in group]


def test_a_fragment_conflicting_with_a_stored_part_starts_a_new_group(store: Store) -> None:
    store.inbox.add_fragment(**PAIR, seq=1, body="Is Tuesday ", sent_at=EARLY, dedupe_key="a1")
    first = store.inbox.add_fragment(**PAIR, seq=2, body="fine?", sent_at=EARLY, dedupe_key="a2")
    assert keys(first) == ["a1", "a2"]
    second = store.inbox.add_fragment(**PAIR, seq=1, body="Cancel my ", sent_at=LATE, dedupe_key="b1")
    assert keys(second) == ["b1"]
    assert keys(store.inbox.add_fragment(**PAIR, seq=2, body="visit", sent_at=LATE, dedupe_key="b2")) == ["b1", "b2"]
    assert keys(store.inbox.fragment_group(first[0]["group_id"])) == ["a1", "a2"]


def test_a_fragment_with_the_same_text_and_a_later_timestamp_starts_a_new_group(store: Store) -> None:
    store.inbox.add_fragment(**PAIR, seq=1, body="Yes ", sent_at=EARLY, dedupe_key="a1")
    store.inbox.add_fragment(**PAIR, seq=2, body="please", sent_at=EARLY, dedupe_key="a2")
    assert keys(store.inbox.add_fragment(**PAIR, seq=1, body="Yes ", sent_at=LATE, dedupe_key="b1")) == ["b1"]


def test_a_copy_of_a_held_part_and_a_re_read_join_the_group_they_came_from(store: Store) -> None:
    store.inbox.add_fragment(**PAIR, seq=1, body="Is Tuesday ", sent_at=EARLY, dedupe_key="a1")
    store.inbox.add_fragment(**PAIR, seq=2, body="fine?", sent_at=EARLY, dedupe_key="a2")
    store.inbox.add_fragment(**PAIR, seq=1, body="Cancel my ", sent_at=LATE, dedupe_key="b1")
    # The same part again with another PDU (another SMSC prefix, say): same text and timestamp.
    assert keys(store.inbox.add_fragment(**PAIR, seq=1, body="Cancel my ", sent_at=LATE, dedupe_key="b1'")) == \
        ["b1", "b1'"]
    assert keys(store.inbox.add_fragment(**PAIR, seq=1, body="Is Tuesday ", sent_at=EARLY, dedupe_key="a1")) == \
        ["a1", "a2"]
    assert store.scalar("SELECT COUNT(*) FROM inbound_fragments") == 4


def test_a_part_both_open_groups_lack_goes_to_the_one_stamped_nearest(store: Store) -> None:
    store.inbox.add_fragment(**PAIR, seq=1, body="Is Tuesday ", sent_at=EARLY, dedupe_key="a1")
    store.inbox.add_fragment(**PAIR, seq=1, body="Cancel my ", sent_at=LATE, dedupe_key="b1")
    late = store.inbox.add_fragment(**PAIR, seq=2, body="visit", sent_at="2026-11-22T17:59:41.000000Z",
                                    dedupe_key="b2")
    early = store.inbox.add_fragment(**PAIR, seq=2, body="fine?", sent_at="2026-11-22T17:59:11.000000Z",
                                     dedupe_key="a2")
    assert (keys(early), keys(late)) == (["a1", "a2"], ["b1", "b2"])


def test_stale_groups_are_listed_one_per_message_even_when_they_share_a_reference(store: Store, clock) -> None:
    store.inbox.add_fragment(**PAIR, seq=1, body="Is Tuesday ", sent_at=EARLY, dedupe_key="a1")
    store.inbox.add_fragment(**PAIR, seq=1, body="Cancel my ", sent_at=LATE, dedupe_key="b1")
    clock.advance(3600)
    stale = store.inbox.stale_fragment_groups(older_than=store.now())
    assert sorted(keys(store.inbox.fragment_group(g["group_id"]))[0] for g in stale) == ["a1", "b1"]


def test_fragments_kept_before_the_upgrade_form_one_group_per_key_and_still_complete(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    migrations.apply(Database(conn), stop_before="m052_fragment_groups")
    for key, ref, seq, body in (("a1", 0x42, 1, "Is Tuesday "), ("x1", 0x43, 1, "other "), ("a2", 0x42, 3, "ok")):
        conn.execute("INSERT INTO inbound_fragments (dedupe_key, sender, ref, ref_bits, total, seq, body, received_at)"
                     " VALUES (?, ?, ?, 8, 3, ?, ?, '2026-11-22T17:00:00.000000Z')", (key, A, ref, seq, body))
    conn.commit()
    conn.close()
    with Store.open(path) as store:
        group = store.inbox.add_fragment(**{**PAIR, "total": 3}, seq=2, body="fine? ", dedupe_key="a3")
        assert keys(group) == ["a1", "a3", "a2"]
        assert store.integrity_check() == ["ok"]
