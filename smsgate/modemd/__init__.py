"""smsgate.modemd: the daemon that keeps modems alive, stores every inbound SMS once and drains the queue.

`Daemon(config)` runs one worker thread per configured modem plus a queue watcher and scheduled jobs;
`smsgate serve` and `python -m smsgate.modemd --config FILE` run it through `smsgate.gateway.Gateway`
until SIGTERM. It imports the libraries (at_commands, queue, keywords, config), never the simulator, the
web app or the gateway (its `__main__` entry point aside). See docs/daemon.md.
"""

from .daemon import DEFAULT, Daemon, owner_checker, running
from .tunables import FAST, Tunables
from .worker import ModemState

__all__ = ["DEFAULT", "FAST", "Daemon", "ModemState", "Tunables", "owner_checker", "running"]
