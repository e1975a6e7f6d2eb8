"""What every command group of a simulated modem builds on: the modem's state, its timers, the bytes in and
out of the pty, and the V.250 command line (echo, framing of replies, the URC queue, dispatch to handlers).

Runs only on the simulator's event loop thread. Framing follows V.250 (CR-terminated command lines,
``\\r\\n``-framed replies, echo on at power-up). The handlers live in the ``commands_*`` modules and
``sms_traffic``; ``modem.SimModem`` puts them together and fills ``HANDLERS``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .at_errors import CME_TEXT, CMS_TEXT, AtFailure, cme, cms
from .atparse import Command, CommandLineError, parse_line
from .device import PtyDevice
from .loop import EventLoop, Timer
from .modem_state import FaultState, ModemCounters, Settings, SimCard
from .personality import Personality
from .storage import CombinedStorage, Storage

if TYPE_CHECKING:
    from .network import Network

log = logging.getLogger(__name__)

CTRL_Z = 0x1A
ESC = 0x1B
MAX_LINE = 2048
MAX_OUTBUF = 256 * 1024

SMS_SIM_COMMANDS = frozenset({"+CPMS", "+CSCA", "+CMGL", "+CMGR", "+CMGD", "+CMGS", "+CMGW", "+CMSS"})

Handler = Callable[[Any, Command], list[str] | None]


class ModemCore:
    """State of one modem and its command line; ``feed`` takes bytes from the line, replies go out through
    the pty."""

    HANDLERS: ClassVar[dict[str, Handler]] = {}

    def __init__(
        self,
        *,
        name: str,
        personality: Personality,
        sim: SimCard,
        imei: str,
        link: Path,
        loop: EventLoop,
        network: Network,
        signal: int = 20,
        first_mr: int = 0,
        operator_name: str = "SimNet",
        operator_numeric: str = "00101",
        periodic_urc_interval: float = 10.0,
        boot_urc_delay: float = 0.5,
    ) -> None:
        self.name = name
        self.p = personality
        self.sim = sim
        self.imei = imei
        self.loop = loop
        self.network = network
        self.device = PtyDevice(link)
        self.signal = signal
        self.next_mr = first_mr & 0xFF
        self.operator_name = operator_name
        self.operator_numeric = operator_numeric
        self.periodic_urc_interval = periodic_urc_interval
        self.boot_urc_delay = boot_urc_delay
        self.counters = ModemCounters()
        self.smsc = network.smsc
        self._purpose = "send"
        self.registration_delay = 0.0
        self.faults = FaultState()
        self.s = Settings()
        sm = Storage("SM", personality.sm_capacity)
        me = Storage("ME", personality.me_capacity)
        self.storages: dict[str, Storage] = {
            "SM": sm, "ME": me, "SR": Storage("SR", personality.sr_capacity),
            "BM": Storage("BM", 0), "MT": CombinedStorage("MT", [sm, me]),
        }
        self.powered = False
        self.attached = False  # the network has accepted us (after the registration delay)
        self.reg_stat = {"+CREG": 0, "+CGREG": 0, "+CEREG": 0}
        self._state = "command"  # command | prompt | air
        self._line = bytearray()
        self._last_line = ""
        self._pdu = bytearray()
        self._pdu_len = 0
        self._held = bytearray()
        self._urc_queue: list[str] = []
        self._sms_buffer: list[list[str]] = []  # +CNMI mode 0: indications kept in the TA
        self._outbuf = bytearray()
        self._awaiting_ack: tuple[str, bytes] | None = None
        self._ack_timer: Timer | None = None
        self._timers: list[Timer] = []
        self._power_epoch = 0
        self._releasing_inbound = False  # the inbound_inside_reply fault is letting held SMS out
        self.command_taps: list[tuple[str, Callable[[str], None]]] = []  # tests watching command lines

    def recover_from_hang(self) -> None:
        """End a ``hang``: a PDU prompt the modem froze in is abandoned (what was typed is lost with the hang),
        and URCs that queued meanwhile come out once it is back in command state."""
        self.faults.hung = False
        self.faults.mute = False
        if self._state == "prompt":
            self._state = "command"
            self._pdu.clear()
        self._after_command()

    def _later(self, delay: float, fn: Callable[[], None]) -> Timer:
        epoch = self._power_epoch

        def guarded() -> None:
            if epoch == self._power_epoch:
                fn()

        timer = self.loop.call_later(delay, guarded)
        self._timers = [t for t in self._timers if not t.cancelled and t.when > self.loop.time()]
        self._timers.append(timer)
        return timer

    # ----------------------------------------------------------------- output

    def _on_readable(self) -> None:
        try:
            data = os.read(self.device.master, 4096)
        except BlockingIOError:
            return
        except OSError as exc:
            log.debug("modem %s: read failed: %s", self.name, exc)
            return
        if data:
            self.feed(data)

    def _on_writable(self) -> None:
        self._flush_out()

    def write(self, data: bytes) -> None:
        if not self.device.is_open or not data:
            return
        self.counters.bytes_out += len(data)
        if len(self._outbuf) + len(data) > MAX_OUTBUF:
            self.counters.bytes_discarded += len(data)
            return
        self._outbuf += data
        self._flush_out()

    def _flush_out(self) -> None:
        if not self.device.is_open:
            return
        while self._outbuf:
            try:
                n = os.write(self.device.master, self._outbuf)
            except BlockingIOError:
                break
            except OSError as exc:
                log.debug("modem %s: write failed: %s", self.name, exc)
                self._outbuf.clear()
                break
            del self._outbuf[:n]
        self.loop.set_writer(self.device.master, self._on_writable if self._outbuf else None)

    def _frame(self, line: str) -> bytes:
        return f"\r\n{line}\r\n".encode("latin-1") if self.s.verbose else f"{line}\r\n".encode("latin-1")

    def _final(self, text: str) -> bytes:
        if self.s.verbose:
            return f"\r\n{text}\r\n".encode("latin-1")
        code = {"OK": "0", "ERROR": "4"}.get(text, text)
        return f"{code}\r".encode("latin-1")

    def _emit_now(self, lines: list[str]) -> None:
        if not self.device.is_open or self.faults.hung:
            return
        self.counters.urcs += 1
        self.write(b"".join(self._frame(line) for line in lines))

    def urc(self, lines: list[str]) -> None:
        """Send an unsolicited result now, or queue it while a command is in progress."""
        if not self.powered:
            return
        if self._state != "command" or self._line:
            self._urc_queue.extend(["\x00", *lines])  # \x00 separates URCs in the queue
            return
        self._emit_now(lines)

    def _flush_urcs(self) -> None:
        queue, self._urc_queue = self._urc_queue, []
        group: list[str] = []
        for line in queue:
            if line == "\x00":
                if group:
                    self._emit_now(group)
                group = []
            else:
                group.append(line)
        if group:
            self._emit_now(group)

    def sms_indication(self, lines: list[str]) -> None:
        """+CMTI/+CMT/+CDS/+CDSI honour +CNMI mode: mode 0 keeps them in the TA until mode 1-3 is set."""
        if self.s.cnmi[0] == 0:
            self._sms_buffer.append(lines)
        else:
            self.urc(lines)

    # ----------------------------------------------------------------- input

    def feed(self, data: bytes) -> None:
        self.counters.bytes_in += len(data)
        if not self.powered or self.faults.hung or self.faults.mute:
            self.counters.bytes_discarded += len(data)
            return
        echo = bytearray()
        i = 0
        while i < len(data):
            if self._state == "air":
                self._held += data[i:]
                break
            b = data[i]
            i += 1
            if self._state == "prompt":
                if b == CTRL_Z:
                    self._write_echo(echo)
                    self._finish_pdu()
                elif b == ESC:
                    self._write_echo(echo)
                    self._state = "command"
                    self._pdu.clear()
                    self.counters.sends_cancelled += 1
                    self.write(self._final("OK"))
                    self._after_command()
                elif b not in (0x0D, 0x0A):
                    self._pdu.append(b)
                    if self.s.echo:
                        echo.append(b)
                continue
            if b == 0x0D:
                if self.s.echo:
                    echo += b"\r"
                self._write_echo(echo)
                line = self._line.decode("latin-1")
                self._line.clear()
                self._execute_line(line)
                if not self.powered or self.faults.hung:
                    return
            elif b == 0x0A or b in (CTRL_Z, ESC):
                continue
            elif b == 0x08:
                if self._line:
                    self._line.pop()
                if self.s.echo:
                    echo.append(b)
            else:
                if len(self._line) < MAX_LINE:
                    self._line.append(b)
                if self.s.echo:
                    echo.append(b)
        self._write_echo(echo)

    def _write_echo(self, echo: bytearray) -> None:
        if echo:
            self.write(bytes(echo))
            echo.clear()

    def _after_command(self) -> None:
        if self._state == "command" and not self._line:
            self._flush_urcs()
            if self._held:
                held = bytes(self._held)
                self._held.clear()
                self.counters.bytes_in -= len(held)
                self.feed(held)

    def _execute_line(self, raw: str) -> None:
        text = raw.strip()
        if text.upper().startswith("A/"):
            text = self._last_line
        if not text.upper().startswith("AT"):
            self._after_command()
            return  # V.250: characters before "AT" are not a command; no response
        self._last_line = text
        self.counters.command_lines += 1
        upper = text.upper()
        for prefix, tap in list(self.command_taps):
            if upper.startswith(prefix):
                try:
                    tap(text)
                except Exception:  # a test's observer must not take the modem down with it
                    log.exception("modem %s: command tap failed on %r", self.name, text)
        while self.faults.garbage_before_reply:
            self.write(self.faults.garbage_before_reply.popleft())
        forced = self._forced_final(text)
        if forced is not None:
            self.counters.errors += 1
            self.write(self._final(forced))
            self._after_command()
            return
        out: list[bytes] = []
        final: str | None = "OK"
        try:
            commands = parse_line(text[2:])
            if self.loop.time() < self.s.busy_until:
                raise cme(515)
            for cmd in commands:
                self.counters.commands += 1
                lines = self._dispatch(cmd)
                if lines is None:
                    final = None  # the handler wrote everything itself (prompt, quirk)
                    break
                out.extend(self._frame(line) for line in lines)
        except AtFailure as failure:
            self.counters.errors += 1
            final = self._error_text(failure)
        except CommandLineError:
            self.counters.errors += 1
            final = self._error_text(AtFailure("plain"))
        if out:
            self.write(b"".join(out))
        if final is not None:
            self._release_inbound_inside_reply(text)
            self.write(self._final(final))
        self._after_command()

    def _release_inbound_inside_reply(self, text: str) -> None:
        """The ``inbound_inside_reply`` fault: SMS held at the SMSC come out between the information lines
        of this reply and its final result, as ZTE modems interleave URCs (modem-profiles.md)."""
        prefix = self.faults.inbound_inside_reply
        if prefix is None or not text.upper().startswith(prefix):
            return
        self.faults.inbound_inside_reply_n -= 1
        if self.faults.inbound_inside_reply_n <= 0:
            self.faults.inbound_inside_reply = None
        self._releasing_inbound = True
        try:
            self.network.retry_pending(self)  # type: ignore[arg-type]  # a mixin: the running object is a SimModem
        finally:
            self._releasing_inbound = False

    def _forced_final(self, text: str) -> str | None:
        """The final line a ``command_error`` fault armed for a command line starting like ``text``."""
        upper = text.upper()
        for armed in self.faults.command_errors:
            prefix, final, left = armed
            if upper.startswith(str(prefix)) and isinstance(left, int) and left > 0:
                armed[2] = left - 1
                self.faults.command_errors = [a for a in self.faults.command_errors if a[2]]
                return str(final)
        return None

    def _error_text(self, failure: AtFailure) -> str:
        if failure.kind == "unsupported":
            if self.p.unsupported_final:
                return self.p.unsupported_final
            failure = cme(4)
        if failure.kind == "cms":
            if self.s.cmee == 2 and failure.code in CMS_TEXT:
                return f"+CMS ERROR: {CMS_TEXT[failure.code]}"
            return f"+CMS ERROR: {failure.code}"
        if failure.kind == "cme":
            if self.s.cmee == 1:
                return f"+CME ERROR: {failure.code}"
            if self.s.cmee == 2:
                return f"+CME ERROR: {CME_TEXT.get(failure.code, str(failure.code))}"
        return "ERROR"

    def _finish_pdu(self) -> None:
        """Ends the PDU prompt of AT+CMGS/AT+CMGW once Ctrl-Z arrives; ``sms_traffic`` provides it."""
        raise NotImplementedError

    # ----------------------------------------------------------------- command dispatch

    def _dispatch(self, cmd: Command) -> list[str] | None:
        if cmd.name in SMS_SIM_COMMANDS:
            if self.sim.state == "SIM PIN":
                raise cms(311)
            if self.sim.state in ("SIM PUK", "BLOCKED"):
                raise cms(316)
        handler = self.HANDLERS.get(cmd.name)
        if handler is None:
            if cmd.name in self.p.extra_ok_commands:
                return self._vendor_extra(cmd)
            raise AtFailure("unsupported")
        return handler(self, cmd)

    def _vendor_extra(self, cmd: Command) -> list[str]:
        if cmd.name == "^USSDMODE" and cmd.kind == "set":
            self.s.ussdmode = cmd.int_arg(0)
        if cmd.name == "^CURC" and cmd.kind == "set":
            self.s.curc = cmd.int_arg(0)
        if cmd.name == "+WIND" and cmd.kind == "read":
            return ["+WIND: 0"]
        return []
