"""AT engine round-trips per second over a real pty against a minimal fast responder.

Run: .venv/bin/python benchmarks/bench_at_engine.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import pty
import select
import threading
import time
import tty

import serial
from machine import describe as machine

from smsgate.at_commands.channel import AtChannel

PDU = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"




def responder(master: int, stop: threading.Event) -> None:
    """Answers AT with OK, AT+CMGS=n with '> ', a PDU + Ctrl-Z with +CMGS/OK. Nothing else."""
    buf = bytearray()
    while not stop.is_set():
        ready, _, _ = select.select([master], [], [], 0.05)
        if not ready:
            continue
        try:
            buf += os.read(master, 4096)
        except OSError:
            return
        while True:
            cut = [i for i in (buf.find(b"\r"), buf.find(b"\x1a")) if i >= 0]
            if not cut:
                break
            i = min(cut)
            token, end = bytes(buf[:i]), buf[i]
            del buf[: i + 1]
            if token.startswith(b"AT+CMGS="):
                os.write(master, b"\r\n> ")
            elif end == 0x1A:
                os.write(master, b"\r\n+CMGS: 1\r\n\r\nOK\r\n")
            elif token:
                os.write(master, b"\r\nOK\r\n")


def run(seconds: float) -> None:
    master, slave = pty.openpty()
    tty.setraw(slave)
    stop = threading.Event()
    thread = threading.Thread(target=responder, args=(master, stop), daemon=True)
    thread.start()
    port = serial.Serial(os.ttyname(slave), 115200, timeout=0.05)
    print(machine())
    with AtChannel(port, name="bench") as channel:
        for label, call in (("AT -> OK", lambda: channel.command("AT")),
                            ("AT+CMGS exchange", lambda: channel.send_pdu(PDU, 24))):
            count = 0
            t0 = time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                call()
                count += 1
            elapsed = time.perf_counter() - t0
            print(f"{label:18s} {count / elapsed:9.0f} round-trips/s ({count} in {elapsed:.2f} s, "
                  f"{1e6 * elapsed / count:.0f} us each)")
    stop.set()
    thread.join(2)
    os.close(master)
    os.close(slave)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    run(parser.parse_args().seconds)
