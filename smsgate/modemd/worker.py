"""One thread per modem: it owns the modem's AT channel and does everything that touches it.

Inbound notices, storage sweeps, health polls and sends all go through this one thread, so there is never
a second command in flight and never a lock to order. The thread sleeps on an Event that the channel's
URC callback, the queue watcher, the scheduler and `stop()` set, so it reacts at once and costs nothing idle.
A modem-level failure walks the escalation ladder (re-initialise -> `AT+CFUN=1,1` -> close and rediscover
-> offline with an alert, retried slowly) without touching the other modems' threads.
"""

from __future__ import annotations

import collections
import enum
import functools
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import serial

from smsgate.at_commands.channel import AtChannel
from smsgate.at_commands.classify import Urc
from smsgate.at_commands.errors import (
    CmeError,
    CmsError,
    CommandFailed,
    ModemError,
)
from smsgate.at_commands.modem import Identity, Modem, StorageOptions
from smsgate.config import Config, ModemConfig
from smsgate.queue import Defer, Gate, Message, Store, StoreError
from smsgate.queue.clock import ts

from . import discovery
from .hooks import InboundHook
from .inbound import InboundProcessor, Outcome, modem_identity
from .limits import Caps, TokenBucket
from .outbound import Result, Sender
from .tunables import Tunables

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# Alerts that stop being true once the modem answers again, whatever state it then reaches.
_REACHED = ("modem_offline", "modem_paused")
# SIM busy right after power-up or PIN entry (python-gsmmodem#11): wait a little, a bounded number of times.
_BUSY_CME = {14, 515}
_BUSY_CMS = {314, 515}


class ModemState(enum.StrEnum):
    STARTING = "starting"
    INITIALISING = "initialising"
    READY = "ready"  # registered and sending
    NO_NETWORK = "no_network"  # initialised, receives stored SMS, does not send until registered
    CAPPED = "capped"  # daily cap reached; its contacts' messages fail over to other modems
    RECOVERING = "recovering"  # on the escalation ladder
    PAUSED = "paused"  # circuit breaker open after repeated modem-level errors
    OFFLINE = "offline"  # recovery keeps failing; retried slowly, alert raised
    LOCKED = "locked"  # SIM PIN wrong / PUK / no PIN configured: stopped until an admin acts
    STOPPED = "stopped"


class SimProblem(Exception):
    """The SIM wants a code the daemon must not guess (wrong PIN, PUK, no PIN configured)."""


@dataclass
class WorkerContext:
    """What every worker shares with the daemon."""

    config: Config
    tunables: Tunables
    registry: discovery.PortRegistry
    stop: threading.Event
    hostname: str
    on_inbound: InboundHook | None
    gate: Gate | None


class CappedChannel:
    """The channel with every command deadline shortened to at most `cap` seconds (tests of hangs)."""

    def __init__(self, channel: AtChannel, cap: float | None) -> None:
        self.channel = channel
        self.cap = cap

    def _t(self, timeout: float) -> float:
        return timeout if self.cap is None else min(timeout, self.cap)

    def command(self, cmd: str, *, timeout: float = 5.0, **kw: object) -> list[str]:
        return self.channel.command(cmd, timeout=self._t(timeout), **kw)  # type: ignore[arg-type]

    def send_pdu(self, pdu_hex: str, tpdu_length: int, *, timeout: float = 60.0) -> int:
        return self.channel.send_pdu(pdu_hex, tpdu_length, timeout=timeout)


def _pick(options: tuple[str, ...], wanted: tuple[str, ...]) -> str | None:
    for w in wanted:
        if w in options:
            return w
    return options[0] if options else None


class ModemWorker:
    """Drives one configured modem for the life of the daemon."""

    def __init__(self, ctx: WorkerContext, cfg: ModemConfig) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.name = cfg.name
        self.t = ctx.tunables
        self.owner = f"{ctx.hostname}:{os.getpid()}:{cfg.name}"
        self.wake = threading.Event()
        self.state = ModemState.STARTING
        self.detail: str | None = None
        self.modem_id: int | None = None
        self.path: str | None = None
        self.sent_messages = 0
        self.last_tick = time.monotonic()
        self._flags: set[str] = set()
        self._flags_lock = threading.Lock()
        self._maybe_work = True
        self._need_init = True
        self._ladder = 0
        self._failures: collections.deque[float] = collections.deque()
        self._pin_rejected = False
        self._smsc_alerted = False
        self._cnma = False
        self._mems: tuple[str, ...] = ()
        self._sweep_mems: list[str] = []
        self._notices = True
        self._next_sweep = 0.0
        self._next_registration = 0.0
        self._capped_until: datetime | None = None
        self._channel: AtChannel | None = None
        self._modem: Modem | None = None
        self._store: Store | None = None
        self._inbound: InboundProcessor | None = None
        self._sender: Sender | None = None
        self._caps: Caps | None = None
        self._bucket = TokenBucket(cfg.parts_per_minute)
        self._thread = threading.Thread(target=self._run, name=f"modem:{cfg.name}", daemon=True)

    # -- control from other threads -------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def poke(self, *, work: bool = False) -> None:
        """Wake the thread; `work` says the queue may hold something for it."""
        if work:
            self._maybe_work = True
        self.wake.set()

    def request(self, flag: str) -> None:
        """Ask for a `health` poll or a storage `sweep` at the next chance."""
        with self._flags_lock:
            self._flags.add(flag)
        self.wake.set()

    def _on_urc(self, urc: Urc) -> None:
        # Reader thread: only wake the worker, which takes URCs off the channel's queue in order.
        self.wake.set()

    # -- thread body ----------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            store = self._store = Store.for_config(self.ctx.config)
            last = store.modems.by_name(self.name)
            self.path = last["device"] if last else None
            self.modem_id = store.modems.upsert(self.name, state=ModemState.STARTING.value, state_detail=None)
            self._caps = Caps(self.cfg.daily_cap, self.cfg.monthly_recipient_cap, _zone(self.ctx.config))
            self._loop()
        except Exception as exc:
            log.exception("modem %s: worker thread crashed", self.name)
            self._safe_alert("worker_crashed", f"the worker of modem {self.name} stopped on an internal error "
                             f"({exc!r}); restart smsgate and report the log")
        finally:
            self._shutdown()

    def _loop(self) -> None:
        stop = self.ctx.stop
        while not stop.is_set():
            self.last_tick = time.monotonic()
            if self.state is ModemState.LOCKED:
                stop.wait(1.0)
                continue
            if self._need_init:
                self._bring_up()
                continue
            self.wake.clear()
            try:
                busy = self._service()
            except ModemError as exc:
                self._modem_failed(exc)
                continue
            except (sqlite3.Error, StoreError):
                log.exception("modem %s: database error; nothing is deleted from the modem until it is stored",
                              self.name)
                stop.wait(1.0)
                continue
            if not busy:
                self.wake.wait(self._idle_timeout())

    def _idle_timeout(self) -> float:
        timeout = self.t.idle_wake_s
        if self._maybe_work and self.state is ModemState.READY:
            timeout = min(timeout, max(self._bucket.wait_time(), 0.01))
        now = time.monotonic()
        for due in (self._next_sweep, self._next_registration if self.state is ModemState.NO_NETWORK else 0.0):
            if due:
                timeout = min(timeout, max(due - now, 0.0))
        return max(timeout, 0.005)

    def _service(self) -> bool:
        """One round of work; True when something was done (so look again before sleeping)."""
        self._drain_urcs()
        with self._flags_lock:
            flags, self._flags = self._flags, set()
        now = time.monotonic()
        if not self._notices and now >= self._next_sweep:
            flags.add("sweep")
        if self.state is ModemState.NO_NETWORK and now >= self._next_registration:
            flags.add("health")
        if "sweep" in flags:
            self._sweep()
        if "health" in flags:
            self._health()
        if self.state is ModemState.CAPPED and self._capped_until and self._clock() >= self._capped_until:
            self._set_state(ModemState.READY)
        if self.ctx.stop.is_set():
            return False
        return self._send_next()

    # -- bringing the modem up ------------------------------------------------------------------------

    def _bring_up(self) -> None:
        step = self._ladder
        stop = self.ctx.stop
        if step >= self.t.offline_after:
            if self.state is not ModemState.OFFLINE:
                self._fall(ModemState.OFFLINE, self.detail, "modem_offline",
                           f"modem {self.name} is offline: {self.detail}. Check its USB cable and power, and "
                           "`ls -l /dev/serial/by-id/`; smsgate keeps trying and other modems carry its messages.")
            delay = self.t.offline_retry_s
        else:
            delays = self.t.recover_delays_s
            delay = delays[min(step, len(delays) - 1)] if step else 0.0
        if delay and stop.wait(delay):
            return
        if self.state not in (ModemState.OFFLINE, ModemState.PAUSED):
            self._set_state(ModemState.INITIALISING if self.state is ModemState.STARTING
                            else ModemState.RECOVERING, self.detail)
        try:
            channel = self._channel
            if step == 1 and channel is not None and channel.alive:
                self._cfun_reset()
            if step >= 2 or self._channel is None or not self._channel.alive:
                self._close_channel()
                self._open()
            self._initialise()
        except SimProblem as exc:
            self._lock(str(exc))
            return
        except (ModemError, discovery.DiscoveryError, serial.SerialException, OSError) as exc:
            self._ladder += 1
            self._record_error(exc)
            log.warning("modem %s: recovery step %s failed: %s", self.name, step, exc)
            return
        self._ladder = 0
        self._need_init = False
        self._maybe_work = True

    def _cfun_reset(self) -> None:
        assert self._modem is not None
        log.warning("modem %s: resetting it with AT+CFUN=1,1", self.name)
        try:
            self._modem.reset(1, rst=True, timeout=15.0)
        except ModemError as exc:
            log.info("modem %s: AT+CFUN=1,1 answered %s (expected when the port drops)", self.name, exc)
        self._close_channel()
        self.ctx.stop.wait(self.t.cfun_settle_s)

    def _open(self) -> None:
        found = discovery.find(self.cfg, self.ctx.registry, self.owner, last_device=self.path, on_urc=self._on_urc,
                               probe_timeout=self.t.probe_timeout_s)
        found.channel.resync_timeout = self.t.resync_timeout_s
        self._channel = found.channel
        self._modem = Modem(CappedChannel(found.channel, self.t.command_timeout_cap_s))
        self.path = found.path

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = None
        self._modem = None
        self.ctx.registry.release_all(self.owner)

    def _initialise(self) -> None:
        channel, m, store = self._channel, self._modem, self._store
        assert channel is not None and m is not None and store is not None and self.modem_id is not None
        self._set_state(self.state, "initialising")
        channel.resync()
        m.set_echo(False)
        m.set_numeric_errors()
        self._unlock_sim(m)
        ident = self._busy_retry(m.identify)
        self._check_identity(ident)
        number = self._busy_retry(m.own_number) or self.cfg.number or None
        store.modems.update(self.modem_id, device=self.path, imei=ident.imei, imsi=ident.imsi, iccid=ident.iccid,
                           manufacturer=ident.manufacturer, model=ident.model, revision=ident.revision,
                           msisdn=number, last_seen_at=ts(self._clock()))
        identity = modem_identity(store, self.modem_id)
        self._inbound = InboundProcessor(store, self.modem_id, identity, self.ctx.on_inbound)
        m.set_pdu_mode()
        self._select_storage(m)
        self._set_cnmi(m)
        try:
            m.cmms(2)
        except CommandFailed as exc:
            log.debug("modem %s: no AT+CMMS (%s)", self.name, exc.final_line)
        assert self._caps is not None
        self._sender = Sender(store, m, modem_name=self.name, sending=self.ctx.config.sending, bucket=self._bucket,
                              caps=self._caps, stop=self.ctx.stop, send_timeout=self.t.send_timeout_s,
                              on_unknown_resend=self._resend_unknown)
        registered = self._wait_registration(m)
        self._sweep()
        self._health(initial=True)
        if registered:
            self._rise(*_REACHED)
        log.info("modem %s ready on %s (%s)", self.name, self.path, self.state)

    def _unlock_sim(self, m: Modem) -> None:
        """One PIN attempt per SIM insertion, never a PUK (gammu#458, smstools3 3.0.8)."""
        try:
            state = self._busy_retry(m.pin_state)
        except CmeError as exc:
            if exc.code in (10, 13, 15):
                raise SimProblem(f"no usable SIM in modem {self.name} ({exc.reason}); insert the SIM and "
                                 "restart smsgate") from exc
            raise
        if state == "READY":
            return
        if state == "SIM PIN":
            if not self.cfg.pin:
                raise SimProblem(f"the SIM in modem {self.name} asks for its PIN and none is configured; add "
                                 f"pin = \"....\" to [[modems]] {self.name!r} and restart smsgate")
            if self._pin_rejected:
                raise SimProblem(f"the SIM in modem {self.name} rejected the configured PIN once; smsgate will not "
                                 "try again (a second wrong PIN brings the SIM closer to PUK)")
            left = m.pin_attempts_left()
            if left is not None and left <= 1:
                count = "only 1 attempt" if left == 1 else "no attempt"
                raise SimProblem(f"the SIM in modem {self.name} asks for its PIN with {count} left; "
                                 "smsgate does not risk it (a wrong PIN now blocks the SIM until its PUK). Enter "
                                 "the PIN by hand (in a phone, or AT+CPIN on the modem), check that the "
                                 "configured pin is right, then restart smsgate.")
            log.info("modem %s: SIM PIN wanted, %s attempts left; entering the configured PIN once", self.name,
                     "unknown" if left is None else left)
            self._set_state(self.state, "entering SIM PIN")
            try:
                after = m.enter_pin(self.cfg.pin)
            except (ModemError, ValueError) as exc:
                self._pin_rejected = True
                raise SimProblem(f"the SIM in modem {self.name} rejected the configured PIN ({exc}); fix pin in "
                                 "the configuration, check the PIN in a phone, then restart smsgate. smsgate "
                                 "tried only once.") from exc
            if after != "READY":
                self._pin_rejected = True
                raise SimProblem(f"after the configured PIN the SIM in modem {self.name} says {after!r}; the PIN is "
                                 "probably wrong. Fix it, check in a phone, then restart smsgate (tried once).")
            return
        if "PUK" in state:
            raise SimProblem(f"the SIM in modem {self.name} is blocked and needs its PUK ({state}); unblock it "
                             "in a phone with the PUK from the SIM's card, then restart smsgate. smsgate never "
                             "enters a PUK.")
        raise SimProblem(f"the SIM in modem {self.name} asks for {state!r}, which smsgate does not enter; unlock it "
                         "by hand and restart smsgate")

    def _busy_retry(self, fn: Callable[[], _T]) -> _T:
        delay = 0.2
        for attempt in range(6):
            try:
                return fn()
            except (CmeError, CmsError) as exc:
                busy = exc.code in (_BUSY_CME if isinstance(exc, CmeError) else _BUSY_CMS)
                if not busy or attempt == 5:
                    raise
                log.info("modem %s: SIM busy (%s), waiting %.1f s", self.name, exc.final_line, delay)
                if self.ctx.stop.wait(delay):
                    raise
                delay = min(delay * 2, 3.0)
        raise AssertionError("unreachable")

    def _check_identity(self, ident: Identity) -> None:
        if not discovery.matches(self.cfg, ident):
            raise discovery.DiscoveryError(
                f"{self.path} answers as IMEI {ident.imei} / IMSI {ident.imsi}, not the modem configured as "
                f"{self.name!r} (imei {self.cfg.imei or '-'}, imsi {self.cfg.imsi or '-'}); fix the configuration")

    def _select_storage(self, m: Modem) -> None:
        try:
            opts = m.storage_options()
        except CommandFailed as exc:
            log.warning("modem %s: AT+CPMS=? failed (%s); keeping its default storage", self.name, exc.final_line)
            opts = StorageOptions(("SM",), ("SM",), ("SM",))
        mem1 = _pick(opts.mem1, ("MT", "SM", "ME")) or "SM"
        mem2 = _pick(opts.mem2 or opts.mem1, ("SM", "ME", "MT")) or mem1
        mem3 = _pick(opts.mem3 or opts.mem1, ("MT", "SM", "ME")) or mem1
        try:
            m.select_storage(mem1, mem2, mem3)
            self._mems = (mem1, mem2, mem3)
        except CommandFailed:
            m.select_storage(mem1)
            self._mems = (mem1,)
        self._sweep_mems = [mem1]
        if self.ctx.config.sending.status_reports and mem1 != "SR":
            # Tried even when +CPMS=? does not list it: some modems file reports there all the same
            # (chan-quectel#75). A modem that refuses it loses it from the sweep at the first refusal.
            self._sweep_mems.append("SR")

    def _set_cnmi(self, m: Modem) -> None:
        support = m.supported_cnmi()
        self._cnma = False
        if support is None or not (support.mt & {1, 2}):
            self._notices = False
            self._next_sweep = time.monotonic()
            log.warning("modem %s: no new-message notices; polling its storage every %.0f s", self.name,
                        self.t.sweep_without_notices_s)
            return
        mode = next((v for v in (2, 1, 3) if v in support.mode), min(support.mode, default=2))
        mt = 1 if 1 in support.mt else 2
        want_reports = self.ctx.config.sending.status_reports
        ds = next((v for v in (2, 1) if v in support.ds), 0) if want_reports else 0
        if mt == 2 or ds == 1:
            try:
                m.csms(1)
                self._cnma = True
            except CommandFailed as exc:
                log.info("modem %s: AT+CSMS=1 refused (%s); direct delivery without +CNMA", self.name, exc.final_line)
        bfr = 0 if 0 in support.bfr else None
        try:
            m.set_cnmi(mode, mt, 0, ds, bfr)
        except CommandFailed:
            m.set_cnmi(mode, mt, 0, ds)
        self._notices = True

    def _wait_registration(self, m: Modem) -> bool:
        deadline = time.monotonic() + self.t.registration_wait_s
        while True:
            reg = m.registration()
            if reg.registered:
                self._resolve("no_network")
                return True
            if reg.stat == 3 or time.monotonic() >= deadline:
                self._no_network(reg.meaning)
                return False
            self._set_state(self.state, f"waiting for the network ({reg.meaning})")
            if self.ctx.stop.wait(self.t.registration_poll_s):
                return False

    def _no_network(self, meaning: str) -> None:
        self._next_registration = time.monotonic() + self.t.no_network_poll_s
        self._fall(ModemState.NO_NETWORK, meaning, "no_network",
                   f"modem {self.name} is not registered on the network ({meaning}); messages go out through "
                   "other modems. Check the antenna, signal and that the SIM is active.", level="warning",
                   resolved=_REACHED)

    def _lock(self, why: str) -> None:
        log.error("modem %s stopped: %s", self.name, why)
        self._close_channel()
        self._fall(ModemState.LOCKED, why, "sim_locked", why, resolved=_REACHED)

    # -- failures -------------------------------------------------------------------------------------

    def _modem_failed(self, exc: BaseException) -> None:
        log.warning("modem %s: %s", self.name, exc)
        now = time.monotonic()
        self._failures.append(now)
        while self._failures and self._failures[0] < now - self.t.breaker_window_s:
            self._failures.popleft()
        self._need_init = True
        tripped = len(self._failures) >= self.t.breaker_errors
        assert self._store is not None
        with self._store.transaction():
            self._record_error(exc)
            if tripped:
                self._fall(ModemState.PAUSED, f"{self.t.breaker_errors} modem errors in a row: {exc}",
                           "modem_paused", f"modem {self.name} paused for {self.t.breaker_cooldown_s:.0f} s after "
                           f"repeated modem errors (last: {exc}); it will be reset and retried.", level="warning")
            else:
                self._set_state(ModemState.RECOVERING, str(exc))
        if tripped:
            self._failures.clear()
            self._ladder = max(self._ladder, 1)
            self.ctx.stop.wait(self.t.breaker_cooldown_s)

    def _record_error(self, exc: BaseException) -> None:
        self.detail = str(exc)
        if self._store is not None and self.modem_id is not None:
            self._store.modems.update(self.modem_id, last_error=str(exc)[:500], last_error_at=ts(self._clock()))

    # -- inbound --------------------------------------------------------------------------------------

    def _drain_urcs(self) -> None:
        channel = self._channel
        if channel is None:
            return
        while True:
            try:
                urc = channel.urcs.get_nowait()
            except queue.Empty:
                return
            self._handle_urc(urc)

    def _handle_urc(self, urc: Urc) -> None:
        name, args = urc.name, urc.args
        if name in ("+CMTI", "+CDSI") and len(args) >= 2 and args[1].strip().isdigit():
            outcome = self._read_index(args[0], int(args[1]))
            if name == "+CDSI" and (outcome is None or outcome.kind != "report"):
                # The announced slot held something else (or nothing): the report is in another memory.
                self.request("sweep")
        elif name in ("+CMT", "+CDS") and urc.pdu:
            self._take(None, urc.pdu)
            if self._cnma and self._modem is not None:
                try:
                    self._modem.cnma()
                except CommandFailed as exc:
                    log.warning("modem %s: AT+CNMA refused (%s)", self.name, exc.final_line)
        elif name in ("+CMTI", "+CDSI", "+CMT", "+CDS", "^SMMEMFULL"):
            self.request("sweep")
        elif name in ("+CREG", "+CGREG", "+CEREG"):
            self.request("health")
        elif name == "+CPIN" and args and args[0].strip().upper() != "READY":
            log.warning("modem %s: SIM state changed to %s", self.name, args[0])
            self._need_init = True
        else:
            log.debug("modem %s: ignoring URC %r", self.name, urc.line)

    def _read_index(self, mem: str, index: int) -> Outcome | None:
        m = self._modem
        assert m is not None
        mem = mem.strip().upper()
        switched = bool(mem) and bool(self._mems) and mem != self._mems[0]
        try:
            if switched:
                m.select_storage(mem)
            stored = m.read_message(index)
            if stored is None:
                self.request("sweep")
                return None
            return self._take(index, stored.pdu_hex)
        except CmsError as exc:
            # +CDSI indexes are only hints (chan-quectel#75); a sweep finds the message wherever it is.
            log.info("modem %s: reading %s index %s failed (%s); sweeping storage", self.name, mem, index, exc)
            self.request("sweep")
            return None
        finally:
            if switched:
                m.select_storage(*self._mems)

    def _take(self, index: int | None, pdu_hex: str) -> Outcome | None:
        """Store one PDU, then (and only then) delete the modem's copy."""
        assert self._inbound is not None and self._modem is not None
        pdu = pdu_hex.strip()
        if not pdu:
            return None
        outcome = self._inbound.process(pdu)
        if outcome.kind == "undecodable" and index is None:
            alt = self._inbound.process(pdu, has_smsc=False)
            outcome = alt if alt.kind != "undecodable" else outcome
        if outcome.delete and index is not None:
            try:
                self._modem.delete_message(index)
            except CmsError as exc:
                if exc.code != 321:
                    raise
        return outcome

    def _sweep(self) -> None:
        m = self._modem
        assert m is not None
        self._next_sweep = time.monotonic() + (self.t.sweep_without_notices_s if not self._notices else self.t.sweep_s)
        for mem in list(self._sweep_mems) or [""]:
            switched = bool(mem) and mem != self._mems[0]
            if switched:
                try:
                    m.select_storage(mem)
                except CommandFailed as exc:
                    if mem == "SR":
                        log.info("modem %s: no status-report memory SR (%s)", self.name, exc.final_line)
                        self._sweep_mems.remove(mem)
                        continue
                    raise
            try:
                for item in m.list_messages(4):
                    if item.stat in (2, 3):
                        continue  # stored outgoing messages are not ours
                    self._take(item.index, item.pdu_hex)
            except CmsError as exc:
                log.info("modem %s: sweeping %s failed: %s", self.name, mem or "storage", exc)
            finally:
                if switched:
                    m.select_storage(*self._mems)

    # -- health ---------------------------------------------------------------------------------------

    def _health(self, *, initial: bool = False) -> None:
        m, store = self._modem, self._store
        assert m is not None and store is not None and self.modem_id is not None
        self._next_registration = time.monotonic() + self.t.no_network_poll_s
        sig = m.signal()
        reg = m.registration()
        try:
            op = m.operator().name
        except CommandFailed:
            op = None
        used = total = None
        try:
            uses = m.storage()
            if uses:
                used, total = uses[0].used, uses[0].total
        except CommandFailed as exc:
            log.debug("modem %s: AT+CPMS? failed: %s", self.name, exc.final_line)
        now = ts(self._clock())
        full = bool(total and used is not None and used >= total * self.t.storage_alert_ratio)
        with store.transaction():  # the facts, the state and the alerts they imply are read together
            store.modems.update(self.modem_id, signal_dbm=sig.dbm, signal_bars=sig.bars, registration=reg.meaning,
                               operator=op, storage_used=used, storage_total=total, last_seen_at=now,
                               heartbeat_at=now)
            if not initial:
                if reg.registered and self.state is ModemState.NO_NETWORK:
                    self._rise("no_network")
                    self._maybe_work = True
                elif not reg.registered and self.state is ModemState.READY:
                    self._no_network(reg.meaning)
            if full:
                self._alert("storage_full", f"modem {self.name} storage is {used}/{total} full; smsgate is emptying "
                            "it. If this stays, check the log for messages it cannot store.", level="warning")
            elif total:
                self._resolve("storage_full")
        if full and not initial:
            self.request("sweep")

    # -- outbound -------------------------------------------------------------------------------------

    def _send_next(self) -> bool:
        if self.state is not ModemState.READY or not self._maybe_work:
            return False
        if self._bucket.wait_time() > 0:
            return False
        store, caps, sender = self._store, self._caps, self._sender
        assert store is not None and caps is not None and sender is not None and self.modem_id is not None
        now = self._clock()
        caps.refresh(store, self.modem_id, now)
        if caps.daily_left() == 0:
            self._capped_until = caps.next_day(now)
            self._set_state(ModemState.CAPPED, f"daily cap of {caps.daily_cap} parts reached; "
                            f"sending again after {self._capped_until:%Y-%m-%d %H:%M} UTC")
            return False
        claims = store.outbox.claim(self.owner, self.modem_id, limit=1,
                                    lease_seconds=self.ctx.config.sending.lease_seconds,
                                    gate=functools.partial(self._gate, store))
        if not claims:
            self._maybe_work = False
            return False
        self._bucket.take(self.ctx.stop)
        outcome = sender.send(claims[0])
        if outcome.result is Result.SENT:
            self.sent_messages += 1
            self._failures.clear()
            if self._smsc_alerted:
                self._smsc_alerted = False
                self._resolve("smsc_unknown")
        elif isinstance(outcome.error, CmsError) and outcome.error.code == 330:
            self._smsc_alerted = True
            self._alert("smsc_unknown", f"modem {self.name} does not know its SMS service centre (+CMS ERROR: 330), "
                        "so it cannot send; its messages wait in the queue or go out through another modem. "
                        "Set the SIM's SMSC number with AT+CSCA=\"+<number>\" (the operator "
                        "publishes it), or restore it by putting the SIM in a phone.")
        if outcome.modem_needs_recovery and outcome.error is not None:
            self._modem_failed(outcome.error)
        return True

    def _gate(self, store: Store, msg: Message, now: datetime) -> Defer | None:
        caps = self._caps
        if caps is not None and not caps.recipient_allowed(msg.to_number):
            # Deferred briefly, for all modems: another modem under its cap claims it next.
            return Defer(now + timedelta(seconds=5), f"modem {self.name} reached its monthly cap of "
                         f"{caps.monthly_recipient_cap} recipients")
        if self.ctx.gate is not None:
            verdict = self.ctx.gate(store, msg, now)
            return verdict  # type: ignore[return-value]
        return None

    def _resend_unknown(self, message_id: int) -> bool:
        """`sending.resend_unknown`: put an ambiguous message back, at most max_attempts times in all."""
        assert self._store is not None
        return self._store.outbox.resend_automatically(message_id, f"modemd:{self.name}:resend_unknown",
                                                limit=self.ctx.config.sending.max_attempts)

    # -- bookkeeping ----------------------------------------------------------------------------------

    def _clock(self) -> datetime:
        assert self._store is not None
        return self._store.clock()

    def _set_state(self, state: ModemState, detail: str | None = None) -> None:
        changed = state is not self.state or detail != self.detail
        self.state = state
        self.detail = detail
        if changed and self._store is not None and self.modem_id is not None:
            self._store.modems.update(self.modem_id, state=state.value, state_detail=detail)

    def _alert(self, kind: str, message: str, *, level: str = "error") -> None:
        if self._store is not None:
            self._store.alerts.raise_alert(kind, message, level=level, modem_id=self.modem_id)

    def _fall(self, state: ModemState, detail: str | None, kind: str, message: str, *,
              level: str = "error", resolved: tuple[str, ...] = ()) -> None:
        """Enter a bad state, open its alert and close the ones it replaces, in one commit.

        Pages and tests that see the state must also see why; two commits left a window where a
        modem showed `offline` with no alert saying what to do about it.
        """
        if self._store is None:
            self._set_state(state, detail)
            return
        with self._store.transaction():
            for old in resolved:
                self._resolve(old)
            self._alert(kind, message, level=level)
            self._set_state(state, detail)

    def _rise(self, *resolved: str) -> None:
        """Become ready and close the alerts that no longer hold, in one commit (the mirror of `_fall`)."""
        if self._store is None:
            self._set_state(ModemState.READY)
            return
        with self._store.transaction():
            for kind in resolved:
                self._resolve(kind)
            self._set_state(ModemState.READY)

    def _safe_alert(self, kind: str, message: str) -> None:
        try:
            self._fall(ModemState.OFFLINE, message, kind, message)
        except (sqlite3.Error, StoreError):
            log.exception("modem %s: could not record the alert", self.name)

    def _resolve(self, kind: str) -> None:
        if self._store is not None:
            self._store.alerts.resolve(kind, modem_id=self.modem_id)

    def _shutdown(self) -> None:
        self._close_channel()
        store = self._store
        if store is None:
            return
        try:
            if self.modem_id is not None and self.state is not ModemState.LOCKED:
                self._set_state(ModemState.STOPPED, None)
        except (sqlite3.Error, StoreError):
            log.exception("modem %s: could not record the stop", self.name)
        finally:
            store.close()
            self._store = None


def _zone(config: Config) -> ZoneInfo:
    try:
        return ZoneInfo(config.clinic.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown clinic.timezone %r; counting daily caps in UTC", config.clinic.timezone)
        return ZoneInfo("UTC")

