"""Running the app under waitress (a production WSGI server with no C dependencies).

`serve()` blocks, for `smsgate web`; `WebServer` is the same server as an object that another thread
can stop, for `smsgate serve` (which runs the web app next to the daemon) and for tests.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from waitress import create_server, wasyncore

log = logging.getLogger(__name__)


class WebServer:
    """A waitress server bound at construction (port 0 picks a free port, see `port`)."""

    def __init__(self, app: Any, host: str, port: int, *, threads: int = 8) -> None:
        sockets: dict[int, Any] = {}
        try:
            self._server: Any = create_server(app, map=sockets, host=host, port=port, threads=threads,
                                              ident="smsgate", clear_untrusted_proxy_headers=True)
        except OSError:
            # A port in use fails after waitress opened its socket and wake-up pipe: close them here, or
            # they leak into a process that goes on (the Gateway stops the rest and reports the port).
            wasyncore.close_all(sockets)
            raise
        self.host = host
        self.port: int = int(self._server.effective_port)
        self._stopped = threading.Event()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def run(self) -> None:
        """Serve until `close()` is called (from any thread)."""
        log.info("web app listening on %s", self.url)
        try:
            self._server.run()
        finally:
            self._server.task_dispatcher.shutdown()
            self._stopped.set()

    def close(self, timeout: float = 5.0) -> None:
        """Stop accepting, let the loop thread close its sockets itself, wait for `run()` to return."""
        server = self._server
        # Let requests in flight finish first: a worker finishing after the sockets are closed would
        # write to a closed trigger. Then the loop thread closes its own socket map (through the trigger).
        server.task_dispatcher.shutdown(timeout=timeout)
        server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        if not self._stopped.wait(timeout):
            log.warning("web server did not stop within %.1f s", timeout)

    def start_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name=f"web:{self.port}", daemon=True)
        thread.start()
        return thread


def serve(app: Any, host: str, port: int, *, threads: int = 8, stop: threading.Event | None = None) -> None:
    """Serve `app` on host:port until interrupted, or until `stop` is set when one is given."""
    server = WebServer(app, host, port, threads=threads)
    if stop is not None:
        def watch() -> None:
            stop.wait()
            server.close()

        threading.Thread(target=watch, name="web-stop", daemon=True).start()
    try:
        server.run()
    except KeyboardInterrupt:
        log.info("web app stopped")
