"""Gammu, an established AT client nobody here wrote, uses a simulated modem as a real one."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from smsgate.simulator import PERSONALITIES, SimModemSpec, Simulator
from smsgate.simulator.wire import WireClient

MODEM = "+15550001001"
PEER = "+15557654321"
GAMMU = shutil.which("gammu") or "/usr/bin/gammu"


def gammu(rc: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([GAMMU, "-c", str(rc), *args], capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def setup(tmp_path):
    spec = SimModemSpec("m1", msisdn=MODEM)
    with Simulator(tmp_path, [spec], latency=0) as sim:
        rc = tmp_path / "gammurc"
        rc.write_text(f"[gammu]\ndevice = {sim.modem('m1').path}\nconnection = at\n")
        yield sim, rc


@pytest.mark.parametrize(
    ("personality", "manufacturer", "model"),
    [("generic", "SMSGATE-SIM", "VIRTUAL-GSM"), ("huawei", "Huawei", "E1752"), ("simcom", "SIMCOM_Ltd", "SIM800")],
)
def test_gammu_identify_reports_the_simulated_identity(tmp_path, personality, manufacturer, model):
    spec = SimModemSpec("m1", personality=personality, imei="356938035643809", imsi="001019876543210")
    with Simulator(tmp_path, [spec], latency=0) as sim:
        rc = tmp_path / "gammurc"
        rc.write_text(f"[gammu]\ndevice = {sim.modem('m1').path}\nconnection = at\n")
        result = gammu(rc, "--identify")
    assert result.returncode == 0, result.stderr
    assert manufacturer in result.stdout and model in result.stdout
    assert "356938035643809" in result.stdout
    assert "001019876543210" in result.stdout


def test_gammu_sendsms_delivers_the_text_to_the_handset(setup):
    sim, rc = setup
    result = gammu(rc, "sendsms", "TEXT", PEER, "-text", "Your appointment is at 10:30")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK, message reference=0" in result.stdout
    message = sim.handset(PEER).wait_for()[0]
    assert (message.text, message.sender) == ("Your appointment is at 10:30", MODEM)


def test_gammu_getallsms_lists_a_long_message_a_handset_sent(setup):
    sim, rc = setup
    text = "Can I move my appointment to Friday afternoon? " * 4
    sim.handset(PEER).send(MODEM, text)
    result = gammu(rc, "getallsms")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(f'Remote number        : "{PEER}"') == 2
    assert "part 1 of 2" in result.stdout and "part 2 of 2" in result.stdout
    assert "Can I move my appointment to Friday afternoon?" in result.stdout


def test_gammu_deleteallsms_empties_the_storage(setup):
    sim, rc = setup
    sim.handset(PEER).send(MODEM, "delete me")
    sim.handset(PEER).send(MODEM, "and me")
    assert len(sim.modem("m1").storage("SM")) == 2
    result = gammu(rc, "deleteallsms", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert sim.modem("m1").storage("SM") == []


def test_gammu_round_trip_on_the_huawei_personality_with_zero_based_indexes(tmp_path):
    with Simulator(tmp_path, [SimModemSpec("m1", personality="huawei", msisdn=MODEM)], latency=0) as sim:
        rc = tmp_path / "gammurc"
        rc.write_text(f"[gammu]\ndevice = {sim.modem('m1').path}\nconnection = at\n")
        sim.handset(PEER).send(MODEM, "Running late, sorry")
        listed = gammu(rc, "getallsms")
        sent = gammu(rc, "sendsms", "TEXT", PEER, "-text", "No problem")
        assert sim.modem("m1").storage("SM")[0].index == 0
        assert sim.handset(PEER).received_texts() == ["No problem"]
    assert listed.returncode == 0 and "Running late, sorry" in listed.stdout, listed.stderr
    assert sent.returncode == 0, sent.stderr


# Every Gammu command tried against the Wavecom personality: its preamble ends with AT+CFUN=1, so all it asks
# next falls inside the busy window and gets +CME ERROR: 515. Gammu then says the device was busy, or (for a
# command that had fallen back to another way of asking first) that the function is not supported or that
# it could not read the SMSC number.
WAVECOM_FAILURES = {
    "--identify": ["--identify"],
    "getallsms": ["getallsms"],
    "getsms": ["getsms", "1", "1"],
    "sendsms": ["sendsms", "TEXT", PEER, "-text", "hi"],
    "deleteallsms": ["deleteallsms", "1"],
    "getsmsc": ["getsmsc"],
    "getsmsfolders": ["getsmsfolders"],
    "networkinfo": ["networkinfo"],
    "getsecuritystatus": ["getsecuritystatus"],
    "battery": ["battery"],
    "monitor": ["monitor", "1"],
}
BUSY_WORDS = ("device was busy", "Function not supported by phone", "Failed to get SMSC number")


def test_the_simulator_guide_lists_exactly_the_gammu_commands_that_fail_on_wavecom():
    guide = (Path(__file__).resolve().parent.parent / "docs" / "simulator.md").read_text(encoding="utf-8")
    paragraph = guide.split("Gammu commands that fail on `wavecom`", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"`gammu ([^`\s]+)[^`]*`", paragraph)) == set(WAVECOM_FAILURES)


def test_every_gammu_command_fails_on_wavecom_inside_the_busy_window_and_the_next_client_is_not_busy(tmp_path):
    with Simulator(tmp_path, [SimModemSpec("m1", personality="wavecom", msisdn=MODEM)], latency=0) as sim:
        rc = tmp_path / "gammurc"
        rc.write_text(f"[gammu]\ndevice = {sim.modem('m1').path}\nconnection = at\n")
        sim.handset(PEER).send(MODEM, "waiting in SM")
        outcomes = {name: gammu(rc, *args) for name, args in WAVECOM_FAILURES.items()}
        sim.advance(PERSONALITIES["wavecom"].cfun_busy_seconds)
        with WireClient(sim.modem("m1").path) as at:
            assert at.lines("AT+CMEE=1;+CGMI") == ["AT+CMEE=1;+CGMI", " WAVECOM MODEM", "OK"]
        assert [s.index for s in sim.modem("m1").storage("SM")] == [1]  # deleteallsms deleted nothing
        assert sim.handset(PEER).inbox == []  # sendsms sent nothing
    for name, result in outcomes.items():
        output = result.stdout + result.stderr
        assert result.returncode != 0 and any(w in output for w in BUSY_WORDS), (name, result.returncode, output)
