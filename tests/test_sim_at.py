"""What a client sees on the wire when it speaks AT to a simulated modem (generic personality)."""

from __future__ import annotations

import re

import pytest
from gsmmodem.pdu import decodeSmsPdu, encodeSmsSubmitPdu

from smsgate.simulator import SimModemSpec, Simulator
from smsgate.simulator.wire import WireClient

MODEM = "+15550001001"
PEER = "+15557654321"


@pytest.fixture
def sim(tmp_path):
    with Simulator(tmp_path, [SimModemSpec("m1", msisdn=MODEM)], latency=0, cnma_timeout=0.3) as s:
        yield s


def submit(text: str = "hi", **kw):
    return encodeSmsSubmitPdu(PEER, text, **kw)[0]


def test_echo_is_on_at_power_up_and_ate0_switches_it_off(sim):
    with WireClient(sim.modem("m1").path) as c:
        assert c.command("AT") == b"AT\r\r\nOK\r\n"
        assert c.command("ATE0") == b"ATE0\r\r\nOK\r\n"
        assert c.command("AT") == b"\r\nOK\r\n"
        assert c.command("ATE1") == b"\r\nOK\r\n"
        assert c.command("AT+CMEE?") == b"AT+CMEE?\r\r\n+CMEE: 0\r\n\r\nOK\r\n"


def test_compound_line_runs_every_command_in_order(at):
    assert at.command("AT+CMEE=1;+CREG=2") == b"\r\nOK\r\n"
    assert at.command("AT+CREG?;+CMEE?") == b'\r\n+CREG: 2,1,"00A1","00001234"\r\n\r\n+CMEE: 1\r\n\r\nOK\r\n'


def test_unknown_command_error_follows_cmee_mode(at):
    assert at.command("AT+NOSUCH") == b"\r\nERROR\r\n"
    at.command("AT+CMEE=1")
    assert at.command("AT+NOSUCH") == b"\r\n+CME ERROR: 4\r\n"
    at.command("AT+CMEE=2")
    assert at.command("AT+NOSUCH") == b"\r\n+CME ERROR: operation not supported\r\n"


def test_compound_line_stops_at_first_failing_command(at):
    assert at.command("AT+CMEE=1;+NOSUCH;+CREG=2") == b"\r\n+CME ERROR: 4\r\n"
    assert at.command("AT+CREG?") == b"\r\n+CREG: 0,1\r\n\r\nOK\r\n"


def test_escape_and_text_before_at_in_command_state_get_no_answer(at):
    at.write(b"\x1b\r")
    at.write(b"hello\r")
    assert at.read_for(0.15) == b""
    assert at.command("AT") == b"\r\nOK\r\n"


def test_no_sms_indication_until_client_sets_cnmi(sim, at):
    sim.handset(PEER).send(MODEM, "first")
    assert at.read_for(0.2) == b""
    assert len(sim.modem("m1").storage("SM")) == 1
    assert at.command("AT+CNMI=2,1,0,0,0") == b"\r\nOK\r\n"
    sim.handset(PEER).send(MODEM, "second")
    assert at.read_until(b"\r\n") + at.read_until(b"\r\n") == b'\r\n+CMTI: "SM",2\r\n'


def test_cnmi_mode_0_keeps_indications_in_the_modem_until_mode_2(sim, at):
    at.command("AT+CNMI=0,1,0,0,0")
    sim.handset(PEER).send(MODEM, "buffered")
    assert at.read_for(0.2) == b""
    assert at.command("AT+CNMI=2,1,0,0,0") + at.read_until(b"\r\n", 1) + at.read_until(b"\r\n", 1) == (
        b'\r\nOK\r\n\r\n+CMTI: "SM",1\r\n')


def test_cnmi_mt2_routes_cmt_directly_and_csms1_needs_cnma(sim, at):
    assert at.command("AT+CSMS=1") == b"\r\n+CSMS: 1,1,1\r\n\r\nOK\r\n"
    at.command("AT+CNMI=2,2,0,0,0")
    sim.handset(PEER).send(MODEM, "direct")
    raw = at.read_until(re.compile(rb"\+CMT: ,(\d+)\r\n([0-9A-F]+)\r\n"))
    pdu_hex = raw.split(b"\r\n")[-2].decode()
    assert decodeSmsPdu(pdu_hex)["text"] == "direct"
    assert sim.modem("m1").storage("SM") == []
    assert at.command("AT+CNMA") == b"\r\nOK\r\n"
    assert at.command("AT+CNMA") == b"\r\n+CMS ERROR: 340\r\n"


def test_cmt_without_cnma_is_delivered_again_by_the_network(sim, at):
    at.command("AT+CSMS=1")
    at.command("AT+CNMI=2,2,0,0,0")
    sim.handset(PEER).send(MODEM, "ack me")
    at.read_until(b"+CMT: ")
    at.read_until(b"+CMT: ", timeout=2.0)
    assert sim.modem("m1").counters.inbound_direct == 2


def test_cmgs_prompt_then_pdu_in_several_writes_with_line_breaks_inside(sim, at):
    pdu = submit("split writes")
    hexpdu = pdu.data.hex().upper()
    at.write(f"AT+CMGS={pdu.tpduLength}\r")
    assert at.read_until(b"> ") == b"\r\n> "
    at.write(hexpdu[:10])
    at.write("\r\n" + hexpdu[10:30] + "\n")
    at.write(hexpdu[30:])
    at.write(b"\x1a")
    assert at.read_until(re.compile(rb"OK\r\n")) == b"\r\n+CMGS: 0\r\n\r\nOK\r\n"
    assert sim.handset(PEER).wait_for()[0].text == "split writes"


def test_cmgs_with_echo_echoes_command_then_prompt(sim):
    with WireClient(sim.modem("m1").path) as c:
        pdu = submit()
        c.write(f"AT+CMGS={pdu.tpduLength}\r")
        assert c.read_until(b"> ") == f"AT+CMGS={pdu.tpduLength}\r\r\n> ".encode()


def test_cmgs_accepts_pdu_with_a_full_smsc_field(sim, at):
    pdu = encodeSmsSubmitPdu(PEER, "via smsc", smsc="+15550000000")[0]
    assert pdu.data.hex().upper().startswith("07915155")
    tpdu_length = len(pdu.data) - pdu.data[0] - 1
    assert at.send_pdu(pdu.data.hex(), tpdu_length).endswith(b"\r\nOK\r\n")
    assert sim.handset(PEER).wait_for()[0].text == "via smsc"


@pytest.mark.parametrize(
    ("pdu_hex", "length"),
    [
        pytest.param(submit().data.hex(), submit().tpduLength + 1, id="length-mismatch"),
        pytest.param(submit().data.hex()[:-2], submit().tpduLength - 1, id="truncated-user-data"),
        pytest.param(submit().data.hex() + "00", submit().tpduLength + 1, id="trailing-octet"),
        pytest.param("00" + "04" + submit().data.hex()[4:], submit().tpduLength, id="not-a-submit"),
        pytest.param(submit().data.hex()[:-1] + "Z", submit().tpduLength, id="not-hex"),
    ],
)
def test_malformed_or_mismatched_pdu_is_cms_304_and_nothing_is_sent(sim, at, pdu_hex, length):
    assert at.send_pdu(pdu_hex, length) == b"\r\n+CMS ERROR: 304\r\n"
    assert sim.handset(PEER).inbox == []
    assert sim.modem("m1").counters.pdus_rejected == 1


def test_escape_cancels_cmgs_and_nothing_is_sent(sim, at):
    pdu = submit()
    at.write(f"AT+CMGS={pdu.tpduLength}\r")
    at.read_until(b"> ")
    at.write(pdu.data.hex() + "\x1b")
    assert at.read_until(b"OK\r\n") == b"\r\nOK\r\n"
    assert at.command("AT") == b"\r\nOK\r\n"
    assert sim.handset(PEER).inbox == []


def test_cmgr_reads_and_marks_read_and_empty_slot_is_cms_321(sim, at):
    sim.handset(PEER).send(MODEM, "read me")
    lines = at.lines("AT+CMGR=1")
    assert lines[0].startswith("+CMGR: 0,,")
    assert decodeSmsPdu(lines[1])["text"] == "read me"
    assert at.lines("AT+CMGR=1")[0].startswith("+CMGR: 1,,")
    assert at.command("AT+CMGR=2") == b"\r\n+CMS ERROR: 321\r\n"
    assert at.command("AT+CMGR=99") == b"\r\n+CMS ERROR: 321\r\n"


def test_cmgl_filters_by_stat_and_marks_listed_unread_as_read(sim, at):
    for text in ("one", "two"):
        sim.handset(PEER).send(MODEM, text)
    at.command("AT+CMGR=1")
    assert [line.rsplit(",", 1)[0] for line in at.lines("AT+CMGL=0") if line.startswith("+CMGL")] == [
        "+CMGL: 2,0,"]
    assert at.lines("AT+CMGL=0") == ["OK"]
    listed = at.lines("AT+CMGL=4")
    assert [line.split(",")[0] for line in listed if line.startswith("+CMGL")] == ["+CMGL: 1", "+CMGL: 2"]
    assert at.command("AT+CMGL=9") == b"\r\n+CMS ERROR: 304\r\n"


def test_cmgd_deletes_by_index_and_by_flag(sim, at):
    for i in range(3):
        sim.handset(PEER).send(MODEM, f"m{i}")
    at.command("AT+CMGR=1")
    assert at.command("AT+CMGD=1,1") == b"\r\nOK\r\n"  # read ones only
    assert [m.index for m in sim.modem("m1").storage("SM")] == [2, 3]
    assert at.command("AT+CMGD=2") == b"\r\nOK\r\n"
    assert [m.index for m in sim.modem("m1").storage("SM")] == [3]
    assert at.command("AT+CMGD=1,4") == b"\r\nOK\r\n"
    assert sim.modem("m1").storage("SM") == []


def test_cpms_test_read_and_set_report_used_and_total(sim, at):
    sim.handset(PEER).send(MODEM, "x")
    assert at.lines("AT+CPMS=?")[0] == '+CPMS: ("SM","ME"),("SM","ME"),("SM","ME")'
    assert at.lines("AT+CPMS?")[0] == '+CPMS: "SM",1,30,"SM",1,30,"SM",1,30'
    assert at.lines('AT+CPMS="ME","ME"')[0] == "+CPMS: 0,100,0,100,1,30"
    assert at.lines("AT+CMGL=4") == ["OK"]
    assert at.command('AT+CPMS="XX"') == b"\r\n+CMS ERROR: 302\r\n"


def test_wrong_pin_consumes_an_attempt_and_three_lead_to_puk(tmp_path):
    with Simulator(tmp_path, [SimModemSpec("m1", pin="1234")], latency=0) as sim, \
            WireClient(sim.modem("m1").path) as at:
        at.command("ATE0;+CMEE=1")
        assert at.lines("AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
        assert at.command("AT+CMGL=4") == b"\r\n+CMS ERROR: 311\r\n"
        assert at.command("AT+CIMI") == b"\r\n+CME ERROR: 11\r\n"
        assert at.command('AT+CPIN="0000"') == b"\r\n+CME ERROR: 16\r\n"
        assert at.lines('AT+CPINR="SIM PIN"')[0] == "+CPINR: SIM PIN,2,3"
        at.command('AT+CPIN="0000"')
        at.command('AT+CPIN="0000"')
        assert at.lines("AT+CPIN?") == ["+CPIN: SIM PUK", "OK"]
        assert at.command('AT+CPIN="12345678","4321"') == b"\r\nOK\r\n"
        assert at.lines("AT+CPIN?") == ["+CPIN: READY", "OK"]
        assert at.command('AT+CPIN="4321"') == b"\r\n+CME ERROR: 3\r\n"


def test_registration_comes_after_the_delay_with_creg_urcs_when_asked(tmp_path):
    with Simulator(tmp_path, [SimModemSpec("m1")], latency=0, registration_delay=0.4) as sim, \
            WireClient(sim.modem("m1").path) as at:
        at.command("ATE0")
        assert at.lines("AT+CREG?") == ["+CREG: 0,2", "OK"]
        at.command("AT+CREG=2;+CGREG=1")
        urcs = at.read_until(b"+CGREG: 1\r\n", timeout=3)
        assert b'+CREG: 1,"00A1","00001234"' in urcs
        assert at.lines("AT+CGATT?")[0] == "+CGATT: 1"


def test_cops_formats_and_network_queries(at):
    at.command("AT+COPS=3,2")
    assert at.lines("AT+COPS?")[0] == '+COPS: 0,2,"00101",2'
    at.command("AT+COPS=3,0")
    assert at.lines("AT+COPS?")[0] == '+COPS: 0,0,"SimNet",2'
    assert at.lines("AT+CSQ")[0] == "+CSQ: 20,99"
    assert at.lines("AT+CBC")[0] == "+CBC: 0,100"
    assert at.lines("AT+CSCA?")[0] == '+CSCA: "+15550000000",145'


def test_identity_commands_answer_bare_values(sim, at):
    m = sim.modem("m1")
    assert at.lines("AT+CGMI") == ["SMSGATE-SIM", "OK"]
    assert at.lines("AT+CGSN") == [m.imei, "OK"]
    assert at.lines("AT+CIMI") == [m.imsi, "OK"]
    assert at.lines("AT+CCID") == [f"+CCID: {m.iccid}", "OK"]
    assert at.lines("ATI")[-1] == "OK"
    assert len(m.imei) == 15 and len(m.imsi) == 15


GAMMU_SMSD_SESSION = [
    "AT", "ATE1", "AT+MODE=2", "AT+CMEE=1", "AT+CSCS?", "AT+CSCS=?", "AT+CGMM", "AT+CGMI", "AT+CPROT=?",
    "AT+SYNCML=?", "AT$TSSPCSW=?", "AT+CHUP=?", "AT+CGMR", "AT+CFUN=1", "AT+CPIN?", "AT+CPMS=?", 'AT+CPMS="ME"',
    "AT+CNMI=?", "AT+CNMI=2,1,0,2,0", "AT+CUSD=1", "AT+CGSN", "AT+CIMI", "AT+CMMS=2", "AT+CPMS=\"SM\",\"SM\"",
    'AT+CPMS="ME","ME"', "AT+CBC", "AT+CSQ", "AT+CREG=2", "AT+CGREG=2", "AT+CGATT?", "AT+CREG?", "AT+CGREG?",
    "AT+COPS=3,2", "AT+COPS?", "AT+COPS=3,0", "AT+COPS?", "AT+CSCA?", "AT+CMGF=0", 'AT+CPMS="SM"', "AT+CMGL=4",
    "AT+CUSD=2", "AT+CUSD=0", "AT+CMMS=0",
]


def test_every_command_of_the_recorded_gammu_smsd_session_gets_a_final_result(sim):
    with WireClient(sim.modem("m1").path) as c:
        c.write(b"\x1b\r")
        finals = {}
        for line in GAMMU_SMSD_SESSION:
            raw = c.command(line)
            finals[line] = raw.rstrip(b"\r\n").rsplit(b"\r\n", 1)[-1].decode()
    assert finals.pop("AT+MODE=2") == "ERROR"  # before AT+CMEE=1
    vendor_probes = {"AT+CPROT=?", "AT+SYNCML=?", "AT$TSSPCSW=?", "AT+CHUP=?"}
    for line, final in finals.items():
        if line in vendor_probes:
            assert final == "+CME ERROR: 4", line
        else:
            assert final == "OK", line


def test_basic_commands_chain_and_a_slash_repeats_the_last_line(at):
    assert at.command("ATV1Q0&C1") == b"\r\nOK\r\n"
    assert at.lines("AT+CSQ") == ["+CSQ: 20,99", "OK"]
    at.write("A/\r")
    assert at.read_until(b"OK\r\n") == b"\r\n+CSQ: 20,99\r\n\r\nOK\r\n"


def test_quoted_parameters_keep_commas_and_semicolons(at):
    assert at.command('AT+CSCA="+15550009999",145;+CSCA?') == b'\r\n+CSCA: "+15550009999",145\r\n\r\nOK\r\n'
    assert at.command('AT+CSCA="+1;5"') == b"\r\n+CMS ERROR: 304\r\n"


def test_atv0_switches_to_numeric_result_codes(at):
    at.write("ATV0\r")
    assert at.read_until(b"0\r") == b"0\r"  # V0 already applies to its own final result
    at.write("AT+CSQ\r")
    assert at.read_until(b"0\r") == b"+CSQ: 20,99\r\n0\r"
    at.write("AT+NOSUCH\r")
    assert at.read_until(b"4\r") == b"4\r"


def test_cnum_reports_the_sims_own_number(at):
    assert at.command("AT+CNUM") == f'\r\n+CNUM: "","{MODEM}",145\r\n\r\nOK\r\n'.encode()
