"""The control protocol (JSON lines on a UNIX socket) and the simulator as a separate process."""

from __future__ import annotations

import json
import os
import socket

import pytest
from gsmmodem.pdu import encodeSmsSubmitPdu

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
