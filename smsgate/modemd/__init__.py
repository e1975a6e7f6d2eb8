"""smsgate.modemd: the daemon that keeps modems alive, stores every inbound SMS once and drains the queue.

`Daemon(config)` runs one worker thread per configured modem plus a queue watcher and scheduled jobs;
`python -m smsgate.modemd --config FILE` (or `smsgate serve`) runs it until SIGTERM. See docs/daemon.md.
"""

from .daemon import DEFAULT, Daemon, owner_checker, running
from .tunables import FAST, Tunables
from .worker import ModemState

__all__ = ["DEFAULT", "FAST", "Daemon", "ModemState", "Tunables", "owner_checker", "running"]
