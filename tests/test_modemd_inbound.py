"""The daemon's inbound path without a modem: what `InboundProcessor` stores for each PDU, and whether the
SIM's copy may then be deleted. The same path runs on the simulator in test_modemd_daemon.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pdu_support import ESC, concat8, gsm7_part, header, septets_of, stamp

from smsgate.modemd.inbound import InboundProcessor, flush_stale_fragments
from smsgate.queue import Store

WINDOW = timedelta(seconds=600)


@pytest.fixture
def processor(store: Store) -> InboundProcessor:
    modem_id = store.modems.upsert("m1")
    return InboundProcessor(store, modem_id, "imsi:001010000000001", None)


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
