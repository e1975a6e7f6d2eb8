"""Inbound messages: stored once per SMS, threaded per contact and SIM, fragments kept until reassembled."""

from __future__ import annotations

import pytest

from smsgate.queue import NotFound, Store, inbound_key

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
    assert store.inbox.fragment_group(None, A, 0x42, 8, 3) == []
