"""Properties of the codec over generated input: any text survives encode -> decode -> reassemble in the
fewest parts, and no input makes `decode` fail with anything but PduError."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

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
