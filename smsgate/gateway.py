"""`Gateway`: everything one `smsgate serve` process runs, assembled in one place.

`start()` brings the parts up in dependency order, each needing only those before it:

1. the database, opened and migrated before any thread exists, so no thread meets a fresh file without
   its tables;
2. the simulated modems, when no `[[modems]]` is configured (they become the daemon's modems);
3. the daemon object, which builds the rules engine (a rules engine that fails to import or a bad
   template stops start-up here, not after the first STOP has gone unrecorded);
4. the web server (staff pages and API), unless `web=False`;
5. the webhook deliverer (the event feed and the signed POSTs, in its own thread);
6. the daemon's threads: modem workers, queue watcher and scheduled jobs. The daemon tells systemd
   READY=1 when it has started, which is therefore when everything else is up too.

`stop()` takes them down in reverse, so the daemon finishes its sends in flight while the web server still
answers and the simulator still holds the ptys. Anything that goes wrong on the way up is one
`StartupError` whose message says what to change; what had started is stopped again.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from smsgate.config import Config, ConfigError
from smsgate.modemd import Daemon, Tunables
from smsgate.queue import Store, StoreError
from smsgate.simulated import control_socket, simulator_dir, start_simulator
from smsgate.simulator import Simulator
from smsgate.web import create_app
from smsgate.web.serve import WebServer
from smsgate.webhooks import WebhookDeliverer

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The gateway could not start; the message is a sentence saying what to change."""


@dataclass
class _Running:
    name: str
    stop: Callable[[float | None], object]  # False means "did not stop cleanly"


class Gateway:
    """The running system for one configuration: `start()`, `stop()`, or `run()` until a signal.

    `announce` receives one line per thing an admin may want to know on the terminal (the simulated
    modems' numbers, the status page's address); it defaults to the log.
    """

    def __init__(self, config: Config, *, web: bool = True, tunables: Tunables | None = None,
                 announce: Callable[[str], object] | None = None) -> None:
        self.config = config
        self.web = web
        self.tunables = tunables
        self.announce: Callable[[str], object] = announce or (lambda line: log.info("%s", line))
        self.simulator: Simulator | None = None
        self.web_server: WebServer | None = None
        self.webhooks: WebhookDeliverer | None = None
        self.daemon: Daemon | None = None
        self._running: list[_Running] = []

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start every part in dependency order; on failure stop what started and raise `StartupError`."""
        if self._running:
            raise RuntimeError("this Gateway is already started")
        try:
            self._migrate()
            config, extra = self._start_simulator() if self.config.uses_simulator else (self.config, {})
            daemon = self._build_daemon(config, extra)
            if self.web:
                self._start_web(config)
            self._start_webhooks(config)
            self._start_daemon(daemon)
        except BaseException:
            self.stop()
            raise

    def stop(self, timeout: float | None = None) -> bool:
        """Stop the parts in reverse order (each within `timeout` s, or its own default); True when clean."""
        clean = True
        while self._running:
            part = self._running.pop()
            try:
                clean = part.stop(timeout) is not False and clean
            except Exception:  # keep stopping the rest: a half-stopped process is worse
                log.exception("stopping the %s failed", part.name)
                clean = False
        return clean

    def run(self) -> int:
        """Start, run until SIGTERM or SIGINT, stop; exit status 0 after a clean stop, 1 otherwise."""
        wake = threading.Event()

        def on_signal(signum: int, _frame: object) -> None:
            log.info("received %s, stopping", signal.Signals(signum).name)
            wake.set()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.start()
            while not wake.wait(1.0):
                pass
        finally:
            clean = self.stop()
            for s, handler in previous.items():
                signal.signal(s, handler)
        return 0 if clean else 1

    @property
    def running_parts(self) -> tuple[str, ...]:
        """The parts started and not yet stopped, in start order."""
        return tuple(part.name for part in self._running)

    def __enter__(self) -> Gateway:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the parts, in start order --------------------------------------------------------------------

    def _migrate(self) -> None:
        try:
            Store.for_config(self.config).close()
        except StoreError as exc:
            raise StartupError(str(exc)) from None

    def _start_simulator(self) -> tuple[Config, dict[str, Any]]:
        try:
            sim, config = start_simulator(self.config)
        except ConfigError as exc:
            raise StartupError(f"cannot start the simulated modems: {exc}") from None
        except OSError as exc:
            raise StartupError(
                f"cannot start the simulated modems in {simulator_dir(self.config)} ({exc.strerror or exc}); "
                "check that the user running smsgate may write there (it is next to the database), "
                "or configure real [[modems]]") from None
        self.simulator = sim
        self._running.append(_Running("simulator", lambda _timeout: sim.close()))
        for m in sim.modems:
            self.announce(f"simulated modem {m.name}: {m.msisdn} on {m.path}")
        return config, {"simulator_socket": str(control_socket(self.config))}

    def _build_daemon(self, config: Config, extra: dict[str, Any]) -> Daemon:
        try:
            return Daemon(config, tunables=self.tunables, status_extra=extra)
        except ConfigError as exc:
            raise StartupError(str(exc)) from None

    def _start_web(self, config: Config) -> None:
        web = config.web
        try:
            server = WebServer(create_app(config), web.bind, web.port)
        except (ConfigError, StoreError) as exc:
            raise StartupError(str(exc)) from None
        except OSError as exc:
            raise StartupError(
                f"cannot serve the status page on {web.bind}:{web.port} ({exc.strerror or exc}); stop whatever "
                "uses that port, or set [web] port in the configuration (or use --no-web)") from None
        server.start_thread()
        self.web_server = server
        self._running.append(_Running("web server", lambda t: server.close(5.0 if t is None else t)))
        self.announce(f"status page on {server.url}/")

    def _start_webhooks(self, config: Config) -> None:
        hooks = WebhookDeliverer(config)
        hooks.start()
        self.webhooks = hooks
        self._running.append(_Running("webhook deliverer", lambda t: hooks.stop(10.0 if t is None else t)))

    def _start_daemon(self, daemon: Daemon) -> None:
        try:
            daemon.start()
        except StoreError as exc:
            raise StartupError(str(exc)) from None
        self.daemon = daemon
        self._running.append(_Running("daemon", daemon.stop))


__all__ = ["Gateway", "StartupError"]
