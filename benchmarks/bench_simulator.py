"""AT+CMGS exchanges per second the simulator sustains at zero latency, with 1 and with 16 modems.

Each modem is driven by a plain pyserial client thread (smsgate.simulator.wire, not smsgate's AT engine):
write AT+CMGS=<n>, wait for the prompt, write the PDU and Ctrl-Z, wait for +CMGS/OK. Run:

    .venv/bin/python benchmarks/bench_simulator.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time

from gsmmodem.pdu import encodeSmsSubmitPdu
from machine import describe as machine

from smsgate.simulator import SimModemSpec, Simulator
from smsgate.simulator.wire import WireClient


def run(n_modems: int, seconds: float) -> tuple[int, float]:
    pdu = encodeSmsSubmitPdu("+15557654321", "Benchmark message from the clinic", requestStatusReport=False)[0]
    hexpdu, length = pdu.data.hex(), pdu.tpduLength
    counts = [0] * n_modems
    with tempfile.TemporaryDirectory() as d:
        specs = [SimModemSpec(f"m{i}") for i in range(n_modems)]
        with Simulator(d, specs, latency=0) as sim:
            clients = [WireClient(m.path, timeout=10) for m in sim.modems]
            for c in clients:
                c.command("ATE0")
            start = threading.Barrier(n_modems + 1)
            stop_at = [0.0]

            def drive(i: int) -> None:
                c = clients[i]
                start.wait()
                while time.perf_counter() < stop_at[0]:
                    answer = c.send_pdu(hexpdu, length)
                    if not answer.endswith(b"OK\r\n"):
                        raise RuntimeError(f"modem m{i} answered {answer!r}")
                    counts[i] += 1

            threads = [threading.Thread(target=drive, args=(i,)) for i in range(n_modems)]
            for t in threads:
                t.start()
            t0 = time.perf_counter()
            stop_at[0] = t0 + seconds
            start.wait()
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
            for c in clients:
                c.close()
            delivered = len(sim.handset("+15557654321").inbox)
            assert delivered == sum(counts), (delivered, sum(counts))
    return sum(counts), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    print(f"machine: {machine()}")
    for n in (1, 16):
        total, elapsed = run(n, args.seconds)
        print(f"{n:2d} modem(s): {total} AT+CMGS exchanges in {elapsed:.2f} s = {total / elapsed:,.0f}/s "
              f"({total / elapsed / n:,.0f}/s per modem)")


if __name__ == "__main__":
    main()
