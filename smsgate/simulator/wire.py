"""A deliberately tiny AT speaker over pyserial, for tests and benchmarks of the simulator.

It is not smsgate's AT engine (``smsgate.at_commands``) and never will be: it only writes bytes and reads
until a final result, so tests can assert exactly what a client sees on the wire.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import serial

FINAL_RE = re.compile(
    rb"\r\n(OK|ERROR|NO CARRIER|COMMAND NOT SUPPORT|\+CM[ES] ERROR: [^\r\n]*)\r\n"
)


class WireTimeout(TimeoutError):
    """The expected bytes did not arrive in time; ``received`` holds what did."""

    def __init__(self, message: str, received: bytes) -> None:
        super().__init__(f"{message}; received {received!r}")
        self.received = received


class WireClient:
    """Opens a device path and speaks raw AT."""

    def __init__(self, path: Path | str, *, timeout: float = 3.0) -> None:
        self.timeout = timeout
        self.port = serial.Serial(str(path), baudrate=115200, timeout=0.02)
        self.buffer = bytearray()

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> WireClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, data: bytes | str) -> None:
        self.port.write(data.encode("latin-1") if isinstance(data, str) else data)

    def _fill(self) -> None:
        chunk = self.port.read(self.port.in_waiting or 1)
        if chunk:
            self.buffer += chunk

    def read_until(self, pattern: bytes | re.Pattern[bytes], timeout: float | None = None) -> bytes:
        """Consume and return everything up to and including the first match of ``pattern``."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        regex = re.compile(re.escape(pattern)) if isinstance(pattern, bytes) else pattern
        while True:
            match = regex.search(self.buffer)
            if match:
                data = bytes(self.buffer[: match.end()])
                del self.buffer[: match.end()]
                return data
            if time.monotonic() > deadline:
                raise WireTimeout(f"no {regex.pattern!r} within the deadline", bytes(self.buffer))
            self._fill()

    def read_for(self, seconds: float) -> bytes:
        """Everything that arrives within ``seconds`` (for asserting that nothing does)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._fill()
        data = bytes(self.buffer)
        self.buffer.clear()
        return data

    def command(self, line: str, timeout: float | None = None) -> bytes:
        """Write ``line`` + CR and return the raw bytes up to and including the final result."""
        self.write(line + "\r")
        return self.read_until(FINAL_RE, timeout)

    def lines(self, line: str, timeout: float | None = None) -> list[str]:
        """``command`` split into non-empty lines, the echo (if any) included."""
        raw = self.command(line, timeout)
        return [part for part in raw.decode("latin-1").replace("\r\n", "\n").replace("\r", "\n").split("\n") if part]

    def send_pdu(self, pdu_hex: str, tpdu_length: int, timeout: float | None = None) -> bytes:
        """The whole AT+CMGS exchange; returns the bytes after the PDU up to the final result."""
        self.write(f"AT+CMGS={tpdu_length}\r")
        self.read_until(b"> ", timeout)
        self.write(pdu_hex.encode("ascii") + b"\x1a")
        return self.read_until(FINAL_RE, timeout)
