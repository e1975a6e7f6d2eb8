"""``python -m smsgate.simulator``: run simulated modems until SIGTERM, printing their device paths."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from .core import SimModemSpec, Simulator
from .personality import PERSONALITIES


def parse_latency(text: str) -> float | tuple[float, float]:
    """``0``, ``1.5`` or a range ``2-6`` (seconds)."""
    if "-" in text.strip("-"):
        low, high = text.split("-", 1)
        return float(low), float(high)
    return float(text)


def parse_modem(text: str) -> SimModemSpec:
    """``NAME[:PERSONALITY[:MSISDN]]``."""
    name, _, rest = text.partition(":")
    personality, _, msisdn = rest.partition(":")
    return SimModemSpec(name=name, personality=personality or "generic", msisdn=msisdn or None)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m smsgate.simulator", description=__doc__)
    parser.add_argument("--dir", type=Path, required=True, help="directory the simulator owns (dev/ links)")
    parser.add_argument("--modem", action="append", default=[], type=parse_modem,
                        help="NAME[:PERSONALITY[:MSISDN]]; personalities: " + ", ".join(sorted(PERSONALITIES)))
    parser.add_argument("--count", type=int, default=0, help="add N generic modems named m1..mN")
    parser.add_argument("--personality", default="generic", help="personality for --count modems")
    parser.add_argument("--latency", type=parse_latency, default=(2.0, 6.0), help="send latency: 0, 1.5 or 2-6")
    parser.add_argument("--registration-delay", type=float, default=None)
    parser.add_argument("--control", type=Path, default=None, help="UNIX socket for the control protocol")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    specs = list(args.modem) + [
        SimModemSpec(name=f"m{i}", personality=args.personality) for i in range(1, args.count + 1)
    ]
    if not specs:
        specs = [SimModemSpec(name="m1")]
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    control = args.control or args.dir / "control.sock"
    with Simulator(args.dir, specs, latency=args.latency, registration_delay=args.registration_delay,
                   control_socket=control, seed=args.seed) as sim:
        for m in sim.modems:
            print(f"{m.name}\t{m.personality}\t{m.msisdn}\t{m.path}\t{m.tty_path}", flush=True)
        print(f"control\t{control}", flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
