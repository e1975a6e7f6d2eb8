"""Every fault the simulator injects, as a client sees it on the wire."""

from __future__ import annotations

import os
import re
import time

import pytest
import serial
from gsmmodem.pdu import decodeSmsPdu, encodeSmsSubmitPdu

from smsgate.simulator import SimModemSpec, Simulator
from smsgate.simulator.wire import WireClient, WireTimeout

MODEM = "+15550001001"
PEER = "+15557654321"


@pytest.fixture
def sim(tmp_path):
    with Simulator(tmp_path, [SimModemSpec("m1", msisdn=MODEM)], latency=0, reboot_gap=0.2) as s:
        yield s


def submit(text: str = "hi", srr: bool = False):
    pdu = encodeSmsSubmitPdu(PEER, text, requestStatusReport=srr)[0]
    return pdu.data.hex(), pdu.tpduLength


def wait_until(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.01)


def test_unplug_removes_the_path_and_the_open_port_fails(sim, at):
    m = sim.modem("m1")
    m.faults.unplug()
    assert not os.path.lexists(m.path)
    with pytest.raises(serial.SerialException):
        for _ in range(50):
            at.port.read(1)
            at.port.write(b"AT\r")
    assert m.counters.unplugs == 1


def test_replug_points_the_stable_path_at_a_new_pty_and_the_modem_boots_fresh(sim, at):
    m = sim.modem("m1")
    m.faults.unplug()
    m.faults.replug()
    # A pty number may be reused by the kernel, so the link is checked against the new device, not the old.
    assert os.path.islink(m.path) and os.readlink(m.path) == m.tty_path and os.path.exists(m.tty_path)
    assert m.counters.unplugs == 1 and m.counters.replugs == 1 and m.plugged
    with pytest.raises(serial.SerialException):  # the old open port is dead for good
        for _ in range(50):
            at.port.read(1)
            at.port.write(b"AT\r")
    with WireClient(m.path) as fresh:
        assert fresh.command("AT") == b"AT\r\r\nOK\r\n"  # echo is on again after the reboot


def test_hang_swallows_commands_until_recovered(sim, at):
    sim.modem("m1").faults.hang()
    at.write("AT\r")
    assert at.read_for(0.3) == b""
    sim.handset(PEER).send(MODEM, "while hung")
    sim.modem("m1").faults.recover()
    assert at.command("AT") == b"\r\nOK\r\n"
    assert sim.modem("m1").pending_at_network() == 0


def put_on_the_air(modem, at, pdu: str) -> None:
    """Type the PDU and Ctrl-Z, and wait until the modem has read them (the pty may hand them over late)."""
    before = modem.counters.bytes_in
    at.write(pdu + "\x1a")
    wait_until(lambda: modem.counters.bytes_in >= before + len(pdu) + 1)


def test_a_modem_hung_mid_send_answers_again_after_recover(tmp_path):
    with Simulator(tmp_path, [SimModemSpec("m1", msisdn=MODEM)], latency=5.0, registration_delay=0) as sim, \
            WireClient(sim.modem("m1").path) as at:
        at.command("ATE0")
        pdu, n = submit()
        at.write(f"AT+CMGS={n}\r")
        at.read_until(b"> ")
        put_on_the_air(sim.modem("m1"), at, pdu)
        sim.modem("m1").faults.hang()
        sim.advance(6.0)  # the send's time on the air ends while the modem is hung: its answer is lost
        sim.modem("m1").faults.recover()
        assert at.command("AT") == b"\r\nOK\r\n"
        assert sim.handset(PEER).inbox == [] and sim.modem("m1").counters.sends_ok == 0


def test_a_modem_hung_at_the_pdu_prompt_takes_commands_again_after_recover(sim, at):
    _pdu, n = submit()
    at.write(f"AT+CMGS={n}\r")
    at.read_until(b"> ")
    sim.modem("m1").faults.hang()
    sim.modem("m1").faults.recover()
    assert at.command("AT") == b"\r\nOK\r\n"


def test_recover_before_the_send_completes_lets_the_send_finish(tmp_path):
    with Simulator(tmp_path, [SimModemSpec("m1", msisdn=MODEM)], latency=5.0, registration_delay=0) as sim, \
            WireClient(sim.modem("m1").path) as at:
        at.command("ATE0")
        pdu, n = submit()
        at.write(f"AT+CMGS={n}\r")
        at.read_until(b"> ")
        put_on_the_air(sim.modem("m1"), at, pdu)
        sim.modem("m1").faults.hang()
        sim.modem("m1").faults.recover()
        sim.advance(6.0)
        assert at.read_until(b"OK\r\n") == b"\r\n+CMGS: 0\r\n\r\nOK\r\n"
        assert at.command("AT") == b"\r\nOK\r\n"


def test_garbage_and_non_utf8_bytes_arrive_on_the_line(sim, at):
    sim.modem("m1").faults.garbage()
    noise = at.read_until(b"garbage\xc3(\r\n")
    with pytest.raises(UnicodeDecodeError):
        noise.decode("utf-8")
    assert at.command("AT") == b"\r\nOK\r\n"


def test_garbage_before_the_next_reply(sim, at):
    sim.modem("m1").faults.garbage(b"\x00\xfe~~", before_next_reply=True)
    assert at.command("AT+CSQ") == b"\x00\xfe~~\r\n+CSQ: 20,99\r\n\r\nOK\r\n"


def test_urc_storm_delivers_every_line(sim, at):
    sim.modem("m1").faults.urc_storm(300)
    data = at.read_until(re.compile(rb"(\r\n\+C[G]?REG: 1\r\n){300}"), timeout=5)
    assert data.count(b"REG: 1") == 300
    assert at.command("AT") == b"\r\nOK\r\n"


def test_cms_error_on_the_next_n_sends_then_success(sim, at):
    sim.modem("m1").faults.cms_error(38, 2)
    pdu, n = submit()
    assert at.send_pdu(pdu, n) == b"\r\n+CMS ERROR: 38\r\n"
    assert at.send_pdu(pdu, n) == b"\r\n+CMS ERROR: 38\r\n"
    assert at.send_pdu(pdu, n) == b"\r\n+CMGS: 0\r\n\r\nOK\r\n"
    assert len(sim.handset(PEER).wait_for()) == 1


def test_ambiguous_send_is_delivered_but_answered_with_cms_500(sim, at):
    sim.modem("m1").faults.ambiguous()
    pdu, n = submit("did it go?")
    assert at.send_pdu(pdu, n) == b"\r\n+CMS ERROR: 500\r\n"
    assert sim.handset(PEER).wait_for()[0].text == "did it go?"
    assert sim.modem("m1").counters.sends_ambiguous == 1


def test_no_network_deregisters_fails_sends_and_holds_inbound(sim, at):
    m = sim.modem("m1")
    at.command("AT+CREG=1")
    m.faults.no_network()
    assert at.read_until(b"+CREG: 0\r\n") == b"\r\n+CREG: 0\r\n"
    assert at.lines("AT+COPS?")[0] == "+COPS: 0"
    pdu, n = submit()
    assert at.send_pdu(pdu, n) == b"\r\n+CMS ERROR: 331\r\n"
    sim.handset(PEER).send(MODEM, "wait for me")
    assert m.pending_at_network() == 1
    m.faults.no_network(False)
    assert at.read_until(b"+CREG: 1\r\n") == b"\r\n+CREG: 1\r\n"
    wait_until(lambda: len(m.storage("SM")) == 1)


def test_sim_pin_fault_locks_the_sim_and_the_right_pin_unlocks_it(sim, at):
    m = sim.modem("m1")
    m.faults.sim_pin("4321")
    at.command("AT+CMEE=1")
    assert at.lines("AT+CPIN?") == ["+CPIN: SIM PIN", "OK"]
    assert at.command("AT+CMGL=4") == b"\r\n+CMS ERROR: 311\r\n"
    assert at.command('AT+CPIN="4321"') == b"\r\nOK\r\n"
    assert at.lines("AT+CREG?") == ["+CREG: 0,1", "OK"]


def test_sim_puk_fault_needs_puk_and_new_pin(sim, at):
    m = sim.modem("m1")
    m.faults.sim_puk("87654321")
    at.command("AT+CMEE=1")
    assert at.lines("AT+CPIN?") == ["+CPIN: SIM PUK", "OK"]
    assert at.command('AT+CPIN="1111"') == b"\r\n+CME ERROR: 16\r\n"
    assert at.command('AT+CPIN="87654321","2468"') == b"\r\nOK\r\n"
    assert m.sim_state == "READY"


def test_storage_full_gives_no_cmti_and_holds_messages_at_the_network(sim, at):
    m = sim.modem("m1")
    at.command("AT+CNMI=2,1,0,0,0")
    m.faults.storage_full()
    sim.handset(PEER).send(MODEM, "no room")
    assert at.read_for(0.2) == b""
    assert m.storage("SM") == [] and m.pending_at_network() == 1
    m.faults.storage_full(False)
    assert at.read_until(b'+CMTI: "SM",1\r\n', timeout=2).endswith(b'+CMTI: "SM",1\r\n')


def test_a_really_full_sim_holds_the_31st_message_until_a_slot_is_freed(sim, at):
    m = sim.modem("m1")
    at.command("AT+CNMI=2,1,0,0,0")
    for i in range(31):
        sim.handset(PEER).send(MODEM, f"n{i}")
    at.read_until(b'+CMTI: "SM",30\r\n')
    assert at.read_for(0.2) == b""
    assert at.lines("AT+CPMS?")[0] == '+CPMS: "SM",30,30,"SM",30,30,"SM",30,30'
    at.command("AT+CMGD=5")
    assert at.read_until(b'+CMTI: "SM",5\r\n', timeout=2)
    assert m.pending_at_network() == 0


def test_the_same_inbound_sms_delivered_twice(sim, at):
    at.command("AT+CNMI=2,1,0,0,0")
    sim.modem("m1").faults.duplicate_inbound()
    sim.handset(PEER).send(MODEM, "twice")
    at.read_until(b'+CMTI: "SM",2\r\n')
    stored = sim.modem("m1").storage("SM")
    assert len(stored) == 2
    assert stored[0].pdu_hex == stored[1].pdu_hex
    assert decodeSmsPdu(stored[0].pdu_hex)["text"] == "twice"


def test_status_report_arrives_before_cmgs_returns(sim, at):
    at.command("AT+CNMI=2,1,0,1,0")
    sim.modem("m1").faults.early_status_report()
    pdu, n = submit("report first", srr=True)
    raw = at.send_pdu(pdu, n)
    assert raw.index(b"+CDS: ") < raw.index(b"+CMGS: 0")
    report_hex = re.search(rb"\+CDS: \d+\r\n([0-9A-F]+)\r\n", raw).group(1).decode()
    report = decodeSmsPdu(report_hex)
    assert report["type"] == "SMS-STATUS-REPORT" and report["reference"] == 0 and report["status"] == 0


def test_cfun_1_1_reboot_answers_ok_drops_off_the_bus_and_comes_back(sim, at):
    m = sim.modem("m1")
    assert at.command("AT+CFUN=1,1") == b"\r\nOK\r\n"
    wait_until(lambda: not os.path.lexists(m.path), timeout=2)
    wait_until(lambda: os.path.lexists(m.path), timeout=3)
    with WireClient(m.path) as fresh:
        assert fresh.command("AT") == b"AT\r\r\nOK\r\n"
    assert m.counters.reboots == 1


def test_reboot_fault_without_a_command(sim, at):
    m = sim.modem("m1")
    m.faults.reboot(gap=0.1)
    wait_until(lambda: not os.path.lexists(m.path), timeout=2)
    wait_until(lambda: os.path.lexists(m.path), timeout=3)


def test_latency_holds_input_and_queues_urcs_while_a_send_is_on_the_air(tmp_path):
    with Simulator(tmp_path, [SimModemSpec("m1", msisdn=MODEM)], latency=0.4, registration_delay=0) as sim, \
            WireClient(sim.modem("m1").path) as at:
        at.command("ATE0;+CNMI=2,1,0,0,0")
        pdu, n = submit()
        at.write(f"AT+CMGS={n}\r")
        at.read_until(b"> ")
        at.write(pdu + "\x1a")
        at.write("AT+CSQ\r")
        sim.handset(PEER).send(MODEM, "meanwhile")
        assert at.read_for(0.2) == b""
        raw = at.read_until(b"+CSQ: 20,99\r\n\r\nOK\r\n", timeout=2)
        assert raw == b'\r\n+CMGS: 0\r\n\r\nOK\r\n\r\n+CMTI: "SM",1\r\n\r\n+CSQ: 20,99\r\n\r\nOK\r\n'
        with pytest.raises(WireTimeout):
            at.read_until(b"OK", timeout=0.1)


def test_hang_keeping_urcs_answers_nothing_but_unsolicited_lines_still_arrive(sim, at):
    sim.modem("m1").faults.hang(keep_urcs=True)
    at.write("AT\r")
    sim.modem("m1").faults.urc_storm(3, ["^BOOT:1,0,0,0,72"])
    assert at.read_for(0.3) == b"\r\n^BOOT:1,0,0,0,72\r\n" * 3
    sim.modem("m1").faults.recover()
    assert at.command("AT") == b"\r\nOK\r\n"


def test_command_error_answers_the_armed_final_for_matching_lines_only_n_times(sim, at):
    sim.modem("m1").faults.command_error("AT+CIMI", "+CME ERROR: 14", 2)
    assert at.command("AT+CGSN").endswith(b"OK\r\n")
    assert at.command("AT+CIMI") == b"\r\n+CME ERROR: 14\r\n"
    assert at.command("at+cimi") == b"\r\n+CME ERROR: 14\r\n"
    assert at.command("AT+CIMI").endswith(b"OK\r\n")
    with pytest.raises(ValueError, match="prefix"):
        sim.modem("m1").faults.command_error("", "ERROR")


def test_cms_error_after_k_good_sends_fails_the_next_ones(sim, at):
    sim.modem("m1").faults.cms_error(42, 1, after=1)
    pdu, n = submit()
    assert at.send_pdu(pdu, n).startswith(b"\r\n+CMGS: ")
    assert at.send_pdu(pdu, n) == b"\r\n+CMS ERROR: 42\r\n"
    assert at.send_pdu(pdu, n).startswith(b"\r\n+CMGS: ")


def test_registration_denied_reports_stat_3_and_sends_fail(sim, at):
    m = sim.modem("m1")
    at.command("AT+CREG=1")
    m.faults.registration_denied()
    assert at.read_until(b"+CREG: 3\r\n") == b"\r\n+CREG: 3\r\n"
    assert at.lines("AT+CREG?")[0] == "+CREG: 1,3"
    pdu, n = submit()
    assert at.send_pdu(pdu, n) == b"\r\n+CMS ERROR: 331\r\n"
    m.faults.registration_denied(False)
    assert at.read_until(b"+CREG: 1\r\n") == b"\r\n+CREG: 1\r\n"


def test_misfiled_status_report_is_stored_in_sr_but_announced_as_sm(sim, at):
    at.command("AT+CNMI=2,1,0,2,0")
    sim.modem("m1").faults.misfiled_status_reports()
    pdu, n = submit("where is my report", srr=True)
    at.send_pdu(pdu, n)
    assert at.read_until(b'+CDSI: "SM",1\r\n', timeout=3).endswith(b'+CDSI: "SM",1\r\n')
    assert at.command("AT+CMGR=1") == b"\r\n+CMS ERROR: 321\r\n"
    assert len(sim.modem("m1").storage("SR")) == 1


def test_sim_pin_fault_with_one_attempt_left_shows_it_in_cpinr_and_a_wrong_pin_needs_the_puk(sim, at):
    m = sim.modem("m1")
    m.faults.sim_pin("4321", attempts=1)
    assert "+CPINR: SIM PIN,1,3" in at.lines("AT+CPINR")
    assert at.lines('AT+CPIN="0000"')[-1] == "ERROR"  # CMEE=0
    assert m.sim_state == "SIM PUK" and m.pin_attempts == 0
    with pytest.raises(ValueError):
        m.faults.sim_pin("4321", attempts=4)


def test_inbound_inside_reply_puts_the_cmt_between_the_info_lines_and_ok(tmp_path):
    spec = SimModemSpec("m1", msisdn=MODEM, direct_delivery_only=True)
    with Simulator(tmp_path, [spec], latency=0) as sim, WireClient(sim.modem("m1").path) as at:
        m = sim.modem("m1")
        at.command("ATE0")
        at.command("AT+CSMS=1")
        at.command("AT+CNMI=2,2,0,1,0")
        m.faults.inbound_inside_reply("AT+CSQ")
        sim.handset(PEER).send(MODEM, "inside")
        assert m.pending_at_network() == 1
        assert at.lines("AT+CMGL=4") == ["OK"]  # other commands do not let it out
        reply = at.lines("AT+CSQ")
        assert reply[0].startswith("+CSQ: ") and reply[1].startswith("+CMT: ,") and reply[-1] == "OK"
        assert decodeSmsPdu(reply[2])["text"] == "inside"
        assert at.lines("AT+CNMA") == ["OK"]
        assert m.counters.acks == 1 and m.pending_at_network() == 0
        assert at.lines("AT+CSQ")[-1] == "OK" and len(at.lines("AT+CSQ")) == 2  # n=1: only once


def test_watch_commands_sees_matching_lines_before_they_run_until_stopped(sim, at):
    seen: list[str] = []
    stop = sim.modem("m1").watch_commands("AT+CSQ", seen.append)
    at.command("AT+CSQ")
    at.command("AT+CREG?")
    stop()
    at.command("AT+CSQ")
    assert seen == ["AT+CSQ"]
