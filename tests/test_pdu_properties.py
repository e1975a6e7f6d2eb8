"""Properties of the codec over generated input: any text survives encode -> decode -> reassemble in the
fewest parts, and survives a sender's split at any septet, escape pairs included; no input makes `decode`
fail with anything but PduError, including the header shapes TS 23.040 §9.2.3.24 has rules for."""

from __future__ import annotations

import itertools
import json
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pdu_support import ESC, concat8, concat16, deliver_hex, gsm7_part, gsm7_user_data, header

from smsgate.at_commands import gsm7
from smsgate.at_commands.pdu import PduError, decode, encode_submit
from smsgate.at_commands.reassembly import Fragment, assemble

VECTORS_PATH = Path(__file__).resolve().parent / "data" / "pdu-vectors.json"
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# TS 23.038 extension-table characters, written out here rather than taken from the module under test.
EXTENSION = "\x0c^{}\\[~]|€"
BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿" \
        "abcdefghijklmnopqrstuvwxyzäöñüà"
EMOJI = "😀🎉👍🏽🇩🇪❤️‍🔥𝄞"

characters = st.one_of(
    st.sampled_from(BASIC),
    st.sampled_from(EXTENSION),
    st.sampled_from(EMOJI),
    st.characters(exclude_categories=("Cs",)),
)
texts = st.one_of(
    st.text(alphabet=st.sampled_from(BASIC + EXTENSION), max_size=480),
    st.text(alphabet=characters, max_size=300),
)


def minimum_parts(text: str, ref16: bool, force_ucs2: bool) -> int:
    """Fewest parts by dynamic programming over every split point: a different method from the encoder's
    greedy fill, so the two agreeing is evidence that greedy is optimal."""
    if not force_ucs2 and all(ch in BASIC or ch in EXTENSION for ch in text):
        costs = [2 if ch in EXTENSION else 1 for ch in text]
        single, multi = 160, 152 if ref16 else 153
    else:
        costs = [len(ch.encode("utf-16-be")) // 2 for ch in text]
        single, multi = 70, 66 if ref16 else 67
    if sum(costs) <= single:
        return 1

    @cache
    def best(start: int) -> int:
        if start == len(costs):
            return 0
        result, used = len(costs) + 1, 0
        for end in range(start, len(costs)):
            used += costs[end]
            if used > multi:
                break
            result = min(result, 1 + best(end + 1))
        return result

    return best(0)


@FAST
@given(text=texts, ref16=st.booleans(), force_ucs2=st.booleans())
def test_any_text_round_trips_in_the_fewest_parts(text: str, ref16: bool, force_ucs2: bool) -> None:
    parts = encode_submit("+4915112345678", text, ref16=ref16, force_ucs2=force_ucs2)
    decoded = [decode(p.hex) for p in parts]
    assert all(not m.flags for m in decoded)
    assert [m.text for m in decoded] == [p.text for p in parts]
    fragments = [Fragment.of(m) for m in reversed(decoded)]
    assert assemble(fragments).text == text
    assert len(parts) == minimum_parts(text, ref16, force_ucs2)


@FAST
@given(data=st.binary(max_size=200), has_smsc=st.booleans(), mo=st.booleans(), lenient=st.booleans())
def test_any_bytes_decode_to_a_message_or_a_pdu_error(data: bytes, has_smsc: bool, mo: bool, lenient: bool) -> None:
    try:
        message = decode(data.hex(), has_smsc=has_smsc, direction="mo" if mo else "mt", lenient=lenient)
    except PduError as e:
        assert str(e)
        return
    assert isinstance(message.text, str)


@FAST
@given(text=texts, cut=st.integers(min_value=1, max_value=400))
def test_a_truncated_pdu_is_always_an_error_never_a_shorter_message(text: str, cut: int) -> None:
    part = encode_submit("+4915112345678", text, smsc="+491710760000")[0]
    octets = len(part.hex) // 2
    shorter = part.hex[: 2 * (octets - 1 - cut % octets)]
    try:
        decode(shorter)
    except PduError:
        return
    raise AssertionError(f"{shorter} decoded although it is truncated")


@FAST
@given(septets=st.lists(st.integers(min_value=0, max_value=127), max_size=200), offset=st.integers(0, 6))
def test_septet_packing_round_trips(septets: list[int], offset: int) -> None:
    packed = gsm7.pack_septets(septets, offset)
    assert len(packed) == (offset + 7 * len(septets) + 7) // 8
    assert gsm7.unpack_septets(packed, len(septets), offset) == septets


VECTOR_PDUS = [v["pdu_hex"] for v in json.loads(VECTORS_PATH.read_text(encoding="utf-8"))["vectors"]]


@FAST
@given(pdu=st.sampled_from(VECTOR_PDUS), position=st.integers(min_value=0), value=st.integers(0, 255),
       lenient=st.booleans())
def test_a_real_pdu_with_one_octet_changed_decodes_or_raises_pdu_error(
    pdu: str, position: int, value: int, lenient: bool
) -> None:
    raw = bytearray.fromhex(pdu)
    raw[position % len(raw)] = value
    try:
        message = decode(raw.hex(), lenient=lenient)
    except PduError:
        return
    assert isinstance(message.text, str)


# --------------------------------------------------------------------------- shapes senders make


def element_of(iei: int, data: bytes) -> bytes:
    return bytes([iei, len(data)]) + data


concat_elements = st.one_of(
    st.builds(concat8, st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)),
    st.builds(concat16, st.integers(0, 0xFFFF), st.integers(0, 255), st.integers(0, 255)),
)
other_elements = st.builds(element_of, st.integers(0, 255).filter(lambda i: i not in (0x00, 0x08)),
                           st.binary(max_size=8))
# The last element of a header that does not fit in it: a lone identifier, or a length running past the end.
broken_tails = st.one_of(
    st.builds(lambda iei: bytes([iei]), st.integers(0, 255)),
    st.builds(lambda iei, n, data: bytes([iei, len(data) + n]) + data,
              st.integers(0, 255), st.integers(1, 20), st.binary(max_size=6)),
)
gsm7_codes = st.integers(0, 127).filter(lambda c: c != ESC)


def valid_concat(element: bytes) -> tuple[int, int, int, int] | None:
    """(ref, bits, total, seq) of a concatenation element TS 23.040 §9.2.3.24.1 lets a receiver use."""
    if element[0] == 0x00:
        ref, bits, total, seq = element[2], 8, element[3], element[4]
    else:
        ref, bits, total, seq = (element[2] << 8) | element[3], 16, element[4], element[5]
    return (ref, bits, total, seq) if total and 1 <= seq <= total else None


@FAST
@given(elements=st.lists(st.one_of(concat_elements, other_elements), max_size=5),
       tail=st.none() | broken_tails, body=st.lists(gsm7_codes, max_size=60), lone_escape=st.booleans(),
       ucs2=st.booleans())
def test_any_header_of_concatenation_and_other_elements_decodes_by_the_header_rules(
    elements: list[bytes], tail: bytes | None, body: list[int], lone_escape: bool, ucs2: bool
) -> None:
    raw = b"".join(elements) + (tail or b"")
    udh = bytes([len(raw)]) + raw
    septets = [*body, ESC] if lone_escape and not ucs2 else body
    if ucs2:
        text = "".join(gsm7.DEFAULT_ALPHABET[c] for c in body)
        ud = udh + text.encode("utf-16-be")
        pdu = deliver_hex(0x08, ud.hex(), len(ud), first=0x44)
    else:
        text = gsm7.decode_septets(body).text + (" " if lone_escape else "")
        ud_hex, udl = gsm7_user_data(udh, septets)
        if udl > 255:
            return
        pdu = deliver_hex(0x00, ud_hex, udl, first=0x44)
    message = decode(pdu)
    assert message.text == text
    assert message.ends_in_escape == (lone_escape and not ucs2)
    if tail is not None:
        assert message.udh == () and message.concat is None
        assert "invalid-udh" in {f.code for f in message.flags}
        return
    assert [bytes([ie.iei, len(ie.data)]) + ie.data for ie in message.udh] == elements
    usable = [c for c in (valid_concat(e) for e in elements if e[0] in (0x00, 0x08)) if c is not None]
    got = message.concat
    assert (None if got is None else (got.ref, got.ref_bits, got.total, got.seq)) == (usable[-1] if usable else None)


@FAST
@given(data=st.data(), text=st.text(alphabet=st.sampled_from(BASIC + EXTENSION), min_size=2, max_size=120),
       ref=st.integers(0, 255))
def test_a_text_split_at_any_septets_even_inside_an_escape_pair_reassembles_whole(
    data: st.DataObject, text: str, ref: int
) -> None:
    septets = gsm7.encode_septets(text)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(septets) - 1), min_size=1, max_size=4)))
    bounds = [0, *cuts, len(septets)]
    chunks = [septets[a:b] for a, b in itertools.pairwise(bounds)]
    pdus = [gsm7_part(chunk, header(concat8(ref, len(chunks), n))) for n, chunk in enumerate(chunks, start=1)]
    messages = [decode(p) for p in pdus]
    # The encoder never writes ESC ESC, so a part's last septet being ESC means a pair was cut there.
    assert [m.ends_in_escape for m in messages] == [chunk[-1] == ESC for chunk in chunks]
    order = data.draw(st.permutations(messages))
    assert assemble([Fragment.of(m) for m in order]).text == text


@FAST
@given(elements=st.lists(st.one_of(concat_elements, other_elements), max_size=4), tail=st.none() | broken_tails,
       udhl_delta=st.integers(-3, 3), udl_delta=st.integers(-3, 3), body=st.binary(max_size=40),
       dcs=st.sampled_from([0x00, 0x04, 0x08]), lenient=st.booleans())
def test_any_header_with_lengths_that_do_not_add_up_is_a_message_or_a_pdu_error(
    elements: list[bytes], tail: bytes | None, udhl_delta: int, udl_delta: int, body: bytes, dcs: int,
    lenient: bool
) -> None:
    raw = b"".join(elements) + (tail or b"")
    ud = bytes([max(0, min(255, len(raw) + udhl_delta))]) + raw + body
    udl = len(ud) * 8 // 7 if dcs == 0x00 else len(ud)
    try:
        message = decode(deliver_hex(dcs, ud.hex(), max(0, min(255, udl + udl_delta)), first=0x44), lenient=lenient)
    except PduError as e:
        assert str(e) and e.octet is not None
        return
    assert isinstance(message.text, str)
