"""The simulator's own PDU code, checked against recorded vectors and an independent decoder."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from gsmmodem.pdu import decodeSmsPdu, encodeSmsSubmitPdu

from smsgate.simulator import pdu

VECTORS_PATH = Path(__file__).resolve().parent / "data" / "pdu-vectors.json"
VECTORS = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))["vectors"]
SUBMITS = [v for v in VECTORS if v["type"] == "submit"]


@pytest.mark.parametrize("vector", SUBMITS, ids=[v["id"] for v in SUBMITS])
def test_recorded_submit_vectors_parse_or_are_rejected_when_malformed(vector):
    raw = bytes.fromhex(vector["pdu_hex"])
    expected = vector["expected"]
    if "malformed" in vector["tags"]:
        with pytest.raises(pdu.PduFormatError):
            pdu.parse_submit(pdu.split_smsc(raw)[1])
        return
    smsc, tpdu = pdu.split_smsc(raw)
    parsed = pdu.parse_submit(tpdu)
    assert parsed.destination == expected["number"]
    if "smsc" in expected:
        assert smsc == expected["smsc"]
    if "reference" in expected:
        assert parsed.mr == expected["reference"]
    if expected.get("concat"):
        assert list(parsed.concat[1:]) == expected["concat"][1:]
    if "text" in expected and expected.get("encoding") != "8bit":
        assert parsed.text == expected["text"]
    if expected.get("encoding") == "8bit":
        assert parsed.payload.decode("latin-1") == expected["text"]


def test_submit_flags_validity_and_udh_are_read():
    [first, second] = encodeSmsSubmitPdu("+15557654321", "x" * 200, reference=9, requestStatusReport=True,
                                         validity=dt.timedelta(days=2))
    parsed = pdu.parse_at_submit(first.data.hex(), first.tpduLength)
    assert parsed.srr and parsed.mr == 9 and len(parsed.validity) == 1
    assert parsed.concat[1:] == (2, 1)
    assert parsed.text == "x" * 153
    assert pdu.parse_at_submit(second.data.hex(), second.tpduLength).concat[1:] == (2, 2)


def test_length_mismatch_names_both_lengths():
    sub = encodeSmsSubmitPdu("+15557654321", "hi")[0]
    with pytest.raises(pdu.PduFormatError, match=rf"AT\+CMGS={sub.tpduLength + 2} but the TPDU has"):
        pdu.parse_at_submit(sub.data.hex(), sub.tpduLength + 2)


@pytest.mark.parametrize(
    "text",
    ["plain ascii", "{braces} [and] €uro ^ | ~ \\", "é" * 200, "Ж" * 71, "😀 emoji", "x" * 160, "x" * 161],
)
def test_deliver_pdus_decode_independently_to_the_same_text(text):
    parts = pdu.build_deliver("+15557654321", text, reference=42)
    decoded = [decodeSmsPdu("00" + p.tpdu.hex()) for p in parts]
    assert all(d["type"] == "SMS-DELIVER" and d["number"] == "+15557654321" for d in decoded)
    if "😀" in text:  # python-gsmmodem reads UCS-2 strictly; the surrogate pair survives as two units
        assert "".join(d["text"] for d in decoded).encode("utf-16", "surrogatepass").decode("utf-16") == text
    else:
        assert "".join(d["text"] for d in decoded) == text
    for i, d in enumerate(decoded, start=1):
        if len(parts) > 1:
            assert (d["udh"][0].reference, d["udh"][0].parts, d["udh"][0].number) == (42, len(parts), i)


def test_escape_pairs_are_never_split_across_parts():
    text = "a" * 152 + "€" + "b" * 10  # 164 septets: the escape pair would straddle septet 153
    parts = pdu.build_deliver("+15557654321", text)
    assert [p.text for p in parts] == ["a" * 152, "€" + "b" * 10]


def test_status_report_decodes_independently_with_offset_timestamps():
    tz = dt.timezone(dt.timedelta(hours=-5))
    when = dt.datetime(2026, 11, 22, 13, 45, 10, tzinfo=tz)
    report = pdu.build_status_report(200, "+15557654321", 0x41, submitted=when, done=when)
    decoded = decodeSmsPdu("00" + report.hex())
    assert (decoded["reference"], decoded["status"], decoded["number"]) == (200, 0x41, "+15557654321")
    assert decoded["time"].utcoffset() == dt.timedelta(hours=-5)
    assert decoded["time"].replace(tzinfo=None) == when.replace(tzinfo=None)
