"""One thread per modem: it owns the modem's AT channel and does everything that touches it.

Inbound notices, storage sweeps, health polls and sends all go through this one thread, so there is never
a second command in flight and never a lock to order. The thread sleeps on an Event that the channel's
URC callback, the queue watcher, the scheduler and `stop()` set, so it reacts at once and costs nothing idle.
A modem-level failure walks the escalation ladder (re-initialise -> `AT+CFUN=1,1` -> close and rediscover
-> offline with an alert, retried slowly) without touching the other modems' threads.

Bring-up steps live in `bringup`, what a brought-up modem holds in `session`, and the state and alert
writes in `modem_status`; this module is the thread, its wake-ups, the ladder, the breaker and the rounds.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import queue
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import serial

from smsgate.at_commands.channel import AtChannel
from smsgate.at_commands.classify import Urc
from smsgate.at_commands.errors import CmsError, CommandFailed, ModemError, SimLocked
from smsgate.config import Config, ModemConfig
from smsgate.queue import Defer, Gate, Message, Refuse, Store, StoreError
from smsgate.queue.clock import ts

from . import bringup, discovery
from .hooks import InboundHook
from .inbound import InboundProcessor, Outcome, modem_identity
from .limits import Caps, TokenBucket
from .modem_status import REACHED, ModemState, ModemStatus
from .outbound import Result, Sender
from .session import ModemSession, modem_over
from .tunables import Tunables

__all__ = ["ModemState", "ModemWorker", "WorkerContext"]

log = logging.getLogger(__name__)


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


class ModemWorker:
    """Drives one configured modem for the life of the daemon."""

    def __init__(self, ctx: WorkerContext, cfg: ModemConfig) -> None:
        self.ctx = ctx
        self.cfg = cfg
        self.name = cfg.name
        self.t = ctx.tunables
        self.owner = f"{ctx.hostname}:{os.getpid()}:{cfg.name}"
        self.wake = threading.Event()
        self.status = ModemStatus(cfg.name)
        self.session: ModemSession | None = None  # None: bring the modem up before anything else
        self.path: str | None = None
        self.sent_messages = 0
        self.last_tick = time.monotonic()
        self._flags: set[str] = set()
        self._flags_lock = threading.Lock()
        self._maybe_work = True
        self._ladder = 0
        self._failures: collections.deque[float] = collections.deque()
        self._pin = bringup.PinMemory()
        self._smsc_alerted = False
        self._next_sweep = 0.0
        self._next_registration = 0.0
        self._capped_until: datetime | None = None
        self._channel: AtChannel | None = None  # outlives a failed bring-up: the ladder's next step resets it
        self._caps = Caps(cfg.daily_cap, cfg.monthly_recipient_cap, _zone(ctx.config))
        self._bucket = TokenBucket(cfg.parts_per_minute)
        self._thread = threading.Thread(target=self._run, name=f"modem:{cfg.name}", daemon=True)

    @property
    def state(self) -> ModemState:
        return self.status.state

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
            store = Store.for_config(self.ctx.config)
            self.status.attach(store)
            last = store.modems.by_name(self.name)
            self.path = last["device"] if last else None
            modem_id = self.status.modem_id = store.modems.upsert(self.name, state=ModemState.STARTING.value,
                                                                  state_detail=None)
            self._loop(store, modem_id)
        except Exception as exc:
            log.exception("modem %s: worker thread crashed", self.name)
            self._safe_alert("worker_crashed", f"the worker of modem {self.name} stopped on an internal error "
                             f"({exc!r}); restart smsgate and report the log")
        finally:
            self._shutdown()

    def _loop(self, store: Store, modem_id: int) -> None:
        stop = self.ctx.stop
        while not stop.is_set():
            self.last_tick = time.monotonic()
            if self.state is ModemState.LOCKED:
                stop.wait(1.0)
                continue
            session = self.session
            if session is None:
                self._bring_up(store, modem_id)
                continue
            self.wake.clear()
            try:
                busy = self._service(session)
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

    def _service(self, session: ModemSession) -> bool:
        """One round of work; True when something was done (so look again before sleeping)."""
        self._drain_urcs(session)
        with self._flags_lock:
            flags, self._flags = self._flags, set()
        now = time.monotonic()
        if not session.notices and now >= self._next_sweep:
            flags.add("sweep")
        if self.state is ModemState.NO_NETWORK and now >= self._next_registration:
            flags.add("health")
        if "sweep" in flags:
            self._sweep(session)
        if "health" in flags:
            self._health(session)
        if (self.state is ModemState.CAPPED and self._capped_until
                and session.store.clock() >= self._capped_until):
            self.status.set(ModemState.READY)
        if self.ctx.stop.is_set():
            return False
        return self._send_next(session)

    # -- bringing the modem up ------------------------------------------------------------------------

    def _bring_up(self, store: Store, modem_id: int) -> None:
        step = self._ladder
        stop = self.ctx.stop
        status = self.status
        if step >= self.t.offline_after:
            if self.state is not ModemState.OFFLINE:
                status.fall(ModemState.OFFLINE, status.detail, "modem_offline",
                            f"modem {self.name} is offline: {status.detail}. Check its USB cable and power, and "
                            "`ls -l /dev/serial/by-id/`; smsgate keeps trying and other modems carry its messages.")
            delay = self.t.offline_retry_s
        else:
            delays = self.t.recover_delays_s
            delay = delays[min(step, len(delays) - 1)] if step else 0.0
        if delay and stop.wait(delay):
            return
        if self.state not in (ModemState.OFFLINE, ModemState.PAUSED):
            status.set(ModemState.INITIALISING if self.state is ModemState.STARTING else ModemState.RECOVERING,
                       status.detail)
        try:
            channel = self._channel
            if step == 1 and channel is not None and channel.alive:
                self._cfun_reset(channel)
            channel = self._channel
            if step >= 2 or channel is None or not channel.alive:
                self._close_channel()
                channel = self._open()
            self.session = self._initialise(channel, store, modem_id)
            self._first_rounds(self.session)
        except SimLocked as exc:
            self._lock(str(exc))
            return
        except (ModemError, discovery.DiscoveryError, serial.SerialException, OSError) as exc:
            self.session = None
            self._ladder += 1
            status.record_error(exc)
            log.warning("modem %s: recovery step %s failed: %s", self.name, step, exc)
            return
        self._ladder = 0
        self._maybe_work = True

    def _cfun_reset(self, channel: AtChannel) -> None:
        log.warning("modem %s: resetting it with AT+CFUN=1,1", self.name)
        try:
            modem_over(channel, self.t.command_timeout_cap_s).reset(1, rst=True, timeout=15.0)
        except ModemError as exc:
            log.info("modem %s: AT+CFUN=1,1 answered %s (expected when the port drops)", self.name, exc)
        self._close_channel()
        self.ctx.stop.wait(self.t.cfun_settle_s)

    def _open(self) -> AtChannel:
        found = discovery.find(self.cfg, self.ctx.registry, self.owner, last_device=self.path, on_urc=self._on_urc,
                               probe_timeout=self.t.probe_timeout_s)
        found.channel.resync_timeout = self.t.resync_timeout_s
        self._channel = found.channel
        self.path = found.path
        return found.channel

    def _close_channel(self) -> None:
        if self._channel is not None:
            self._channel.close()
        self._channel = None
        self.session = None
        self.ctx.registry.release_all(self.owner)

    def _initialise(self, channel: AtChannel, store: Store, modem_id: int) -> ModemSession:
        """Configure the modem on `channel` and build what the rounds need to use it."""
        m = modem_over(channel, self.t.command_timeout_cap_s)
        stop, sending = self.ctx.stop, self.ctx.config.sending
        self.status.note("initialising")
        channel.resync()
        ident, number = bringup.identify(m, cfg=self.cfg, path=self.path, memory=self._pin, stop=stop,
                                         note=self.status.note)
        store.modems.update(modem_id, device=self.path, imei=ident.imei, imsi=ident.imsi, iccid=ident.iccid,
                            manufacturer=ident.manufacturer, model=ident.model, revision=ident.revision,
                            msisdn=number, last_seen_at=ts(store.clock()))
        # An smsc_unknown alert raised before a restart closes with this session's first successful send.
        self._smsc_alerted = store.alerts.is_open("smsc_unknown", modem_id=modem_id)
        inbound = InboundProcessor(store, modem_id, modem_identity(store, modem_id), self.ctx.on_inbound)
        setup = bringup.set_up_messages(m, name=self.name, status_reports=sending.status_reports)
        if not setup.notices.enabled:
            log.warning("modem %s: no new-message notices; polling its storage every %.0f s", self.name,
                        self.t.sweep_without_notices_s)
        sender = Sender(store, m, modem_name=self.name, sending=sending, bucket=self._bucket, caps=self._caps,
                        stop=stop, send_timeout=self.t.send_timeout_s,
                        on_unknown_resend=functools.partial(self._resend_unknown, store))
        return ModemSession(name=self.name, channel=channel, modem=m, store=store, modem_id=modem_id,
                            inbound=inbound, sender=sender, memories=setup.memories, sweep_memories=setup.sweep,
                            notices=setup.notices.enabled, cnma=setup.notices.cnma)

    def _first_rounds(self, session: ModemSession) -> None:
        """Wait for the network, empty the storage and poll health once, then announce the modem ready."""
        reg = bringup.wait_registration(session.modem, wait_s=self.t.registration_wait_s,
                                        poll_s=self.t.registration_poll_s, stop=self.ctx.stop, note=self.status.note)
        registered = reg is not None and reg.registered
        if registered:
            self.status.resolve("no_network")
        elif reg is not None:
            self._no_network(reg.meaning)
        self._sweep(session)
        self._health(session, initial=True)
        if registered:
            self.status.rise(*REACHED)
        log.info("modem %s ready on %s (%s)", self.name, self.path, self.state)

    def _no_network(self, meaning: str) -> None:
        self._next_registration = time.monotonic() + self.t.no_network_poll_s
        self.status.fall(ModemState.NO_NETWORK, meaning, "no_network",
                         f"modem {self.name} is not registered on the network ({meaning}); messages go out through "
                         "other modems. Check the antenna, signal and that the SIM is active.", level="warning",
                         resolved=REACHED)

    def _lock(self, why: str) -> None:
        log.error("modem %s stopped: %s", self.name, why)
        self._close_channel()
        self.status.fall(ModemState.LOCKED, why, "sim_locked", why, resolved=REACHED)

    # -- failures -------------------------------------------------------------------------------------

    def _modem_failed(self, exc: BaseException) -> None:
        log.warning("modem %s: %s", self.name, exc)
        now = time.monotonic()
        self._failures.append(now)
        while self._failures and self._failures[0] < now - self.t.breaker_window_s:
            self._failures.popleft()
        self.session = None
        tripped = len(self._failures) >= self.t.breaker_errors
        with self.status.transaction():
            self.status.record_error(exc)
            if tripped:
                self.status.fall(ModemState.PAUSED, f"{self.t.breaker_errors} modem errors in a row: {exc}",
                                 "modem_paused", f"modem {self.name} paused for {self.t.breaker_cooldown_s:.0f} s "
                                 f"after repeated modem errors (last: {exc}); it will be reset and retried.",
                                 level="warning")
            else:
                self.status.set(ModemState.RECOVERING, str(exc))
        if tripped:
            self._failures.clear()
            self._ladder = max(self._ladder, 1)
            self.ctx.stop.wait(self.t.breaker_cooldown_s)

    # -- inbound --------------------------------------------------------------------------------------

    def _drain_urcs(self, session: ModemSession) -> None:
        while True:
            try:
                urc = session.channel.urcs.get_nowait()
            except queue.Empty:
                return
            self._handle_urc(session, urc)

    def _handle_urc(self, session: ModemSession, urc: Urc) -> None:
        name, args = urc.name, urc.args
        if name in ("+CMTI", "+CDSI") and len(args) >= 2 and args[1].strip().isdigit():
            outcome = self._read_index(session, args[0], int(args[1]))
            if name == "+CDSI" and (outcome is None or outcome.kind != "report"):
                # The announced slot held something else (or nothing): the report is in another memory.
                self.request("sweep")
        elif name in ("+CMT", "+CDS") and urc.pdu:
            session.take(None, urc.pdu)
            if session.cnma:
                try:
                    session.modem.cnma()
                except CommandFailed as exc:
                    log.warning("modem %s: AT+CNMA refused (%s)", self.name, exc.final_line)
        elif name in ("+CMTI", "+CDSI", "+CMT", "+CDS", "^SMMEMFULL"):
            self.request("sweep")
        elif name in ("+CREG", "+CGREG", "+CEREG"):
            self.request("health")
        elif name == "+CPIN" and args and args[0].strip().upper() != "READY":
            log.warning("modem %s: SIM state changed to %s", self.name, args[0])
            self.session = None
        else:
            log.debug("modem %s: ignoring URC %r", self.name, urc.line)

    def _read_index(self, session: ModemSession, mem: str, index: int) -> Outcome | None:
        m = session.modem
        mem = mem.strip().upper()
        switched = bool(mem) and bool(session.memories) and mem != session.memories[0]
        try:
            if switched:
                m.select_storage(mem)
            stored = m.read_message(index)
            if stored is None:
                self.request("sweep")
                return None
            return session.take(index, stored.pdu_hex)
        except CmsError as exc:
            # +CDSI indexes are only hints (chan-quectel#75); a sweep finds the message wherever it is.
            log.info("modem %s: reading %s index %s failed (%s); sweeping storage", self.name, mem, index, exc)
            self.request("sweep")
            return None
        finally:
            if switched:
                session.select_home()

    def _sweep(self, session: ModemSession) -> None:
        self._next_sweep = time.monotonic() + (self.t.sweep_s if session.notices else self.t.sweep_without_notices_s)
        session.sweep()

    # -- health ---------------------------------------------------------------------------------------

    def _health(self, session: ModemSession, *, initial: bool = False) -> None:
        store = session.store
        self._next_registration = time.monotonic() + self.t.no_network_poll_s
        health = session.read_health()
        sig, reg, used, total = health.signal, health.registration, health.used, health.total
        now = ts(store.clock())
        full = bool(total and used is not None and used >= total * self.t.storage_alert_ratio)
        with store.transaction():  # the facts, the state and the alerts they imply are read together
            store.modems.update(session.modem_id, signal_dbm=sig.dbm, signal_bars=sig.bars,
                                registration=reg.meaning, operator=health.operator, storage_used=used,
                                storage_total=total, last_seen_at=now, heartbeat_at=now)
            if not initial:
                if reg.registered and self.state is ModemState.NO_NETWORK:
                    self.status.rise("no_network")
                    self._maybe_work = True
                elif not reg.registered and self.state is ModemState.READY:
                    self._no_network(reg.meaning)
            if full:
                self.status.alert("storage_full", f"modem {self.name} storage is {used}/{total} full; smsgate is "
                                  "emptying it. If this stays, check the log for messages it cannot store.",
                                  level="warning")
            elif total:
                self.status.resolve("storage_full")
        if full and not initial:
            self.request("sweep")

    # -- outbound -------------------------------------------------------------------------------------

    def _send_next(self, session: ModemSession) -> bool:
        if self.state is not ModemState.READY or not self._maybe_work:
            return False
        if self._bucket.wait_time() > 0:
            return False
        store, caps = session.store, self._caps
        now = store.clock()
        caps.refresh(store, session.modem_id, now)
        if caps.daily_left() == 0:
            self._capped_until = caps.next_day(now)
            self.status.set(ModemState.CAPPED, f"daily cap of {caps.daily_cap} parts reached; "
                            f"sending again after {self._capped_until:%Y-%m-%d %H:%M} UTC")
            return False
        claims = store.outbox.claim(self.owner, session.modem_id, limit=1,
                                    lease_seconds=self.ctx.config.sending.lease_seconds,
                                    gate=functools.partial(self._gate, store))
        if not claims:
            self._maybe_work = False
            return False
        self._bucket.take(self.ctx.stop)
        outcome = session.sender.send(claims[0])
        if outcome.result is Result.SENT:
            self.sent_messages += 1
            self._failures.clear()
            if self._smsc_alerted:
                self._smsc_alerted = False
                self.status.resolve("smsc_unknown")
        elif isinstance(outcome.error, CmsError) and outcome.error.code == 330:
            self._smsc_alerted = True
            self.status.alert("smsc_unknown", f"modem {self.name} does not know its SMS service centre (+CMS ERROR: "
                              "330), so it cannot send; its messages wait in the queue or go out through another "
                              "modem. Set the SIM's SMSC number with AT+CSCA=\"+<number>\" (the operator "
                              "publishes it), or restore it by putting the SIM in a phone.")
        if outcome.modem_needs_recovery and outcome.error is not None:
            self._modem_failed(outcome.error)
        return True

    def _gate(self, store: Store, msg: Message, now: datetime) -> Defer | Refuse | None:
        caps = self._caps
        if not caps.recipient_allowed(msg.to_number):
            # Deferred briefly, for all modems: another modem under its cap claims it next.
            return Defer(now + timedelta(seconds=5), f"modem {self.name} reached its monthly cap of "
                         f"{caps.monthly_recipient_cap} recipients")
        if self.ctx.gate is not None:
            return self.ctx.gate(store, msg, now)
        return None

    def _resend_unknown(self, store: Store, message_id: int) -> bool:
        """`sending.resend_unknown`: put an ambiguous message back, at most max_attempts times in all."""
        return store.outbox.resend_automatically(message_id, f"modemd:{self.name}:resend_unknown",
                                                 limit=self.ctx.config.sending.max_attempts)

    # -- bookkeeping ----------------------------------------------------------------------------------

    def _safe_alert(self, kind: str, message: str) -> None:
        try:
            self.status.fall(ModemState.OFFLINE, message, kind, message)
        except (sqlite3.Error, StoreError):
            log.exception("modem %s: could not record the alert", self.name)

    def _shutdown(self) -> None:
        self._close_channel()
        store = self.status.store
        if store is None:
            return
        try:
            if self.status.modem_id is not None and self.state is not ModemState.LOCKED:
                self.status.set(ModemState.STOPPED, None)
        except (sqlite3.Error, StoreError):
            log.exception("modem %s: could not record the stop", self.name)
        finally:
            store.close()
            self.status.detach()


def _zone(config: Config) -> ZoneInfo:
    try:
        return ZoneInfo(config.clinic.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown clinic.timezone %r; counting daily caps in UTC", config.clinic.timezone)
        return ZoneInfo("UTC")
