"""SIGKILL in the middle of claim transactions: the file stays consistent and every message is accounted for."""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from smsgate.queue import PartState, State, Store
from smsgate.queue.records import TRANSITIONS

REPO = Path(__file__).resolve().parent.parent

# Claims in a loop with a gate that sleeps inside the claim transaction (so a kill often lands while the
# write lock is held and rows are half-updated), then sends, requeues or leaves messages mid-send.
VICTIM = textwrap.dedent(
    """
    import os, random, sys, time
    from smsgate.queue import Store

    def slow_gate(msg, now):
        time.sleep(random.uniform(0, 0.004))
        return None

    store = Store.open(sys.argv[1])
    owner = f"victim-{os.getpid()}"
    print("ready", flush=True)
    while True:
        for c in store.outbox.claim(owner, None, limit=3, gate=slow_gate, lease_seconds=3600):
            roll = random.random()
            if roll < 0.1:
                store.outbox.requeue(c, "modem busy")
                continue
            store.outbox.mark_submitting(c, 1)
            if roll < 0.2:
                continue  # killed "while AT+CMGS is on the wire"
            store.outbox.mark_part_submitted(c, 1, tp_mr=c.message.id % 256)
    """
)


def _replay_is_legal(history: list[dict], final: str) -> bool:
    # Bulk-queued messages start queued without a per-message entry (the campaign has one entry).
    state = None if history and history[0]["action"] == "message.queued" else "queued"
    for h in history:
        new = h["action"].removeprefix("message.")
        old = h["detail"].get("from")
        if old != state:
            return False
        if state is not None and State(new) not in TRANSITIONS[State(state)]:
            return False
        state = new
    return state == final


def test_sigkill_during_claims_leaves_database_consistent_and_no_message_lost(db_path: Path) -> None:
    n = 400
    with Store.open(db_path) as store:
        ids = store.outbox.enqueue_many([{"to": f"+1202555{i:04d}", "text": f"Recall notice {i}"} for i in range(n)])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    rng = random.Random(20261122)
    kills = 0
    deadline = time.monotonic() + 40
    while kills < 12 and time.monotonic() < deadline:
        victim = subprocess.Popen([sys.executable, "-c", VICTIM, str(db_path)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, env=env)
        assert victim.stdout is not None
        assert victim.stdout.readline().strip() == "ready", victim.stderr.read() if victim.stderr else ""
        time.sleep(rng.uniform(0.01, 0.15))  # a random kill point, not a synchronisation
        victim.send_signal(signal.SIGKILL)
        victim.communicate(timeout=10)
        assert victim.returncode == -signal.SIGKILL
        kills += 1
        with Store.open(db_path) as store:
            assert store.integrity_check() == ["ok"]
            # The victim is dead: its leases go back, mid-send messages become `unknown`.
            store.outbox.expire_leases(owner_is_dead=lambda owner: True)
    assert kills >= 5

    with Store.open(db_path) as store:
        assert store.integrity_check() == ["ok"]
        rows = store.query("SELECT id, state, lease_owner FROM messages ORDER BY id")
        assert [r["id"] for r in rows] == ids, "a message was lost or duplicated"
        states = collections.Counter(r["state"] for r in rows)
        assert set(states) <= {"queued", "submitted", "unknown"}, states
        assert states["submitted"] > 0, "the victims never got to send anything; kill points too early"
        assert all(r["lease_owner"] is None for r in rows)
        for r in rows:
            msg = store.outbox.get(r["id"])
            part = msg.parts[0].state
            expected_part = {"queued": PartState.PENDING, "submitted": PartState.SUBMITTED,
                             "unknown": PartState.UNKNOWN}[r["state"]]
            assert part == expected_part, (r, part)
            history = store.outbox.history(r["id"])
            assert _replay_is_legal(history, r["state"]), (r, history)
            assert sum(h["action"] == "message.submitted" for h in history) <= 1
        # Whatever was queued is still sendable: one more clean drain empties the queue.
        while claims := store.outbox.claim("final", None, limit=50):
            for c in claims:
                store.outbox.mark_submitting(c, 1)
                store.outbox.mark_part_submitted(c, 1, tp_mr=1)
        assert store.query("SELECT COUNT(*) AS n FROM messages WHERE state = 'queued'")[0]["n"] == 0
