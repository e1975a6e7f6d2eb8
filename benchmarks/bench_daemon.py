"""Throughput and latency of the whole daemon path on zero-latency simulated modems.

For 1, 4, 16 and 64 modems: messages per second from claim through PDU encoding, AT+CMGS over the pty and
the committed state; CPU seconds per message (this process: daemon and simulator together); the time from
an inbound SMS reaching the modem to its stored row (p50/p99); and idle CPU with 64 modems.
Goals (issue 5): >= 150 msg/s with 4 modems, 64 modems in one process, idle CPU < 2 % of one core,
inbound stored within 100 ms p50.

Run: .venv/bin/python benchmarks/bench_daemon.py [--messages 600] [--sizes 1,4,16,64]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

from machine import describe as machine

from smsgate.modemd.testing import harness, wait_until
from smsgate.modemd.tunables import Tunables
from smsgate.simulator import SimModemSpec

BENCH = Tunables(heartbeat_s=5.0, health_s=60.0, sweep_s=300.0, queue_poll_s=0.15, registration_wait_s=10.0,
                 registration_poll_s=0.1, resync_timeout_s=1.0, probe_timeout_s=1.0)




def cpu() -> float:
    t = os.times()
    return t.user + t.system


def run(n_modems: int, messages: int, inbound: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, harness(
        Path(tmp), [SimModemSpec(f"m{i}") for i in range(1, n_modems + 1)], tunables=BENCH,
        sim_kwargs={"status_report_delay": 0.0},
    ) as h:
        h.wait_ready(timeout=60)
        numbers = [f"+1202555{i:04d}" for i in range(200)]
        t0, c0 = time.monotonic(), cpu()
        h.store.outbox.enqueue_many([{"to": numbers[i % len(numbers)], "text": f"Reminder {i}: your visit is tomorrow"}
                                    for i in range(messages)], kind="transactional", campaign="bench")

        def done() -> bool:
            n = h.store.query("SELECT COUNT(*) AS n FROM messages WHERE state IN ('submitted','delivered')")[0]["n"]
            return n >= messages

        wait_until(done, timeout=600, interval=0.05, what="all sent")
        elapsed, used = time.monotonic() - t0, cpu() - c0
        # Inbound: one at a time, from handset send to the committed row.
        lat = []
        modems = h.sim.modems
        for i in range(inbound):
            modem = modems[i % len(modems)]
            before = len(h.store.inbox.recent(limit=100_000))
            start = time.monotonic()
            h.sim.handset("+15555550101").send(modem.msisdn, f"inbound {i}")
            wait_until(lambda b=before: len(h.store.inbox.recent(limit=100_000)) > b, timeout=10, interval=0.001)
            lat.append((time.monotonic() - start) * 1000)
        idle = None
        if n_modems == 64:
            time.sleep(2.0)  # let the last reports and writes settle
            c1, w1 = cpu(), time.monotonic()
            time.sleep(20.0)
            idle = (cpu() - c1) / (time.monotonic() - w1) * 100
        lat.sort()
        return {"msg_s": messages / elapsed, "cpu_per_msg": used / messages, "p50": statistics.median(lat),
                "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))], "idle": idle if idle is not None else -1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=600)
    parser.add_argument("--inbound", type=int, default=100)
    parser.add_argument("--sizes", default="1,4,16,64")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    print(f"machine: {machine()}")
    print("modems  msg/s   CPU s/msg  inbound p50 ms  p99 ms  idle CPU %")
    for n in (int(x) for x in args.sizes.split(",")):
        r = run(n, args.messages, args.inbound)
        idle = f"{r['idle']:.2f}" if r["idle"] >= 0 else "-"
        print(f"{n:>6}  {r['msg_s']:6.1f}  {r['cpu_per_msg']:.5f}    {r['p50']:8.1f}  {r['p99']:7.1f}  {idle:>9}",
              flush=True)


if __name__ == "__main__":
    main()
