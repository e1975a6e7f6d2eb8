"""The faults a running simulator takes by name (control socket, ``smsgate sim fault``), and how their
command-line words become the keyword arguments of ``FaultHandle``'s methods.

One table, so the CLI's help, the control socket and the Python API cannot drift apart: the help is written
from it and a test holds it against ``FaultHandle``'s signatures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FaultArg:
    """One argument of a fault on the command line: the ``FaultHandle`` parameter it fills, and how it is read.

    ``kind``: ``int``, ``float``, ``flag`` (on/off), ``text``, ``hex`` (bytes as hex digits) or ``lines`` (every
    remaining argument, one unsolicited line each).
    """

    name: str
    kind: str
    metavar: str


@dataclass(frozen=True)
class FaultKind:
    """A fault by name as the control socket and ``smsgate sim fault`` take it; ``required`` leading args."""

    name: str
    args: tuple[FaultArg, ...] = ()
    required: int = 0

    def usage(self) -> str:
        """``cms_error CODE [N [AFTER]]``: required arguments bare, optional ones nested in brackets."""
        words = [a.metavar + ("..." if a.kind == "lines" else "") for a in self.args]
        optional = ""
        for word in reversed(words[self.required:]):
            optional = f" [{word}{optional}]"
        return " ".join([self.name, *words[: self.required]]) + optional


def _arg(name: str, kind: str, metavar: str | None = None) -> FaultArg:
    return FaultArg(name, kind, metavar or name.upper())


N = _arg("n", "int")
ON = _arg("on", "flag", "on|off")

# The one list of faults: the control socket dispatches by it, `smsgate sim fault --help` is written from it,
# and tests check it against FaultHandle's methods and their parameters.
FAULTS: tuple[FaultKind, ...] = (
    FaultKind("unplug"),
    FaultKind("replug"),
    FaultKind("hang", (_arg("keep_urcs", "flag"),)),
    FaultKind("recover"),
    FaultKind("garbage", (_arg("data", "hex", "HEX"), _arg("before_next_reply", "flag"))),
    FaultKind("urc_storm", (_arg("count", "int"), _arg("lines", "lines", "LINE"))),
    FaultKind("cms_error", (_arg("code", "int"), N, _arg("after", "int")), required=1),
    FaultKind("command_error", (_arg("prefix", "text"), _arg("final", "text"), N), required=2),
    FaultKind("ambiguous", (N,)),
    FaultKind("no_network", (ON,)),
    FaultKind("registration_denied", (ON,)),
    FaultKind("sim_pin", (_arg("pin", "text"), _arg("attempts", "int"))),
    FaultKind("sim_puk", (_arg("puk", "text"),)),
    FaultKind("storage_full", (ON,)),
    FaultKind("duplicate_inbound", (N,)),
    FaultKind("early_status_report", (N,)),
    FaultKind("misfiled_status_reports", (N,)),
    FaultKind("inbound_inside_reply", (_arg("command", "text"), N)),
    FaultKind("reboot", (_arg("gap", "float"),)),
)
FAULTS_BY_NAME = {f.name: f for f in FAULTS}
FAULT_KINDS = tuple(FAULTS_BY_NAME)


def usage_lines() -> list[str]:
    """One usage line per fault, for ``smsgate sim fault --help``."""
    return [f.usage() for f in FAULTS]


def _flag(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text in ("1", "on", "true", "yes"):
        return True
    if text in ("0", "off", "false", "no"):
        return False
    raise ValueError(f"expected on/off, got {value!r}")


def _convert(fault: FaultKind, arg: FaultArg, value: Any) -> Any:
    try:
        if arg.kind == "int":
            return int(value)
        if arg.kind == "float":
            return float(value)
        if arg.kind == "flag":
            return _flag(value)
        if arg.kind == "hex":
            return bytes.fromhex(str(value))
        if arg.kind == "lines":
            return [str(v) for v in value]
        return str(value)
    except ValueError as exc:
        raise ValueError(f"{fault.name}: {arg.name} = {value!r} is not valid ({exc}); usage: {fault.usage()}") from None


def parse_fault_args(fault: FaultKind, args: list[Any]) -> dict[str, Any]:
    """The keyword arguments for ``FaultHandle.<fault>`` from command-line words: positional in the order of
    the usage line, or ``name=value`` for any of them (``cms_error 38 after=1``); the rest keep their defaults."""
    by_name = {a.name: a for a in fault.args}
    raw: dict[str, Any] = {}
    waiting = list(fault.args)
    lines: list[Any] = []
    for word in args:
        key, eq, value = word.partition("=") if isinstance(word, str) else ("", "", "")
        if eq and key in by_name and by_name[key].kind != "lines":
            raw[key] = value
            continue
        waiting = [a for a in waiting if a.kind == "lines" or a.name not in raw]
        if not waiting:
            raise ValueError(f"{fault.name} takes at most {len(fault.args)} argument(s); usage: {fault.usage()}")
        if waiting[0].kind == "lines":
            lines.append(word)
            raw[waiting[0].name] = lines
        else:
            raw[waiting.pop(0).name] = word
    missing = [a.name for a in fault.args[: fault.required] if a.name not in raw]
    if missing:
        raise ValueError(f"{fault.name} needs {' and '.join(missing)}; usage: {fault.usage()}")
    return {name: _convert(fault, by_name[name], value) for name, value in raw.items()}


