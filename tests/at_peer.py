"""A scripted fake modem on the master side of a real pty, for the AT engine tests.

The peer reads what the channel writes to the slave, cuts it into commands at CR (a PDU ends at Ctrl-Z,
an ESC is reported on its own) and hands each to ``handler(peer, received)``, which answers with
``peer.send(...)``. It knows no AT: each test scripts exactly the modem it needs.
"""

from __future__ import annotations

import contextlib
import os
import pty
import select
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass

import serial


@dataclass(frozen=True)
class Received:
    text: str
    end: str  # "\r", "\x1a" (PDU + Ctrl-Z) or "\x1b" (ESC)


Handler = Callable[["AtPeer", Received], None]


def script(answers: dict[str, str], *, default: str = "\r\nOK\r\n", echo: bool = False) -> Handler:
    """A handler answering from a table (command text -> reply); ESC is ignored; unknown -> ``default``."""

    def handle(peer: AtPeer, got: Received) -> None:
        if got.end == "\x1b" or not got.text:
            return
        if echo:
            peer.send(got.text + got.end)
        peer.send(answers.get(got.text, default))

    return handle


class AtPeer:
    """Owns a pty pair; ``open_port()`` gives a ``serial.Serial`` on the slave for the channel under test."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self.received: list[Received] = []
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._closed = False
        self._buf = bytearray()
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="at-peer", daemon=True)
        self._thread.start()

    def open_port(self, **kwargs: object) -> serial.Serial:
        return serial.Serial(self.path, baudrate=115200, timeout=0.05, **kwargs)

    def send(self, data: str | bytes) -> None:
        raw = data.encode("latin-1") if isinstance(data, str) else data
        view = memoryview(raw)
        while view:
            written = os.write(self.master, view)
            view = view[written:]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 5.0) -> None:
        """Block until ``predicate(received)`` holds; AssertionError at the deadline."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate(self.received):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"peer never saw the expected input; got {self.received!r}")
                self._cond.wait(remaining)

    def texts(self) -> list[str]:
        with self._cond:
            return [r.text for r in self.received]

    def vanish(self) -> None:
        """The device disappears: close the master and our slave copy (the channel's fd gets EIO)."""
        self._stop.set()
        self._closed = True
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        if not self._closed:
            self.vanish()

    def __enter__(self) -> AtPeer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self.master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self.master, 4096)
            except OSError:
                return
            if not data:
                return
            self._buf += data
            self._split()

    def _split(self) -> None:
        while True:
            cut = [i for i in (self._buf.find(b"\r"), self._buf.find(b"\x1a"), self._buf.find(b"\x1b"))
                   if i >= 0]
            if not cut:
                return
            i = min(cut)
            got = Received(self._buf[:i].decode("latin-1").strip("\n"), chr(self._buf[i]))
            del self._buf[: i + 1]
            with self._cond:
                self.received.append(got)
                self._cond.notify_all()
            try:
                self.handler(self, got)
            except OSError as exc:  # the test closed the pty under the handler: record, stop answering
                self.errors.append(exc)
                return
