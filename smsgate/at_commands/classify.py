"""Classify one modem line against the command in flight. Pure: no I/O, no state, table-driven tests.

Order of the rules (why it matters is in docs/at-engine.md):
echo -> prompt -> final result -> information line of the pending command -> known URC ->
bare-answer commands take any other line -> another ``+XXX:`` prefix is an (unknown) URC -> info.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from smsgate.at_commands.errors import code_for_text


class FinalKind(enum.Enum):
    OK = "OK"
    ERROR = "ERROR"
    CMS_ERROR = "+CMS ERROR"
    CME_ERROR = "+CME ERROR"
    NO_CARRIER = "NO CARRIER"
    VENDOR = "vendor"  # non-standard finals such as Huawei "COMMAND NOT SUPPORT"


@dataclass(frozen=True)
class Pending:
    """What the channel is waiting for.

    ``prefixes``: information-line prefixes the command answers with (``+CSQ:`` for ``AT+CSQ``).
    ``bare_info``: the command answers with unprefixed lines (``AT+CGMI``), so any non-URC line is info.
    ``terminal``: info prefixes that end the command without a final (Wavecom ``+CPIN: READY`` has no OK).
    ``echoes``: lines that are our own bytes coming back (the command, the PDU after ``> ``).
    """

    command: str
    prefixes: tuple[str, ...] = ()
    bare_info: bool = False
    terminal: tuple[str, ...] = ()
    echoes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Echo:
    line: str


@dataclass(frozen=True)
class Info:
    line: str


@dataclass(frozen=True)
class Prompt:
    line: str = "> "


@dataclass(frozen=True)
class Final:
    line: str
    kind: FinalKind
    code: int | None = None
    text: str | None = None

    @property
    def ok(self) -> bool:
        return self.kind is FinalKind.OK


@dataclass(frozen=True)
class Urc:
    """An unsolicited result code. ``args`` are the comma-separated fields with quotes removed."""

    name: str
    args: tuple[str, ...]
    line: str
    pdu: str | None = None
    known: bool = True


Classified = Echo | Info | Prompt | Final | Urc

# Commands whose answers are bare lines (no "+XXX:" prefix), per modem-profiles.md.
BARE_INFO_COMMANDS = frozenset({
    "+CGMI", "+CGMM", "+CGMR", "+CGSN", "+CIMI", "+CCID", "+ICCID", "^ICCID", "+CLAC",
    "+GMI", "+GMM", "+GMR", "+GSN", "+GSV", "+GCAP", "I",
})
# Extra prefixes some modems put on those answers (modem-profiles.md: "+CCID:"/"^ICCID:", "Revision:").
_ALT_PREFIXES: dict[str, tuple[str, ...]] = {
    "+CCID": ("+CCID:", "^ICCID:", "+ICCID:", "^SCID:", "+QCCID:"),
    "+ICCID": ("+CCID:", "^ICCID:", "+ICCID:"),
    "^ICCID": ("+CCID:", "^ICCID:", "+ICCID:"),
    "+CMGS": ("+CMGS:",),
}

FINALS_EXACT: dict[str, FinalKind] = {
    "OK": FinalKind.OK,
    "ERROR": FinalKind.ERROR,
    "NO CARRIER": FinalKind.NO_CARRIER,
    "NO DIALTONE": FinalKind.VENDOR,
    "NO ANSWER": FinalKind.VENDOR,
    "BUSY": FinalKind.VENDOR,
    "COMMAND NOT SUPPORT": FinalKind.VENDOR,
    "COMMAND NOT SUPPORTED": FinalKind.VENDOR,
    "TOO MANY PARAMETERS": FinalKind.VENDOR,
}
_CALL_FINALS = frozenset({"NO CARRIER", "NO DIALTONE", "NO ANSWER", "BUSY"})
_ERROR_FINAL = re.compile(r"^\+(CMS|CME) ERROR:\s*(.*)$", re.IGNORECASE)

# Prefixed URCs (name includes its ":"-less prefix). 27.005 §3.4.1 / 27.007 §7-8 and vendor manuals.
URC_PREFIXES = frozenset({
    "+CMTI", "+CMT", "+CDS", "+CDSI", "+CBM", "+CBMI", "+CREG", "+CGREG", "+CEREG", "+C5GREG",
    "+CRING", "+CLIP", "+CCWA", "+CUSD", "+CPIN", "+CFUN", "+CIEV", "+CGEV", "+CTZV", "+CTZE", "+CTZU",
    "+QIND", "+QUSIM", "+CSQN", "+PACSP", "+STIN", "+WIND", "+ZDONR", "+ZPASR", "*ATREADY", "+CUSATP",
    "^RSSI", "^BOOT", "^MODE", "^SRVST", "^SIMST", "^HCSQ", "^RSSILVL", "^DSFLOWRPT", "^CEND", "^ORIG",
    "^CONF", "^CONN", "^HWNAT", "^STIN", "^NDISSTAT", "^SYSSTART", "^CSNR", "^ACTIVEBAND", "^NWTIME",
    "^EONS", "^SMMEMFULL", "^CPBREADY",
})
URC_EXACT = frozenset({
    "RING", "RDY", "CALL READY", "SMS READY", "SMS DONE", "PB DONE", "+PBREADY", "NORMAL POWER DOWN",
    "UNDER-VOLTAGE POWER DOWN", "UNDER-VOLTAGE WARNNING", "OVER-VOLTAGE POWER DOWN", "POWERED DOWN",
    "^SYSSTART", "+QIURC", "APP RDY",
})
# Read commands whose answer shares the URC's prefix; the URC form has fewer fields (27.007 §7.2).
_READ_FORM_MIN_FIELDS = {"+CREG": 2, "+CGREG": 2, "+CEREG": 2, "+C5GREG": 2}

_PREFIX = re.compile(r"^([+^*][A-Za-z0-9_]+|[A-Za-z][A-Za-z0-9_ ]*?)\s*:")
_CMD_NAME = re.compile(r"^AT\s*([+^*$%][A-Za-z0-9_]+|&?[A-Za-z])", re.IGNORECASE)


def split_fields(text: str) -> tuple[str, ...]:
    """Split ``a,"b,c",,d`` into ``('a', 'b,c', '', 'd')``: commas inside quotes stay, quotes go."""
    fields: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            fields.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    fields.append("".join(cur).strip())
    return tuple(fields)


def prefix_of(line: str) -> str | None:
    """``+CMTI`` for ``+CMTI: "SM",3``; ``None`` for a line with no ``NAME:`` prefix."""
    m = _PREFIX.match(line)
    if m is None or not line.startswith(("+", "^", "*")):
        return None
    return m.group(1).upper()


def command_name(command: str) -> str | None:
    """``+CMGL`` for ``AT+CMGL=4``, ``I`` for ``ATI``, ``None`` for something that is not an AT command."""
    m = _CMD_NAME.match(command.strip())
    return m.group(1).upper() if m else None


def pending_for(command: str, *, expect: tuple[str, ...] | None = None,
                terminal: tuple[str, ...] = (), bare_info: bool | None = None) -> Pending:
    """Build the :class:`Pending` for ``command``: expected info prefixes are derived from its name."""
    name = command_name(command)
    if expect is None:
        expect = _ALT_PREFIXES.get(name or "", (f"{name}:",) if name and name[0] in "+^*$%" else ())
    if bare_info is None:
        bare_info = name in BARE_INFO_COMMANDS
    return Pending(command=command.strip(), prefixes=tuple(p.upper() for p in expect), bare_info=bare_info,
                   terminal=tuple(t.upper() for t in terminal), echoes=(command.strip().upper(),))


def parse_final(line: str) -> Final | None:
    """The final result in ``line``, or ``None`` when it is not one."""
    upper = line.strip().upper()
    kind = FINALS_EXACT.get(upper)
    if kind is not None:
        return Final(line=line, kind=kind)
    m = _ERROR_FINAL.match(line.strip())
    if m is None:
        return None
    which = m.group(1).upper()
    kind = FinalKind.CMS_ERROR if which == "CMS" else FinalKind.CME_ERROR
    detail = m.group(2).strip()
    if detail.isdigit():
        return Final(line=line, kind=kind, code=int(detail))
    return Final(line=line, kind=kind, code=code_for_text(which, detail), text=detail or None)


def parse_urc(line: str, *, known: bool | None = None) -> Urc:
    name = prefix_of(line)
    if name is None:
        return Urc(name=line.strip().upper(), args=(), line=line,
                   known=line.strip().upper() in URC_EXACT if known is None else known)
    rest = line.split(":", 1)[1].strip()
    return Urc(name=name, args=split_fields(rest) if rest else (), line=line,
               known=name in URC_PREFIXES if known is None else known)


def classify(line: str, pending: Pending | None) -> Classified:
    """Classify ``line`` (already framed and stripped) against the pending command, or ``None``."""
    stripped = line.strip()
    upper = stripped.upper()
    if pending is not None and upper in pending.echoes:
        return Echo(line)
    if stripped in (">", "> ") or line == "> ":
        return Prompt(line)
    final = parse_final(stripped)
    if final is not None:
        if pending is None and upper in _CALL_FINALS:
            return parse_urc(stripped, known=True)
        return final
    prefix = prefix_of(stripped)
    if pending is not None and prefix is not None and f"{prefix}:" in pending.prefixes:
        min_fields = _READ_FORM_MIN_FIELDS.get(prefix)
        if min_fields is None or len(split_fields(stripped.split(":", 1)[1])) >= min_fields:
            return Info(line)
    if prefix in URC_PREFIXES or upper in URC_EXACT:
        return parse_urc(stripped)
    if pending is None:
        return parse_urc(stripped)
    if pending.bare_info or prefix is None:
        return Info(line)
    return parse_urc(stripped, known=False)
