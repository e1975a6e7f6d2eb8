"""SIGKILL the daemon again and again during sends and receives; nothing is lost and nothing goes twice.

The daemon runs as its own process (`python -m smsgate.modemd`) against simulated modems in another
process (`Simulator.spawn`), exactly as `smsgate serve` would run against hardware. After every kill it is
restarted; at the end every accepted outbound message must have reached its phone at most once and be
sent, failed or `unknown` (never lost in the queue), every inbound SMS must be stored exactly once, and
every automatic reply must have gone out exactly once.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from smsgate.queue import Kind, Store
from smsgate.simulator import SimModemSpec, Simulator
from smsgate.testing import wait_until

KILLS = 52
PATIENTS = [f"+1202555{i:04d}" for i in range(6)]
HELPERS = [f"+1415555{i:04d}" for i in range(40)]  # each texts HELP once and must get one answer


def _config(tmp: Path, sim_paths: dict[str, Path]) -> Path:
    modems = "".join(f'[[modems]]\nname = "{n}"\ndevice = "{p}"\nparts_per_minute = 0\n\n'
                     for n, p in sim_paths.items())
    cfg = tmp / "smsgate.toml"
    cfg.write_text(
        f'database = "{tmp / "smsgate.db"}"\nlog_level = "WARNING"\n\n[clinic]\nname = "Crash Clinic"\n'
        f'contact = "+15555550100"\ntimezone = "America/New_York"\n\n{modems}'
        "[sending]\nretry_base_seconds = 0.2\nretry_max_seconds = 1.0\nlease_seconds = 30.0\n"
    )
    return cfg


def _spawn(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "smsgate.modemd", "--config", str(cfg), "--fast"],
                                stdout=subprocess.DEVNULL, stderr=out)


@pytest.mark.slow
def test_sigkill_at_many_points_loses_nothing_and_sends_nothing_twice(tmp_path: Path) -> None:
    rng = random.Random(5)
    specs = [SimModemSpec("m1"), SimModemSpec("m2")]
    sim = Simulator.spawn(tmp_path / "sim", specs, latency=0)
    try:
        client = sim.client
        modems = {m["name"]: m for m in client.list_modems()}
        cfg = _config(tmp_path, {n: sim.path(n) for n in modems})
        log = tmp_path / "daemon.log"
        store = Store.open(tmp_path / "smsgate.db")
        accepted: dict[int, str] = {}
        inbound_sent: list[str] = []
        helpers_used: list[str] = []

        def enqueue_wave(k: int) -> None:
            for j in range(4):
                to = rng.choice(PATIENTS)
                text = f"out {k}-{j} " + ("long " * 40 if j == 0 else "")
                accepted[store.outbox.enqueue(to, text.strip(), kind=Kind.REPLY).id] = text.strip()

        def receive_wave(k: int) -> None:
            numbers = [m["msisdn"] for m in modems.values()]
            text = f"in {k} " + ("and a long tail " * 12 if k % 5 == 0 else "")
            client.text(rng.choice(PATIENTS), rng.choice(numbers), text.strip())
            inbound_sent.append(text.strip())
            if len(helpers_used) < len(HELPERS) and k % 2 == 0:
                helper = HELPERS[len(helpers_used)]
                client.text(helper, rng.choice(numbers), "HELP")
                helpers_used.append(helper)
                inbound_sent.append("HELP")

        for k in range(KILLS):
            enqueue_wave(k)
            proc = _spawn(cfg, log)
            time.sleep(rng.uniform(0.2, 0.9))  # a point in start-up, sending or receiving to kill at
            receive_wave(k)
            time.sleep(rng.uniform(0.0, 0.3))
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(10) == -signal.SIGKILL

        proc = _spawn(cfg, log)
        try:
            def settled() -> bool:
                open_states = store.query("SELECT COUNT(*) AS n FROM messages WHERE state IN "
                                          "('queued', 'claimed', 'submitting')")[0]["n"]
                return open_states == 0 and len(store.inbox.recent(limit=10_000)) >= len(inbound_sent)

            def running() -> bool:
                status = store.get_status("daemon")
                return status is not None and status[0].get("pid") == proc.pid and status[0]["running"]

            wait_until(running, timeout=20, what="the restarted daemon's heartbeat")
            wait_until(settled, timeout=60, interval=0.2, what="queue drained and every inbound SMS stored")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0  # graceful stop exits 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

        received: Counter[str] = Counter()
        for number in PATIENTS:
            received.update(client.inbox(number)["texts"])
        states = {m.id: m.state.value for m in store.outbox.recent(limit=100_000)}
        unknown = 0
        for msg_id, text in accepted.items():
            state = states[msg_id]
            assert state in ("submitted", "delivered", "failed", "unknown"), (msg_id, state)
            if state in ("submitted", "delivered"):
                assert received[text] == 1, (msg_id, text, state, received[text])
            elif state == "failed":
                assert received[text] == 0, (msg_id, text)
            else:
                unknown += 1
                assert received[text] <= 1, (msg_id, text)
        stored = Counter(r["body"] for r in store.inbox.recent(limit=100_000))
        for text, n in Counter(inbound_sent).items():
            assert stored[text] == n, (text, stored[text], n)
        for helper in helpers_used:
            assert len(client.inbox(helper)["texts"]) == 1, helper  # the HELP answer, exactly once
        assert unknown <= KILLS  # at most one send in flight per kill can be left unsure
        store.close()
    finally:
        sim.close()
