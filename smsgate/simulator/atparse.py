"""V.250 command-line parsing for the simulator (independent of smsgate.at_commands)."""

from __future__ import annotations

from dataclasses import dataclass


class CommandLineError(ValueError):
    """The command line cannot be split into commands; the modem answers ERROR."""


@dataclass(frozen=True)
class Command:
    """One command of a command line.

    ``name`` is upper-case (``+CMGS``, ``E``, ``&F``, ``S0``); ``kind`` is ``exec`` (``AT+CGMI``, ``ATE1``),
    ``set`` (``AT+CMEE=1``), ``read`` (``AT+CREG?``) or ``test`` (``AT+CNMI=?``).
    """

    name: str
    kind: str
    args: tuple[str, ...] = ()
    raw: str = ""

    def arg(self, i: int, default: str = "") -> str:
        return self.args[i] if i < len(self.args) and self.args[i] != "" else default

    def int_arg(self, i: int, default: int | None = None) -> int:
        value = self.arg(i)
        if value == "":
            if default is None:
                raise CommandLineError(f"{self.name}: parameter {i + 1} missing")
            return default
        try:
            return int(value)
        except ValueError:
            raise CommandLineError(f"{self.name}: parameter {i + 1} {value!r} is not a number") from None


def split_args(text: str) -> tuple[str, ...]:
    """Split comma-separated parameters, keeping commas inside quotes; quotes are removed."""
    args: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            args.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if quoted:
        raise CommandLineError("unterminated quoted string")
    args.append("".join(current).strip())
    return tuple(args)


_EXT_PREFIXES = "+^$%*#!"


def _ext_end(body: str, start: int) -> int:
    quoted = False
    i = start
    while i < len(body):
        ch = body[i]
        if ch == '"':
            quoted = not quoted
        elif ch == ";" and not quoted:
            return i
        i += 1
    if quoted:
        raise CommandLineError("unterminated quoted string")
    return i


def parse_line(line: str) -> list[Command]:
    """Commands of one line after the ``AT`` prefix (``E1+CMEE=1;+CREG=2`` → three commands)."""
    commands: list[Command] = []
    i = 0
    n = len(line)
    while i < n:
        ch = line[i]
        if ch in " ;":
            i += 1
            continue
        if ch in _EXT_PREFIXES:
            end = _ext_end(line, i)
            text = line[i:end]
            i = end + 1
            name_end = 1
            while name_end < len(text) and text[name_end] not in "=?":
                name_end += 1
            name = text[:name_end].strip().upper()
            rest = text[name_end:]
            if rest == "":
                commands.append(Command(name, "exec", (), text))
            elif rest == "?":
                commands.append(Command(name, "read", (), text))
            elif rest == "=?":
                commands.append(Command(name, "test", (), text))
            elif rest.startswith("="):
                commands.append(Command(name, "set", split_args(rest[1:]), text))
            else:
                raise CommandLineError(f"cannot parse {text!r}")
            continue
        upper = ch.upper()
        if upper == "D":
            commands.append(Command("D", "exec", (line[i + 1 :].strip(),), line[i:]))
            break
        if upper == "&" and i + 1 < n:
            name = "&" + line[i + 1].upper()
            i += 2
        elif upper == "S" and i + 1 < n and line[i + 1].isdigit():
            j = i + 1
            while j < n and line[j].isdigit():
                j += 1
            name = "S" + line[i + 1 : j]
            i = j
            if i < n and line[i] == "?":
                commands.append(Command(name, "read", (), name + "?"))
                i += 1
                continue
            if i < n and line[i] == "=":
                j = i + 1
                while j < n and line[j].isdigit():
                    j += 1
                commands.append(Command(name, "set", (line[i + 1 : j],), line[i:j]))
                i = j
                continue
            commands.append(Command(name, "exec", (), name))
            continue
        elif upper.isalpha():
            name = upper
            i += 1
        else:
            raise CommandLineError(f"unexpected character {ch!r} in command line")
        j = i
        while j < n and line[j].isdigit():
            j += 1
        commands.append(Command(name, "exec", (line[i:j],) if j > i else (), name + line[i:j]))
        i = j
    return commands
