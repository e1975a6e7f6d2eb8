"""Helpers for tests, demos and benchmarks that run the daemon on simulated modems.

`simulated_config` builds the same `Config` a clinic would write, with one `[[modems]]` entry per simulated
modem pointing at its stable device link, so the daemon takes exactly the code path of real hardware.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from smsgate.config import Config, ModemConfig, SendingConfig
from smsgate.queue import Message, Store
from smsgate.simulator import SimModemSpec, Simulator

from .daemon import Daemon
from .tunables import FAST


def simulated_config(database: Path, devices: Iterable[tuple[str, str]], *, by: str = "device",
                     identities: dict[str, dict[str, str]] | None = None, probe: list[str] | None = None,
                     sending: SendingConfig | None = None, **modem_fields: Any) -> Config:
    """A Config for modems `(name, device_path)`; `by="imei"` configures them by IMEI with `probe` globs."""
    modems = []
    for name, device in devices:
        fields = dict(modem_fields)
        ids = (identities or {}).get(name, {})
        if by == "device":
            fields["device"] = device
        else:
            fields[by] = ids[by]
            fields["probe"] = probe or [str(Path(device).parent / "*")]
        modems.append(ModemConfig(name=name, parts_per_minute=fields.pop("parts_per_minute", 0), **fields))
    return Config(database=str(database), modems=modems,
                  sending=sending or SendingConfig(retry_base_seconds=0.2, retry_max_seconds=1.0))


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02,
               what: str = "condition") -> Any:
    """Poll `predicate` until it returns something truthy; raise AssertionError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} not reached within {timeout} s (last value {value!r})")
        time.sleep(interval)


@dataclass
class Harness:
    """A simulator, a daemon on its modems and a Store for the test's own reads and writes."""

    sim: Simulator
    config: Config
    store: Store
    daemon: Daemon | None = None
    daemon_kwargs: dict[str, Any] = field(default_factory=dict)

    def start_daemon(self, **kwargs: Any) -> Daemon:
        kw = {"tunables": FAST, "on_inbound": None, "gate": None, **self.daemon_kwargs, **kwargs}
        self.daemon = Daemon(self.config, **kw)
        self.daemon.start()
        return self.daemon

    def stop_daemon(self) -> bool:
        if self.daemon is None:
            return True
        clean = self.daemon.stop()
        self.daemon = None
        return clean

    def modem_row(self, name: str) -> dict[str, Any]:
        row = self.store.modems.by_name(name)
        assert row is not None, f"no modem row {name}"
        return row

    def wait_state(self, name: str, *states: str, timeout: float = 10.0) -> dict[str, Any]:
        row: dict[str, Any] = wait_until(
            lambda: (r := self.store.modems.by_name(name)) is not None and r["state"] in states and r,
            timeout, what=f"modem {name} in state {states}")
        return row

    def wait_ready(self, *names: str, timeout: float = 10.0) -> None:
        for n in names or tuple(m.name for m in self.sim.modems):
            self.wait_state(n, "ready", timeout=timeout)

    def message_state(self, message_id: int) -> str:
        return self.store.outbox.get(message_id).state.value

    def wait_message(self, message_id: int, *states: str, timeout: float = 10.0) -> Message:
        msg: Message = wait_until(
            lambda: (m := self.store.outbox.get(message_id)).state.value in states and m,
            timeout, what=f"message #{message_id} in {states}")
        return msg


@contextlib.contextmanager
def harness(base: Path, specs: Iterable[SimModemSpec], *, start: bool = True, sim_kwargs: dict[str, Any] | None = None,
            config_kwargs: dict[str, Any] | None = None, **daemon_kwargs: Any) -> Iterator[Harness]:
    """Simulated modems (latency 0) with a daemon configured by their device links."""
    sim = Simulator(base / "sim", list(specs), latency=0, **(sim_kwargs or {}))
    sim.start()
    try:
        ids = {m.name: {"imei": m.imei, "imsi": m.imsi} for m in sim.modems}
        config = simulated_config(base / "smsgate.db", [(m.name, str(m.path)) for m in sim.modems],
                                  identities=ids, **(config_kwargs or {}))
        store = Store.open(config.database_path)
        h = Harness(sim, config, store, daemon_kwargs=daemon_kwargs)
        try:
            if start:
                h.start_daemon()
            yield h
        finally:
            h.stop_daemon()
            store.close()
    finally:
        sim.close()
