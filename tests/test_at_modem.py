"""Modem helpers and parsers against the answers recorded in docs/reference/modem-profiles.md."""

from __future__ import annotations

import pytest

from smsgate.at_commands.errors import CmeError, SimLocked
from smsgate.at_commands.modem import (
    MemoryUse,
    parse_cmgl,
    parse_cmgr,
    parse_cnmi_test,
    parse_cops,
    parse_cpms_read,
    parse_cpms_test,
    parse_csca,
    parse_csq,
    parse_pin_attempts,
    parse_registration,
)

OK = "\r\nOK\r\n"
DELIVER = "07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07"


@pytest.mark.parametrize(
    ("lines", "rssi", "dbm", "bars"),
    [(["+CSQ: 18,99"], 18, -77, 3), (["+CSQ:4,0"], 4, -105, 1), (["+CSQ: 99,99"], 99, None, None),
     (["+CSQ: 31,0"], 31, -51, 5), (["+CSQ: 0,0"], 0, -113, 0)],
)
def test_signal_from_csq(lines: list[str], rssi: int, dbm: int | None, bars: int | None) -> None:
    got = parse_csq(lines)
    assert (got.rssi, got.dbm, got.bars) == (rssi, dbm, bars)


@pytest.mark.parametrize(
    ("lines", "stat", "lac", "ci", "act"),
    [
        (["+CREG: 0,0"], 0, None, None, None),
        (["+CREG: 0,1"], 1, None, None, None),
        (['+CREG: 0,1,"5E25","605F"'], 1, "5E25", "605F", None),
        (['+CREG: 0,1,"5E25","605F",2'], 1, "5E25", "605F", 2),
        (["+CREG: 2,1,4CA,81DE445"], 1, "4CA", "81DE445", None),
        (['+CREG: 2,5,"2AF5","0B88E350",2'], 5, "2AF5", "0B88E350", 2),
        ([], None, None, None, None),  # bare OK
    ],
)
def test_registration_forms(lines, stat, lac, ci, act) -> None:
    got = parse_registration(lines)
    assert (got.stat, got.lac, got.ci, got.act) == (stat, lac, ci, act)
    assert got.registered is (stat in (1, 5))


def test_registration_meaning_text() -> None:
    assert parse_registration(["+CEREG: 0,3"], "+CEREG").meaning == "registration denied"
    assert parse_registration([]).meaning == "not reported"


@pytest.mark.parametrize(
    ("lines", "number", "toa"),
    [(['+CSCA: "+79168999100",145'], "+79168999100", 145), (['+CSCA: "6281100000",145'], "+6281100000", 145),
     (['+CSCA: "002B003400340037003700300030003100310031",145'], "+447700111", 145),
     (["+CSCA: 002B003400340037003700300030003100310031,145"], "+447700111", 145), ([], None, None)],
)
def test_smsc_forms(lines, number, toa) -> None:
    got = parse_csca(lines)
    assert (got.number, got.toa) == (number, toa)


def test_operator_forms() -> None:
    assert parse_cops(['+COPS: 0,0,"Vodafone ZA",2']).name == "Vodafone ZA"
    assert parse_cops(["+COPS: 0"]).name is None


@pytest.mark.parametrize(
    ("line", "mem1", "mem2", "mem3"),
    [
        ('+CPMS: ("ME","MT","SM","SR"),("ME","MT","SM","SR"),("ME","MT","SM","SR")',
         ("ME", "MT", "SM", "SR"), ("ME", "MT", "SM", "SR"), ("ME", "MT", "SM", "SR")),
        ('+CPMS: (("SM","BM","SR"),("SM"))', ("SM", "BM", "SR"), ("SM",), ()),  # Wavecom nested
        ('+CPMS: ("SM","ME"),("SM","ME"),("SM","ME")', ("SM", "ME"), ("SM", "ME"), ("SM", "ME")),
        ('+CPMS: ("SM", "ME", "SM_P", "ME_P", "MT"),("SM", "ME"),("SM")',
         ("SM", "ME", "SM_P", "ME_P", "MT"), ("SM", "ME"), ("SM",)),  # Alcatel spaces
        ("+CPMS: (),(),()", (), (), ()),  # Nokia: no storage over AT
        ("+CPMS: ", (), (), ()),  # Samsung J700
    ],
)
def test_storage_test_forms(line, mem1, mem2, mem3) -> None:
    got = parse_cpms_test([line])
    assert (got.mem1, got.mem2, got.mem3) == (mem1, mem2, mem3)


def test_storage_read_and_set_forms() -> None:
    assert parse_cpms_read(['+CPMS: "SM",14,50,"SM",14,50,"SR",0,20']) == (
        MemoryUse("SM", 14, 50), MemoryUse("SM", 14, 50), MemoryUse("SR", 0, 20))
    assert parse_cpms_read(["+CPMS: 14,50,14,50"]) == (MemoryUse(None, 14, 50), MemoryUse(None, 14, 50))
    assert parse_cpms_read(["+CPMS: ,,,,,,,,"]) == ()
    assert MemoryUse("SM", 14, 50).free == 36


@pytest.mark.parametrize(
    ("line", "mode", "mt", "ds"),
    [
        ("+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)", {0, 1, 2}, {0, 1, 2, 3}, {0, 1, 2}),
        ("+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)", {0, 1, 2, 3}, {0, 1, 2, 3}, {0, 1, 2}),
        ("+CNMI: (2),(0-1,3),(0,2),(0-1),(0)", {2}, {0, 1, 3}, {0, 1}),
        ("+CNMI: (0-2),(0,1,3),(0),(0,1),(0,1)", {0, 1, 2}, {0, 1, 3}, {0, 1}),
        ("+CNMI:(0-3),(0-3),(0-3),(0,1),(0,1)", {0, 1, 2, 3}, {0, 1, 2, 3}, {0, 1}),
    ],
)
def test_cnmi_support_ranges(line, mode, mt, ds) -> None:
    got = parse_cnmi_test([line])
    assert (got.mode, got.mt, got.ds) == (mode, mt, ds)


def test_cmgl_headers_with_every_alpha_form_and_pdu_oddities() -> None:
    lines = ["+CMGL: 0,0,,35", DELIVER.lower(), '+CMGL: 1,1,"abc123",39', DELIVER + '"',
             "+CMGL: 2,1,Test User 123,30", DELIVER + "FFFFFFFF", '+CMGL: 3,1,"",39', DELIVER]
    got = parse_cmgl(lines)
    assert [(m.index, m.stat, m.alpha, m.length) for m in got] == [
        (0, 0, None, 35), (1, 1, "abc123", 39), (2, 1, "Test User 123", 30), (3, 1, None, 39)]
    assert [m.pdu_hex for m in got[1:]] == [DELIVER] * 3
    assert got[0].pdu_hex == DELIVER


@pytest.mark.parametrize(
    ("header", "stat", "length"),
    [("+CMGR: 3,,29", 3, 29), ("+CMGR: 0,23", 0, 23), ("+CMGR: 4,1,,151", 4, 151), ("+CMGR: 24", None, 24),
     ("+CMGR: ,,92", None, 92), ("+CMGR: 2,2,,174", 2, 174), ("+CMGR: ,,27", None, 27)],
)
def test_cmgr_header_variants(header: str, stat, length) -> None:
    got = parse_cmgr([header, DELIVER], index=5)
    assert got is not None and (got.index, got.stat, got.length, got.pdu_hex) == (5, stat, length, DELIVER)


def test_cmgr_of_an_empty_slot_is_none() -> None:
    assert parse_cmgr([]) is None


def test_identity_of_wavecom_with_leading_spaces_and_errors(modem_for) -> None:
    _, modem = modem_for({
        "AT+CGMI": "\r\n WAVECOM MODEM\r\n\r\nOK\r\n",
        "AT+CGMM": "\r\n MULTIBAND  900E  1800 \r\n\r\n\r\nOK\r\n",
        "AT+CGMR": "\r\nERROR\r\n",
        "AT+CGSN": "\r\n111111111111111\r\nOK\r\n",
        "AT+CIMI": "\r\n+CME ERROR: 11\r\n",
        "AT+CCID": "\r\nCOMMAND NOT SUPPORT\r\n",
        "AT^ICCID?": '\r\n^ICCID: "8944110063141598367F"\r\nOK\r\n',
    })
    ident = modem.identify()
    assert ident.manufacturer == "WAVECOM MODEM"
    assert ident.model == "MULTIBAND  900E  1800"
    assert ident.revision is None and ident.imsi is None
    assert ident.imei == "111111111111111"
    assert ident.iccid == "8944110063141598367F"


def test_identity_of_simcom_and_nokia_multiline(modem_for) -> None:
    _, modem = modem_for({
        "AT+CGMI": "\r\nSIMCOM_Ltd\r\nOK\r\n", "AT+CGMM": "\r\nSIMCOM_SIM868\r\nOK\r\n",
        "AT+CGMR": "\r\nRevision:1418B06SIM868M32_BT\r\nOK\r\n", "AT+CGSN": "\r\n868298067490038\r\nOK\r\n",
        "AT+CIMI": "\r\n111111111111111\r\nOK\r\n", "AT+CCID": "\r\n+CCID: 89441100631415983670\r\nOK\r\n",
    })
    ident = modem.identify()
    assert (ident.revision, ident.iccid) == ("1418B06SIM868M32_BT", "89441100631415983670")
    _, nokia = modem_for({"AT+CGMR": "\r\nV ICPR72_08w44.1\r\n24-11-08\r\nRM-348\r\n(c) Nokia\r\n11.049\r\nOK\r\n"})
    assert nokia.identify().revision == "V ICPR72_08w44.1 24-11-08 RM-348 (c) Nokia 11.049"


def test_pin_state_wavecom_without_ok_and_standard(modem_for) -> None:
    _, wavecom = modem_for({"AT+CPIN?": "\r\n+CPIN: SIM PIN\r\n"})
    assert wavecom.pin_state() == "SIM PIN"
    _, huawei = modem_for({"AT+CPIN?": "\r\n+CPIN: READY\r\n\r\nOK\r\n", "AT+CSQ": "\r\n+CSQ: 20,99\r\nOK\r\n"})
    assert huawei.pin_state() == "READY"
    assert huawei.signal().rssi == 20


def test_enter_pin_refuses_when_puk_is_needed_and_sends_nothing(modem_for) -> None:
    peer, modem = modem_for({"AT+CPIN?": "\r\n+CPIN: SIM PUK\r\nOK\r\n"})
    with pytest.raises(SimLocked, match="SIM PUK"):
        modem.enter_pin("1234")
    assert peer.texts() == ["AT+CPIN?"]


def test_enter_pin_makes_exactly_one_attempt(modem_for) -> None:
    peer, modem = modem_for({"AT+CPIN?": "\r\n+CPIN: SIM PIN\r\nOK\r\n", 'AT+CPIN="0000"': "\r\n+CME ERROR: 16\r\n"})
    with pytest.raises(CmeError) as info:
        modem.enter_pin("0000")
    assert info.value.code == 16
    assert "0000" not in str(info.value)
    assert peer.texts() == ["AT+CPIN?", 'AT+CPIN="0000"']


def test_enter_pin_skips_when_ready_and_rejects_non_digits(modem_for) -> None:
    peer, modem = modem_for({"AT+CPIN?": "\r\n+CPIN: READY\r\nOK\r\n"})
    assert modem.enter_pin("1234") == "READY"
    assert peer.texts() == ["AT+CPIN?"]
    with pytest.raises(ValueError):
        modem.enter_pin("12ab")


def test_message_store_commands_over_pty(modem_for) -> None:
    peer, modem = modem_for({
        "AT+CMGL=4": f"\r\n+CMGL: 0,0,,39\r\n{DELIVER}\r\n+CMGL: 1,1,,39\r\n{DELIVER}\r\n\r\nOK\r\n",
        "AT+CMGR=1": f"\r\n+CMGR: 1,,39\r\n{DELIVER}\r\n\r\nOK\r\n",
        "AT+CMGD=1": OK, "AT+CMGD=1,4": OK,
        "AT+CPMS=?": '\r\n+CPMS: (("SM","BM","SR"),("SM"))\r\nOK\r\n',
        'AT+CPMS="SM","SM"': "\r\n+CPMS: 14,50,14,50\r\nOK\r\n",
        "AT+CNMI=?": "\r\n+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)\r\nOK\r\n", "AT+CNMI=2,1,0,2,0": OK,
        "AT+CMGF=0": OK, "ATE0": OK, "AT+CMEE=1": OK, "AT+CSMS=1": "\r\n+CSMS: 1,1,1\r\nOK\r\n",
        "AT+CNMA": OK, "AT+CMMS=2": OK, "AT+CFUN=1": OK,
    })
    assert [m.index for m in modem.list_messages()] == [0, 1]
    assert modem.read_message(1).pdu_hex == DELIVER
    modem.delete_message(1)
    modem.delete_message(1, 4)
    assert modem.storage_options().mem1 == ("SM", "BM", "SR")
    assert modem.select_storage("SM", "SM") == (MemoryUse("SM", 14, 50), MemoryUse("SM", 14, 50))
    support = modem.supported_cnmi()
    assert support is not None
    modem.set_cnmi(2, 1, 0, 2, 0)
    modem.set_pdu_mode()
    modem.set_echo(False)
    modem.set_numeric_errors()
    assert modem.csms(1) == (1, 1, 1)
    modem.cnma()
    modem.cmms(2)
    modem.reset(1)
    assert "AT+CNMI=2,1,0,2,0" in peer.texts()


def test_nokia_without_cnmi_gives_none(modem_for) -> None:
    _, modem = modem_for({})
    assert modem.supported_cnmi() is None


@pytest.mark.parametrize(
    ("answer", "number"),
    [
        ('\r\n+CNUM: "","+15550001001",145\r\n\r\nOK\r\n', "+15550001001"),
        ('\r\n+CNUM: "Own number","15550001001",145\r\n+CNUM: "Fax","15550001002",145\r\nOK\r\n', "+15550001001"),
        ('\r\n+CNUM: ,"5550001001",129\r\nOK\r\n', "5550001001"),
        ("\r\nOK\r\n", None),  # no MSISDN stored on the SIM: the common case
        ("\r\nERROR\r\n", None),
        ("\r\nCOMMAND NOT SUPPORT\r\n", None),
    ],
)
def test_own_number_from_cnum_tolerates_sims_without_one(modem_for, answer: str, number: str | None) -> None:
    _peer, modem = modem_for({"AT+CNUM": answer})
    assert modem.own_number() == number


@pytest.mark.parametrize(
    ("lines", "left"),
    [
        (["+CPINR: SIM PIN,3,3", "+CPINR: SIM PUK,10,10"], 3),  # 27.007 / the simulator
        (["+CPINR: SIM PUK,10,10", "+CPINR: SIM PIN,1,3"], 1),  # order does not matter
        (['+CPINR: "SIM PIN",2'], 2),  # quoted code, no default
        (['+QPINC: "SC",1,10', '+QPINC: "P2",3,10'], 1),  # Quectel: SC is the SIM PIN
        (['+QPINC: "P2",3,10'], None),  # only PIN2: not ours
        (["^CPIN: SIM PIN,3,10,3,10,3"], 3),  # Huawei: <code>,<times>,<puk>,<pin>,<puk2>,<pin2>
        (["^CPIN: READY,,10,2,10,3"], 2),
        (["^CPIN: SIM PIN,3"], None),  # short form: no PIN field
        (["+CPINR: SIM PIN,,3"], None),
        (["+CPINR: SIM PIN,255,3"], None),  # not a believable counter
        (["+CPINR:"], None),
        (["garbage"], None),
        ([], None),
    ],
)
def test_pin_attempts_parsed_from_every_vendor_form_and_nonsense_is_none(lines: list[str], left) -> None:
    assert parse_pin_attempts(lines) == left


def test_pin_attempts_left_falls_through_refusing_vendors_to_the_one_that_answers(modem_for) -> None:
    peer, huawei = modem_for({"AT+CPINR": "\r\nCOMMAND NOT SUPPORT\r\n", "AT+QPINC?": "\r\n+CME ERROR: 4\r\n",
                              "AT^CPIN?": "\r\n^CPIN: SIM PIN,1,10,1,10,3\r\n\r\nOK\r\n"})
    assert huawei.pin_attempts_left() == 1
    assert peer.texts() == ["AT+CPINR", "AT+QPINC?", "AT^CPIN?"]
    peer, standard = modem_for({"AT+CPINR": "\r\n+CPINR: SIM PIN,2,3\r\n+CPINR: SIM PUK,10,10\r\nOK\r\n"})
    assert standard.pin_attempts_left() == 2
    assert peer.texts() == ["AT+CPINR"]


def test_pin_attempts_left_is_none_when_no_modem_command_says(modem_for) -> None:
    peer, modem = modem_for({"AT+CPINR": "\r\nOK\r\n", "AT+QPINC?": "\r\n+QPINC: \r\nOK\r\n"})
    assert modem.pin_attempts_left() is None
    assert peer.texts() == ["AT+CPINR", "AT+QPINC?", "AT^CPIN?"]
