"""Each personality answers with the recorded strings and quirks of its modem family."""

from __future__ import annotations

import pytest

from smsgate.simulator import PERSONALITIES, SimModemSpec, Simulator, UnknownPersonality
from smsgate.simulator.wire import WireClient

MODEM = "+15550001001"


def start(tmp_path, personality: str, **kw):
    return Simulator(tmp_path, [SimModemSpec("m1", personality=personality, msisdn=MODEM)], latency=0, **kw)


def test_huawei_answers_command_not_support_even_with_cmee_1(tmp_path):
    with start(tmp_path, "huawei") as sim, WireClient(sim.modem("m1").path) as at:
        at.command("ATE0;+CMEE=1")
        assert at.command("AT+WIND?") == b"\r\nCOMMAND NOT SUPPORT\r\n"
        assert at.lines("AT+CGMI;+CGMM;+CGMR") == ["huawei", "E1752", "11.126.13.00.00", "OK"]
        assert at.lines("AT+CPMS=?")[0] == '+CPMS: ("ME","MT","SM","SR"),("ME","MT","SM","SR"),("ME","MT","SM","SR")'


def test_huawei_cscs_read_has_an_empty_line_before_ok(tmp_path):
    with start(tmp_path, "huawei") as sim, WireClient(sim.modem("m1").path) as at:
        at.command("ATE0")
        assert at.command("AT+CSCS?") == b'\r\n+CSCS: "GSM"\r\n\r\n\r\nOK\r\n'


def test_huawei_emits_rssi_mode_boot_urcs_unprompted_and_curc_0_stops_them(tmp_path):
    with start(tmp_path, "huawei", periodic_urc_interval=0.1) as sim, WireClient(sim.modem("m1").path) as at:
        data = at.read_until(b"^BOOT:", timeout=2)
        assert b"^RSSI:20" in data and b"^MODE:5,4" in data
        sim.modem("m1").set_signal(9)
        at.read_until(b"^RSSI:9\r\n", timeout=2)
        at.command("ATE0;^CURC=0")
        at.buffer.clear()
        assert b"^RSSI" not in at.read_for(0.3)


def test_huawei_cusd_needs_ussdmode_0_and_indexes_from_zero(tmp_path):
    with start(tmp_path, "huawei") as sim, WireClient(sim.modem("m1").path) as at:
        at.command("ATE0")
        assert at.command("AT+CUSD=1") == b"\r\nERROR\r\n"
        at.command("AT^USSDMODE=0")
        assert at.command("AT+CUSD=1") == b"\r\nOK\r\n"
        sim.handset("+15557654321").send(MODEM, "hi")
        assert at.lines("AT+CMGL=4")[0].startswith("+CMGL: 0,0,,")
        assert at.lines("AT+CREG=2;+CREG?")[0] == "+CREG: 2,1,4CA,81DE445"


def test_huawei_mt_storage_spans_sm_and_me(tmp_path):
    with start(tmp_path, "huawei") as sim, WireClient(sim.modem("m1").path) as at:
        at.command("ATE0")
        sim.handset("+15557654321").send(MODEM, "hi")
        assert at.lines('AT+CPMS="MT","MT","MT"')[0] == "+CPMS: 1,130,1,130,1,130"


def test_wavecom_cpin_read_has_no_ok_and_identity_has_leading_spaces(tmp_path):
    with start(tmp_path, "wavecom") as sim, WireClient(sim.modem("m1").path) as at:
        at.command("ATE0")
        at.write("AT+CPIN?\r")
        assert at.read_until(b"READY\r\n") == b"\r\n+CPIN: READY\r\n"
        assert at.read_for(0.2) == b""
        assert at.lines("AT+CGMI") == [" WAVECOM MODEM", "OK"]
        assert at.lines("AT+CGMM") == [" MULTIBAND  900E  1800", "OK"]
        assert at.command("AT+CGMR") == b"\r\nERROR\r\n"


def test_wavecom_is_busy_for_a_while_after_cfun_1_whatever_is_typed(tmp_path):
    with start(tmp_path, "wavecom") as sim, WireClient(sim.modem("m1").path) as at:
        at.command("ATE0;+CMEE=1")
        assert at.command("AT+CFUN=1") == b"\r\nOK\r\n"
        for line in ("AT", "AT+CGMI", "ATI3", "AT+CPIN?", "AT+CSCA?"):
            assert at.command(line) == b"\r\n+CME ERROR: 515\r\n", line
        sim.advance(PERSONALITIES["wavecom"].cfun_busy_seconds - 0.1)
        assert at.command("AT") == b"\r\n+CME ERROR: 515\r\n"
        sim.advance(0.2)
        assert at.command("AT") == b"\r\nOK\r\n"


def test_wavecom_busy_window_does_not_carry_over_into_the_next_clients_session(tmp_path):
    with start(tmp_path, "wavecom") as sim:
        with WireClient(sim.modem("m1").path) as first:
            first.command("ATE0;+CMEE=1")
            assert first.command("AT+CFUN=1") == b"\r\nOK\r\n"
        sim.advance(PERSONALITIES["wavecom"].cfun_busy_seconds)
        with WireClient(sim.modem("m1").path) as second:
            assert second.lines("AT+CMEE=1") == ["OK"]
            assert second.lines("AT+CGMI") == [" WAVECOM MODEM", "OK"]


def test_wavecom_cpms_takes_two_memories_and_answers_two_pairs(tmp_path):
    with start(tmp_path, "wavecom") as sim, WireClient(sim.modem("m1").path) as at:
        at.command("ATE0")
        assert at.lines("AT+CPMS=?")[0] == '+CPMS: (("SM","BM","SR"),("SM"))'
        assert at.lines('AT+CPMS="SM","SM"')[0] == "+CPMS: 0,50,0,50"
        assert at.command('AT+CPMS="SM","SM","SR"') == b"\r\nERROR\r\n"


def test_simcom_boot_urcs_include_stored_unread_messages(tmp_path):
    with start(tmp_path, "simcom", reboot_gap=0.05) as sim:
        sim.handset("+15557654321").send(MODEM, "waiting")
        m = sim.modem("m1")
        m.faults.unplug()
        m.faults.replug()
        with WireClient(m.path) as at:
            boot = at.read_until(b'+CMTI: "SM",1\r\n')
            assert boot == b'\r\n*ATREADY: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n\r\n+CMTI: "SM",1\r\n'
            at.command("ATE0")
            assert at.lines("ATI;+CGMI;+CGMR") == ["SIM800 R13.08", "SIMCOM_Ltd", "Revision:1308B05SIM800M32", "OK"]


def test_quectel_ati_and_qccid(tmp_path):
    with start(tmp_path, "quectel") as sim, WireClient(sim.modem("m1").path) as at:
        at.command("ATE0")
        assert at.lines("ATI") == ["Quectel", "EC25", "Revision: EC25EFAR06A06M4G", "OK"]
        assert at.lines("AT+QCCID") == [f"+QCCID: {sim.modem('m1').iccid}", "OK"]
        assert at.command("AT+CCID") == b"\r\nERROR\r\n"


def test_unknown_personality_names_the_valid_ones(tmp_path):
    with pytest.raises(UnknownPersonality, match="huawei"), start(tmp_path, "nokia"):
        pass


@pytest.mark.parametrize("personality", ["generic", "huawei", "quectel"])
def test_direct_delivery_only_offers_cmt_and_cds_and_refuses_store_and_notify(tmp_path, personality):
    spec = SimModemSpec("m1", personality=personality, msisdn="+15550001001", direct_delivery_only=True)
    with Simulator(tmp_path, [spec], latency=0) as sim, WireClient(sim.modem("m1").path) as at:
        at.command("ATE0")
        assert at.lines("AT+CNMI=?") == ["+CNMI: (0-2),(0,2),(0,2),(0,1),(0,1)", "OK"]
        assert at.lines("AT+CNMI=2,1,0,0,0")[-1] == "+CMS ERROR: 303"
        assert at.lines("AT+CNMI=2,2,0,2,0")[-1] == "+CMS ERROR: 303"
        assert at.lines("AT+CNMI=2,2,0,1,0") == ["OK"]
        sim.handset("+15557654321").send("+15550001001", "straight through")
        assert at.read_until(b"+CMT: ,")
        assert sim.modem("m1").storage("SM") == []


@pytest.mark.parametrize("personality", sorted(PERSONALITIES))
def test_ati_answers_its_lines_for_page_0_and_error_for_pages_nobody_recorded(tmp_path, personality):
    with start(tmp_path, personality) as sim, WireClient(sim.modem("m1").path) as at:
        at.command("ATE0;+CMEE=1")
        lines = [*PERSONALITIES[personality].ati, "OK"]
        assert at.lines("ATI") == lines and at.lines("ATI0") == lines
        for page in ("ATI1", "ATI3", "ATI5", "ATI9"):
            assert at.lines(page) == ["ERROR"], page
