"""The virtual network: handsets, modem-to-modem routing, TP-MRs, status reports, concatenation."""

from __future__ import annotations

import re

import pytest
from gsmmodem.pdu import decodeSmsPdu, encodeSmsSubmitPdu

from smsgate.simulator import BadOutcome, SimModemSpec, Simulator, UnknownNumber
from smsgate.simulator.wire import WireClient

MODEM = "+15550001001"
OTHER = "+15550001002"
PEER = "+15557654321"


@pytest.fixture
def sim(tmp_path):
    specs = [SimModemSpec("m1", msisdn=MODEM, first_mr=254), SimModemSpec("m2", msisdn=OTHER)]
    with Simulator(tmp_path, specs, latency=0, pending_delay=0.2, seed=7) as s:
        yield s


def send(at, to: str, text: str, srr: bool = False) -> list[bytes]:
    return [at.send_pdu(p.data.hex(), p.tpduLength) for p in encodeSmsSubmitPdu(to, text, requestStatusReport=srr)]


def test_each_modem_has_its_own_sim_and_imei(sim):
    m1, m2 = sim.modem("m1"), sim.modem("m2")
    assert (m1.msisdn, m2.msisdn) == (MODEM, OTHER)
    assert len({m1.imei, m2.imei}) == 2 and len({m1.imsi, m2.imsi}) == 2 and len({m1.iccid, m2.iccid}) == 2


def test_tp_mr_is_per_modem_one_octet_and_wraps(sim, at):
    answers = [send(at, PEER, f"n{i}")[0] for i in range(3)]
    assert [re.search(rb"\+CMGS: (\d+)", a).group(1) for a in answers] == [b"254", b"255", b"0"]
    assert [m.mr for m in sim.handset(PEER).wait_for(lambda i: len(i) == 3)] == [254, 255, 0]


def test_long_text_from_a_modem_reaches_the_handset_reassembled(sim, at):
    text = "The clinic opens at 9. " * 12
    send(at, PEER, text)
    handset = sim.handset(PEER)
    handset.wait_for(lambda inbox: len(inbox) == 2)
    assert handset.received_texts() == [text]


def test_a_message_to_another_modems_number_lands_in_its_sim(sim, at):
    send(at, OTHER, "modem to modem")
    with WireClient(sim.modem("m2").path) as other:
        other.command("ATE0")
        lines = other.lines("AT+CMGL=4")
    decoded = decodeSmsPdu(lines[1])
    assert decoded["text"] == "modem to modem" and decoded["number"] == MODEM


def test_handset_long_text_arrives_as_concatenated_parts_shuffled(sim, at):
    text = "Reminder: bring your card and list of medicines. " * 5
    assert sim.handset(PEER).send(MODEM, text, shuffle=True) == 2
    lines = [line for line in at.lines("AT+CMGL=4") if re.fullmatch(r"[0-9A-F]+", line)]
    decoded = [decodeSmsPdu(line) for line in lines]
    seqs = [d["udh"][0].number for d in decoded]
    assert seqs == [2, 1]
    by_seq = sorted(decoded, key=lambda d: d["udh"][0].number)
    assert "".join(d["text"] for d in by_seq) == text
    assert all(d["number"] == PEER for d in decoded)


def test_handset_unicode_text_is_ucs2_and_decodes_independently(sim, at):
    sim.handset(PEER).send(MODEM, "Здравствуйте, доктор")
    decoded = decodeSmsPdu(at.lines("AT+CMGR=1")[1])
    assert decoded["text"] == "Здравствуйте, доктор"


def test_texting_an_unknown_number_is_a_clear_error(sim):
    with pytest.raises(UnknownNumber, match="not a simulated modem"):
        sim.handset(PEER).send("+19999999999", "hello?")


def test_status_report_delivered_routed_as_cds(sim, at):
    at.command("AT+CNMI=2,1,0,1,0")
    send(at, PEER, "report please", srr=True)
    raw = at.read_until(re.compile(rb"\+CDS: \d+\r\n([0-9A-F]+)\r\n"))
    report = decodeSmsPdu(re.search(rb"\r\n([0-9A-F]+)\r\n$", raw).group(1).decode())
    assert (report["type"], report["reference"], report["status"], report["number"]) == (
        "SMS-STATUS-REPORT", 254, 0, PEER)


def test_status_report_failed_and_the_handset_gets_nothing(sim, at):
    handset = sim.handset(PEER)
    handset.set_report_outcome("failed")
    at.command("AT+CNMI=2,1,0,1,0")
    send(at, PEER, "never arrives", srr=True)
    raw = at.read_until(re.compile(rb"\+CDS: \d+\r\n([0-9A-F]+)\r\n"))
    assert decodeSmsPdu(re.search(rb"\r\n([0-9A-F]+)\r\n$", raw).group(1).decode())["status"] == 0x41
    assert handset.inbox == []


def test_status_report_pending_then_delivered_stored_in_sr_with_cdsi(sim, at):
    sim.handset(PEER).queue_report_outcomes("pending_then_delivered")
    at.command("AT+CNMI=2,1,0,2,0")
    send(at, PEER, "slow one", srr=True)
    at.read_until(b'+CDSI: "SR",2\r\n', timeout=3)
    at.command('AT+CPMS="SR"')
    statuses = [decodeSmsPdu(line)["status"] for line in at.lines("AT+CMGL=4") if re.fullmatch(r"[0-9A-F]+", line)]
    assert statuses == [0x20, 0x00]
    assert sim.handset(PEER).received_texts() == ["slow one"]


def test_status_reports_are_not_routed_with_ds_0(sim, at):
    send(at, PEER, "quiet", srr=True)
    sim.handset(PEER).wait_for()
    assert at.read_for(0.2) == b""
    assert sim.modem("m1").counters.status_reports_dropped == 1


def test_unknown_outcome_is_rejected(sim):
    with pytest.raises(BadOutcome, match="pending_then_delivered"):
        sim.handset(PEER).set_report_outcome("lost")


def test_status_reports_out_of_order_delivered_then_a_stale_pending(sim, at):
    sim.handset(PEER).queue_report_outcomes("delivered_then_pending")
    at.command("AT+CNMI=2,1,0,2,0")
    send(at, PEER, "two reports", srr=True)
    at.read_until(b'+CDSI: "SR",2\r\n', timeout=3)
    at.command('AT+CPMS="SR"')
    statuses = [decodeSmsPdu(line)["status"] for line in at.lines("AT+CMGL=4") if re.fullmatch(r"[0-9A-F]+", line)]
    assert statuses == [0x00, 0x20]
