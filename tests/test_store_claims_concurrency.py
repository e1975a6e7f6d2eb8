"""Two drainer processes on one database file: every message is claimed exactly once and none is lost."""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from smsgate.queue import State, Store

REPO = Path(__file__).resolve().parent.parent

# Claims in small batches and completes each message with its own commits, like the daemon's drain loop
# (the short pause stands for the modem exchange, without which SQLite's unfair busy handler lets one
# tight loop starve the other process); prints how many messages it claimed.
DRAINER = textwrap.dedent(
    """
    import sys
    import time
    from smsgate.queue import Store

    store = Store.open(sys.argv[1])
    owner = sys.argv[2]
    print("ready", flush=True)
    sys.stdin.readline()  # both start together
    taken = 0
    while True:
        claims = store.outbox.claim(owner, None, limit=5)
        if not claims:
            if not store.query("SELECT 1 FROM messages WHERE state = 'queued' LIMIT 1"):
                break
            continue
        for c in claims:
            store.outbox.mark_submitting(c, 1)
            time.sleep(0.0005)  # the modem's turn: AT+CMGS happens outside any transaction
            store.outbox.mark_part_submitted(c, 1, tp_mr=c.message.id % 256)
        taken += len(claims)
    print(taken)
    """
)


def test_two_processes_draining_one_queue_claim_each_message_exactly_once(db_path: Path) -> None:
    n = 3000
    with Store.open(db_path) as store:
        ids = store.outbox.enqueue_many(
            [{"to": f"+1202555{i % 10000:04d}", "text": f"Flu shots this week, ref {i}"} for i in range(n)]
        )
    assert len(set(ids)) == n
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", DRAINER, str(db_path), f"drainer-{k}"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for k in (1, 2)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    outputs = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    taken = [int(out.strip()) for out, _ in outputs]
    assert sum(taken) == n
    assert min(taken) > 0, f"the drainers did not overlap: {taken}"

    with Store.open(db_path) as store:
        states = store.query("SELECT state, COUNT(*) AS n FROM messages GROUP BY state")
        assert states == [{"state": State.SUBMITTED.value, "n": n}]
        claims = store.query(
            "SELECT subject_id, actor FROM audit_log WHERE action = 'message.claimed' ORDER BY id"
        )
        per_message = collections.Counter(r["subject_id"] for r in claims)
        assert set(per_message) == set(ids)
        assert set(per_message.values()) == {1}
        by_owner = collections.Counter(r["actor"] for r in claims)
        assert by_owner == {"drainer-1": taken[0], "drainer-2": taken[1]}
        submitted = store.query("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'message.submitted'")
        assert submitted[0]["n"] == n
        assert store.integrity_check() == ["ok"]


OPENER = textwrap.dedent(
    """
    import sys
    from smsgate.queue import Store

    sys.stdin.readline()
    with Store.open(sys.argv[1]) as store:
        store.outbox.enqueue("+12025550123", "hello from " + sys.argv[2])
    """
)


def test_processes_opening_a_new_database_at_once_migrate_it_once(db_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen([sys.executable, "-c", OPENER, str(db_path), str(k)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for k in range(4)
    ]
    for p in procs:  # released together once all are running
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    for p in procs:
        _out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
    with Store.open(db_path) as store:
        assert store.migrate() == []
        assert store.query("SELECT COUNT(*) AS n FROM messages")[0]["n"] == 4
        names = [r["name"] for r in store.query("SELECT name FROM _sqlite_migrations ORDER BY id")]
        assert len(names) == len(set(names))
