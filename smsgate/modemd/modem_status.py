"""What one modem is doing, as pages, the API and the CLI read it: its state row and the alerts that explain it.

A state that needs an admin (offline, locked, no network) and the alert saying what to do are written in
one transaction, and so are a recovery and the alerts it closes: a reader never sees a modem `offline`
with no alert, or `ready` with its `modem_offline` alert still open.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager

from smsgate.queue import Store
from smsgate.queue.clock import ts


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


# Alerts that stop being true once the modem answers again with its SIM unlocked, whatever state it then
# reaches. They are closed from that fact, read in the database, so an alert a killed or restarted daemon
# left open closes too (a worker's memory of what it raised dies with its process).
REACHED = ("modem_offline", "modem_paused", "sim_locked", "worker_crashed")


class ModemStatus:
    """The state this worker believes its modem is in, and the one writer of that state and its alerts.

    The state lives here even before the worker thread has opened its store (and after it closed it), so
    the daemon can always read it; writes reach the store only while one is attached.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.state = ModemState.STARTING
        self.detail: str | None = None
        self.store: Store | None = None
        self.modem_id: int | None = None

    def attach(self, store: Store, modem_id: int | None = None) -> None:
        self.store = store
        self.modem_id = modem_id

    def detach(self) -> None:
        self.store = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One commit for several writes (nested inside an open one); nothing to commit without a store."""
        if self.store is None:
            yield
            return
        with self.store.transaction():
            yield

    def set(self, state: ModemState, detail: str | None = None) -> None:
        changed = state is not self.state or detail != self.detail
        self.state = state
        self.detail = detail
        if changed and self.store is not None and self.modem_id is not None:
            self.store.modems.update(self.modem_id, state=state.value, state_detail=detail)

    def note(self, detail: str | None) -> None:
        """Say what the modem is doing now without changing its state ("entering SIM PIN")."""
        self.set(self.state, detail)

    def alert(self, kind: str, message: str, *, level: str = "error") -> None:
        if self.store is not None:
            self.store.alerts.raise_alert(kind, message, level=level, modem_id=self.modem_id)

    def resolve(self, kind: str) -> None:
        if self.store is not None:
            self.store.alerts.resolve(kind, modem_id=self.modem_id)

    def fall(self, state: ModemState, detail: str | None, kind: str, message: str, *,
             level: str = "error", resolved: tuple[str, ...] = ()) -> None:
        """Enter a bad state, open its alert and close the ones it replaces, in one commit.

        Pages and tests that see the state must also see why; two commits left a window where a
        modem showed `offline` with no alert saying what to do about it.
        """
        with self.transaction():
            for old in resolved:
                if old != kind:
                    self.resolve(old)
            self.alert(kind, message, level=level)
            self.set(state, detail)

    def rise(self, *resolved: str) -> None:
        """Become ready and close the alerts that no longer hold, in one commit (the mirror of `fall`)."""
        with self.transaction():
            for kind in resolved:
                self.resolve(kind)
            self.set(ModemState.READY)

    def record_error(self, exc: BaseException) -> None:
        """Keep the last modem error on its row, where the status page shows it."""
        self.detail = str(exc)
        if self.store is not None and self.modem_id is not None:
            self.store.modems.update(self.modem_id, last_error=str(exc)[:500],
                                     last_error_at=ts(self.store.clock()))
