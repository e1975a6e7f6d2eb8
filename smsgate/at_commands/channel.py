"""``AtChannel``: one AT command in flight over any pyserial port, URCs on their own ordered queue.

Shape borrowed from ``serial.threaded`` (a reader thread feeding a framer), with the lessons of
RELIABILITY.md: every line is classified against the pending command, a URC never ends or extends a
command, deadlines are absolute (gammu#393), the ``+CMGS`` prompt and PDU are one locked exchange, and a
vanished device fails the pending command at once instead of at its deadline.
"""

from __future__ import annotations

import logging
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import serial

from smsgate.at_commands.classify import (
    Echo,
    Final,
    FinalKind,
    Info,
    Pending,
    Prompt,
    Urc,
    classify,
    pending_for,
)
from smsgate.at_commands.errors import (
    AtTimeout,
    ChannelDesynced,
    CmeError,
    CmsError,
    CommandFailed,
    ModemError,
    PortGone,
)
from smsgate.at_commands.framing import Frame, LineFramer

log = logging.getLogger(__name__)

CTRL_Z = b"\x1a"
TERMINAL_GRACE = 0.3
ESC = b"\x1b"
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
_CMGS = re.compile(r"^\+CMGS:\s*(\d+)")

RawLog = Callable[[str, bytes], None]
UrcCallback = Callable[[Urc], None]


@dataclass
class _Exchange:
    pending: Pending
    info: list[str] = field(default_factory=list)
    final: Final | None = None
    prompt: bool = False
    terminal_line: str | None = None


class AtChannel:
    """Talk AT to a modem over ``port`` (an open pyserial object: ``serial.Serial``, ``serial_for_url``).

    The channel sets ``port.timeout`` to ``read_timeout`` when it is unset or long, so the reader thread
    can notice ``close()``. Commands wait for the lock (one in flight); each command's deadline starts when
    it holds the lock and is absolute.
    """

    def __init__(self, port: Any, *, name: str | None = None, on_urc: UrcCallback | None = None,
                 raw_log: RawLog | None = None, resync_timeout: float = 3.0,
                 read_timeout: float = 0.05) -> None:
        self._port = port
        self.name = name or str(getattr(port, "port", None) or getattr(port, "name", None) or "port")
        self.urcs: queue.Queue[Urc] = queue.Queue()
        self.on_urc = on_urc
        self.raw_log = raw_log
        self.resync_timeout = resync_timeout
        self._lock = threading.Lock()
        self._cond = threading.Condition()
        self._exchange: _Exchange | None = None
        self._draining = False
        self._last_rx = time.monotonic()
        self._error: ModemError | None = None
        self._closing = threading.Event()
        self._desynced = False
        self._secret: bytes | None = None
        self._framer = LineFramer()
        current = getattr(port, "timeout", None)
        if current is None or current > 0.5:
            port.timeout = read_timeout
        self._thread = threading.Thread(target=self._run, name=f"at-reader:{self.name}", daemon=True)
        self._thread.start()

    # -- public API -------------------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        """True while the reader runs and the port has not failed or been closed."""
        return self._thread.is_alive() and self._error is None and not self._closing.is_set()

    @property
    def error(self) -> ModemError | None:
        """Why the channel died (``PortGone`` ...), or ``None``."""
        return self._error

    def command(self, cmd: str, *, timeout: float = 5.0, expect: tuple[str, ...] | None = None,
                terminal: tuple[str, ...] = (), bare_info: bool | None = None,
                secret: str | None = None) -> list[str]:
        """Send ``cmd`` and return its information lines.

        ``expect``: info prefixes (default derived from the command name, ``+CSQ:`` for ``AT+CSQ``).
        ``terminal``: info prefixes that end the command with no final result (Wavecom ``+CPIN:``).
        ``secret``: a substring (a PIN) masked in logs, the raw log and exceptions.
        Raises ``CmsError``/``CmeError``/``CommandFailed`` on error finals, ``AtTimeout`` after the deadline
        (channel resynchronised) or ``ChannelDesynced`` (it could not be), ``PortGone``.
        """
        data = _encode_command(cmd)
        shown = cmd.replace(secret, "****") if secret else cmd
        pending = pending_for(cmd, expect=expect, terminal=terminal, bare_info=bare_info)
        with self._lock:
            self._ensure_usable()
            self._secret = secret.encode() if secret else None
            try:
                deadline = time.monotonic() + timeout
                ex = self._begin(pending)
                self._write(data)
                if not self._await(ex, lambda e: e.final is not None or e.terminal_line is not None,
                                   deadline):
                    self._timed_out(shown, timeout, ex, after_submit=False)
                if ex.final is None:
                    # A terminal info line (Wavecom +CPIN: with no OK): give a modem that does send the OK a
                    # moment, so that OK cannot be taken as the final of the next command.
                    self._await(ex, lambda e: e.final is not None,
                                min(deadline, time.monotonic() + TERMINAL_GRACE))
                return self._result(ex, shown, after_submit=False)
            finally:
                self._end()
                self._secret = None

    def send_pdu(self, pdu_hex: str, tpdu_length: int, *, timeout: float = 60.0) -> int:
        """``AT+CMGS=<len>``, wait for ``> ``, write the PDU and Ctrl-Z, return the TP-MR from ``+CMGS:``.

        The whole exchange holds the command lock, so no other command can slip in after the prompt. A
        timeout or error after the PDU was written is flagged ``after_submit`` (the SMS may have gone).
        """
        if not _HEX.match(pdu_hex):
            raise ValueError(f"PDU must be an even-length hex string, got {pdu_hex[:40]!r}")
        if not 1 <= tpdu_length <= 255 or tpdu_length * 2 > len(pdu_hex):
            raise ValueError(f"TPDU length {tpdu_length} does not fit a PDU of {len(pdu_hex) // 2} octets")
        cmd = f"AT+CMGS={tpdu_length}"
        pending = pending_for(cmd, expect=("+CMGS:",))
        with self._lock:
            self._ensure_usable()
            try:
                deadline = time.monotonic() + timeout
                ex = self._begin(pending)
                self._write(_encode_command(cmd))
                if not self._await(ex, lambda e: e.prompt or e.final is not None, deadline):
                    self._timed_out(cmd, timeout, ex, after_submit=False)
                if not ex.prompt:
                    self._result(ex, cmd, after_submit=False)
                    raise CommandFailed(cmd, ex.final.line if ex.final else "",
                                        detail=f"{cmd}: the modem answered without the '> ' prompt; "
                                        "the message was not sent. Check AT+CMGF=0 (PDU mode).")
                with self._cond:
                    ex.pending = replace(ex.pending, echoes=(*ex.pending.echoes, pdu_hex.upper()))
                try:
                    self._write(pdu_hex.upper().encode("ascii") + CTRL_Z)
                    got = self._await(ex, lambda e: e.final is not None, deadline)
                except PortGone as exc:
                    raise PortGone(exc.port, exc.cause, after_submit=True) from exc
                except ChannelDesynced as exc:
                    raise ChannelDesynced(exc.port, exc.detail, after_submit=True) from exc
                except ModemError as exc:
                    if getattr(exc, "after_submit", False):
                        raise
                    # The PDU is written: whatever stopped the wait, the SMS may have gone.
                    raise PortGone(self.name, exc, after_submit=True) from exc
                if not got:
                    self._timed_out(cmd, timeout, ex, after_submit=True)
                info = self._result(ex, cmd, after_submit=True)
            finally:
                self._end()
        for line in info:
            m = _CMGS.match(line)
            if m:
                return int(m.group(1))
        raise CommandFailed(cmd, ex.final.line if ex.final else "", after_submit=True,
                            detail=f"{cmd}: final OK without a '+CMGS: <mr>' line ({info!r}); the message "
                            "probably went out but has no reference for delivery reports.")

    def resync(self) -> None:
        """ESC, drain, ``AT`` until ``OK``, bounded by ``resync_timeout``; raises ``ChannelDesynced``."""
        with self._lock:
            self._ensure_alive()
            if not self._resync(self.resync_timeout):
                self._desynced = True
                raise ChannelDesynced(self.name, f"no OK to AT within {self.resync_timeout:g} s")
            self._desynced = False

    def close(self) -> None:
        """Stop the reader and close the port; a waiting command fails at once."""
        if self._closing.is_set():
            return
        self._closing.set()
        cancel = getattr(self._port, "cancel_read", None)
        if cancel is not None:
            try:
                cancel()
            except (serial.SerialException, OSError) as exc:
                log.debug("%s: cancel_read on close failed: %s", self.name, exc)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)
        with self._cond:
            self._cond.notify_all()
        try:
            self._port.close()
        except (serial.SerialException, OSError) as exc:
            log.debug("%s: closing the port failed: %s", self.name, exc)

    def __enter__(self) -> AtChannel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- command side -----------------------------------------------------------------------------------

    def _ensure_alive(self) -> None:
        if self._error is not None:
            raise _fresh(self._error)
        if self._closing.is_set():
            raise ModemError(f"AT channel on {self.name} is closed; open a new one.")

    def _ensure_usable(self) -> None:
        self._ensure_alive()
        if self._desynced:
            if not self._resync(self.resync_timeout):
                raise ChannelDesynced(self.name, "still no OK to AT after an earlier timeout")
            self._desynced = False

    def _begin(self, pending: Pending) -> _Exchange:
        ex = _Exchange(pending)
        with self._cond:
            self._exchange = ex
        return ex

    def _end(self) -> None:
        with self._cond:
            self._exchange = None

    def _write(self, data: bytes) -> None:
        self._log_raw("tx", data)
        try:
            self._port.write(data)
        except (serial.SerialException, OSError) as exc:
            if self._closing.is_set():
                raise ModemError(f"AT channel on {self.name} was closed while writing.") from exc
            gone = PortGone(self.name, exc)
            self._fail(gone)
            raise _fresh(gone) from exc
        except (TypeError, ValueError) as exc:
            # pyserial waits for the write with select() after os.write(); close() from another thread
            # can pull the descriptor out from under it, which surfaces as one of these.
            if not self._closing.is_set():
                raise
            raise ModemError(f"AT channel on {self.name} was closed while writing.") from exc

    def _await(self, ex: _Exchange, done: Callable[[_Exchange], bool], deadline: float) -> bool:
        """Wait until ``done(ex)``; False at the deadline. URCs wake us but never move the deadline."""
        with self._cond:
            while True:
                if self._error is not None:
                    raise _fresh(self._error)
                if done(ex):
                    return True
                if self._closing.is_set():
                    raise ModemError(f"AT channel on {self.name} was closed while waiting for a reply.")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)

    def _timed_out(self, cmd: str, timeout: float, ex: _Exchange, *, after_submit: bool) -> None:
        with self._cond:
            partial = list(ex.info)
            self._exchange = None
        log.warning("%s: %s timed out after %.1f s (partial %r)", self.name, cmd, timeout, partial)
        if self._resync(self.resync_timeout):
            raise AtTimeout(cmd, timeout, partial, after_submit=after_submit, resynced=True)
        self._desynced = True
        cause = AtTimeout(cmd, timeout, partial, after_submit=after_submit)
        raise ChannelDesynced(self.name, f"{cmd} timed out and no OK to AT followed within "
                              f"{self.resync_timeout:g} s", after_submit=after_submit) from cause

    def _result(self, ex: _Exchange, cmd: str, *, after_submit: bool) -> list[str]:
        final = ex.final
        if final is None or final.ok:
            return list(ex.info)
        if final.kind is FinalKind.CMS_ERROR and final.code is not None:
            raise CmsError(cmd, final.code, final_line=final.line, after_submit=after_submit)
        if final.kind is FinalKind.CME_ERROR and final.code is not None:
            raise CmeError(cmd, final.code, final_line=final.line, after_submit=after_submit)
        raise CommandFailed(cmd, final.line, after_submit=after_submit)

    def _resync(self, budget: float) -> bool:
        """Leave a half-finished prompt (ESC), drop what is in flight, then ``AT`` until ``OK``."""
        end = time.monotonic() + budget
        try:
            with self._cond:
                self._exchange = None
                self._draining = True
            self._write(ESC)
            # Bounded to a third of the budget: a modem that never falls quiet (URCs every few ms) still
            # gets its AT before the deadline.
            self._drain(quiet=0.1, until=time.monotonic() + min(1.0, budget / 3))
            while time.monotonic() < end:
                with self._cond:
                    self._draining = False
                ex = self._begin(pending_for("AT"))
                self._write(b"AT\r")
                got = self._await(ex, lambda e: e.final is not None, min(end, time.monotonic() + 0.5))
                if got and ex.final is not None and ex.final.ok:
                    log.info("%s: resynchronised", self.name)
                    return True
                with self._cond:
                    self._exchange = None
                    self._draining = True
                self._drain(quiet=0.05, until=min(end, time.monotonic() + 0.3))
            log.error("%s: could not resynchronise within %.1f s", self.name, budget)
            return False
        finally:
            with self._cond:
                self._exchange = None
                self._draining = False

    def _drain(self, *, quiet: float, until: float) -> None:
        start = time.monotonic()
        with self._cond:
            while True:
                if self._error is not None:
                    raise _fresh(self._error)
                now = time.monotonic()
                idle = now - max(self._last_rx, start)
                if idle >= quiet or now >= until:
                    return
                self._cond.wait(min(quiet - idle, until - now))

    # -- reader side ------------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._closing.is_set():
                try:
                    data = self._port.read(self._port.in_waiting or 1)
                except (serial.SerialException, OSError) as exc:
                    if self._closing.is_set():
                        return
                    log.error("%s: port read failed, channel is dead: %s", self.name, exc)
                    self._fail(PortGone(self.name, exc))
                    return
                if not data:
                    continue
                self._log_raw("rx", data)
                with self._cond:
                    self._last_rx = time.monotonic()
                    self._cond.notify_all()
                for frame in self._framer.feed(data):
                    self._handle(frame)
        except Exception as exc:
            if self._closing.is_set():
                log.debug("%s: reader stopped by close(): %r", self.name, exc)
                return
            log.exception("%s: AT reader thread crashed", self.name)
            self._fail(ChannelDesynced(self.name, f"reader thread crashed: {exc!r}"))

    def _handle(self, frame: Frame) -> None:
        urc: Urc | None = None
        with self._cond:
            ex = self._exchange
            if self._draining or (ex is not None and ex.final is not None):
                ex = None  # a finished command claims no more lines
            item = Prompt() if frame.prompt else classify(frame.text, ex.pending if ex else None)
            if isinstance(item, Urc):
                urc = replace(item, pdu=frame.pdu) if frame.pdu is not None else item
                if self._draining and not urc.known:
                    log.debug("%s: dropped %r while resynchronising", self.name, frame.text)
                    urc = None
            elif ex is None:
                log.debug("%s: stray %s %r (no command pending)", self.name, type(item).__name__, frame.text)
            elif isinstance(item, Echo):
                pass
            elif isinstance(item, Prompt):
                ex.prompt = True
                self._cond.notify_all()
            elif isinstance(item, Final):
                ex.final = item
                self._cond.notify_all()
            elif isinstance(item, Info):
                line = item.line.strip()
                ex.info.append(line)
                if frame.pdu is not None:
                    ex.info.append(frame.pdu)
                if line.upper().startswith(ex.pending.terminal) and ex.pending.terminal:
                    ex.terminal_line = line
                    self._cond.notify_all()
        if urc is not None:
            self._deliver(urc)

    def _deliver(self, urc: Urc) -> None:
        self.urcs.put(urc)
        if self.on_urc is not None:
            try:
                self.on_urc(urc)
            except Exception:
                log.exception("%s: on_urc callback failed for %r", self.name, urc.line)

    def _fail(self, error: ModemError) -> None:
        with self._cond:
            if self._error is None:
                self._error = error
            self._cond.notify_all()

    def _log_raw(self, direction: str, data: bytes) -> None:
        if self._secret:
            data = data.replace(self._secret, b"****")
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s %r", self.name, direction, data)
        if self.raw_log is not None:
            try:
                self.raw_log(direction, data)
            except Exception:
                log.exception("%s: raw_log hook failed", self.name)


def _encode_command(cmd: str) -> bytes:
    if any(c in cmd for c in "\r\n\x1a\x1b"):
        raise ValueError(f"AT command must be one line without control characters: {cmd!r}")
    try:
        return cmd.strip().encode("ascii") + b"\r"
    except UnicodeEncodeError as exc:
        raise ValueError(f"AT command must be ASCII: {cmd!r}") from exc


def _fresh(error: ModemError) -> ModemError:
    """A new exception of the same kind, so that raising it from several threads keeps clean tracebacks."""
    if isinstance(error, PortGone):
        return PortGone(error.port, error.cause, after_submit=error.after_submit)
    if isinstance(error, ChannelDesynced):
        return ChannelDesynced(error.port, error.detail, after_submit=error.after_submit)
    return ModemError(str(error))
