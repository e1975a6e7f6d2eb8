"""The daemon's inbound path without a modem: what `InboundProcessor` stores for each PDU, and whether the
SIM's copy may then be deleted. The same path runs on the simulator in test_modemd_daemon.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pdu_support import ESC, concat8, gsm7_part, header, septets_of, stamp

from smsgate.modemd.inbound import InboundProcessor, flush_stale_fragments, modem_identity
from smsgate.queue import Store

WINDOW = timedelta(seconds=600)


@pytest.fixture
def processor(store: Store) -> InboundProcessor:
    modem_id = store.modems.upsert("m1", imsi="001010000000001")
    return InboundProcessor(store, modem_id, modem_identity(store, modem_id), None)


def part(text: str, ref: int, total: int, seq: int, *, second: int = 16, lone_escape: bool = False) -> str:
    septets = [*septets_of(text), ESC] if lone_escape else septets_of(text)
    return gsm7_part(septets, header(concat8(ref, total, seq)), scts=stamp(second))


def bodies(store: Store) -> list[str]:
    return [r["body"] for r in reversed(store.inbox.recent())]


def test_a_part_ending_in_a_lone_escape_is_stored_and_joined_with_the_next_part(
    store: Store, processor: InboundProcessor
) -> None:
    first = processor.process(part("Your balance is 5", 0x42, 2, 1, lone_escape=True))
    assert (first.kind, first.delete) == ("fragment", True)
    second = processor.process(part("e, due Friday", 0x42, 2, 2))
    assert second.kind == "message"
    (row,) = store.inbox.recent()
    assert row["body"] == "Your balance is 5€, due Friday"
    assert row["decode_error"] is None and row["parts_total"] == 2


def test_a_lone_escape_whose_part_never_comes_is_stored_as_a_space_after_the_timeout(
    store: Store, processor: InboundProcessor, clock
) -> None:
    processor.process(part("Your balance is 5", 0x42, 2, 1, lone_escape=True))
    clock.advance(601)
    assert flush_stale_fragments(store, None, older_than=WINDOW) == 1
    assert bodies(store) == ["Your balance is 5 [part 2 of 2 missing]"]


def test_a_joined_escape_pair_leaves_no_note_but_an_unfinished_one_is_noted_for_staff(
    store: Store, processor: InboundProcessor, clock
) -> None:
    processor.process(part("Your balance is 5", 0x42, 2, 1, lone_escape=True))
    processor.process(part("e, due Friday", 0x42, 2, 2))
    processor.process(part("Owed: 7", 0x43, 2, 1, lone_escape=True))
    clock.advance(601)
    flush_stale_fragments(store, None, older_than=WINDOW)
    joined, unfinished = (store.inbox.get(r["id"]) for r in reversed(store.inbox.recent()))
    assert joined.decode_notes == ()
    assert unfinished.body == "Owed: 7 [part 2 of 2 missing]"
    assert unfinished.decode_notes == (
        "part 1 of 2 ends in a lone escape (0x1B) that the next part does not complete; it is shown as a space",)


def test_a_single_text_ending_in_a_lone_escape_is_stored_with_the_codec_note(
    store: Store, processor: InboundProcessor
) -> None:
    outcome = processor.process(gsm7_part([*septets_of("Price: 10"), ESC]))
    assert (outcome.kind, outcome.delete) == ("message", True)
    stored = store.inbox.get(outcome.inbound_id or 0)
    assert stored.body == "Price: 10 "
    assert len(stored.decode_notes) == 1 and "escape (0x1B)" in stored.decode_notes[0]


def test_a_text_with_a_header_running_past_its_length_keeps_the_text_and_says_the_header_was_dropped(
    store: Store, processor: InboundProcessor
) -> None:
    bad_header = bytes([0x05, 0x00, 0x09, 0x42, 0x02, 0x01])  # a concatenation element claiming 9 octets
    outcome = processor.process(gsm7_part(septets_of("See you at 3"), bad_header))
    stored = store.inbox.get(outcome.inbound_id or 0)
    assert stored.body.endswith("See you at 3")
    assert stored.decode_notes and stored.decode_error is None


# A phone reusing a concatenation reference (random ones collide about once in 256 pairs of long texts)
# within the reassembly window, while the first message's parts are still kept for re-reads.
FIRST = (("Could I come in on Tuesday at ten? " * 5)[:153], "second part of the first message")
SECOND = (("Please cancel my appointment, sorry " * 5)[:153], "and the second part of the other one")


def long_text(ref: int, texts: tuple[str, str], second: int) -> list[str]:
    return [part(texts[0], ref, 2, 1, second=second), part(texts[1], ref, 2, 2, second=second + 1)]


def test_a_second_long_text_reusing_a_stored_reference_is_stored_as_its_own_message(
    store: Store, processor: InboundProcessor
) -> None:
    a1, a2 = long_text(0x42, FIRST, second=10)
    b1, b2 = long_text(0x42, SECOND, second=40)
    assert [processor.process(p).kind for p in (a1, a2)] == ["fragment", "message"]
    first_id = store.inbox.recent()[0]["id"]
    got = processor.process(b1)
    assert (got.kind, got.inbound_id) == ("fragment", None)  # before: "message" with the first one's id
    assert store.scalar("SELECT COUNT(*) FROM inbound_fragments WHERE body = ?", (SECOND[0],)) == 1
    done = processor.process(b2)
    assert done.kind == "message" and done.inbound_id not in (None, first_id)
    assert bodies(store) == ["".join(FIRST), "".join(SECOND)]


def test_interleaved_parts_of_two_texts_with_one_reference_are_told_apart_by_their_timestamps(
    store: Store, processor: InboundProcessor
) -> None:
    a1, a2 = long_text(0x42, FIRST, second=10)
    b1, b2 = long_text(0x42, SECOND, second=40)
    assert [processor.process(p).kind for p in (a1, b1, b2, a2)] == ["fragment", "fragment", "message", "message"]
    assert sorted(bodies(store)) == sorted(["".join(FIRST), "".join(SECOND)])


def test_parts_read_again_after_both_messages_were_stored_store_nothing_new(
    store: Store, processor: InboundProcessor, clock
) -> None:
    pdus = [*long_text(0x42, FIRST, second=10), *long_text(0x42, SECOND, second=40)]
    first = [processor.process(p) for p in pdus]
    again = [processor.process(p) for p in pdus]
    first_id, second_id = first[1].inbound_id, first[3].inbound_id
    assert [o.inbound_id for o in again] == [first_id, first_id, second_id, second_id]
    assert len(store.inbox.recent()) == 2
    clock.advance(601)
    assert flush_stale_fragments(store, None, older_than=WINDOW) == 0
    assert len(store.inbox.recent()) == 2 and store.scalar("SELECT COUNT(*) FROM inbound_fragments") == 0
