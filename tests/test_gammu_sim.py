"""Gammu, an established AT client nobody here wrote, uses a simulated modem as a real one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from smsgate.simulator import SimModemSpec, Simulator

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
