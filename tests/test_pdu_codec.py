"""Behaviour of the PDU codec on hand-built inputs: alphabet, DCS groups, segmentation limits, addresses,
status reports, and the errors bad input gets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pdu_support import ESC, concat8, concat16, deliver_hex, gsm7_part, header, septets_of, ucs2_part

from smsgate.at_commands import gsm7
from smsgate.at_commands.pdu import (
    Deliver,
    EncodeError,
    PduError,
    StatusReport,
    Submit,
    decode,
    encode_relative_validity,
    encode_submit,
    parse_dcs,
    preview,
    relative_validity,
    status_meaning,
)

NUMBER = "+4915112345678"


def gsm7_deliver(text: str, dcs: int = 0x00) -> str:
    septets = gsm7.encode_septets(text)
    return deliver_hex(dcs, gsm7.pack_septets(septets).hex(), len(septets))


# --------------------------------------------------------------------------- alphabet


def test_default_alphabet_has_128_code_points_with_section_sign_at_0x5f() -> None:
    assert len(gsm7.DEFAULT_ALPHABET) == 128
    assert gsm7.DEFAULT_ALPHABET[0x5F] == "§"
    assert gsm7.DEFAULT_ALPHABET[0x60] == "¿"
    assert gsm7.DEFAULT_ALPHABET[0x24] == "¤"


@pytest.mark.parametrize(("char", "septets"), [("€", [0x1B, 0x65]), ("\x0c", [0x1B, 0x0A]), ("§", [0x5F]),
                                               ("@", [0x00]), ("{", [0x1B, 0x28])])
def test_characters_encode_to_their_ts_23_038_septets(char: str, septets: list[int]) -> None:
    assert gsm7.encode_septets(char) == septets
    assert decode(gsm7_deliver(char)).text == char


def test_unknown_escape_shows_its_base_character_and_is_flagged() -> None:
    septets = [0x41, 0x1B, 0x41, 0x42]  # "A", ESC "A" (not in the extension table), "B"
    message = decode(deliver_hex(0x00, gsm7.pack_septets(septets).hex(), len(septets)))
    assert message.text == "AAB"
    assert [f.code for f in message.flags] == ["unknown-escape"]


def test_escape_escape_shows_a_space() -> None:
    septets = [0x1B, 0x1B, 0x41]
    assert decode(deliver_hex(0x00, gsm7.pack_septets(septets).hex(), 3)).text == " A"


def test_lone_escape_at_the_end_is_shown_as_a_space_and_flagged_at_its_octet() -> None:
    # TS 23.038 §6.2.1.1: an escape the receiver cannot resolve is shown as a space. Strict or lenient,
    # the text is content, not structure, so it decodes.
    for lenient in (False, True):
        message = decode(gsm7_part([0x41, 0x42, ESC]), lenient=lenient)
        assert message.text == "AB " and message.ends_in_escape
        assert [(f.code, f.octet) for f in message.flags] == [("lone-escape", 21)]  # UD at 20; septet 2 in 21


def test_lone_escape_after_a_header_is_flagged_where_it_lies() -> None:
    message = decode(gsm7_part([*septets_of("Price: 5"), ESC], header(concat8(0x42, 2, 1))))
    assert message.text == "Price: 5 " and message.concat is not None and message.concat.seq == 1
    (flag,) = message.flags
    assert flag.code == "lone-escape" and flag.octet == 20 + (7 + 8) * 7 // 8  # 7 header septets, then 8


def test_escape_that_is_resolved_is_not_a_trailing_escape() -> None:
    assert not decode(gsm7_part(septets_of("5€"))).ends_in_escape


def test_text_ending_in_at_sign_keeps_it() -> None:
    # 8 septets fill 7 octets exactly; 7 septets leave 7 spare bits that must not become a second "@".
    for text in ("abcdefg@", "abcdef@"):
        assert decode(gsm7_deliver(text)).text == text


# --------------------------------------------------------------------------- DCS groups


@pytest.mark.parametrize(
    ("dcs", "encoding", "message_class"),
    [
        (0x00, "gsm7", None), (0x04, "8bit", None), (0x08, "ucs2", None), (0x10, "gsm7", 0),
        (0x11, "gsm7", 1), (0x16, "8bit", 2), (0x1B, "ucs2", 3), (0x03, "gsm7", None),
        (0x48, "ucs2", None), (0x52, "gsm7", 2), (0xC8, "gsm7", None), (0xD0, "gsm7", None),
        (0xE3, "ucs2", None), (0xF0, "gsm7", 0), (0xF5, "8bit", 1), (0xFB, "gsm7", 3), (0x85, "gsm7", None),
    ],
)
def test_every_dcs_group_gives_its_alphabet_and_class(dcs: int, encoding: str, message_class: int | None) -> None:
    coding = parse_dcs(dcs)
    assert (coding.encoding, coding.message_class) == (encoding, message_class)


def test_automatic_deletion_group_is_reported() -> None:
    assert parse_dcs(0x40).auto_delete and not parse_dcs(0x00).auto_delete


def test_message_waiting_groups_carry_the_indication() -> None:
    discard = parse_dcs(0xC8).waiting
    store_ucs2 = parse_dcs(0xE1).waiting
    assert discard is not None and (discard.active, discard.kind, discard.store) == (True, "voicemail", False)
    assert store_ucs2 is not None and (store_ucs2.active, store_ucs2.kind, store_ucs2.store) == (False, "fax", True)


def test_ucs2_message_waiting_group_decodes_ucs2_text() -> None:
    message = decode(deliver_hex(0xE8, "041F04400438", 6))
    assert (message.text, message.encoding) == ("При", "ucs2")


def test_compressed_user_data_is_flagged_not_guessed() -> None:
    message = decode(deliver_hex(0x20, "DEADBEEF", 4))
    assert message.text == ""
    assert message.flagged and message.flags[0].code == "compressed"
    assert message.user_data == bytes.fromhex("DEADBEEF")


def test_reserved_coding_group_reads_as_gsm7_with_a_flag() -> None:
    message = decode(gsm7_deliver("hi", dcs=0x85))
    assert message.text == "hi"
    assert [f.code for f in message.flags] == ["reserved-dcs"]


def test_8bit_data_keeps_its_octets() -> None:
    message = decode(deliver_hex(0xF5, "00FF7F", 3))
    assert message.encoding == "8bit" and message.message_class == 1
    assert message.user_data == b"\x00\xff\x7f"


def test_flash_message_is_class_0() -> None:
    (part,) = encode_submit(NUMBER, "Come now", flash=True)
    message = decode(part.hex)
    assert message.message_class == 0 and message.flash


# --------------------------------------------------------------------------- addresses and timestamps


def test_alphanumeric_sender_with_at_sign_inside() -> None:
    # "Design@Home": the @ is septet 0x00 in the middle of the packed name.
    message = decode(deliver_hex(0x00, "", 0, oa="14D0C4F23C7D760390EF7619"))
    assert message.number == "Design@Home"


def test_alphanumeric_sender_ending_in_a_lone_escape_decodes_with_a_flag() -> None:
    name = gsm7.pack_septets([*septets_of("Clinic"), ESC]).hex().upper()  # 7 septets: 13 semi-octets
    message = decode(deliver_hex(0x00, "", 0, oa=f"0DD0{name}"))
    assert message.number == "Clinic " and not message.ends_in_escape
    assert [(f.code, f.octet) for f in message.flags] == [("address-lone-escape", 2)]


def test_smsc_field_with_only_a_type_octet_means_no_smsc() -> None:
    message = decode("0191" + deliver_hex(0x00, "", 0)[2:])
    assert message.smsc is None and not message.flags


def test_zero_length_address_decodes_as_empty() -> None:
    message = decode(deliver_hex(0x00, "", 0, oa="0081"))
    assert message.number == ""


@pytest.mark.parametrize(("tz", "offset"), [("8A", "-07:00"), ("22", "+05:30"), ("32", "+05:45"), ("09", "-02:30"),
                                            ("00", "+00:00")])
def test_timestamp_offsets_are_kept(tz: str, offset: str) -> None:
    pdu = f"0004{'0B919451113254F6'}0000313080512061{tz}00"
    message = decode(pdu)
    assert message.timestamp is not None
    assert message.timestamp.isoformat() == f"2013-03-08T15:02:16{offset}"


def test_impossible_date_is_flagged_not_raised() -> None:
    message = decode("00040B919451113254F6000031318051206180" + "00")
    assert message.timestamp is None
    assert message.flags[0].code == "invalid-timestamp"


# --------------------------------------------------------------------------- status reports


@pytest.mark.parametrize(("st", "outcome"), [(0x00, "delivered"), (0x01, "delivered"), (0x21, "pending"),
                                             (0x46, "failed"), (0x63, "failed"), (0x7F, "failed"),
                                             (0xFF, "failed")])
def test_status_classification(st: int, outcome: str) -> None:
    text, got = status_meaning(st)
    assert got == outcome and text


def test_status_report_gives_readable_meaning() -> None:
    message = decode("07914306073011F006270B913426565711F7012081111345400120811174054043")
    assert isinstance(message, StatusReport)
    assert (message.status, message.outcome, message.status_text) == (0x43, "failed", "not obtainable")


def test_status_report_with_optional_ud_decodes_it() -> None:
    # TP-PI 0x06: DCS and UDL present; DCS 0x00, 2 septets "OK".
    pdu = "0006D60B911326880736F41110117195514011101171957140000600" + "02CF25"
    message = decode(pdu)
    assert isinstance(message, StatusReport) and message.text == "OK"


def test_status_report_with_unparseable_trailer_is_flagged() -> None:
    pdu = "0006D60B911326880736F41110117195514011101171957140000604" + "09"
    message = decode(pdu)
    assert isinstance(message, StatusReport) and message.status == 0
    assert [f.code for f in message.flags] == ["status-report-trailer"]


# --------------------------------------------------------------------------- direction and types


def test_mti_0_is_deliver_in_mt_and_refused_in_mo() -> None:
    pdu = gsm7_deliver("hi")
    assert isinstance(decode(pdu), Deliver)
    with pytest.raises(PduError, match="DELIVER-REPORT"):
        decode(pdu, direction="mo")


def test_has_smsc_false_reads_the_tpdu_directly() -> None:
    (part,) = encode_submit(NUMBER, "hello", smsc="+491710760000")
    tpdu = part.hex[len(part.hex) - 2 * part.tpdu_length :]
    message = decode(tpdu, has_smsc=False, direction="mo")
    assert isinstance(message, Submit) and message.text == "hello" and message.smsc is None


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("pdu_hex", "match"),
    [
        ("", "empty PDU"),
        ("0", "odd number of hex digits"),
        ("00G1", "non-hex character 'G' at position 2 \\(octet 1\\)"),
        ("0004", "PDU ends at octet 2, where TP-OA length"),
        ("00040B919451113254", "TP-OA needs 6 octet\\(s\\) at octet 4"),
        (deliver_hex(0x00, "C8", 5), "TP-UDL at octet 19 says 5 septets \\(5 octets\\) but only 1 octets follow"),
        (deliver_hex(0x08, "0041", 4), "says 4 octets but only 2 octets follow"),
        (deliver_hex(0x08, "0A0003010201", 6, first=0x44), "TP-UDHL at octet 20 says 10 header octets"),
        (deliver_hex(0x08, "05000301", 4, first=0x44), "TP-UDHL"),
        (deliver_hex(0x00, "", 0, first=0x44), "TP-UDHI is set but the user data at octet 20 is empty"),
        ("0003", "TP-MTI 3"),
        ("0C91" + "11" * 11, "SMSC field"),
    ],
)
def test_bad_input_raises_pdu_error_saying_what_and_where(pdu_hex: str, match: str) -> None:
    with pytest.raises(PduError, match=match) as info:
        decode(pdu_hex)
    assert info.value.octet is not None


# --------------------------------------------------------------------------- user data header (TS 23.040 §9.2.3.24)


@pytest.mark.parametrize(
    ("elements", "expected"),
    [
        ((concat8(0x11, 2, 1), concat16(0x2233, 3, 2)), (0x2233, 16, 3, 2)),
        ((concat16(0x2233, 3, 2), concat8(0x11, 2, 1)), (0x11, 8, 2, 1)),
        ((concat8(0x11, 2, 1), concat8(0x12, 4, 3)), (0x12, 8, 4, 3)),
        ((concat8(0x11, 2, 1), bytes([0x01, 2, 0x00, 0x00]), concat8(0x12, 4, 3)), (0x12, 8, 4, 3)),
    ],
    ids=["8-then-16", "16-then-8", "8-then-8", "with-another-element-between"],
)
def test_of_two_concatenation_elements_the_last_is_used(elements: tuple[bytes, ...],
                                                        expected: tuple[int, int, int, int]) -> None:
    message = decode(ucs2_part("Hi", header(*elements)))
    assert message.concat is not None
    assert (message.concat.ref, message.concat.ref_bits, message.concat.total, message.concat.seq) == expected
    assert message.text == "Hi"
    assert [f.code for f in message.flags] == ["duplicate-concat"]


def test_an_impossible_last_concatenation_element_is_ignored_and_the_valid_one_kept() -> None:
    # §9.2.3.24.1: an element with part 0 or a part above the total is ignored, as if it were not there.
    message = decode(ucs2_part("Hi", header(concat8(0x11, 2, 2), concat8(0x12, 2, 5))))
    assert message.concat is not None and (message.concat.ref, message.concat.seq) == (0x11, 2)
    assert [f.code for f in message.flags] == ["invalid-concat"]


@pytest.mark.parametrize(
    ("udh", "octet"),
    [
        (header(bytes([0x00, 5, 0x01])), 21),  # says 5 octets, 1 follows before the header ends
        (header(concat8(0x42, 2, 1), bytes([0x00, 3, 0x42, 2])), 26),  # the last element is an octet short
        (header(concat8(0x42, 2, 1), bytes([0x01])), 26),  # a lone identifier, no length octet
    ],
    ids=["overruns", "last-element-short", "lone-identifier"],
)
def test_an_element_running_past_the_header_drops_the_whole_header_and_keeps_the_text(udh: bytes,
                                                                                     octet: int) -> None:
    for pdu in (ucs2_part("Thank you", udh), gsm7_part(septets_of("Thank you"), udh)):
        message = decode(pdu)
        assert message.text == "Thank you"
        assert message.udh == () and message.concat is None
        assert [(f.code, f.octet) for f in message.flags] == [("invalid-udh", octet)]


def test_lenient_decode_accepts_short_user_data_with_a_flag() -> None:
    pdu = deliver_hex(0x08, "0041", 4)
    message = decode(pdu, lenient=True)
    assert message.text == "A" and message.flags[0].code == "ud-truncated"


# --------------------------------------------------------------------------- encoding and segmentation


def test_submit_pdu_matches_a_documented_encoding() -> None:
    # python-messaging's 'hola' with TP-VP 0xAA (4 days): AT+CMGS length 18.
    (part,) = encode_submit("+34616585119", "hola", validity=timedelta(days=4))
    assert part.hex == "0011000B914316565811F90000AA04E8373B0C"
    assert part.tpdu_length == 18


def test_smsc_and_status_report_request_are_encoded() -> None:
    (part,) = encode_submit(NUMBER, "x", smsc="+491710760000", request_status_report=True)
    message = decode(part.hex)
    assert isinstance(message, Submit)
    assert message.smsc == "+491710760000" and message.status_report_requested
    assert part.hex.startswith("07919471016700")
    assert message.reference == 0


def test_national_number_is_encoded_with_unknown_type() -> None:
    (part,) = encode_submit("0171 1234567", "x")
    message = decode(part.hex)
    assert message.number == "01711234567" and message.number_toa == 0x81


@pytest.mark.parametrize("number", ["", "+", "Megafon", "+49-151", "1" * 21])
def test_unencodable_recipient_raises_encode_error(number: str) -> None:
    with pytest.raises(EncodeError):
        encode_submit(number, "x")


@pytest.mark.parametrize(
    ("text", "ref16", "parts", "limit"),
    [
        ("a" * 160, False, 1, 160), ("a" * 161, False, 2, 153), ("a" * 306, False, 2, 153),
        ("a" * 307, False, 3, 153), ("a" * 304, True, 2, 152), ("a" * 305, True, 3, 152),
        ("Ж" * 70, False, 1, 70), ("Ж" * 71, False, 2, 67), ("Ж" * 134, False, 2, 67), ("Ж" * 133, True, 3, 66),
        ("€" * 80, False, 1, 160), ("€" * 81, False, 2, 153), ("😀" * 35, False, 1, 70),
    ],
)
def test_segmentation_limits(text: str, ref16: bool, parts: int, limit: int) -> None:
    encoded = encode_submit(NUMBER, text, ref16=ref16, reference=1)
    assert len(encoded) == parts
    assert preview(text, ref16=ref16).parts == parts
    assert preview(text, ref16=ref16).per_part_limit == limit
    assert all(len(decode(p.hex).user_data) <= 140 for p in encoded)
    assert "".join(p.text for p in encoded) == text


def test_escape_pair_is_never_split_across_parts() -> None:
    text = "a" * 152 + "€" + "b" * 10  # the € would straddle septets 153/154
    first, second = encode_submit(NUMBER, text, reference=1)
    assert first.text == "a" * 152 and second.text == "€" + "b" * 10


def test_surrogate_pair_is_never_split_across_parts() -> None:
    text = "Ж" * 66 + "😀" + "Ж" * 5  # the emoji would straddle units 67/68
    first, second = encode_submit(NUMBER, text, reference=1)
    assert first.text == "Ж" * 66 and second.text == "😀" + "Ж" * 5


def test_parts_carry_their_concatenation_reference() -> None:
    parts = encode_submit(NUMBER, "x" * 400, reference=0x1234, ref16=True)
    decoded = [decode(p.hex) for p in parts]
    assert [(m.concat.ref, m.concat.ref_bits, m.concat.total, m.concat.seq) for m in decoded if m.concat] == [
        (0x1234, 16, 3, 1), (0x1234, 16, 3, 2), (0x1234, 16, 3, 3)]


def test_out_of_range_reference_is_refused() -> None:
    with pytest.raises(EncodeError, match="8 bits"):
        encode_submit(NUMBER, "x" * 200, reference=256)


def test_preview_names_the_characters_that_forced_ucs2() -> None:
    cost = preview("Hello Zoë 😀, see you at 9€ 😀")
    assert cost.encoding == "ucs2"
    assert cost.ucs2_forced_by == ["ë", "😀"]
    assert cost.units == len("Hello Zoë 😀, see you at 9€ 😀") + 2
    gsm = preview("Price: 9€")
    assert (gsm.encoding, gsm.units, gsm.parts, gsm.ucs2_forced_by) == ("gsm7", 10, 1, [])


@pytest.mark.parametrize("vp", range(256))
def test_relative_validity_round_trips(vp: int) -> None:
    assert encode_relative_validity(relative_validity(vp)) == vp


def test_validity_rounds_up_to_the_next_representable_period() -> None:
    assert relative_validity(encode_relative_validity(timedelta(minutes=7))) == timedelta(minutes=10)
    with pytest.raises(EncodeError):
        encode_relative_validity(timedelta(weeks=64))
    with pytest.raises(EncodeError):
        encode_relative_validity(timedelta(0))
