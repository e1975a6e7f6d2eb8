"""The error finals a simulated command can end with: `AtFailure` raised by handlers, and the +CME/+CMS
texts shown when AT+CMEE=2 asks for words instead of numbers.

Every command group raises these, so they sit apart from any one group.
"""

from __future__ import annotations

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
