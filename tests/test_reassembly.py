"""Reassembly of concatenated messages: grouping key, order, duplicates, gaps and expiry."""

from __future__ import annotations

import pytest
from pdu_support import ESC, concat8, gsm7_part, header, septets_of, stamp, ucs2_part

from smsgate.at_commands.pdu import decode, encode_submit
from smsgate.at_commands.reassembly import Fragment, GroupKey, Reassembler, assemble


def frag(seq: int, text: str, *, sender: str = "+4915112345678", ref: int = 7, bits: int = 8,
         total: int = 3) -> Fragment:
    return Fragment(sender, ref, bits, total, seq, text)


def test_out_of_order_parts_with_duplicates_join_in_order() -> None:
    result = assemble([frag(3, "c"), frag(1, "a"), frag(3, "c"), frag(2, "b")])
    assert (result.text, result.missing, result.complete, result.duplicates) == ("abc", [], True, 1)
    assert result.key == GroupKey("+4915112345678", 7, 8, 3)


def test_gaps_are_reported_by_part_number() -> None:
    result = assemble([frag(3, "c"), frag(1, "a")])
    assert (result.text, result.missing, result.complete) == ("ac", [2], False)


def test_duplicate_with_different_text_keeps_the_first_and_is_reported() -> None:
    result = assemble([frag(1, "a"), frag(1, "X"), frag(2, "b"), frag(3, "c")])
    assert result.text == "abc" and result.conflicting == [1]


def test_fragments_of_different_groups_are_refused() -> None:
    with pytest.raises(ValueError, match="does not belong"):
        assemble([frag(1, "a"), frag(2, "b", bits=16)])


@pytest.mark.parametrize(("seq", "total"), [(0, 3), (4, 3), (1, 0)])
def test_impossible_part_numbers_are_refused(seq: int, total: int) -> None:
    with pytest.raises(ValueError, match="impossible"):
        Fragment("+1", 1, 8, total, seq, "x")


def test_groups_are_kept_apart_by_sender_reference_width_and_total() -> None:
    r = Reassembler()
    variants = [{}, {"sender": "+441234"}, {"ref": 8}, {"bits": 16}, {"total": 2}]
    for kw in variants:
        assert r.add(frag(1, "a", **kw)) is None
    assert len(r.pending()) == len(variants)
    done = r.add(frag(2, "b", total=2))
    assert done is not None and done.text == "ab"
    assert len(r.pending()) == len(variants) - 1


def test_reassembler_completes_from_decoded_pdus_in_any_order() -> None:
    text = "The clinic opens at 8:00 tomorrow. " * 12
    parts = encode_submit("+4915112345678", text, reference=200)
    assert len(parts) == 3
    r = Reassembler()
    messages = [decode(p.hex) for p in parts]
    assert r.add(messages[2]) is None
    assert r.add(messages[0]) is None
    assert r.add(messages[0]) is None
    pending = r.pending()
    assert [(g.received, g.missing) for g in pending] == [([1, 3], [2])]
    done = r.add(messages[1])
    assert done is not None and done.text == text and done.complete
    assert r.pending() == []


def test_single_message_and_one_part_concat_complete_at_once() -> None:
    r = Reassembler()
    (single,) = encode_submit("+4915112345678", "hi")
    result = r.add(decode(single.hex))
    assert result is not None and result.text == "hi"
    one_of_one = decode("0591721891F1400781721881F800003160526104848059050003C30101916536FB1DCABEEB2074D85E06"
                        "4941B19CAB060319A5C522289C96D3D3ED32286C0FA7D96131BBEC024941B19CAB0603DDD36C36A88C87A7"
                        "E565D0DB0D82C55EB0DB4B068BCD5C20")
    result = r.add(one_of_one)
    assert result is not None and result.text.startswith("Hello!You have R 19.50")


def test_expire_hands_back_incomplete_groups_after_the_deadline() -> None:
    now = [1000.0]
    r = Reassembler(clock=lambda: now[0])
    r.add(frag(1, "a"))
    now[0] += 30
    r.add(frag(1, "x", ref=9))
    now[0] += 40
    expired = r.expire(older_than=60)
    assert [(e.text, e.missing, e.complete) for e in expired] == [("a", [2, 3], False)]
    assert [g.key.reference for g in r.pending()] == [9]


def test_empty_input_is_incomplete_with_no_key() -> None:
    result = assemble([])
    assert (result.text, result.complete, result.key) == ("", False, None)


# --------------------------------------------------------------------------- an escape pair split across parts


def split_escape_parts(before: str, after: list[int], *, second: str = "gsm7") -> list[str]:
    """Two parts of one message: `before` then a lone escape, and a second part starting with `after`."""
    first = gsm7_part([*septets_of(before), ESC], header(concat8(0x42, 2, 1)))
    if second == "gsm7":
        return [first, gsm7_part(after, header(concat8(0x42, 2, 2)))]
    return [first, ucs2_part("".join(chr(c) for c in after), header(concat8(0x42, 2, 2)))]


@pytest.mark.parametrize(("code", "char"), [(0x65, "€"), (0x28, "{"), (0x0A, "\x0c"), (0x40, "|")])
def test_escape_pair_split_across_two_parts_reassembles_to_the_extension_character(code: int, char: str) -> None:
    parts = [decode(p) for p in split_escape_parts("Price: 5", [code, *septets_of(" today")])]
    assert parts[0].text == "Price: 5 " and [f.code for f in parts[0].flags] == ["lone-escape"]
    for order in (parts, parts[::-1]):
        result = assemble([Fragment.of(m) for m in order])
        assert result.complete and result.text == f"Price: 5{char} today"


def test_split_escape_joins_in_the_in_memory_reassembler_too() -> None:
    parts = [decode(p) for p in split_escape_parts("Price: 5", septets_of("e today"))]
    r = Reassembler()
    assert r.add(parts[1]) is None
    done = r.add(parts[0])
    assert done is not None and done.text == "Price: 5€ today"


@pytest.mark.parametrize(
    ("after", "second", "expected"),
    [
        (septets_of("Ab"), "gsm7", "x Ab"),  # ESC 'A' is no extension character: the escape stays a space
        (septets_of("€b"), "gsm7", "x €b"),  # the next part starts with a whole escape pair of its own
        ([0x65, 0x62], "ucs2", "x eb"),  # a UCS-2 'e' is a letter, not the septet after an escape
    ],
    ids=["not-an-extension-code", "next-starts-with-an-escape", "next-is-ucs2"],
)
def test_a_trailing_escape_the_next_part_cannot_resolve_stays_a_space(after: list[int], second: str,
                                                                       expected: str) -> None:
    parts = [decode(p) for p in split_escape_parts("x", after, second=second)]
    assert assemble([Fragment.of(m) for m in parts]).text == expected


def test_a_trailing_escape_before_a_missing_part_stays_a_space() -> None:
    first = decode(gsm7_part([*septets_of("x"), ESC], header(concat8(0x42, 3, 1))))
    third = decode(gsm7_part(septets_of("e!"), header(concat8(0x42, 3, 3))))
    result = assemble([Fragment.of(first), Fragment.of(third)])
    assert (result.text, result.missing) == ("x e!", [2])


# --------------------------------------------------------------------------- one reference, two messages


def test_a_part_conflicting_with_a_held_one_starts_a_second_message_in_the_reassembler() -> None:
    a = [decode(gsm7_part(septets_of(t), header(concat8(9, 2, n)), scts=stamp(10 + n)))
         for n, t in ((1, "first "), (2, "message"))]
    b = [decode(gsm7_part(septets_of(t), header(concat8(9, 2, n)), scts=stamp(40 + n)))
         for n, t in ((1, "second "), (2, "text"))]
    r = Reassembler()
    assert r.add(a[0]) is None
    assert r.add(b[0]) is None  # same reference and part number, other text: not a copy of a[0]
    assert len(r.pending()) == 2
    assert r.add(a[0]) is None  # a true copy still joins its own message
    done_b = r.add(b[1])  # stamped next to b[0], so it goes with it although a lacks part 2 too
    done_a = r.add(a[1])
    assert done_b is not None and done_b.text == "second text"
    assert done_a is not None and done_a.text == "first message" and done_a.duplicates == 1
    assert r.pending() == []
