"""``Modem``: typed helpers over an ``AtChannel`` for the AT commands a gateway uses.

The parsers accept every answer recorded in ``docs/reference/modem-profiles.md`` (leading spaces,
missing ``OK`` after ``+CPIN:``, ``COMMAND NOT SUPPORT``, nested ``+CPMS`` lists, unquoted hex LAC/CI,
``+CMGR`` headers with one to four fields, lower-case hex, a stray quote or ``FF`` padding after a PDU).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Protocol

from smsgate.at_commands.classify import split_fields
from smsgate.at_commands.errors import AtTimeout, CommandFailed, SimLocked

log = logging.getLogger(__name__)

REG_STATES = {
    0: "not registered, not searching",
    1: "registered, home network",
    2: "not registered, searching",
    3: "registration denied",
    4: "unknown",
    5: "registered, roaming",
}


class Channel(Protocol):
    def command(self, cmd: str, *, timeout: float = ..., expect: tuple[str, ...] | None = ...,
                terminal: tuple[str, ...] = ..., bare_info: bool | None = ...,
                secret: str | None = ...) -> list[str]: ...

    def send_pdu(self, pdu_hex: str, tpdu_length: int, *, timeout: float = ...) -> int: ...


@dataclass(frozen=True)
class Identity:
    manufacturer: str | None
    model: str | None
    revision: str | None
    imei: str | None
    imsi: str | None
    iccid: str | None


@dataclass(frozen=True)
class Registration:
    command: str  # "+CREG", "+CEREG" or "+CGREG"
    stat: int | None  # None: the modem sent no status line
    lac: str | None = None
    ci: str | None = None
    act: int | None = None

    @property
    def meaning(self) -> str:
        return REG_STATES.get(self.stat, "not reported") if self.stat is not None else "not reported"

    @property
    def registered(self) -> bool:
        return self.stat in (1, 5)

    @property
    def roaming(self) -> bool:
        return self.stat == 5


@dataclass(frozen=True)
class Signal:
    rssi: int  # 0-31, 99 unknown (27.007 §8.5)
    ber: int | None
    dbm: int | None
    bars: int | None  # 0-5, None when unknown


@dataclass(frozen=True)
class Operator:
    mode: int | None
    name: str | None
    format: int | None = None
    act: int | None = None


@dataclass(frozen=True)
class Smsc:
    number: str | None
    toa: int | None


@dataclass(frozen=True)
class MemoryUse:
    memory: str | None
    used: int | None
    total: int | None

    @property
    def free(self) -> int | None:
        return None if self.used is None or self.total is None else self.total - self.used


@dataclass(frozen=True)
class StorageOptions:
    """Memories ``+CPMS=?`` offers for reading/deleting, writing/sending and receiving (may be fewer)."""

    mem1: tuple[str, ...]
    mem2: tuple[str, ...] = ()
    mem3: tuple[str, ...] = ()


@dataclass(frozen=True)
class CnmiSupport:
    mode: frozenset[int]
    mt: frozenset[int]
    bm: frozenset[int]
    ds: frozenset[int]
    bfr: frozenset[int]


@dataclass(frozen=True)
class StoredPdu:
    index: int | None
    stat: int | None
    length: int | None
    pdu_hex: str
    alpha: str | None = None


def _strip_prefix(line: str, *prefixes: str) -> str:
    for prefix in prefixes:
        if line.upper().startswith(prefix.upper()):
            return line[len(prefix):].strip()
    return line.strip()


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip().strip('"')
    return int(text) if text.isdigit() else None


def _payload(lines: list[str], prefix: str) -> str | None:
    """The text after ``prefix`` on the first line that has it (``+CSQ:4,0`` -> ``4,0``)."""
    for line in lines:
        if line.upper().startswith(prefix.upper()):
            return line[len(prefix):].strip()
    return None


def parse_csq(lines: list[str]) -> Signal:
    """``+CSQ: <rssi>,<ber>``; dBm = -113 + 2*rssi, 99 means unknown."""
    payload = _payload(lines, "+CSQ:")
    if payload is None:
        raise ValueError(f"no +CSQ line in {lines!r}")
    fields = split_fields(payload)
    rssi = _int_or_none(fields[0])
    if rssi is None:
        raise ValueError(f"+CSQ rssi is not a number: {payload!r}")
    ber = _int_or_none(fields[1]) if len(fields) > 1 else None
    if rssi == 99 or rssi > 31:
        return Signal(rssi=rssi, ber=None if ber == 99 else ber, dbm=None, bars=None)
    dbm = -113 + 2 * rssi
    bars = sum(rssi >= step for step in (2, 10, 15, 20, 25))
    return Signal(rssi=rssi, ber=None if ber == 99 else ber, dbm=dbm, bars=bars)


# Where each form keeps the SIM PIN counter: 27.007 ``+CPINR: <code>,<retries>[,<default>]`` (one line per
# code), Quectel ``+QPINC: "SC",<pin>,<puk>`` ("SC" is the SIM PIN, "P2" PIN2), Huawei
# ``^CPIN: <code>,[<times>],<puk_times>,<pin_times>,<puk2_times>,<pin2_times>``.
PIN_COUNTER_COMMANDS = ("AT+CPINR", "AT+QPINC?", "AT^CPIN?")


def parse_pin_attempts(lines: list[str]) -> int | None:
    """SIM PIN attempts left from a ``+CPINR``, ``+QPINC`` or ``^CPIN`` answer; None when it says nothing usable.

    A counter is believed only in the range 0-10 (a SIM allows 3): anything else is some other field.
    """
    for line in lines:
        head, _, payload = line.partition(":")
        fields = [f.strip().strip('"').strip().upper() for f in split_fields(payload)] if payload else []
        name = head.strip().upper()
        value: int | None = None
        if name == "+CPINR" and len(fields) >= 2 and fields[0] == "SIM PIN":
            value = _int_or_none(fields[1])
        elif name == "+QPINC" and len(fields) >= 2 and fields[0] == "SC":
            value = _int_or_none(fields[1])
        elif name == "^CPIN" and len(fields) >= 4:
            value = _int_or_none(fields[3])
        if value is not None and 0 <= value <= 10:
            return value
    return None


def parse_registration(lines: list[str], command: str = "+CREG") -> Registration:
    """``+CREG: <n>,<stat>[,<lac>,<ci>[,<AcT>]]``; bare OK gives ``stat=None``; hex may be unquoted."""
    payload = _payload(lines, f"{command}:")
    if payload is None:
        return Registration(command=command, stat=None)
    fields = split_fields(payload)
    if len(fields) == 1:  # the URC form <stat> (some modems answer the read with it)
        return Registration(command=command, stat=_int_or_none(fields[0]))
    stat = _int_or_none(fields[1])
    lac = fields[2] or None if len(fields) > 2 else None
    ci = fields[3] or None if len(fields) > 3 else None
    act = _int_or_none(fields[4]) if len(fields) > 4 else None
    return Registration(command=command, stat=stat, lac=lac, ci=ci, act=act)


def parse_cops(lines: list[str]) -> Operator:
    payload = _payload(lines, "+COPS:")
    if payload is None:
        return Operator(mode=None, name=None)
    fields = split_fields(payload)
    return Operator(mode=_int_or_none(fields[0]),
                    format=_int_or_none(fields[1]) if len(fields) > 1 else None,
                    name=(fields[2] or None) if len(fields) > 2 else None,
                    act=_int_or_none(fields[3]) if len(fields) > 3 else None)


def _maybe_ucs2(text: str) -> str:
    """A UCS2-hex SMSC (``AT+CSCS="UCS2"`` active, gammu fixture) back to its digits."""
    if len(text) >= 8 and len(text) % 4 == 0 and re.fullmatch(r"(?:00[0-9A-Fa-f]{2})+", text):
        decoded = bytes.fromhex(text).decode("utf-16-be")
        if re.fullmatch(r"\+?[0-9*#]+", decoded):
            return decoded
    return text


def parse_csca(lines: list[str]) -> Smsc:
    payload = _payload(lines, "+CSCA:")
    if payload is None:
        return Smsc(number=None, toa=None)
    fields = split_fields(payload)
    number = _maybe_ucs2(fields[0]) if fields[0] else None
    toa = _int_or_none(fields[1]) if len(fields) > 1 else None
    if number and toa == 145 and not number.startswith("+"):
        number = "+" + number
    return Smsc(number=number, toa=toa)


def parse_cpms_read(lines: list[str]) -> tuple[MemoryUse, ...]:
    """``+CPMS: "SM",14,50,...`` (read) or ``+CPMS: 14,50,14,50`` (set answer, no names)."""
    payload = _payload(lines, "+CPMS:")
    if payload is None:
        return ()
    fields = split_fields(payload)
    if all(f == "" for f in fields):
        return ()
    named = not fields[0].isdigit() and fields[0] != ""
    step = 3 if named else 2
    out = []
    for i in range(0, len(fields) - step + 1, step):
        chunk = fields[i:i + step]
        if named:
            out.append(MemoryUse(chunk[0] or None, _int_or_none(chunk[1]), _int_or_none(chunk[2])))
        else:
            out.append(MemoryUse(None, _int_or_none(chunk[0]), _int_or_none(chunk[1])))
    return tuple(out)


def _paren_groups(text: str) -> list[object]:
    """Parse ``("A","B"),(1-3)`` into nested lists of raw item strings; tolerant of spaces and junk."""
    stack: list[list[object]] = [[]]
    cur: list[str] = []
    quoted = False

    def flush() -> None:
        item = "".join(cur).strip().strip('"')
        cur.clear()
        if item:
            stack[-1].append(item)

    for ch in text:
        if ch == '"':
            quoted = not quoted
            cur.append(ch)
        elif quoted:
            cur.append(ch)
        elif ch == "(":
            flush()
            new: list[object] = []
            stack[-1].append(new)
            stack.append(new)
        elif ch == ")":
            flush()
            if len(stack) > 1:
                stack.pop()
        elif ch == ",":
            flush()
        else:
            cur.append(ch)
    flush()
    return stack[0]


def parse_cpms_test(lines: list[str]) -> StorageOptions:
    """All ``+CPMS=?`` forms: three lists, Wavecom's ``(("SM","BM","SR"),("SM"))``, ``(),(),()``, empty."""
    payload = _payload(lines, "+CPMS:")
    if not payload:
        return StorageOptions(mem1=())
    groups = _paren_groups(payload)
    if len(groups) == 1 and isinstance(groups[0], list) and groups[0] and all(
            isinstance(g, list) for g in groups[0]):
        groups = groups[0]
    mems = [tuple(str(x) for x in g if isinstance(x, str)) if isinstance(g, list) else (str(g),)
            for g in groups]
    mems += [()] * (3 - len(mems))
    return StorageOptions(mem1=mems[0], mem2=mems[1], mem3=mems[2])


def _range_set(items: list[object]) -> frozenset[int]:
    values: set[int] = set()
    for item in items:
        if not isinstance(item, str):
            continue
        for part in item.split(","):
            lo, _, hi = part.strip().partition("-")
            if lo.isdigit() and (not hi or hi.isdigit()):
                values.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(values)


def parse_cnmi_test(lines: list[str]) -> CnmiSupport:
    """``+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)`` and the no-space / missing-group variants."""
    payload = _payload(lines, "+CNMI:") or ""
    groups = [g for g in _paren_groups(payload) if isinstance(g, list)]
    sets = [_range_set(g) for g in groups] + [frozenset()] * 5
    return CnmiSupport(mode=sets[0], mt=sets[1], bm=sets[2], ds=sets[3], bfr=sets[4])


def clean_pdu(line: str, length: int | None) -> str:
    """Upper-case hex, drop a stray quote and ``FF`` padding past SMSC + TPDU (gammu fixtures 04/32/41)."""
    pdu = line.strip().strip('"').upper()
    if length and re.fullmatch(r"(?:[0-9A-F]{2})+", pdu):
        smsc_len = int(pdu[:2], 16)
        needed = (1 + smsc_len + length) * 2
        if len(pdu) > needed and set(pdu[needed:]) <= {"F"}:
            pdu = pdu[:needed]
    return pdu


def _parse_header(payload: str, *, with_index: bool) -> tuple[int | None, int | None, str | None, int | None]:
    fields = split_fields(payload)
    index = None
    if with_index:
        index, fields = _int_or_none(fields[0]), fields[1:]
    length = _int_or_none(fields[-1]) if fields else None
    stat = _int_or_none(fields[0]) if len(fields) >= 2 else None
    alpha = fields[1] or None if len(fields) >= 3 else None
    return index, stat, alpha, length


def parse_cmgl(lines: list[str]) -> list[StoredPdu]:
    """``+CMGL: <index>,<stat>,[<alpha>],<length>`` each followed by its PDU line."""
    out: list[StoredPdu] = []
    header: tuple[int | None, int | None, str | None, int | None] | None = None
    for line in lines:
        if line.upper().startswith("+CMGL:"):
            if header is not None:
                log.warning("+CMGL header without a PDU line: %r", header)
            header = _parse_header(line[6:], with_index=True)
        elif header is not None:
            index, stat, alpha, length = header
            out.append(StoredPdu(index, stat, length, clean_pdu(line, length), alpha))
            header = None
    return out


def parse_cmgr(lines: list[str], index: int | None = None) -> StoredPdu | None:
    """``+CMGR: <stat>,[<alpha>],<length>`` + PDU, incl. ``+CMGR: 24``, ``+CMGR: ,,92``, ``4,1,,151``."""
    for i, line in enumerate(lines):
        if line.upper().startswith("+CMGR:") and i + 1 < len(lines):
            _, stat, alpha, length = _parse_header(line[6:], with_index=False)
            return StoredPdu(index, stat, length, clean_pdu(lines[i + 1], length), alpha)
    return None


class Modem:
    """Typed helpers; every method is one or a few AT commands on the channel."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def _optional(self, cmd: str, *prefixes: str) -> str | None:
        """Bare-answer identity commands: ``None`` when the modem refuses (ERROR, COMMAND NOT SUPPORT)."""
        try:
            lines = self.channel.command(cmd, bare_info=True)
        except CommandFailed as exc:
            log.info("%s not available: %s", cmd, exc.final_line)
            return None
        values = [_strip_prefix(line, *prefixes).strip('"').strip() for line in lines]
        values = [v for v in values if v]
        return " ".join(values) if values else None

    def identify(self) -> Identity:
        iccid = self._optional("AT+CCID", "+CCID:", "^ICCID:", "+ICCID:", "+QCCID:")
        if iccid is None:
            iccid = self._optional("AT^ICCID?", "^ICCID:", "+ICCID:")
        return Identity(
            manufacturer=self._optional("AT+CGMI", "+CGMI:"),
            model=self._optional("AT+CGMM", "+CGMM:"),
            revision=self._optional("AT+CGMR", "+CGMR:", "Revision:"),
            imei=self._optional("AT+CGSN", "+CGSN:"),
            imsi=self._optional("AT+CIMI", "+CIMI:"),
            iccid=iccid,
        )

    def own_number(self) -> str | None:
        """The SIM's own number from ``AT+CNUM`` (first entry), or None: many SIMs do not store it."""
        try:
            lines = self.channel.command("AT+CNUM", expect=("+CNUM:",))
        except CommandFailed as exc:
            log.info("AT+CNUM not available: %s", exc.final_line)
            return None
        for line in lines:
            payload = _payload([line], "+CNUM:")
            if payload is None:
                continue
            fields = split_fields(payload)
            if len(fields) >= 2:
                number = fields[1].strip().strip('"')
                if number:
                    kind = fields[2].strip() if len(fields) > 2 else ""
                    return "+" + number if kind == "145" and not number.startswith("+") else number
        return None

    def pin_state(self) -> str:
        """``READY``, ``SIM PIN``, ``SIM PUK``, ... (Wavecom sends no OK after ``+CPIN:``)."""
        lines = self.channel.command("AT+CPIN?", expect=("+CPIN:",), terminal=("+CPIN:",))
        payload = _payload(lines, "+CPIN:")
        if payload is None:
            raise CommandFailed("AT+CPIN?", "OK", detail=f"AT+CPIN? gave no +CPIN line ({lines!r})")
        return payload.strip().strip('"').upper()

    def enter_pin(self, pin: str) -> str:
        """One attempt, never with a PUK pending; returns the state after (RELIABILITY.md: never retry)."""
        if not re.fullmatch(r"\d{4,8}", pin):
            raise ValueError("a SIM PIN is 4 to 8 digits")
        state = self.pin_state()
        if state == "READY":
            return state
        if state != "SIM PIN":
            raise SimLocked(state, f"the SIM asks for {state!r} and the gateway only enters a SIM PIN; unlock "
                            "this SIM by hand (e.g. in a phone) and restart the modem.")
        self.channel.command(f'AT+CPIN="{pin}"', timeout=20.0, expect=(), secret=pin)
        return self.pin_state()

    def pin_attempts_left(self) -> int | None:
        """SIM PIN attempts left, or None when the modem will not say (no vendor command answers).

        Tries ``AT+CPINR`` (27.007), Quectel ``AT+QPINC?`` and Huawei ``AT^CPIN?`` in turn; an error, a
        timeout or an answer without a counter moves on to the next, so an unknown modem costs three
        refused commands and never an exception.
        """
        for cmd in PIN_COUNTER_COMMANDS:
            try:
                lines = self.channel.command(cmd, timeout=5.0)
            except (CommandFailed, AtTimeout) as exc:
                log.debug("%s gives no PIN counter: %s", cmd, exc)
                continue
            left = parse_pin_attempts(lines)
            if left is not None:
                return left
            log.debug("%s gave no PIN counter in %r", cmd, lines)
        return None

    def registration(self, command: str = "+CREG") -> Registration:
        if command not in ("+CREG", "+CEREG", "+CGREG", "+C5GREG"):
            raise ValueError(f"unknown registration command {command!r}")
        return parse_registration(self.channel.command(f"AT{command}?"), command)

    def signal(self) -> Signal:
        return parse_csq(self.channel.command("AT+CSQ"))

    def operator(self) -> Operator:
        return parse_cops(self.channel.command("AT+COPS?", timeout=30.0))

    def smsc(self) -> Smsc:
        return parse_csca(self.channel.command("AT+CSCA?"))

    def storage(self) -> tuple[MemoryUse, ...]:
        return parse_cpms_read(self.channel.command("AT+CPMS?"))

    def storage_options(self) -> StorageOptions:
        return parse_cpms_test(self.channel.command("AT+CPMS=?"))

    def select_storage(self, mem1: str, mem2: str | None = None,
                       mem3: str | None = None) -> tuple[MemoryUse, ...]:
        mems = [m for m in (mem1, mem2, mem3) if m is not None]
        cmd = "AT+CPMS=" + ",".join(f'"{m}"' for m in mems)
        uses = parse_cpms_read(self.channel.command(cmd))
        return tuple(MemoryUse(mems[i] if i < len(mems) else None, u.used, u.total)
                     for i, u in enumerate(uses))

    def supported_cnmi(self) -> CnmiSupport | None:
        """``None`` when the modem has no new-message indications at all (Nokia: ``ERROR``)."""
        try:
            return parse_cnmi_test(self.channel.command("AT+CNMI=?"))
        except CommandFailed as exc:
            log.warning("modem does not support AT+CNMI=?: %s", exc.final_line)
            return None

    def set_cnmi(self, mode: int, mt: int, bm: int | None = None, ds: int | None = None,
                 bfr: int | None = None) -> None:
        values = [mode, mt, bm, ds, bfr]
        while values and values[-1] is None:
            values.pop()
        self.channel.command("AT+CNMI=" + ",".join("" if v is None else str(v) for v in values))

    def set_pdu_mode(self) -> None:
        self.channel.command("AT+CMGF=0")

    def set_echo(self, on: bool) -> None:
        self.channel.command("ATE1" if on else "ATE0")

    def set_numeric_errors(self) -> None:
        self.channel.command("AT+CMEE=1")

    def csms(self, service: int = 1) -> tuple[int, ...]:
        """Select the message service; returns the ``(mt, mo, bm)`` support flags when the modem says them."""
        payload = _payload(self.channel.command(f"AT+CSMS={service}"), "+CSMS:")
        return tuple(v for v in (_int_or_none(f) for f in split_fields(payload)) if v is not None) \
            if payload else ()

    def cnma(self) -> None:
        self.channel.command("AT+CNMA")

    def cmms(self, mode: int = 2) -> None:
        self.channel.command(f"AT+CMMS={mode}")

    def list_messages(self, stat: int = 4) -> list[StoredPdu]:
        return parse_cmgl(self.channel.command(f"AT+CMGL={stat}", timeout=30.0))

    def read_message(self, index: int) -> StoredPdu | None:
        return parse_cmgr(self.channel.command(f"AT+CMGR={index}", timeout=10.0), index)

    def delete_message(self, index: int, flag: int = 0) -> None:
        self.channel.command(f"AT+CMGD={index}" + (f",{flag}" if flag else ""), timeout=10.0)

    def send_pdu(self, pdu_hex: str, tpdu_length: int, *, timeout: float = 60.0) -> int:
        return self.channel.send_pdu(pdu_hex, tpdu_length, timeout=timeout)

    def reset(self, fun: int = 1, rst: bool = False, *, timeout: float = 30.0) -> None:
        """``AT+CFUN=<fun>[,1]``; after a reset with ``rst`` expect the port to vanish (``PortGone``)."""
        self.channel.command(f"AT+CFUN={fun}" + (",1" if rst else ""), timeout=timeout, expect=("+CFUN:",))
