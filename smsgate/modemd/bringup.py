"""Bringing a modem up: unlock the SIM, wait out a busy SIM, choose storage and new-message notices.

Each step is a function over a `Modem`. The choices themselves (`choose_storage`, `choose_cnmi`,
`is_sim_busy`, `sim_refusal`) are pure, so they are table-tested over the answers real modems gave
(tests/test_modemd_bringup.py); the functions around them only ask the modem and apply the choice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from smsgate.at_commands.errors import CmeError, CmsError, CommandFailed, ModemError, SimLocked
from smsgate.at_commands.modem import CnmiSupport, Identity, Modem, Registration, StorageOptions
from smsgate.config import ModemConfig
from smsgate.retry import backoff_delay

from . import discovery

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# SIM busy right after power-up or PIN entry (python-gsmmodem#11): wait a little, a bounded number of times.
BUSY_CME = frozenset({14, 515})
BUSY_CMS = frozenset({314, 515})
BUSY_TRIES = 6
BUSY_BASE_S = 0.2
BUSY_CAP_S = 3.0


def is_sim_busy(exc: CmeError | CmsError) -> bool:
    return exc.code in (BUSY_CME if isinstance(exc, CmeError) else BUSY_CMS)


def busy_retry(fn: Callable[[], _T], *, name: str, stop: threading.Event) -> _T:
    """`fn()`, tried again with backoff while the SIM says it is busy; any other error, or stopping, raises."""
    attempt = 0
    while True:
        try:
            return fn()
        except (CmeError, CmsError) as exc:
            if not is_sim_busy(exc) or attempt == BUSY_TRIES - 1:
                raise
            delay = backoff_delay(attempt, base=BUSY_BASE_S, cap=BUSY_CAP_S)
            log.info("modem %s: SIM busy (%s), waiting %.1f s", name, exc.final_line, delay)
            if stop.wait(delay):
                raise
            attempt += 1


# -- the SIM -----------------------------------------------------------------------------------------


@dataclass
class PinMemory:
    """Whether this SIM already refused the configured PIN; it is offered once, never a second time."""

    refused: bool = False


def sim_refusal(state: str, *, name: str, pin_configured: bool, pin_refused: bool) -> SimLocked | None:
    """Why smsgate must not unlock a SIM in `state` itself, or None when it may (READY, or one PIN try)."""
    if state == "READY":
        return None
    if state == "SIM PIN":
        if not pin_configured:
            return SimLocked(state, f"the SIM in modem {name} asks for its PIN and none is configured; add "
                             f"pin = \"....\" to [[modems]] {name!r} and restart smsgate")
        if pin_refused:
            return SimLocked(state, f"the SIM in modem {name} rejected the configured PIN once; smsgate will not "
                             "try again (a second wrong PIN brings the SIM closer to PUK)")
        return None
    if "PUK" in state:
        return SimLocked(state, f"the SIM in modem {name} is blocked and needs its PUK ({state}); unblock it "
                         "in a phone with the PUK from the SIM's card, then restart smsgate. smsgate never "
                         "enters a PUK.")
    return SimLocked(state, f"the SIM in modem {name} asks for {state!r}, which smsgate does not enter; unlock "
                     "it by hand and restart smsgate")


def unlock_sim(modem: Modem, *, name: str, pin: str | None, memory: PinMemory, stop: threading.Event,
               note: Callable[[str], None]) -> None:
    """One PIN attempt per SIM, never a PUK (gammu#458, smstools3 3.0.8); raises `SimLocked` with what to do.

    `note` shows what the modem is doing on its status row while the PIN is being entered.
    """
    try:
        state = busy_retry(modem.pin_state, name=name, stop=stop)
    except CmeError as exc:
        if exc.code in (10, 13, 15):
            raise SimLocked(exc.reason, f"no usable SIM in modem {name} ({exc.reason}); insert the SIM and "
                            "restart smsgate") from exc
        raise
    refusal = sim_refusal(state, name=name, pin_configured=bool(pin), pin_refused=memory.refused)
    if refusal is not None:
        raise refusal
    if state == "READY" or not pin:
        return
    left = modem.pin_attempts_left()
    if left is not None and left <= 1:
        count = "only 1 attempt" if left == 1 else "no attempt"
        raise SimLocked(state, f"the SIM in modem {name} asks for its PIN with {count} left; "
                        "smsgate does not risk it (a wrong PIN now blocks the SIM until its PUK). Enter "
                        "the PIN by hand (in a phone, or AT+CPIN on the modem), check that the "
                        "configured pin is right, then restart smsgate.")
    log.info("modem %s: SIM PIN wanted, %s attempts left; entering the configured PIN once", name,
             "unknown" if left is None else left)
    note("entering SIM PIN")
    try:
        after = modem.enter_pin(pin)
    except (ModemError, ValueError) as exc:
        memory.refused = True
        raise SimLocked(state, f"the SIM in modem {name} rejected the configured PIN ({exc}); fix pin in "
                        "the configuration, check the PIN in a phone, then restart smsgate. smsgate "
                        "tried only once.") from exc
    if after != "READY":
        memory.refused = True
        raise SimLocked(after, f"after the configured PIN the SIM in modem {name} says {after!r}; the PIN is "
                        "probably wrong. Fix it, check in a phone, then restart smsgate (tried once).")


def identify(modem: Modem, *, cfg: ModemConfig, path: str | None, memory: PinMemory, stop: threading.Event,
             note: Callable[[str], None]) -> tuple[Identity, str | None]:
    """Plain numeric answers, an unlocked SIM, and proof this is the configured modem; returns it and its number."""
    modem.set_echo(False)
    modem.set_numeric_errors()
    unlock_sim(modem, name=cfg.name, pin=cfg.pin, memory=memory, stop=stop, note=note)
    ident = busy_retry(modem.identify, name=cfg.name, stop=stop)
    check_identity(cfg, path, ident)
    number = busy_retry(modem.own_number, name=cfg.name, stop=stop) or cfg.number or None
    return ident, number


def wait_registration(modem: Modem, *, wait_s: float, poll_s: float, stop: threading.Event,
                      note: Callable[[str], None]) -> Registration | None:
    """The registration once the modem is on the network, denied, or still off it after `wait_s`.

    None when the daemon is stopping. A denial (stat 3) is final for now: the network will not change
    its mind in the next seconds, and the health round polls it again.
    """
    deadline = time.monotonic() + wait_s
    while True:
        reg = modem.registration()
        if reg.registered or reg.stat == 3 or time.monotonic() >= deadline:
            return reg
        note(f"waiting for the network ({reg.meaning})")
        if stop.wait(poll_s):
            return None


def check_identity(cfg: ModemConfig, path: str | None, ident: Identity) -> None:
    """Refuse a port whose modem is not the one configured (a swapped SIM or stick would send as someone else)."""
    if not discovery.matches(cfg, ident):
        raise discovery.DiscoveryError(
            f"{path} answers as IMEI {ident.imei} / IMSI {ident.imsi}, not the modem configured as "
            f"{cfg.name!r} (imei {cfg.imei or '-'}, imsi {cfg.imsi or '-'}); fix the configuration")


# -- storage -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StorageChoice:
    """The `+CPMS` memories to select (read, write, receive) and the ones to sweep for messages."""

    memories: tuple[str, str, str]
    sweep: tuple[str, ...]


# A modem that cannot answer +CPMS=? keeps its default storage, which on every known modem is the SIM.
DEFAULT_STORAGE = StorageOptions(("SM",), ("SM",), ("SM",))


def _pick(options: tuple[str, ...], wanted: tuple[str, ...]) -> str | None:
    for w in wanted:
        if w in options:
            return w
    return options[0] if options else None


def choose_storage(options: StorageOptions, *, status_reports: bool) -> StorageChoice:
    """Read and receive into MT (SIM and phone memory together) where offered, write to the SIM.

    With status reports on, SR is swept too even when `+CPMS=?` does not list it: some modems file
    reports there all the same (chan-quectel#75). A modem that refuses SR loses it at the first refusal.
    """
    mem1 = _pick(options.mem1, ("MT", "SM", "ME")) or "SM"
    mem2 = _pick(options.mem2 or options.mem1, ("SM", "ME", "MT")) or mem1
    mem3 = _pick(options.mem3 or options.mem1, ("MT", "SM", "ME")) or mem1
    sweep = (mem1, "SR") if status_reports and mem1 != "SR" else (mem1,)
    return StorageChoice((mem1, mem2, mem3), sweep)


def select_storage(modem: Modem, *, name: str, status_reports: bool) -> tuple[tuple[str, ...], list[str]]:
    """Apply `choose_storage`; returns the memories now selected and those to sweep."""
    try:
        options = modem.storage_options()
    except CommandFailed as exc:
        log.warning("modem %s: AT+CPMS=? failed (%s); keeping its default storage", name, exc.final_line)
        options = DEFAULT_STORAGE
    choice = choose_storage(options, status_reports=status_reports)
    try:
        modem.select_storage(*choice.memories)
        selected: tuple[str, ...] = choice.memories
    except CommandFailed:
        modem.select_storage(choice.memories[0])
        selected = choice.memories[:1]
    return selected, list(choice.sweep)


# -- new-message notices -----------------------------------------------------------------------------


@dataclass(frozen=True)
class CnmiChoice:
    """`AT+CNMI=<mode>,<mt>,<bm>,<ds>[,<bfr>]`; `bfr` None leaves the parameter out."""

    mode: int
    mt: int
    bm: int
    ds: int
    bfr: int | None

    @property
    def needs_cnma(self) -> bool:
        """Direct delivery (`+CMT`, `+CDS`) is acknowledged with `AT+CNMA` once `AT+CSMS=1` is on."""
        return self.mt == 2 or self.ds == 1


def choose_cnmi(support: CnmiSupport | None, *, status_reports: bool) -> CnmiChoice | None:
    """Buffered store-and-notify where the modem can; None when it has no usable notices (poll instead).

    mode 2 first (RELIABILITY.md: mode 1 drops notices while a command runs); mt 1 (`+CMTI`, the message
    stays stored until we delete it) else 2 (`+CMT`, acknowledged with `+CNMA`); ds 2 (`+CDSI`) else 1
    only when status reports are wanted; bfr 0 (flush buffered notices to us) or left out, never 1,
    which would discard the notices buffered while the port was closed.
    """
    if support is None or not (support.mt & {1, 2}):
        return None
    mode = next((v for v in (2, 1, 3) if v in support.mode), min(support.mode, default=2))
    mt = 1 if 1 in support.mt else 2
    ds = next((v for v in (2, 1) if v in support.ds), 0) if status_reports else 0
    bfr = 0 if 0 in support.bfr else None
    return CnmiChoice(mode, mt, 0, ds, bfr)


@dataclass(frozen=True)
class Notices:
    """What `set_up_notices` achieved: whether the modem announces new messages, and whether we `+CNMA`."""

    enabled: bool
    cnma: bool


def set_up_notices(modem: Modem, *, name: str, status_reports: bool) -> Notices:
    choice = choose_cnmi(modem.supported_cnmi(), status_reports=status_reports)
    if choice is None:
        return Notices(enabled=False, cnma=False)
    cnma = False
    if choice.needs_cnma:
        try:
            modem.csms(1)
            cnma = True
        except CommandFailed as exc:
            log.info("modem %s: AT+CSMS=1 refused (%s); direct delivery without +CNMA", name, exc.final_line)
    try:
        modem.set_cnmi(choice.mode, choice.mt, choice.bm, choice.ds, choice.bfr)
    except CommandFailed:
        modem.set_cnmi(choice.mode, choice.mt, choice.bm, choice.ds)
    return Notices(enabled=True, cnma=cnma)


@dataclass(frozen=True)
class MessageSetup:
    """How the modem was set up for SMS: the memories selected and swept, and its new-message notices."""

    memories: tuple[str, ...]
    sweep: list[str]
    notices: Notices


def set_up_messages(modem: Modem, *, name: str, status_reports: bool) -> MessageSetup:
    """PDU mode, storage, notices, and `+CMMS=2` so the parts of one message share an open link."""
    modem.set_pdu_mode()
    memories, sweep = select_storage(modem, name=name, status_reports=status_reports)
    notices = set_up_notices(modem, name=name, status_reports=status_reports)
    try:
        modem.cmms(2)
    except CommandFailed as exc:
        log.debug("modem %s: no AT+CMMS (%s)", name, exc.final_line)
    return MessageSetup(memories, sweep, notices)
