"""Store throughput: enqueue (one by one and one bulk call), claim+complete, beside raw durable commits.

Run: .venv/bin/python benchmarks/bench_store.py [--dir DIR] [--bulk 100000]
Prints the machine, then each figure. The raw rate of durable commits (tiny INSERT+COMMIT, WAL,
synchronous=FULL, same disk) is the physical limit for per-message durable state changes.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from smsgate.queue import Store

AREA_CODES = [202, 212, 213, 305, 312, 404, 415, 503, 512, 617, 702, 713, 718, 206, 303, 602, 615, 704, 916, 971]


def machine(where: Path) -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"platform: {platform.platform()}; python {platform.python_version()}; sqlite {sqlite3.sqlite_version}\n"
            f"cpu: {model}; cores: {os.cpu_count()}\ndisk path: {where}")


def numbers(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        out.add(f"+1{rng.choice(AREA_CODES)}{rng.randint(200, 999)}{rng.randint(0, 9999):04d}")
    return list(out)


def raw_commits(path: Path, seconds: float = 2.0) -> float:
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, v TEXT)")
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES ('x')")
        conn.execute("COMMIT")
        n += 1
    rate = n / (time.perf_counter() - start)
    conn.close()
    return rate


def timed(label: str, count: int, fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    elapsed = time.perf_counter() - start
    print(f"{label:<62} {count:>7} in {elapsed:6.2f} s = {count / elapsed:>9,.0f}/s")
    return count / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=None, help="folder on the disk to measure (default: a temp folder)")
    ap.add_argument("--bulk", type=int, default=100_000)
    ap.add_argument("--single", type=int, default=2_000)
    ap.add_argument("--drain", type=int, default=5_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        d = Path(tmp)
        print(machine(d))
        raw = raw_commits(d / "raw.db")
        print(f"{'raw durable commits (INSERT+COMMIT, WAL, synchronous=FULL)':<62} {raw:>27,.0f}/s")

        store = Store.open(d / "single.db")
        nums = numbers(args.single, seed=2)
        timed("enqueue one by one (one commit each)", args.single,
              lambda: [store.outbox.enqueue(n, "Reminder: your appointment is tomorrow at 3:15 PM.") for n in nums])
        store.close()

        bulk_nums = numbers(args.bulk, seed=3)
        store = Store.open(d / "bulk.db")
        rows = [{"to": n, "text": "Flu shots are available this week. Reply STOP to opt out."} for n in bulk_nums]
        timed(f"enqueue_many, {args.bulk:,} distinct numbers, one text, one call", args.bulk,
              lambda: store.outbox.enqueue_many(rows, campaign="flu"))
        store.close()
        store = Store.open(d / "bulk2.db")
        rows = [{"to": n, "text": f"Hi patient {i}, flu shots are available this week. Reply STOP to opt out."}
                for i, n in enumerate(bulk_nums)]
        timed(f"enqueue_many, {args.bulk:,} distinct numbers, personal texts, one call", args.bulk,
              lambda: store.outbox.enqueue_many(rows, campaign="flu2"))
        store.close()

        for limit, batched in ((1, False), (50, False), (50, True)):
            store = Store.open(d / f"drain{limit}{batched}.db")
            store.outbox.enqueue_many([{"to": n, "text": "Reminder"} for n in numbers(args.drain, seed=4)])
            modem = store.modems.upsert("m1", state="ready")

            def drain(store: Store = store, modem: int = modem, limit: int = limit, batched: bool = batched) -> None:
                while claims := store.outbox.claim("bench", modem, limit=limit):
                    if batched:
                        with store.transaction():
                            for c in claims:
                                store.outbox.mark_submitting(c, 1)
                        with store.transaction():
                            for c in claims:
                                store.outbox.mark_part_submitted(c, 1, tp_mr=c.message.id % 256)
                    else:
                        for c in claims:
                            store.outbox.mark_submitting(c, 1)
                            store.outbox.mark_part_submitted(c, 1, tp_mr=c.message.id % 256)

            how = "3 commits per batch" if batched else "2 commits per message + 1 per claim"
            # The disk is shared and noisy: measure the physical limit again right before each row.
            raw_now = raw_commits(d / "raw.db", 1.0)
            rate = timed(f"claim+complete, limit={limit}, {how}", args.drain, drain)
            print(f"{'':<62} raw durable commits just before: {raw_now:,.0f}/s; ratio to raw commits: "
                  f"{rate / raw_now:.2f} messages per durable commit"
                  + ("" if batched else f" (ceiling {limit / (2 * limit + 1):.2f}: the commits it must make)"))
            assert store.query("SELECT COUNT(*) AS n FROM messages WHERE state = 'submitted'")[0]["n"] == args.drain
            store.close()


if __name__ == "__main__":
    main()
