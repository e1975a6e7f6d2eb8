"""A simulated GSM modem: the AT state machine behind one pseudo-terminal.

Runs only on the simulator's event loop thread. Framing follows V.250 (CR-terminated command lines,
``\\r\\n``-framed replies, echo on at power-up); commands follow 3GPP TS 27.005/27.007 with the quirks of
the chosen personality.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import random
import tty
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import pdu as pdumod
from .atparse import Command, CommandLineError, parse_line
from .loop import EventLoop, Timer
from .personality import Personality
from .storage import (
    STAT_NAMES,
    STAT_REC_READ,
    STAT_REC_UNREAD,
    STAT_STO_SENT,
    STAT_STO_UNSENT,
    CombinedStorage,
    Storage,
    StoredMessage,
)

if TYPE_CHECKING:
    from .network import Network

log = logging.getLogger(__name__)

CTRL_Z = 0x1A
ESC = 0x1B
MAX_LINE = 2048
MAX_OUTBUF = 256 * 1024

CME_TEXT = {
    3: "operation not allowed", 4: "operation not supported", 10: "SIM not inserted",
    11: "SIM PIN required", 12: "SIM PUK required", 13: "SIM failure", 16: "incorrect password",
    30: "no network service", 50: "incorrect parameters", 100: "unknown", 515: "please wait, init in progress",
}
CMS_TEXT = {
    302: "operation not allowed", 303: "operation not supported", 304: "invalid PDU mode parameter",
    305: "invalid text mode parameter", 310: "SIM not inserted", 311: "SIM PIN required",
    316: "SIM PUK required", 321: "invalid memory index", 322: "memory full", 330: "SMSC address unknown",
    331: "no network service", 332: "network timeout", 340: "no +CNMA acknowledgement expected",
    500: "unknown error",
}

SMS_SIM_COMMANDS = frozenset({"+CPMS", "+CSCA", "+CMGL", "+CMGR", "+CMGD", "+CMGS", "+CMGW", "+CMSS"})


class AtFailure(Exception):
    """A command's final result is an error; ``kind`` is 'cme', 'cms', 'plain' or 'unsupported'."""

    def __init__(self, kind: str, code: int = 0) -> None:
        super().__init__(f"{kind} {code}")
        self.kind = kind
        self.code = code


def cme(code: int) -> AtFailure:
    return AtFailure("cme", code)


def cms(code: int) -> AtFailure:
    return AtFailure("cms", code)


@dataclass
class ModemCounters:
    """What a modem has seen and done; read a snapshot through ``ModemHandle.counters``."""

    command_lines: int = 0
    commands: int = 0
    errors: int = 0
    sends_ok: int = 0
    sends_failed: int = 0
    sends_ambiguous: int = 0
    pdus_rejected: int = 0
    sends_cancelled: int = 0
    inbound_stored: int = 0
    inbound_direct: int = 0
    inbound_refused: int = 0
    status_reports_routed: int = 0
    status_reports_dropped: int = 0
    urcs: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    bytes_discarded: int = 0
    unplugs: int = 0
    replugs: int = 0
    reboots: int = 0


@dataclass
class SimCard:
    """A SIM survives power cycles; so do its messages (SM, SR)."""

    imsi: str
    iccid: str
    msisdn: str
    pin: str | None = None
    puk: str = "12345678"
    pin_attempts: int = 3
    puk_attempts: int = 10
    state: str = "READY"  # READY | SIM PIN | SIM PUK | BLOCKED


@dataclass
class FaultState:
    """Faults armed on a modem, changed at run time by ``FaultHandle``."""

    hung: bool = False
    cms_errors: deque[int] = field(default_factory=deque)
    ambiguous: int = 0
    no_network: bool = False
    storage_full: bool = False
    duplicate_inbound: int = 0
    early_status_report: int = 0
    garbage_before_reply: deque[bytes] = field(default_factory=deque)


@dataclass
class _Settings:
    """Volatile settings, reset at every power-up."""

    echo: bool = True
    verbose: bool = True
    cmee: int = 0
    creg: int = 0
    cgreg: int = 0
    cereg: int = 0
    cops_format: int = 0
    cnmi: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    cmgf: int = 0
    cscs: str = "GSM"
    csms: int = 0
    cmms: int = 0
    mems: list[str] = field(default_factory=lambda: ["SM", "SM", "SM"])
    cfun: int = 1
    busy_left: int = 0
    ussdmode: int = 1
    curc: int = 1


class PtyDevice:
    """A pseudo-terminal pair plus the stable symlink clients open."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.master = -1
        self.slave = -1
        self.tty_path = ""

    @property
    def is_open(self) -> bool:
        return self.master >= 0

    def open(self) -> None:
        self.master, self.slave = os.openpty()
        # Raw on our side too, so the line discipline neither echoes nor rewrites CR before a client opens it.
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.tty_path = os.ttyname(self.slave)
        tmp = self.link.with_name(f".{self.link.name}.tmp")
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(self.tty_path, tmp)
        os.replace(tmp, self.link)  # atomic re-point, as udev does

    def close(self) -> None:
        if self.link.is_symlink():
            self.link.unlink()
        for fd in (self.master, self.slave):
            if fd >= 0:
                os.close(fd)
        self.master = self.slave = -1


class SimModem:
    """State machine of one modem; ``feed`` takes bytes from the line, replies go out through the pty."""

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
        self.s = _Settings()
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

    # ----------------------------------------------------------------- power and the pty

    def plug(self, *, registration_delay: float, boot_urcs: bool = True) -> None:
        """Make the device appear; ``boot_urcs=False`` for a modem that was already up when we started."""
        self.device.open()
        self.loop.add_reader(self.device.master, self._on_readable)
        self.power_on(registration_delay=registration_delay, boot_urcs=boot_urcs)

    def unplug(self) -> None:
        self.power_off()
        if self.device.is_open:
            self.loop.remove_fd(self.device.master)
            self.device.close()
        self._outbuf.clear()

    def power_on(self, *, registration_delay: float, boot_urcs: bool = True) -> None:
        self._power_epoch += 1
        self.s = _Settings()
        self.s.mems = ["SM", "SM", "SM"] if "SM" in self.p.memories else ["ME", "ME", "ME"]
        self.powered = True
        self.attached = False
        self._state = "command"
        self._line.clear()
        self._held.clear()
        self._urc_queue.clear()
        self._sms_buffer.clear()
        self._awaiting_ack = None
        self.faults.hung = False
        if self.sim.pin is not None and self.sim.state == "READY":
            self.sim.state = "SIM PIN"
        self.reg_stat = dict.fromkeys(self.reg_stat, 0)
        self.registration_delay = registration_delay
        if self.sim.state == "READY":
            self._schedule_attach()
        if boot_urcs and (self.p.boot_urcs or self.p.boot_notifies_stored):
            # Later than the port appearing, as a booting module is: a client that opens at once sees them.
            self._later(self.boot_urc_delay, self._boot_urcs)
        if self.p.periodic_urcs and self.periodic_urc_interval > 0:
            self._schedule_periodic(self._power_epoch)

    def _boot_urcs(self) -> None:
        for line in self.p.boot_urcs:
            if line.startswith("+CPIN:"):
                line = f"+CPIN: {self.sim.state}"
            self.urc([line])
        if self.p.boot_notifies_stored:
            for pos, msg in self.storages["SM"].items():
                if msg.stat == STAT_REC_UNREAD:
                    self.urc([f'+CMTI: "SM",{pos + self.p.first_index}'])

    def power_off(self) -> None:
        self._power_epoch += 1
        self.powered = False
        self.attached = False
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        if self._ack_timer:
            self._ack_timer.cancel()
            self._ack_timer = None
        self._awaiting_ack = None
        self._state = "command"

    def _later(self, delay: float, fn: Callable[[], None]) -> Timer:
        epoch = self._power_epoch

        def guarded() -> None:
            if epoch == self._power_epoch:
                fn()

        timer = self.loop.call_later(delay, guarded)
        self._timers = [t for t in self._timers if not t.cancelled and t.when > self.loop.time()]
        self._timers.append(timer)
        return timer

    def _schedule_attach(self) -> None:
        def attach() -> None:
            self.attached = True
            self.update_registration()
            self.network.retry_pending(self)

        if self.registration_delay <= 0:
            self.attached = True
            self.update_registration()
        else:
            self.update_registration()
            self._later(self.registration_delay, attach)

    def _schedule_periodic(self, epoch: int) -> None:
        def tick() -> None:
            if self.s.curc:
                self.urc([f"^RSSI:{self.signal}"])
                self.urc(["^MODE:5,4"])
                self.urc(["^BOOT:20952548,0,0,0,72"])
            self._later(self.periodic_urc_interval, tick)

        self._later(self.periodic_urc_interval, tick)

    @property
    def registered(self) -> bool:
        return self.reg_stat["+CREG"] in (1, 5)

    def _target_stat(self) -> int:
        if not self.powered or self.s.cfun != 1 or self.sim.state != "READY" or self.faults.no_network:
            return 0
        return 1 if self.attached else 2

    def update_registration(self) -> None:
        stat = self._target_stat()
        for name, n_attr in (("+CREG", "creg"), ("+CGREG", "cgreg"), ("+CEREG", "cereg")):
            if self.reg_stat[name] == stat:
                continue
            self.reg_stat[name] = stat
            n = getattr(self.s, n_attr)
            if n == 1:
                self.urc([f"{name}: {stat}"])
            elif n == 2:
                self.urc([f"{name}: {stat}" + (self._location(name) if stat in (1, 5) else "")])
        if stat == 1:
            self.network.retry_pending(self)

    def _location(self, name: str) -> str:
        if self.p.creg_unquoted_hex:
            return ",4CA,81DE445"
        if name == "+CEREG":
            return ',"00A1","00001234",7'
        return ',"00A1","00001234"'

    def set_signal(self, rssi: int) -> None:
        self.signal = rssi
        if self.p.periodic_urcs and self.s.curc:
            self.urc([f"^RSSI:{rssi}"])

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
        if not self.powered or self.faults.hung:
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
        while self.faults.garbage_before_reply:
            self.write(self.faults.garbage_before_reply.popleft())
        out: list[bytes] = []
        final: str | None = "OK"
        try:
            commands = parse_line(text[2:])
            if self.s.busy_left > 0:
                self.s.busy_left -= 1
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
            self.write(self._final(final))
        self._after_command()

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

    # ----------------------------------------------------------------- command dispatch

    def _dispatch(self, cmd: Command) -> list[str] | None:
        if cmd.name in SMS_SIM_COMMANDS:
            if self.sim.state == "SIM PIN":
                raise cms(311)
            if self.sim.state in ("SIM PUK", "BLOCKED"):
                raise cms(316)
        handler = _HANDLERS.get(cmd.name)
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

    def _h_basic(self, cmd: Command) -> list[str]:
        value = int(cmd.arg(0, "0")) if cmd.args else 0
        if cmd.name == "E":
            self.s.echo = bool(value)
        elif cmd.name == "V":
            self.s.verbose = bool(value)
        elif cmd.name in ("Z", "&F"):
            keep_reg = (self.s.cfun,)
            self.s = _Settings()
            self.s.cfun = keep_reg[0]
        elif cmd.name == "I":
            return list(self.p.ati) if value == 0 else []
        elif cmd.name == "D":
            raise cme(3)
        elif cmd.name in ("H", "Q", "&C", "&D", "&K", "&W", "X", "L", "M") or cmd.name.startswith("S"):
            if cmd.kind == "read":
                return ["000"]
        else:
            raise AtFailure("unsupported")
        return []

    def _h_identity(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            return []
        name = cmd.name.replace("+G", "+CG") if cmd.name in ("+GMI", "+GMM", "+GMR", "+GSN") else cmd.name
        if name == "+CGMI":
            return [self.p.manufacturer]
        if name == "+CGMM":
            return [self.p.model]
        if name == "+CGMR":
            if self.p.revision is None:
                raise AtFailure("plain")
            return [self.p.revision]
        if name == "+CGSN":
            return [self.imei]
        if name == "+CIMI":
            self._require_sim_cme()
            return [self.sim.imsi]
        raise AtFailure("unsupported")

    def _h_ccid(self, cmd: Command) -> list[str]:
        if cmd.name != self.p.ccid_command and not (cmd.name == "+CCID" and self.p.ccid_command == "+CCID"):
            raise AtFailure("unsupported")
        if cmd.kind == "test":
            return []
        prefix = cmd.name.lstrip("+^")
        return [f"+{prefix}: {self.sim.iccid}"] if self.p.ccid_prefixed else [self.sim.iccid]

    def _require_sim_cme(self) -> None:
        if self.sim.state == "SIM PIN":
            raise cme(11)
        if self.sim.state in ("SIM PUK", "BLOCKED"):
            raise cme(12 if self.sim.state == "SIM PUK" else 13)

    def _h_cmee(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            return [f"+CMEE: {self.s.cmee}"]
        if cmd.kind == "test":
            return ["+CMEE: (0-2)"]
        value = cmd.int_arg(0, 0)
        if value not in (0, 1, 2):
            raise cme(50)
        self.s.cmee = value
        return []

    def _h_cpin(self, cmd: Command) -> list[str] | None:
        if cmd.kind == "read":
            if self.sim.state == "BLOCKED":
                raise cme(13)
            line = f"+CPIN: {self.sim.state}"
            if not self.p.cpin_ok:
                self.write(self._frame(line))
                return None  # Wavecom: no final result after +CPIN:
            return [line]
        if cmd.kind == "test":
            return []
        code = cmd.arg(0)
        if self.sim.state == "READY":
            raise cme(3)
        if self.sim.state == "SIM PIN":
            if code != self.sim.pin:
                self.sim.pin_attempts -= 1
                if self.sim.pin_attempts <= 0:
                    self.sim.state = "SIM PUK"
                raise cme(16)
            self.sim.pin_attempts = 3
            self._unlock()
            return []
        if self.sim.state == "SIM PUK":
            new_pin = cmd.arg(1)
            if code != self.sim.puk or not new_pin:
                self.sim.puk_attempts -= 1
                if self.sim.puk_attempts <= 0:
                    self.sim.state = "BLOCKED"
                raise cme(16)
            self.sim.pin = new_pin
            self.sim.pin_attempts = 3
            self.sim.puk_attempts = 10
            self._unlock()
            return []
        raise cme(13)

    def _unlock(self) -> None:
        self.sim.state = "READY"
        self._schedule_attach()

    def _h_cpinr(self, cmd: Command) -> list[str]:
        return [
            f"+CPINR: SIM PIN,{self.sim.pin_attempts},3",
            f"+CPINR: SIM PUK,{self.sim.puk_attempts},10",
        ]

    def _h_reg(self, cmd: Command) -> list[str]:
        attr = {"+CREG": "creg", "+CGREG": "cgreg", "+CEREG": "cereg"}[cmd.name]
        if cmd.kind == "test":
            return [f"{cmd.name}: (0-2)"]
        if cmd.kind == "set":
            value = cmd.int_arg(0, 0)
            if value not in (0, 1, 2):
                raise cme(50)
            setattr(self.s, attr, value)
            return []
        if cmd.kind == "read":
            n = getattr(self.s, attr)
            stat = self.reg_stat[cmd.name]
            loc = self._location(cmd.name) if n == 2 and stat in (1, 5) else ""
            return [f"{cmd.name}: {n},{stat}{loc}"]
        raise AtFailure("unsupported")

    def _h_cgatt(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            return [f"+CGATT: {1 if self.registered else 0}"]
        if cmd.kind == "test":
            return ["+CGATT: (0,1)"]
        return []

    def _h_csq(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            return ["+CSQ: (0-31,99),(0-7,99)"]
        rssi = self.signal if self.registered or self.attached else 99
        return [f"+CSQ: {rssi},99"]

    def _h_cbc(self, cmd: Command) -> list[str]:
        return ["+CBC: 0,100"]

    def _h_cops(self, cmd: Command) -> list[str]:
        if cmd.kind == "set":
            mode = cmd.int_arg(0, 0)
            if mode == 3:
                fmt = cmd.int_arg(1, 0)
                if fmt not in (0, 1, 2):
                    raise cme(50)
                self.s.cops_format = fmt
            return []
        if cmd.kind == "test":
            op = f'"{self.operator_name}","{self.operator_name[:8]}","{self.operator_numeric}"'
            return [f"+COPS: (2,{op},2),,(0-4),(0-2)"]
        if not self.registered:
            return ["+COPS: 0"]
        value = self.operator_numeric if self.s.cops_format == 2 else self.operator_name
        return [f'+COPS: 0,{self.s.cops_format},"{value}",2']

    def _h_csca(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            toa = 145 if self.smsc.startswith("+") else 129
            return [f'+CSCA: "{self.smsc}",{toa}']
        if cmd.kind == "set":
            number = cmd.arg(0)
            if not number.lstrip("+").isdigit():
                raise cms(304)
            self.smsc = number
            return []
        return []

    def _h_cscs(self, cmd: Command) -> list[str] | None:
        if cmd.kind == "read":
            lines = [f'+CSCS: "{self.s.cscs}"']
            if self.p.cscs_read_trailing_empty_line:
                self.write(self._frame(lines[0]) + b"\r\n")
                self.write(self._final("OK"))
                return None
            return lines
        if cmd.kind == "test":
            return [self.p.cscs_test]
        value = cmd.arg(0).upper()
        if value not in ("IRA", "GSM", "UCS2"):
            raise cme(4)
        self.s.cscs = value
        return []

    def _h_cfun(self, cmd: Command) -> list[str] | None:
        if cmd.kind == "read":
            return [f"+CFUN: {self.s.cfun}"]
        if cmd.kind == "test":
            return ["+CFUN: (0,1,4),(0,1)"]
        fun = cmd.int_arg(0, 1)
        rst = cmd.int_arg(1, 0)
        if fun not in (0, 1, 4) or rst not in (0, 1):
            raise cme(50)
        if rst == 1:
            self.write(self._final("OK"))
            self.network.reboot_modem(self)
            return None
        self.s.cfun = fun
        if fun == 1:
            self.s.busy_left = self.p.cfun_busy_commands
            if not self.attached and self.sim.state == "READY":
                self._schedule_attach()
        else:
            self.attached = False
        self.update_registration()
        return []

    def _h_cmgf(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            return [f"+CMGF: {self.s.cmgf}"]
        if cmd.kind == "test":
            return ["+CMGF: (0,1)"]
        value = cmd.int_arg(0, 0)
        if value not in (0, 1):
            raise cms(302)
        self.s.cmgf = value
        return []

    def _h_csms(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            return [f"+CSMS: {self.s.csms},1,1,1"]
        if cmd.kind == "test":
            return ["+CSMS: (0,1)"]
        value = cmd.int_arg(0, 0)
        if value not in (0, 1):
            raise cms(302)
        self.s.csms = value
        return ["+CSMS: 1,1,1"]

    def _h_cmms(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            return [f"+CMMS: {self.s.cmms}"]
        if cmd.kind == "test":
            return ["+CMMS: (0-2)"]
        value = cmd.int_arg(0, 0)
        if value not in (0, 1, 2):
            raise cms(302)
        self.s.cmms = value
        return []

    def _h_csmp(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            return ["+CSMP: 17,167,0,0"]
        return []

    def _h_cusd(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            return ["+CUSD: 0"]
        if cmd.kind == "test":
            return ["+CUSD: (0-2)"]
        n = cmd.int_arg(0, 0)
        if self.p.cusd_needs_ussdmode0 and n == 1 and self.s.ussdmode == 1:
            raise AtFailure("plain")
        if len(cmd.args) > 1 and cmd.arg(1):
            self._later(0.0, lambda: self.urc(['+CUSD: 0,"Balance: 10.00",15']))
        return []

    def _h_cnmi(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            return [self.p.cnmi_test]
        if cmd.kind == "read":
            return ["+CNMI: " + ",".join(str(v) for v in self.s.cnmi)]
        if self.sim.state != "READY":
            raise cms(311 if self.sim.state == "SIM PIN" else 316)
        values = [cmd.int_arg(i, 0) for i in range(5)]
        mode, mt, bm, ds, bfr = values
        if mode not in (0, 1, 2, 3) or mt not in (0, 1, 2, 3) or ds not in (0, 1, 2) or bfr not in (0, 1):
            raise cms(302)
        self.s.cnmi = (mode, mt, bm, ds, bfr)
        if mode != 0:
            buffered, self._sms_buffer = self._sms_buffer, []
            if bfr == 0:
                for lines in buffered:
                    self._urc_queue.extend(["\x00", *lines])
        return []

    def _h_cnma(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            return ["+CNMA: (0-2)"]
        if self._awaiting_ack is None:
            raise cms(340)
        self._awaiting_ack = None
        if self._ack_timer:
            self._ack_timer.cancel()
            self._ack_timer = None
        self._later(0.0, lambda: self.network.retry_pending(self))
        return []

    # storage ------------------------------------------------------------------

    def _mem(self, which: int) -> Storage:
        return self.storages[self.s.mems[which]]

    def _h_cpms(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            return [self.p.cpms_test]
        if cmd.kind == "read":
            parts = []
            for name in self.s.mems[: self.p.cpms_max_params] if self.p.cpms_max_params < 3 else self.s.mems:
                st = self.storages[name]
                parts.append(f'"{name}",{st.used},{st.capacity}')
            return ["+CPMS: " + ",".join(parts)]
        names = [a.upper() for a in cmd.args if a != ""]
        if not names or len(names) > self.p.cpms_max_params:
            raise cms(302) if self.p.cpms_max_params >= 3 else AtFailure("plain")
        for name in names:
            if name not in self.p.memories:
                raise cms(302)
        if names[0] == "SR" and len(names) == 1:
            pass
        for i, name in enumerate(names):
            if i >= 1 and name == "SR":
                raise cms(302)
            self.s.mems[i] = name
        count = len(names) if self.p.cpms_set_pairs_given_only else 3
        pairs = []
        for name in self.s.mems[:count]:
            st = self.storages[name]
            pairs.append(f"{st.used},{st.capacity}")
        return ["+CPMS: " + ",".join(pairs)]

    def _index(self, cmd: Command, storage: Storage) -> int:
        index = cmd.int_arg(0)
        pos = index - self.p.first_index
        if pos < 0 or pos >= storage.capacity:
            raise cms(321)
        return pos

    def _h_cmgr(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            return []
        storage = self._mem(0)
        pos = self._index(cmd, storage)
        msg = storage.get(pos)
        if msg is None:
            raise cms(321)
        lines = self._render(msg, header=None)
        if msg.stat == STAT_REC_UNREAD:
            msg.stat = STAT_REC_READ
        return lines

    def _render(self, msg: StoredMessage, header: int | None) -> list[str]:
        if self.s.cmgf == 1:
            return self._render_text(msg, header)
        head = f"+CMGL: {header},{msg.stat},,{msg.tpdu_length}" if header is not None else (
            f"+CMGR: {msg.stat},,{msg.tpdu_length}")
        return [f"{head}\r\n{msg.pdu.hex().upper()}"]

    def _render_text(self, msg: StoredMessage, header: int | None) -> list[str]:
        _, tpdu = pdumod.split_smsc(msg.pdu)
        stat = STAT_NAMES[msg.stat]
        try:
            if tpdu[0] & 0x03 == pdumod.MTI_DELIVER:
                sender, text, _concat = pdumod.parse_deliver(tpdu)
                body = text or ""
            elif tpdu[0] & 0x03 == pdumod.MTI_SUBMIT:
                sub = pdumod.parse_submit(tpdu)
                sender, body = sub.destination, sub.text or ""
            else:
                sender, body = "", tpdu.hex().upper()
        except pdumod.PduFormatError:
            sender, body = "", tpdu.hex().upper()
        prefix = f"+CMGL: {header}," if header is not None else "+CMGR: "
        return [f'{prefix}"{stat}","{sender}",,\r\n{body}']

    def _h_cmgl(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            return ['+CMGL: ("REC UNREAD","REC READ","STO UNSENT","STO SENT","ALL")' if self.s.cmgf else
                    "+CMGL: (0-4)"]
        wanted = cmd.arg(0, "0" if self.s.cmgf == 0 else "REC UNREAD")
        names = {"REC UNREAD": 0, "REC READ": 1, "STO UNSENT": 2, "STO SENT": 3, "ALL": 4}
        if self.s.cmgf == 1:
            if wanted.upper() not in names:
                raise cms(305)
            stat = names[wanted.upper()]
        else:
            if not wanted.isdigit() or int(wanted) not in range(5):
                raise cms(304)
            stat = int(wanted)
        lines: list[str] = []
        for pos, msg in list(self._mem(0).items()):
            if stat == 4 or msg.stat == stat:
                lines.extend(self._render(msg, header=pos + self.p.first_index))
                if msg.stat == STAT_REC_UNREAD:
                    msg.stat = STAT_REC_READ
        return lines

    def _h_cmgd(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            first = self.p.first_index
            return [f"+CMGD: ({first}-{self._mem(0).capacity - 1 + first}),(0-4)"]
        storage = self._mem(0)
        flag = cmd.int_arg(1, 0)
        if flag not in range(5):
            raise cms(302)
        if flag == 0:
            storage.delete(self._index(cmd, storage))
        else:
            doomed = {1: {STAT_REC_READ}, 2: {STAT_REC_READ, STAT_STO_SENT},
                      3: {STAT_REC_READ, STAT_STO_SENT, STAT_STO_UNSENT}, 4: {0, 1, 2, 3}}[flag]
            for pos, msg in list(storage.items()):
                if msg.stat in doomed:
                    storage.delete(pos)
        self._later(0.0, lambda: self.network.retry_pending(self))
        return []

    def _h_cmgw(self, cmd: Command) -> list[str] | None:
        if self.s.cmgf != 0:
            raise cms(303)
        return self._start_prompt(cmd, purpose="write")

    def _h_cmgs(self, cmd: Command) -> list[str] | None:
        if cmd.kind == "test":
            return []
        if self.s.cmgf != 0:
            raise cms(303)  # text-mode sending is not simulated
        return self._start_prompt(cmd, purpose="send")

    def _start_prompt(self, cmd: Command, purpose: str) -> None:
        length = cmd.int_arg(0)
        if length < 7 or length > 164:
            raise cms(304)
        self._pdu.clear()
        self._pdu_len = length
        self._purpose = purpose
        self._state = "prompt"
        self.write(b"\r\n> ")
        return None

    def _h_cmss(self, cmd: Command) -> list[str] | None:
        storage = self._mem(1)
        pos = self._index(cmd, storage)
        msg = storage.get(pos)
        if msg is None:
            raise cms(321)
        _, tpdu = pdumod.split_smsc(msg.pdu)
        try:
            submit = pdumod.parse_submit(tpdu)
        except pdumod.PduFormatError:
            raise cms(304) from None
        msg.stat = STAT_STO_SENT
        self._state = "air"
        self._begin_send(submit, prefix="+CMSS")
        return None

    # sending --------------------------------------------------------------------

    def _finish_pdu(self) -> None:
        hextext = self._pdu.decode("latin-1")
        self._pdu.clear()
        try:
            submit = pdumod.parse_at_submit(hextext, self._pdu_len)
        except pdumod.PduFormatError as exc:
            log.info("modem %s: rejected PDU: %s", self.name, exc)
            self.counters.pdus_rejected += 1
            self.counters.errors += 1
            self._state = "command"
            self.write(self._final(self._error_text(cms(304))))
            self._after_command()
            return
        if self._purpose == "write":
            storage = self._mem(1)
            raw = bytes.fromhex(hextext)
            pos = storage.store(StoredMessage(STAT_STO_UNSENT, raw, submit.tpdu_length))
            self._state = "command"
            if pos is None:
                self.write(self._final(self._error_text(cms(322))))
            else:
                self.write(self._frame(f"+CMGW: {pos + self.p.first_index}") + self._final("OK"))
            self._after_command()
            return
        self._state = "air"
        self._begin_send(submit, prefix="+CMGS")

    def _begin_send(self, submit: pdumod.Submit, prefix: str) -> None:
        delay = self.network.send_latency()
        if delay <= 0:
            self._complete_send(submit, prefix)
        else:
            self._later(delay, lambda: self._complete_send(submit, prefix))

    def _complete_send(self, submit: pdumod.Submit, prefix: str) -> None:
        if not self.powered or self.faults.hung:
            return  # a hung modem never answers; the send is lost with it
        if not self.registered:
            self.counters.sends_failed += 1
            self._send_final(None, 331, prefix)
            return
        if self.faults.cms_errors:
            code = self.faults.cms_errors.popleft()
            self.counters.sends_failed += 1
            self._send_final(None, code, prefix)
            return
        mr = self.next_mr
        self.next_mr = (self.next_mr + 1) & 0xFF
        early = False
        if self.faults.early_status_report and submit.srr:
            self.faults.early_status_report -= 1
            early = True
        self.network.submit(self, submit, mr, early_report=early)
        if self.faults.ambiguous:
            self.faults.ambiguous -= 1
            self.counters.sends_ambiguous += 1
            self._send_final(None, 500, prefix)
            return
        self.counters.sends_ok += 1
        self._send_final(mr, None, prefix)

    def _send_final(self, mr: int | None, error: int | None, prefix: str) -> None:
        self._state = "command"
        if error is not None:
            self.counters.errors += 1
            self.write(self._final(self._error_text(cms(error))))
        else:
            self.write(self._frame(f"{prefix}: {mr}") + self._final("OK"))
        self._after_command()

    # inbound from the network -----------------------------------------------------

    def _smsc_prefix(self) -> bytes:
        return pdumod.encode_smsc(self.smsc)

    def accept_sms(self, tpdu: bytes) -> bool:
        """The network offers an SMS-DELIVER; False means "not now" and the network keeps it."""
        if not self.powered or not self.registered or self.faults.hung:
            return False
        copies = 1
        if self.faults.duplicate_inbound:
            self.faults.duplicate_inbound -= 1
            copies = 2
        mode, mt = self.s.cnmi[0], self.s.cnmi[1]
        if mt == 2 and mode != 0:
            if self._awaiting_ack is not None:
                return False
            for _ in range(copies):
                self._deliver_direct("+CMT", tpdu, alpha=True)
            self.counters.inbound_direct += 1
            return True
        storage = self._mem(2)
        if self.faults.storage_full or storage.capacity - storage.used < copies:
            self.counters.inbound_refused += 1
            return False
        for _ in range(copies):
            pos = storage.store(StoredMessage(STAT_REC_UNREAD, self._smsc_prefix() + tpdu, len(tpdu)))
            assert pos is not None
            self.counters.inbound_stored += 1
            if mt in (1, 2, 3):
                self.sms_indication([f'+CMTI: "{storage.name}",{pos + self.p.first_index}'])
        return True

    def _deliver_direct(self, prefix: str, tpdu: bytes, *, alpha: bool, immediate: bool = False) -> None:
        head = f"{prefix}: ,{len(tpdu)}" if alpha else f"{prefix}: {len(tpdu)}"
        lines = [f"{head}\r\n{(self._smsc_prefix() + tpdu).hex().upper()}"]
        if immediate:
            self._emit_now(lines)
        else:
            self.sms_indication(lines)
        if self.s.csms == 1:
            self._awaiting_ack = (prefix, tpdu)

            def no_ack() -> None:
                if self._awaiting_ack is not None and self._awaiting_ack[1] is tpdu:
                    self._awaiting_ack = None
                    self._ack_timer = None
                    log.info("modem %s: no +CNMA for %s, the network will retry", self.name, prefix)
                    if prefix == "+CMT":
                        self.network.requeue(self, tpdu)
                    else:
                        self.network.retry_pending(self)

            self._ack_timer = self._later(self.network.cnma_timeout, no_ack)

    def accept_status_report(self, tpdu: bytes, *, immediate: bool = False) -> bool:
        if not self.powered or self.faults.hung:
            return False
        ds = self.s.cnmi[3]
        if ds == 1:
            if self._awaiting_ack is not None and not immediate:
                return False
            self._deliver_direct("+CDS", tpdu, alpha=False, immediate=immediate)
            self.counters.status_reports_routed += 1
            return True
        if ds == 2:
            storage = self.storages["SR"]
            pos = storage.store(StoredMessage(STAT_REC_UNREAD, self._smsc_prefix() + tpdu, len(tpdu)))
            if pos is None:
                self.counters.status_reports_dropped += 1
                return True
            line = [f'+CDSI: "SR",{pos + self.p.first_index}']
            if immediate:
                self._emit_now(line)
            else:
                self.sms_indication(line)
            self.counters.status_reports_routed += 1
            return True
        self.counters.status_reports_dropped += 1
        return True

    def snapshot_storage(self, name: str) -> list[tuple[int, StoredMessage]]:
        return [(pos + self.p.first_index, dataclasses.replace(m)) for pos, m in self.storages[name].items()]


_HANDLERS: dict[str, Callable[[SimModem, Command], list[str] | None]] = {
    **{n: SimModem._h_basic for n in ("E", "V", "Z", "&F", "I", "D", "H", "Q", "&C", "&D", "&K", "&W", "X", "L",
                                      "M")},
    **{n: SimModem._h_identity for n in ("+CGMI", "+CGMM", "+CGMR", "+CGSN", "+CIMI", "+GMI", "+GMM", "+GMR",
                                         "+GSN")},
    "+CCID": SimModem._h_ccid, "+QCCID": SimModem._h_ccid, "^ICCID": SimModem._h_ccid,
    "+CMEE": SimModem._h_cmee, "+CPIN": SimModem._h_cpin, "+CPINR": SimModem._h_cpinr,
    "+CREG": SimModem._h_reg, "+CGREG": SimModem._h_reg, "+CEREG": SimModem._h_reg,
    "+CGATT": SimModem._h_cgatt, "+CSQ": SimModem._h_csq, "+CBC": SimModem._h_cbc, "+COPS": SimModem._h_cops,
    "+CSCA": SimModem._h_csca, "+CSCS": SimModem._h_cscs, "+CFUN": SimModem._h_cfun, "+CMGF": SimModem._h_cmgf,
    "+CSMS": SimModem._h_csms, "+CMMS": SimModem._h_cmms, "+CSMP": SimModem._h_csmp, "+CUSD": SimModem._h_cusd,
    "+CNMI": SimModem._h_cnmi, "+CNMA": SimModem._h_cnma, "+CPMS": SimModem._h_cpms, "+CMGR": SimModem._h_cmgr,
    "+CMGL": SimModem._h_cmgl, "+CMGD": SimModem._h_cmgd, "+CMGS": SimModem._h_cmgs, "+CMGW": SimModem._h_cmgw,
    "+CMSS": SimModem._h_cmss,
}


def random_digits(rng: random.Random, prefix: str, length: int) -> str:
    return prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix)))
