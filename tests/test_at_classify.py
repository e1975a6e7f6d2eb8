"""Table-driven tests of the pure line classifier."""

from __future__ import annotations

import pytest

from smsgate.at_commands.classify import (
    Echo,
    Final,
    FinalKind,
    Info,
    Prompt,
    Urc,
    classify,
    pending_for,
    split_fields,
)

CSQ = pending_for("AT+CSQ")
CREG = pending_for("AT+CREG?")
CPIN = pending_for("AT+CPIN?", terminal=("+CPIN:",))
CGMI = pending_for("AT+CGMI")
CMGL = pending_for("AT+CMGL=4")
CMGS = pending_for("AT+CMGS=23", expect=("+CMGS:",))


@pytest.mark.parametrize(
    ("line", "pending", "kind"),
    [
        ("AT+CSQ", CSQ, Echo),
        ("at+csq", CSQ, Echo),
        ("+CSQ: 18,99", CSQ, Info),
        ("+CSQ:4,0", CSQ, Info),
        ("+CREG: 0,1", CREG, Info),
        ("+CREG: 2,1,4CA,81DE445", CREG, Info),
        ("+CREG: 1", CREG, Urc),  # URC form (one field) while the read is pending
        ("+CREG: 0,1", CSQ, Urc),
        ("+CREG: 1", None, Urc),
        ("+CPIN: READY", CPIN, Info),
        ("+CPIN: READY", None, Urc),
        ("+CPIN: READY", CSQ, Urc),
        ("WAVECOM MODEM", CGMI, Info),
        ("+CGMI: SIMCOM_Ltd", CGMI, Info),
        ("RING", CGMI, Urc),
        ("+CMGL: 0,0,,35", CMGL, Info),
        ("07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07", CMGL, Info),
        ('+CMTI: "SM",3', CMGL, Urc),
        ("+CMGS: 42", CMGS, Info),
        ("> ", CMGS, Prompt),
        (">", CMGS, Prompt),
        ('+ZDONR: "METEOR",272,3,"CS_ONLY","ROAM_OFF"', CMGS, Urc),
        ('+ZPASR: "UMTS"', CMGS, Urc),
        ("^RSSI: 17", CSQ, Urc),
        ("^BOOT: 20952161,0,0,0,72", None, Urc),
        ("^MODE: 5,4", None, Urc),
        ("^SRVST: 2", None, Urc),
        ("^SIMST: 1", None, Urc),
        ("+CRING: VOICE", None, Urc),
        ('+CLIP: "+27820000000",145,,,,0', None, Urc),
        ('+CUSD: 0,"Available Balance: R 96.45 .",15', CSQ, Urc),
        ("+CBM: 88", None, Urc),
        ("RDY", None, Urc),
        ("Call Ready", CSQ, Urc),
        ("SMS Ready", None, Urc),
        ('+QIND: SMS DONE', None, Urc),
        ("+CFUN: 1", None, Urc),
        ('+CDSI: "SR",0', CSQ, Urc),
        ('+CGREG: 1', None, Urc),
        ('+CEREG: 5', CSQ, Urc),
        ("NO CARRIER", None, Urc),
        ("garbage \ufffd", None, Urc),
        ("some stray text", CSQ, Info),
    ],
)
def test_line_kind_against_pending_command(line: str, pending, kind: type) -> None:
    assert type(classify(line, pending)) is kind


@pytest.mark.parametrize(
    ("line", "kind", "code", "text"),
    [
        ("OK", FinalKind.OK, None, None),
        ("ERROR", FinalKind.ERROR, None, None),
        ("+CMS ERROR: 500", FinalKind.CMS_ERROR, 500, None),
        ("+CMS ERROR:500", FinalKind.CMS_ERROR, 500, None),
        ("+CME ERROR: 14", FinalKind.CME_ERROR, 14, None),
        ("+CME ERROR: SIM PIN required", FinalKind.CME_ERROR, 11, "SIM PIN required"),
        ("+CMS ERROR: SIM busy", FinalKind.CMS_ERROR, 314, "SIM busy"),
        ("+CME ERROR: something odd", FinalKind.CME_ERROR, None, "something odd"),
        ("NO CARRIER", FinalKind.NO_CARRIER, None, None),
        ("COMMAND NOT SUPPORT", FinalKind.VENDOR, None, None),
        ("TOO MANY PARAMETERS", FinalKind.VENDOR, None, None),
    ],
)
def test_final_results_with_codes(line: str, kind: FinalKind, code: int | None, text: str | None) -> None:
    got = classify(line, CSQ)
    assert isinstance(got, Final)
    assert (got.kind, got.code, got.text) == (kind, code, text)
    assert got.ok is (kind is FinalKind.OK)


def test_urc_carries_name_and_unquoted_args() -> None:
    got = classify('+CMTI: "SM",3', CSQ)
    assert got == Urc(name="+CMTI", args=("SM", "3"), line='+CMTI: "SM",3')


def test_unknown_prefixed_line_during_command_is_an_unknown_urc_not_info() -> None:
    got = classify('+BEARTYPE: "UMTS","CS_PS"', CSQ)
    assert isinstance(got, Urc) and not got.known


def test_expect_overrides_derived_prefix() -> None:
    assert isinstance(classify('+BEARTYPE: "UMTS","CS_PS"', pending_for("AT+ZPAS?", expect=("+BEARTYPE:",))),
                      Info)


def test_split_fields_keeps_commas_inside_quotes() -> None:
    assert split_fields('0,"a,b",,Test User 123,35') == ("0", "a,b", "", "Test User 123", "35")
