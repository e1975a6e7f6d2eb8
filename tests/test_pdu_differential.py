"""Our SMS-SUBMIT PDUs, read back by two independent decoders: Gammu (python-gammu, libgammu) and
python-gsmmodem-new. Where python-gsmmodem-new is wrong, the test pins its wrong answer and says why
(docs/at-commands-decision.md explains the decision these cases support)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import gammu  # python-gammu: a test dependency, built against libgammu-dev by scripts/setup.sh
import gsmmodem.pdu as gsmpdu
import pytest

from smsgate.at_commands.pdu import SubmitPdu, decode, encode_submit


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    number: str = "+4915112345678"
    options: dict[str, Any] = field(default_factory=dict)


LONG_GSM7 = "".join(chr(ord("a") + i % 26) for i in range(400))
CASES = [
    Case("ascii", "Your appointment is on Monday at 9:30. Reply C to confirm."),
    Case("newline-and-gsm7-latin", "Grüße aus Köln\nÄrztin: Dr. Øster, Ñandú ¿?"),
    Case("greek-capitals", "ΔΦΓΛΩΠΨΣΘΞ"),
    Case("national-number", "hello", number="01711234567"),
    Case("smsc-validity-flash", "Take 2 tablets", options={
        "smsc": "+491710760000", "validity": timedelta(days=2), "flash": True}),
    Case("status-report-requested", "ping", options={"request_status_report": True}),
    Case("ucs2-cyrillic", "Привет, как дела?"),
    Case("ucs2-cjk", "世界您好！中兴通讯"),
    Case("gsm7-three-parts-8bit-ref", LONG_GSM7, options={"reference": 0x42}),
    Case("ucs2-two-parts-8bit-ref", "Ж" * 100, options={"reference": 0x99}),
    Case("ucs2-two-parts-16bit-ref", "Ж" * 100, options={"reference": 0xBEEF, "ref16": True}),
    # The cases below are where python-gsmmodem-new is wrong (see KNOWN_WRONG).
    Case("section-sign-0x5f", "Paragraph § 5 applies"),
    Case("form-feed-escape", "page one\x0cpage two"),
    Case("extension-table", "{curly} [square] ~tilde \\back |pipe ^caret €uro"),
    Case("emoji-surrogate-pairs", "Get well soon 😀🎉"),
    Case("y-diaeresis", "Grüße, ÿ"),
    Case("gsm7-three-parts-16bit-ref", LONG_GSM7, options={"reference": 0x1234, "ref16": True}),
]
CASE_IDS = [c.id for c in CASES]


def parts_of(case: Case) -> list[SubmitPdu]:
    return encode_submit(case.number, case.text, **case.options)


def gammu_text(decoded: dict[str, Any]) -> str:
    """python-gammu slices the decoded GSM-7 text by TP-UDL (septets, escapes included), so after an escape
    pair it returns what follows libgammu's NUL terminator. No GSM-7 character decodes to U+0000, so
    cutting at the first NUL gives exactly libgammu's text."""
    text: str = decoded["Text"]
    if decoded["Coding"].startswith("Default"):
        text = text.split("\x00", 1)[0]
    return text


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gammu_reads_our_submit_pdus_as_we_do(case: Case) -> None:
    parts = parts_of(case)
    for part in parts:
        ours = decode(part.hex)
        theirs = gammu.DecodePDU(bytes.fromhex(part.hex))
        assert theirs["Type"] == "Submit"
        assert theirs["Number"] == ours.number == case.number
        assert gammu_text(theirs) == ours.text == part.text
        assert theirs["Coding"] == {"gsm7": "Default_No_Compression", "ucs2": "Unicode_No_Compression"}[part.encoding]
        assert theirs["Class"] == (ours.message_class if ours.message_class is not None else -1)
        assert theirs["MessageReference"] == 0
        assert theirs["SMSC"]["Number"] == (case.options.get("smsc") or "")
        udh = theirs["UDH"]
        if part.concat is None:
            assert udh["Type"] == "NoUDH"
        else:
            assert (udh["AllParts"], udh["PartNumber"]) == (part.concat.total, part.concat.seq)
            wanted = (part.concat.ref, -1) if part.concat.ref_bits == 8 else (-1, part.concat.ref)
            assert (udh["ID8bit"], udh["ID16bit"]) == wanted
    assert "".join(gammu_text(gammu.DecodePDU(bytes.fromhex(p.hex))) for p in parts) == case.text


def test_gammu_reads_our_validity_periods() -> None:
    expected = {timedelta(hours=1): "60M", timedelta(hours=13): "780M", timedelta(days=2): "2D",
                timedelta(weeks=10): "10W"}
    for period, gammu_form in expected.items():
        (part,) = encode_submit("+4915112345678", "x", validity=period)
        assert gammu.DecodePDU(bytes.fromhex(part.hex))["SMSC"]["Validity"] == gammu_form


def _utf16_units(text: str) -> list[int]:
    raw = text.encode("utf-16-be")
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


# python-gsmmodem-new 0.13 (gsmmodem.pdu.decodeSmsPdu) decodes these of our PDUs wrongly. Each entry
# gives the reason and a function of our part text that returns the text it produces instead.
KNOWN_WRONG: dict[str, tuple[str, Any]] = {
    "section-sign-0x5f": (
        "its GSM-7 table has a backtick at 0x5F, where TS 23.038 has §",
        lambda text: text.replace("§", "`"),
    ),
    "form-feed-escape": (
        "its extension table files form feed under the key 'ÿ' with an int value, so ESC 0x0A matches "
        "nothing and the form feed is silently dropped",
        lambda text: text.replace("\x0c", ""),
    ),
    "emoji-surrogate-pairs": (
        "it decodes UCS-2 one code unit at a time, so an emoji comes back as two lone surrogates",
        lambda text: "".join(chr(unit) for unit in _utf16_units(text)),
    ),
    "gsm7-three-parts-16bit-ref": (
        "with a 16-bit concatenation reference it skips one septet too many: the first character of each "
        "part is lost",
        lambda text: text[1:],
    ),
}



@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_gsmmodem_reads_our_submit_pdus_as_we_do_except_known_bugs(case: Case) -> None:
    for part in parts_of(case):
        theirs = gsmpdu.decodeSmsPdu(part.hex)
        assert theirs["type"] == "SMS-SUBMIT"
        assert theirs["number"] == case.number
        assert theirs["reference"] == 0
        assert theirs["smsc"] == case.options.get("smsc")
        assert theirs["tpdu_length"] == part.tpdu_length
        if "validity" in case.options:
            assert theirs["validity"] == case.options["validity"]
        if part.concat is not None:
            (ie,) = theirs["udh"]
            assert (ie.reference, ie.parts, ie.number) == (part.concat.ref, part.concat.total, part.concat.seq)
        if case.id in KNOWN_WRONG:
            _reason, wrong = KNOWN_WRONG[case.id]
            assert theirs["text"] == wrong(part.text) != part.text
        else:
            assert theirs["text"] == part.text


@pytest.mark.parametrize("text", ["Get well soon 😀", "Grüße, ÿ"])
def test_gsmmodem_cannot_even_encode_emoji_or_y_diaeresis(text: str) -> None:
    """Its encoder raises: ValueError for the emoji (it packs code points into bytes) and TypeError for ÿ in
    an otherwise GSM-7 text (ÿ is its placeholder key for form feed). Ours encodes both; Gammu agrees."""
    with pytest.raises((ValueError, TypeError)):
        gsmpdu.encodeSmsSubmitPdu("+4915112345678", text)
    (part,) = encode_submit("+4915112345678", text)
    assert gammu.DecodePDU(bytes.fromhex(part.hex))["Text"] == text


@pytest.mark.parametrize(
    ("pdu_hex", "ours", "theirs", "gammu_reads", "why"),
    [
        ("0001000B914356143254F600F4054869212121", "Hi!!!", "HRéÇΦ", b"Hi!!!",
         "DCS 0xF4 (group 1111, 8-bit data, class 0) read as GSM-7"),
        ("0001000B914356143254F600E80400410042", "AB", "@$£Δ", "AB",
         "DCS 0xE8 (group 1110, voicemail waiting, UCS-2) read as GSM-7"),
    ],
)
def test_gsmmodem_ignores_dcs_groups_above_0x3f(
    pdu_hex: str, ours: str, theirs: str, gammu_reads: str | bytes, why: str
) -> None:
    assert decode(pdu_hex).text == ours, why
    assert gsmpdu.decodeSmsPdu(pdu_hex)["text"] == theirs, why
    assert gammu.DecodePDU(bytes.fromhex(pdu_hex))["Text"] == gammu_reads


def test_gsmmodem_misreads_a_zero_length_destination() -> None:
    """Vector gammu-31 (a real AT+CMGR capture): TP-DA of length 0 still has its type octet."""
    pdu_hex = "07918406010013F0310000810000FF21B19A8E1603C9642F18EE05C38140201008049AEBC7FAF29C9DBEE75D20"
    assert decode(pdu_hex).text == "15:41 22/08/08       szczesliwy. "
    assert gammu.DecodePDU(bytes.fromhex(pdu_hex))["Text"] == "15:41 22/08/08       szczesliwy. "
    assert gsmpdu.decodeSmsPdu(pdu_hex)["text"] != "15:41 22/08/08       szczesliwy. "
