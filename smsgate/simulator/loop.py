"""One selector thread serves every simulated modem's pty and timer.

All modem and network state is touched only on this thread; other threads post work with
``call_soon`` or ``run`` (which waits for the result). That keeps 64 modems cheap and the state free of locks.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import os
import selectors
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class LoopClosed(RuntimeError):
    """The simulator's event loop has stopped; start a new Simulator."""


class Timer:
    """Handle for a scheduled callback."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class EventLoop:
    """A minimal reactor: fd readiness callbacks, timers, and thread-safe submission."""

    def __init__(self, name: str = "smsgate-sim-loop") -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._timers: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._pending: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._skew = 0.0  # seconds ``advance`` has moved this clock ahead of time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def in_loop(self) -> bool:
        return threading.current_thread() is self._thread

    def time(self) -> float:
        return self._clock()

    def _clock(self) -> float:
        return time.monotonic() + self._skew

    def advance(self, seconds: float) -> None:
        """Move this loop's clock ``seconds`` ahead and run every timer due by then, before returning.

        Tests use it to let a send's time on the air, a registration delay or a busy window pass without
        waiting for them; the wall clock and other threads are untouched.
        """
        if seconds < 0:
            raise ValueError("the simulator's clock only moves forward")

        def step() -> None:
            self._skew += seconds
            self._fire_due()

        self.run(step)

    def call_soon(self, fn: Callable[[], None]) -> None:
        with self._lock:
            if self._stopping:
                raise LoopClosed("simulator event loop is stopped")
            self._pending.append(fn)
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass  # the pipe is already full of wake-ups

    def run(self, fn: Callable[[], T], timeout: float = 10.0) -> T:
        """Run ``fn`` on the loop thread and return its result (or raise its exception)."""
        if self.in_loop():
            return fn()
        fut: Future[T] = Future()

        def task() -> None:
            if not fut.set_running_or_notify_cancel():
                return
            try:
                fut.set_result(fn())
            except BaseException as exc:  # handed to the caller's thread
                fut.set_exception(exc)

        self.call_soon(task)
        return fut.result(timeout)

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        """Schedule ``fn``; must be called on the loop thread."""
        timer = Timer(self._clock() + max(0.0, delay), fn)
        heapq.heappush(self._timers, (timer.when, next(self._seq), timer))
        return timer

    def add_reader(self, fd: int, callback: Callable[[], None]) -> None:
        self._selector.register(fd, selectors.EVENT_READ, (callback, None))

    def set_writer(self, fd: int, callback: Callable[[], None] | None) -> None:
        key = self._selector.get_key(fd)
        reader = key.data[0]
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if callback else 0)
        self._selector.modify(fd, events, (reader, callback))

    def remove_fd(self, fd: int) -> None:
        try:
            self._selector.unregister(fd)
        except (KeyError, ValueError):
            pass  # already gone

    def stop(self, timeout: float = 5.0) -> None:
        with self._lock:
            if self._stopping:
                return
            self._stopping = True
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass
        if self._thread.is_alive() and not self.in_loop():
            self._thread.join(timeout)
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)

    def _run_pending(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
        for fn in pending:
            self._guard(fn)

    @staticmethod
    def _guard(fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception:
            log.exception("simulator callback %r failed", fn)

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
            timeout = None
            now = self._clock()
            while self._timers and self._timers[0][2].cancelled:
                heapq.heappop(self._timers)
            if self._timers:
                timeout = max(0.0, self._timers[0][0] - now)
            for key, events in self._selector.select(timeout):
                if key.data is None:
                    try:
                        while os.read(self._wake_r, 4096):
                            pass
                    except BlockingIOError:
                        pass
                    continue
                reader, writer = key.data
                if events & selectors.EVENT_WRITE and writer is not None:
                    self._guard(writer)
                if events & selectors.EVENT_READ:
                    self._guard(reader)
            self._run_pending()
            self._fire_due()

    def _fire_due(self) -> None:
        now = self._clock()
        while self._timers and self._timers[0][0] <= now:
            _, _, timer = heapq.heappop(self._timers)
            if not timer.cancelled:
                self._guard(timer.callback)
