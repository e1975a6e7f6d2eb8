"""The control protocol (JSON lines on a UNIX socket) and the simulator as a separate process."""

from __future__ import annotations

import json
import os
import socket

import pytest
from click.testing import CliRunner
from gsmmodem.pdu import decodeSmsPdu, encodeSmsSubmitPdu

from smsgate.cli import cli
from smsgate.simulator import ControlError, SimModemSpec, Simulator, SimulatorClient
from smsgate.simulator.wire import WireClient

MODEM = "+15550001001"
PEER = "+15557654321"


@pytest.fixture
def running(tmp_path):
    sock = tmp_path / "c.sock"
    with Simulator(tmp_path, [SimModemSpec("m1", "quectel", msisdn=MODEM)], latency=0, control_socket=sock) as sim:
        yield sim, SimulatorClient(sock)


def test_list_reports_each_modem_with_its_path_and_identity(running):
    sim, client = running
    [row] = client.list_modems()
    assert row["name"] == "m1" and row["personality"] == "quectel" and row["msisdn"] == MODEM
    assert row["path"] == str(sim.modem("m1").path) and row["registered"] is True
    assert row["imei"] == sim.modem("m1").imei


def test_text_then_inbox_round_trip_through_a_real_modem(running):
    sim, client = running
    assert client.text(PEER, MODEM, "hello from the CLI") == 1
    assert len(sim.modem("m1").storage("SM")) == 1
    with WireClient(sim.modem("m1").path) as at:
        at.command("ATE0")
        pdu = encodeSmsSubmitPdu(PEER, "answer")[0]
        at.send_pdu(pdu.data.hex(), pdu.tpduLength)
    inbox = client.inbox(PEER)
    assert inbox["texts"] == ["answer"] and inbox["parts"][0]["from"] == MODEM


def test_fault_by_name_with_string_arguments(running):
    sim, client = running
    client.fault("m1", "unplug")
    assert not os.path.lexists(sim.modem("m1").path)
    client.fault("m1", "replug")
    assert os.path.islink(sim.modem("m1").path)
    client.fault("m1", "cms_error", "38", "2")
    client.fault("m1", "storage_full", "on")


def test_bad_requests_get_errors_an_admin_can_act_on(running):
    _sim, client = running
    with pytest.raises(ControlError, match="unknown fault 'melt'"):
        client.fault("m1", "melt")
    with pytest.raises(ControlError, match="no simulated modem named 'm9'"):
        client.fault("m9", "hang")
    with pytest.raises(ControlError, match="not a simulated modem"):
        client.text(PEER, "+19990000000", "x")
    with socket.socket(socket.AF_UNIX) as raw:
        raw.connect(str(client.socket_path))
        raw.sendall(b"not json\n")
        answer = json.loads(raw.makefile().readline())
    assert answer["ok"] is False and "JSONDecodeError" in answer["error"]


def test_client_without_a_running_simulator_says_how_to_start_one(tmp_path):
    with pytest.raises(ControlError, match="smsgate sim start"):
        SimulatorClient(tmp_path / "none.sock").status()


def test_spawned_simulator_process_serves_modems_and_stops_on_sigterm(tmp_path):
    spawned = Simulator.spawn(tmp_path / "s", [SimModemSpec("m1", "huawei", msisdn=MODEM)], latency=0)
    try:
        path = spawned.path("m1")
        assert os.path.islink(path)
        with WireClient(path) as at:
            assert at.command("AT+CGMI") == b"AT+CGMI\r\r\nhuawei\r\n\r\nOK\r\n"
        assert spawned.client.text(PEER, MODEM, "to the child") == 1
        assert spawned.client.list_modems()[0]["counters"]["inbound_stored"] == 1
    finally:
        assert spawned.close() == 0
    assert not os.path.lexists(path)


def _references(sim) -> list[int]:
    """The concatenation reference of every stored part that has one."""
    decoded = [decodeSmsPdu(s.pdu_hex) for s in sim.modem("m1").storage("SM")]
    return [d["udh"][0].reference for d in decoded if d.get("udh")]


LONG = "Can I move my appointment to Friday afternoon, after three if possible? " * 3


def test_cms_error_after_k_good_sends_can_be_armed_over_the_control_socket(running):
    sim, client = running
    client.fault("m1", "cms_error", "38", "1", "1")  # positional: CODE N AFTER
    with WireClient(sim.modem("m1").path) as at:
        at.command("ATE0")
        pdu = encodeSmsSubmitPdu(PEER, "part")[0]
        assert at.send_pdu(pdu.data.hex(), pdu.tpduLength).endswith(b"OK\r\n")
        assert at.send_pdu(pdu.data.hex(), pdu.tpduLength) == b"\r\n+CMS ERROR: 38\r\n"
        client.fault("m1", "cms_error", "41", "after=1")  # or by name
        assert at.send_pdu(pdu.data.hex(), pdu.tpduLength).endswith(b"OK\r\n")
        assert at.send_pdu(pdu.data.hex(), pdu.tpduLength) == b"\r\n+CMS ERROR: 41\r\n"


def test_a_fault_with_a_bad_or_missing_argument_says_its_usage(running):
    _sim, client = running
    with pytest.raises(ControlError, match=r"cms_error needs code; usage: cms_error CODE \[N \[AFTER\]\]"):
        client.fault("m1", "cms_error")
    with pytest.raises(ControlError, match="ambiguous takes at most 1 argument"):
        client.fault("m1", "ambiguous", "1", "2")
    with pytest.raises(ControlError, match="storage_full: on = 'maybe' is not valid"):
        client.fault("m1", "storage_full", "maybe")


def test_text_over_the_control_socket_carries_the_concatenation_reference_asked_for(running):
    sim, client = running
    assert client.text(PEER, MODEM, LONG, concat_ref=42) == 2
    assert client.text("+12025550123", MODEM, LONG, concat_ref=42) == 2  # another phone, the same reference
    assert _references(sim) == [42, 42, 42, 42]
    with pytest.raises(ControlError, match="0 to 255"):
        client.text(PEER, MODEM, LONG, concat_ref=256)


def test_a_handset_sends_a_long_text_with_the_concatenation_reference_a_test_chose(running):
    sim, _client = running
    assert sim.handset(PEER).send(MODEM, LONG, concat_ref=7) == 2
    assert _references(sim) == [7, 7]
    with pytest.raises(ValueError, match="0 to 255"):
        sim.handset(PEER).send(MODEM, LONG, concat_ref=-1)


def test_sim_text_cli_takes_from_and_concat_ref_and_still_takes_sender_first(running):
    sim, client = running
    sock = str(client.socket_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["sim", "text", "--from", PEER, "--concat-ref", "42", "--socket", sock, MODEM, LONG])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"sent 2 parts from {PEER} to {MODEM}"
    assert runner.invoke(cli, ["sim", "text", "--socket", sock, PEER, MODEM, "short"]).exit_code == 0
    assert _references(sim) == [42, 42]
    assert len(sim.modem("m1").storage("SM")) == 3
    wrong = runner.invoke(cli, ["sim", "text", "--from", PEER, "--socket", sock, PEER, MODEM, "three words"])
    assert wrong.exit_code == 2 and "with --from, give TO and TEXT" in wrong.output
    out_of_range = runner.invoke(cli, ["sim", "text", "--from", PEER, "--concat-ref", "300", "--socket", sock,
                                       MODEM, LONG])
    assert out_of_range.exit_code == 2 and "0<=x<=255" in out_of_range.output
