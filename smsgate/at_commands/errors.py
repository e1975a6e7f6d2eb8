"""Typed modem errors, and what the gateway should do about each one.

Hierarchy::

    ModemError
    ├── AtTimeout          no final result before the absolute deadline (keeps the partial reply)
    ├── PortGone           the serial device vanished (unplugged, re-enumerated, pty closed)
    ├── ChannelDesynced    after a timeout the channel could not get a clean ``AT`` -> ``OK`` again
    ├── SimLocked          the SIM wants a code (PUK, a refused PIN, none configured) the gateway must not guess
    └── CommandFailed      an error final result (``ERROR``, ``COMMAND NOT SUPPORT``, ...)
        ├── CmsError       ``+CMS ERROR: <n>`` (3GPP TS 27.005 §3.2.5)
        └── CmeError       ``+CME ERROR: <n>`` (3GPP TS 27.007 §9.2)

The code tables and the retry advice come from ``docs/reference/RELIABILITY.md`` (+CMS / +CME sections).
"""

from __future__ import annotations

import enum


class ErrorClass(enum.Enum):
    """What the caller should do with the message or the modem after an error."""

    PERMANENT = "permanent"  # never retry this message
    TRANSIENT = "transient"  # retry with backoff
    MODEM = "modem"  # the modem (SIM, port, configuration) needs attention or re-initialisation
    AMBIGUOUS = "ambiguous"  # the message may have gone out: record it as "unknown", do not blindly resend


CMS_REASONS: dict[int, str] = {
    1: "unassigned (unallocated) number",
    8: "operator determined barring",
    10: "call barred",
    21: "short message transfer rejected",
    27: "destination out of service",
    28: "unidentified subscriber",
    29: "facility rejected",
    30: "unknown subscriber",
    38: "network out of order",
    41: "temporary failure",
    42: "congestion",
    47: "resources unavailable, unspecified",
    50: "requested facility not subscribed",
    69: "requested facility not implemented",
    81: "invalid short message transfer reference value",
    95: "invalid message, unspecified",
    96: "invalid mandatory information",
    97: "message type non-existent or not implemented",
    98: "message not compatible with short message protocol state",
    99: "information element non-existent or not implemented",
    111: "protocol error, unspecified",
    127: "interworking, unspecified",
    192: "SC busy",
    193: "no SC subscription",
    194: "SC system failure",
    197: "SM rejected - duplicate SM",
    208: "SIM SMS storage full",
    209: "no SMS storage capability in SIM",
    210: "error in MS",
    211: "memory capacity exceeded",
    300: "ME failure",
    301: "SMS service of ME reserved",
    302: "operation not allowed",
    303: "operation not supported",
    304: "invalid PDU mode parameter",
    305: "invalid text mode parameter",
    310: "SIM not inserted",
    311: "SIM PIN required",
    312: "PH-SIM PIN required",
    313: "SIM failure",
    314: "SIM busy",
    315: "SIM wrong",
    316: "SIM PUK required",
    317: "SIM PIN2 required",
    318: "SIM PUK2 required",
    320: "memory failure",
    321: "invalid memory index",
    322: "memory full",
    330: "SMSC address unknown",
    331: "no network service",
    332: "network timeout",
    340: "no +CNMA acknowledgement expected",
    500: "unknown error",
    512: "user abort (manufacturer specific)",
    513: "unable to store (manufacturer specific)",
    515: "invalid character in address / initialisation in progress (manufacturer specific)",
    521: "timer expired (manufacturer specific)",
    532: "SIM not ready (manufacturer specific)",
    535: "PS busy (manufacturer specific)",
}

CME_REASONS: dict[int, str] = {
    0: "phone failure",
    1: "no connection to phone",
    2: "phone-adaptor link reserved",
    3: "operation not allowed",
    4: "operation not supported",
    5: "PH-SIM PIN required",
    10: "SIM not inserted",
    11: "SIM PIN required",
    12: "SIM PUK required",
    13: "SIM failure",
    14: "SIM busy",
    15: "SIM wrong",
    16: "incorrect password",
    17: "SIM PIN2 required",
    18: "SIM PUK2 required",
    20: "memory full",
    21: "invalid index",
    22: "not found",
    23: "memory failure",
    24: "text string too long",
    25: "invalid characters in text string",
    26: "dial string too long",
    27: "invalid characters in dial string",
    30: "no network service",
    31: "network timeout",
    32: "network not allowed - emergency calls only",
    40: "network personalisation PIN required",
    41: "network personalisation PUK required",
    42: "network subset personalisation PIN required",
    43: "network subset personalisation PUK required",
    44: "service provider personalisation PIN required",
    45: "service provider personalisation PUK required",
    46: "corporate personalisation PIN required",
    47: "corporate personalisation PUK required",
    100: "unknown",
    515: "please wait, initialisation or command in progress (manufacturer specific)",
}

_CMS_CLASS: dict[int, ErrorClass] = {
    **dict.fromkeys((1, 8, 10, 21, 27, 28, 29, 30, 50, 69, 193, 303, 304, 305, 321), ErrorClass.PERMANENT),
    **dict.fromkeys((38, 41, 42, 47, 81, 95, 96, 97, 98, 99, 111, 127, 192, 194, 314, 331, 332),
                    ErrorClass.TRANSIENT),
    **dict.fromkeys(range(512, 536), ErrorClass.TRANSIENT),
    # 330 (no SMSC on the SIM) is the SIM's configuration, never the message's: failing each message in
    # turn would empty the queue into `failed`; as a modem-level error the messages wait (or go out
    # through another modem) while the admin sets AT+CSCA.
    **dict.fromkeys((208, 209, 210, 211, 300, 301, 302, 320, 322, 330, 340), ErrorClass.MODEM),
    **dict.fromkeys(range(310, 319), ErrorClass.MODEM),
    197: ErrorClass.AMBIGUOUS,
    500: ErrorClass.AMBIGUOUS,
}
# SIM busy sits inside the 310-318 SIM block but only needs a short wait.
_CMS_CLASS[314] = ErrorClass.TRANSIENT

_CME_CLASS: dict[int, ErrorClass] = {
    **dict.fromkeys((3, 4, 21, 22, 24, 25, 26, 27), ErrorClass.PERMANENT),
    **dict.fromkeys((14, 30, 31, 32, 100, 515), ErrorClass.TRANSIENT),
    **dict.fromkeys((0, 1, 2, 5, 10, 11, 12, 13, 15, 16, 17, 18, 20, 23), ErrorClass.MODEM),
    **dict.fromkeys(range(40, 48), ErrorClass.MODEM),
}

_ADVICE: dict[ErrorClass, str] = {
    ErrorClass.PERMANENT: "Retrying will not help; fix the number, the message or the account.",
    ErrorClass.TRANSIENT: "Temporary; it is safe to retry later with backoff.",
    ErrorClass.MODEM: "The modem or SIM needs attention (check SIM, PIN, storage and configuration, "
    "then re-initialise the modem).",
    ErrorClass.AMBIGUOUS: "The message may already have been sent; record it as unknown and do not "
    "resend it without review.",
}

# Final results that are not in 27.007 but that real modems send instead of ERROR
# (modem-profiles.md: Huawei E1752 "COMMAND NOT SUPPORT").
_VENDOR_FINAL_CLASS: dict[str, ErrorClass] = {
    "COMMAND NOT SUPPORT": ErrorClass.PERMANENT,
    "TOO MANY PARAMETERS": ErrorClass.PERMANENT,
}


def reason_for(kind: str, code: int) -> str:
    """Readable reason for a ``+CMS``/``+CME`` code ("unknown code" when not in the tables)."""
    table = CMS_REASONS if kind == "CMS" else CME_REASONS
    return table.get(code, f"unknown +{kind} ERROR code")


def code_for_text(kind: str, text: str) -> int | None:
    """Map a verbose error (``+CME ERROR: SIM PIN required``, set by ``AT+CMEE=2``) back to its code."""
    wanted = text.strip().lower()
    table = CMS_REASONS if kind == "CMS" else CME_REASONS
    for code, reason in table.items():
        if reason.lower() == wanted:
            return code
    return None


class ModemError(Exception):
    """Base of every error the AT layer raises."""


class AtTimeout(ModemError):
    """No final result arrived before the command's absolute deadline."""

    def __init__(self, command: str, timeout: float, partial: list[str] | None = None,
                 *, after_submit: bool = False, resynced: bool = False) -> None:
        self.command = command
        self.timeout = timeout
        self.partial = list(partial or [])
        self.after_submit = after_submit
        self.resynced = resynced
        what = "no final result"
        if after_submit:
            what += " after the PDU was written: the message may have been sent"
        got = f"; partial reply {self.partial!r}" if self.partial else ""
        super().__init__(f"{command}: {what} within {timeout:g} s{got}. "
                         "Check that the modem is powered and that no other program uses the port.")


class PortGone(ModemError):
    """The serial device disappeared; the channel is dead and must be re-opened (re-discover the device)."""

    def __init__(self, port: str, cause: BaseException | None = None, *, after_submit: bool = False) -> None:
        self.port = port
        self.cause = cause
        self.after_submit = after_submit
        because = f" ({cause})" if cause else ""
        super().__init__(f"serial port {port} is gone{because}. The modem was unplugged, reset or "
                         "re-enumerated; find it again (e.g. under /dev/serial/by-id) and re-open it.")


class ChannelDesynced(ModemError):
    """The channel could not get back to a clean ``AT`` -> ``OK`` state; close it and re-open the port."""

    def __init__(self, port: str, detail: str, *, after_submit: bool = False) -> None:
        self.port = port
        self.detail = detail
        self.after_submit = after_submit
        super().__init__(f"AT channel on {port} is out of step with the modem ({detail}). "
                         "Close the port, power-cycle or reset the modem, and re-open it.")


class SimLocked(ModemError):
    """The SIM wants a code the gateway must not guess (a PUK, a PIN refused once, no PIN configured).

    ``state`` is what the SIM said (``SIM PUK``, ``SIM PIN``, or the reason there is no usable SIM);
    the message is the whole sentence an admin reads, saying what to do.
    """

    def __init__(self, state: str, message: str) -> None:
        self.state = state
        super().__init__(message)


class CommandFailed(ModemError):
    """The modem answered an AT command with an error final result."""

    def __init__(self, command: str, final_line: str, *, after_submit: bool = False,
                 detail: str | None = None) -> None:
        self.command = command
        self.final_line = final_line
        self.after_submit = after_submit
        super().__init__(detail or f"{command} failed: modem answered {final_line!r}. "
                         f"{_ADVICE[_classify_command_failed(final_line, after_submit)]}")


class _CodedError(CommandFailed):
    """An error final with a numeric code; subclasses name the kind and how its codes classify."""

    KIND = ""

    def __init__(self, command: str, code: int, *, final_line: str | None = None,
                 after_submit: bool = False) -> None:
        self.code = code
        self.reason = reason_for(self.KIND, code)
        cls = self.classify(code, after_submit=after_submit)
        super().__init__(command, final_line or f"+{self.KIND} ERROR: {code}", after_submit=after_submit,
                         detail=f"{command} failed: +{self.KIND} ERROR {code} ({self.reason}). {_ADVICE[cls]}")

    @staticmethod
    def classify(code: int, *, after_submit: bool = False) -> ErrorClass:
        raise NotImplementedError


class CmsError(_CodedError):
    """``+CMS ERROR: <code>`` (message service failure)."""

    KIND = "CMS"

    @staticmethod
    def classify(code: int, *, after_submit: bool = False) -> ErrorClass:
        return classify_cms(code, after_submit=after_submit)


class CmeError(_CodedError):
    """``+CME ERROR: <code>`` (mobile equipment failure)."""

    KIND = "CME"

    @staticmethod
    def classify(code: int, *, after_submit: bool = False) -> ErrorClass:
        return classify_cme(code, after_submit=after_submit)


def classify_cms(code: int, *, after_submit: bool = False) -> ErrorClass:
    """Class of a ``+CMS ERROR`` code; unknown codes after the PDU went out are ambiguous."""
    known = _CMS_CLASS.get(code)
    if known is not None:
        return known
    return ErrorClass.AMBIGUOUS if after_submit else ErrorClass.TRANSIENT


def classify_cme(code: int, *, after_submit: bool = False) -> ErrorClass:
    """Class of a ``+CME ERROR`` code."""
    known = _CME_CLASS.get(code)
    if known is not None:
        return known
    return ErrorClass.AMBIGUOUS if after_submit else ErrorClass.TRANSIENT


def _classify_command_failed(final_line: str, after_submit: bool) -> ErrorClass:
    vendor = _VENDOR_FINAL_CLASS.get(final_line.strip().upper())
    if vendor is not None:
        return vendor
    # A bare ERROR once the PDU was written can come after the SMS left (RELIABILITY.md fact 3).
    return ErrorClass.AMBIGUOUS if after_submit else ErrorClass.TRANSIENT


def classify_error(exc: BaseException) -> ErrorClass:
    """What to do after ``exc``, following RELIABILITY.md.

    A timeout or ``+CMS ERROR: 500`` after the PDU of a ``+CMGS`` is AMBIGUOUS (the message may have gone);
    a vanished port or a channel that cannot resynchronise is MODEM-level.
    """
    if isinstance(exc, _CodedError):
        return exc.classify(exc.code, after_submit=exc.after_submit)
    if isinstance(exc, CommandFailed):
        return _classify_command_failed(exc.final_line, exc.after_submit)
    if isinstance(exc, AtTimeout):
        return ErrorClass.AMBIGUOUS if exc.after_submit else ErrorClass.TRANSIENT
    if isinstance(exc, ChannelDesynced | PortGone) and exc.after_submit:
        return ErrorClass.AMBIGUOUS
    if isinstance(exc, PortGone | ChannelDesynced | SimLocked):
        return ErrorClass.MODEM
    if isinstance(exc, OSError):
        return ErrorClass.MODEM
    if isinstance(exc, ModemError):
        # A bare ModemError means the channel itself went away (closed under a waiting command).
        return ErrorClass.AMBIGUOUS if getattr(exc, "after_submit", False) else ErrorClass.MODEM
    raise TypeError(f"classify_error() handles modem errors, not {type(exc).__name__}: {exc}")


def advice(cls: ErrorClass) -> str:
    """One sentence an admin can act on for an error class."""
    return _ADVICE[cls]
