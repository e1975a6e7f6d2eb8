"""SIGKILL the daemon while a part is on the air, and see what the next daemon makes of the `unknown` it finds.

The daemon runs as its own process against simulated modems in another process, as in
test_daemon_crash.py. Sends take 1.5 s on the simulated air, so the kill lands between "submitting" and the
modem's answer: either the network still carries the text (and reports it), or a modem reboot loses it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from smsgate.queue import Kind, Store
from smsgate.queue.outbox import AUTOMATIC_RESEND, COMPLIANCE_RESEND
from smsgate.simulator import SimModemSpec, Simulator
from smsgate.simulator.core import SpawnedSimulator
from smsgate.testing import wait_until

PATIENT = "+12025550140"
HELPER = "+14155550141"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SpawnedSimulator]:
    spawned = Simulator.spawn(tmp_path / "sim", [SimModemSpec("m1")], latency=1.5)
    try:
        yield spawned
    finally:
        spawned.close()


def _config(tmp: Path, sim: SpawnedSimulator, extra: str = "") -> Path:
    cfg = tmp / "smsgate.toml"
    cfg.write_text(
        f'database = "{tmp / "smsgate.db"}"\nlog_level = "WARNING"\n\n[clinic]\nname = "Kill Clinic"\n'
        'timezone = "America/New_York"\n'
        f'contact = "+15555550100"\n\n[[modems]]\nname = "m1"\ndevice = "{sim.path("m1")}"\nparts_per_minute = 0\n\n'
        f"[sending]\nretry_base_seconds = 0.2\nretry_max_seconds = 1.0\n{extra}\n"
        "[compliance]\nconfirmation_resend_minutes = 0.02\n"
    )
    return cfg


class Daemons:
    """Starts `python -m smsgate.modemd` for one configuration, kills it, starts it again."""

    def __init__(self, cfg: Path, store: Store) -> None:
        self.cfg = cfg
        self.store = store
        self.log = cfg.parent / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "smsgate.modemd", "--config", str(self.cfg),
                                          "--fast"], stdout=subprocess.DEVNULL, stderr=out)
        pid = self.proc.pid
        wait_until(lambda: (s := self.store.get_status("daemon")) is not None and s[0].get("pid") == pid
                   and (m := self.store.modems.by_name("m1")) is not None and m["state"] == "ready",
                   timeout=20, what="the daemon up with m1 ready")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert self.proc.wait(10) == -signal.SIGKILL

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(30) == 0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "smsgate.db")
    yield s
    s.close()


def _kill_while_on_the_air(daemons: Daemons, message_id: int) -> None:
    wait_until(lambda: daemons.store.query("SELECT 1 FROM message_parts WHERE message_id = ? AND state = "
                                           "'submitting'", (message_id,)), timeout=10, interval=0.01,
               what=f"message #{message_id} on the air")
    daemons.kill()


def _texts(sim: SpawnedSimulator, number: str) -> list[str]:
    texts: list[str] = sim.client.inbox(number)["texts"]
    return texts


def test_a_message_the_network_carried_after_a_kill_is_settled_from_its_report(
        tmp_path: Path, sim: SpawnedSimulator, store: Store) -> None:
    daemons = Daemons(_config(tmp_path, sim), store)
    daemons.start()
    try:
        mid = store.outbox.enqueue(PATIENT, "Reminder: Dr Rivera tomorrow at 3:15 PM").id
        _kill_while_on_the_air(daemons, mid)
        wait_until(lambda: _texts(sim, PATIENT), timeout=10, what="the text on the patient's phone")
        daemons.start()
        msg = wait_until(lambda: (m := store.outbox.get(mid)).state.value == "delivered" and m, timeout=20,
                         what="the unknown message settled from its delivery report")
        (evidence,) = [e["detail"] for e in store.outbox.history(mid) if e["action"] == "message.submitted"]
        assert evidence["tp_mr"] == msg.parts[0].tp_mr == sim.client.inbox(PATIENT)["parts"][0]["mr"]
        assert evidence["report_ids"] and evidence["sc_timestamp"]
        assert [e["action"] for e in store.outbox.history(mid)].count("message.unknown") == 1
        assert _texts(sim, PATIENT) == ["Reminder: Dr Rivera tomorrow at 3:15 PM"]  # once: not re-sent
    finally:
        daemons.stop()


def test_a_help_answer_lost_with_a_kill_is_resent_once_and_arrives(
        tmp_path: Path, sim: SpawnedSimulator, store: Store) -> None:
    daemons = Daemons(_config(tmp_path, sim), store)
    daemons.start()
    try:
        msisdn = sim.client.list_modems()[0]["msisdn"]
        sim.client.text(HELPER, msisdn, "HELP")
        mid = wait_until(lambda: (r := store.query("SELECT id FROM messages WHERE kind = ?",
                                                   (Kind.COMPLIANCE.value,))) and r[0]["id"],
                         timeout=10, what="the HELP answer queued")
        _kill_while_on_the_air(daemons, mid)
        sim.client.fault("m1", "reboot", "0.3")  # the text on the air is lost with the modem's power
        daemons.start()
        wait_until(lambda: store.outbox.get(mid).state.value in ("submitted", "delivered"), timeout=20,
                   what="the HELP answer re-sent")
        assert len(_texts(sim, HELPER)) == 1
        reasons = [e["detail"].get("reason") for e in store.outbox.history(mid) if e["action"] == "message.queued"]
        assert reasons.count(COMPLIANCE_RESEND) == 1
    finally:
        daemons.stop()


def test_resend_unknown_resends_a_message_lost_with_a_kill_at_the_next_start(
        tmp_path: Path, sim: SpawnedSimulator, store: Store) -> None:
    daemons = Daemons(_config(tmp_path, sim, "resend_unknown = true\n"), store)
    daemons.start()
    try:
        mid = store.outbox.enqueue(PATIENT, "Your prescription is ready").id
        _kill_while_on_the_air(daemons, mid)
        sim.client.fault("m1", "reboot", "0.3")
        daemons.start()
        wait_until(lambda: store.outbox.get(mid).state.value in ("submitted", "delivered"), timeout=20,
                   what="the message re-sent by the next daemon")
        assert _texts(sim, PATIENT) == ["Your prescription is ready"]
        actors = [e["actor"] for e in store.outbox.history(mid) if e["detail"].get("reason") == AUTOMATIC_RESEND]
        assert actors == ["lease-expiry:resend_unknown"]
    finally:
        daemons.stop()
