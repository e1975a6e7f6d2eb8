"""Throughput of the PDU codec: decode (real-world vectors plus our own parts) and encode (a mix of texts).

Run: .venv/bin/python benchmarks/bench_codec.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

from machine import describe as machine

from smsgate.at_commands.pdu import PduError, decode, encode_submit

VECTORS = Path(__file__).resolve().parents[1] / "tests" / "data" / "pdu-vectors.json"

TEXTS = [
    "Your appointment is on Monday at 9:30. Reply C to confirm, R to reschedule.",
    "Grüße aus Köln: Ihr Termin ist bestätigt. Preis 9€ {Praxis} [Raum 3]",
    "Привет! Ваш приём завтра в 10:00.",
    "Get well soon 😀🎉",
    "The clinic opens at 8:00 tomorrow. " * 12,
    "明日の予約は10時です。" * 10,
]




def rate(label: str, items: int, run: Callable[[], None], seconds: float) -> None:
    run()  # warm up
    rounds = 0
    start = time.perf_counter()
    while True:
        run()
        rounds += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
    print(f"{label:<36} {items * rounds / elapsed:>12,.0f} PDUs/s  ({items} per round, {rounds} rounds)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()

    vectors = [v["pdu_hex"] for v in json.loads(VECTORS.read_text(encoding="utf-8"))["vectors"]]
    ours = [p.hex for text in TEXTS for p in encode_submit("+4915112345678", text, reference=1)]
    mix = vectors + ours

    def decode_all() -> None:
        for pdu in mix:
            try:
                decode(pdu)
            except PduError:
                decode(pdu, lenient=True)

    def encode_all() -> None:
        for text in TEXTS:
            encode_submit("+4915112345678", text, reference=1)

    parts_per_round = sum(len(encode_submit("+4915112345678", t, reference=1)) for t in TEXTS)
    print(f"machine: {machine()}")
    rate(f"decode ({len(vectors)} vectors + {len(ours)} own parts)", len(mix), decode_all, args.seconds)
    rate(f"encode ({len(TEXTS)} texts, PDUs produced)", parts_per_round, encode_all, args.seconds)


if __name__ == "__main__":
    main()
