"""`Daemon`: the modem workers, the queue watcher and the scheduled jobs of one `smsgate serve` process.

SQLite is the only truth: the scheduler's jobs live in memory (APScheduler's FAQ: never share a
persistent job store between processes) and only decide *when* to look; what to do is always read from
the database. Leases are owned by `host:pid:modem`, so a restart can tell its dead predecessor's leases
from those of a daemon still running elsewhere.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from smsgate.appointments.waitlist import waitlist_round
from smsgate.config import Config
from smsgate.queue import Gate, Store
from smsgate.queue.clock import ts

from . import sdnotify
from .discovery import PortRegistry
from .hooks import InboundHook, default_gate, default_on_inbound
from .inbound import flush_stale_fragments
from .tunables import Tunables
from .unknown import unknown_round
from .worker import ModemState, ModemWorker, WorkerContext

log = logging.getLogger(__name__)


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()


def process_is_gone(pid: int) -> bool:
    """True when no live smsgate process has `pid` (gone, a zombie, or the number reused by another program)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    if not cmdline:  # zombie: killed, not yet reaped
        return True
    text = cmdline.replace(b"\0", b" ").decode("utf-8", "replace")
    return "smsgate" not in text and "modemd" not in text


def owner_checker(hostname: str, own_pid: int, *, at_start: bool) -> Callable[[str], bool]:
    """`owner_is_dead` for `Store.expire_leases`: leases of a dead daemon on this host go back at once.

    At start-up a lease carrying our own pid can only be a dead predecessor's (pid reuse); later it is ours.
    Owners on other hosts are left to their lease expiry.
    """

    def dead(owner: str) -> bool:
        host, _, rest = owner.partition(":")
        pid_text = rest.partition(":")[0]
        if host != hostname or not pid_text.isdigit():
            return False
        pid = int(pid_text)
        if pid == own_pid:
            return at_start
        return process_is_gone(pid)

    return dead


def modemmanager_running() -> bool:
    """ModemManager probes and grabs serial modems (gammu/wammu#45); worth a warning at start."""
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == "ModemManager":
                return True
        except OSError:
            continue
    return False


class QueueWatcher:
    """Notices messages queued by other processes (CLI, web) and messages coming due, and wakes the workers.

    `PRAGMA data_version` changes when another connection commits and costs next to nothing, so polling it
    every ~150 ms is cheaper than any IPC; `next_due()` is only read after a change.
    """

    def __init__(self, db_path: Path, poke: Callable[[], None], stop: threading.Event, interval: float) -> None:
        self.db_path = db_path
        self.poke = poke
        self.stop = stop
        self.interval = interval
        self._thread = threading.Thread(target=self._run, name="queue-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            with Store.open(self.db_path, migrate=False) as store:
                self._watch(store)
        except Exception:
            log.exception("the queue watcher stopped; new messages are picked up only every few seconds")

    def _watch(self, store: Store) -> None:
        version = None
        due = None
        poked = False
        while not self.stop.wait(self.interval):
            current = store.data_version()
            if current != version:
                version = current
                due = store.outbox.next_due()
                poked = False
            if due is not None and not poked and due <= store.clock():
                poked = True
                self.poke()


class Daemon:
    """Start with `start()`, stop with `stop()`; `smsgate.gateway.Gateway` does both around SIGTERM/SIGINT."""

    def __init__(self, config: Config, *, on_inbound: InboundHook | None = DEFAULT, gate: Gate | None = DEFAULT,
                 tunables: Tunables | None = None, status_extra: dict[str, Any] | None = None) -> None:
        if not config.modems:
            raise ValueError("Daemon needs at least one [[modems]] entry; `smsgate serve` starts simulated "
                             "modems when none is configured")
        self.config = config
        self.tunables = tunables or Tunables()
        self.hostname = socket.gethostname()
        self.pid = os.getpid()
        self.stopping = threading.Event()
        self.status_extra = dict(status_extra or {})
        self.started_at: str | None = None
        self._local = threading.local()
        self._stores: list[Store] = []
        self._stores_lock = threading.Lock()
        self._scheduler: BackgroundScheduler | None = None
        self._watcher: QueueWatcher | None = None
        self._stopped = threading.Event()
        self.ctx = WorkerContext(
            config=config, tunables=self.tunables, registry=PortRegistry(), stop=self.stopping,
            hostname=self.hostname,
            on_inbound=default_on_inbound(config) if on_inbound is DEFAULT else on_inbound,
            gate=default_gate(config) if gate is DEFAULT else gate,
        )
        self.workers: dict[str, ModemWorker] = {m.name: ModemWorker(self.ctx, m) for m in config.modems}

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        store = self._store()
        store.integrity_check()
        if modemmanager_running():
            msg = ("ModemManager is running and may grab the modems' serial ports; install udev/ from smsgate "
                   "(ENV{ID_MM_DEVICE_IGNORE}=\"1\") or stop ModemManager")
            log.warning("%s", msg)
            store.alerts.raise_alert("modemmanager", msg, level="warning")
        else:
            store.alerts.resolve("modemmanager")  # raised by an earlier start, no longer true
        self._retire_absent_modems(store)
        counts = store.outbox.expire_leases(owner_is_dead=owner_checker(self.hostname, self.pid, at_start=True),
                                            resend_limit=self._resend_limit)
        if counts["requeued"] or counts["unknown"]:
            log.warning("start-up: %s messages back in the queue, %s in flight at the last stop marked unknown "
                        "(%s of them re-sent: sending.resend_unknown)", counts["requeued"], counts["unknown"],
                        counts["resent"])
        self.started_at = ts(store.clock())
        for w in self.workers.values():
            w.start()
        self._watcher = QueueWatcher(self.config.database_path, self.poke_all, self.stopping,
                                     self.tunables.queue_poll_s)
        self._watcher.start()
        self._scheduler = self._make_scheduler()
        self._scheduler.start()
        self._heartbeat()
        sdnotify.notify("READY=1", f"STATUS=started {len(self.workers)} modem worker(s)")
        log.info("smsgate daemon started: %s modem(s), database %s", len(self.workers), self.config.database_path)

    def stop(self, timeout: float | None = None) -> bool:
        """Stop claiming, let each worker finish its send in flight, release leases. True when all stopped."""
        if self._stopped.is_set():
            return True
        timeout = self.tunables.stop_timeout_s if timeout is None else timeout
        sdnotify.notify("STOPPING=1", "STATUS=finishing the sends in flight")
        self.stopping.set()
        for w in self.workers.values():
            w.poke()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
        deadline = time.monotonic() + timeout
        clean = True
        for w in self.workers.values():
            if not w.join(max(deadline - time.monotonic(), 0.1)):
                log.error("modem %s did not stop within %.0f s", w.name, timeout)
                clean = False
        if self._watcher is not None:
            self._watcher.join(2.0)
        store = self._store()
        if clean:
            mine = f"{self.hostname}:{self.pid}:"
            counts = store.outbox.expire_leases(owner_is_dead=lambda owner: owner.startswith(mine),
                                                resend_limit=self._resend_limit)
            if counts["requeued"] or counts["unknown"]:
                log.info("released %s leases (%s unknown)", counts["requeued"], counts["unknown"])
        store.set_status("daemon", {**self._status_value(), "running": False, "stopped_at": ts(store.clock())})
        self._close_stores()
        self._stopped.set()
        log.info("smsgate daemon stopped")
        return clean

    def __enter__(self) -> Daemon:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- wake-ups -------------------------------------------------------------------------------------

    def poke_all(self) -> None:
        for w in self.workers.values():
            w.poke(work=True)

    def _for_workers(self, flag: str) -> None:
        for w in self.workers.values():
            if w.state not in (ModemState.LOCKED, ModemState.STOPPED):
                w.request(flag)

    # -- scheduled jobs -------------------------------------------------------------------------------

    def _make_scheduler(self) -> BackgroundScheduler:
        t = self.tunables
        sched = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(2)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
            timezone="UTC",
        )
        jobs: list[tuple[Callable[[], None], float, str]] = [
            (self._heartbeat, t.heartbeat_s, "heartbeat"),
            (lambda: self._for_workers("health"), t.health_s, "health polls"),
            (lambda: self._for_workers("sweep"), t.sweep_s, "storage sweeps"),
            (self._expire_leases, t.lease_check_s, "lease expiry"),
            (self._rematch, t.rematch_s, "report re-match and unknown messages"),
            (self._reassembly, t.reassembly_check_s, "reassembly timeouts"),
            (lambda: waitlist_round(self._store(), self.config), t.rematch_s, "waitlist offers"),
        ]
        for fn, every, name in jobs:
            sched.add_job(self._guarded(fn, name), "interval", seconds=every, name=name, id=name)
        return sched

    def _guarded(self, fn: Callable[[], None], name: str) -> Callable[[], None]:
        def job() -> None:
            if self.stopping.is_set():
                return
            try:
                fn()
            except Exception:  # top of a scheduler job: log and let the next run try again
                log.exception("scheduled job %r failed", name)

        return job

    def _status_value(self) -> dict[str, Any]:
        return {"running": True, "pid": self.pid, "host": self.hostname, "started_at": self.started_at,
                "modems": {n: w.state.value for n, w in self.workers.items()}, **self.status_extra}

    def _heartbeat(self) -> None:
        store = self._store()
        store.set_status("daemon", self._status_value())
        alive = all(w.alive for w in self.workers.values())
        ready = sum(1 for w in self.workers.values() if w.state is ModemState.READY)
        fields = [f"STATUS={ready}/{len(self.workers)} modems ready"]
        if alive:
            fields.append("WATCHDOG=1")
        else:
            log.error("a modem worker thread died; withholding the systemd watchdog ping")
        sdnotify.notify(*fields)

    def _expire_leases(self) -> None:
        dead = owner_checker(self.hostname, self.pid, at_start=False)
        store = self._store()
        counts = store.outbox.expire_leases(owner_is_dead=dead, resend_limit=self._resend_limit)
        if counts["requeued"] or counts["resent"] or self._retire_absent_modems(store):
            self.poke_all()

    def _retire_absent_modems(self, store: Store) -> list[int]:
        """Modems gone from the configuration stop holding the half-sent messages that wait for them, and
        their alerts close."""
        silent_since = ts(store.clock() - timedelta(seconds=self.tunables.absent_modem_after_s))
        with store.transaction():
            gone = store.modems.retire_absent(list(self.workers), silent_since=silent_since)
            for modem_id in gone:
                store.alerts.resolve_all(modem_id)
        if gone:
            log.warning("%s modem(s) not in the configuration marked stopped", len(gone))
        return gone

    def _rematch(self) -> None:
        if unknown_round(self._store(), self.config).requeued:
            self.poke_all()

    @property
    def _resend_limit(self) -> int | None:
        """`sending.resend_unknown` covers a message a stop or a crash left `unknown` as well."""
        sending = self.config.sending
        return sending.max_attempts if sending.resend_unknown else None

    def _reassembly(self) -> None:
        gaps = flush_stale_fragments(
            self._store(), self.ctx.on_inbound, older_than=timedelta(seconds=self.tunables.reassembly_timeout_s)
        )
        if gaps:
            log.warning("stored %s multipart messages with missing parts after the reassembly timeout", gaps)

    # -- stores ---------------------------------------------------------------------------------------

    def _store(self) -> Store:
        """One Store per thread (sqlite connections are not shared across threads)."""
        store: Store | None = getattr(self._local, "store", None)
        if store is None:
            store = Store.for_config(self.config)
            self._local.store = store
            with self._stores_lock:
                self._stores.append(store)
        return store

    def _close_stores(self) -> None:
        with self._stores_lock:
            for s in self._stores:
                with contextlib.suppress(sqlite3.Error):
                    s.close()
            self._stores.clear()
        self._local = threading.local()


@contextlib.contextmanager
def running(config: Config, **kwargs: Any) -> Iterator[Daemon]:
    """A started daemon for tests and embedding; stopped on exit."""
    daemon = Daemon(config, **kwargs)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


__all__ = ["DEFAULT", "Daemon", "QueueWatcher", "owner_checker", "running"]
