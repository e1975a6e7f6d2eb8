"""systemd's notification protocol (sd_notify(3)), written out because it is one datagram.

`Type=notify` units learn that the daemon is up (READY=1), alive (WATCHDOG=1) and what it is doing
(STATUS=...) from datagrams on the UNIX socket named by $NOTIFY_SOCKET. Outside systemd the variable is
unset and every call is a cheap no-op.
"""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger(__name__)


def notify(*fields: str, environ: dict[str, str] | None = None) -> bool:
    """Send `KEY=value` fields to systemd; False when not run under systemd or the socket is gone."""
    env = os.environ if environ is None else environ
    address = env.get("NOTIFY_SOCKET")
    if not address or not fields:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]  # abstract namespace
    payload = "\n".join(fields).encode("utf-8", "replace")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(payload, address)
    except OSError as exc:
        log.warning("sd_notify to %s failed: %s", env.get("NOTIFY_SOCKET"), exc)
        return False
    return True

