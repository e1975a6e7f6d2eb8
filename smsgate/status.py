"""One picture of the system for `smsgate status`, the status page and `/api/v1/health`.

Read entirely from the database, which the daemon keeps current, so the CLI and the web app need no
channel to the daemon.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from smsgate.clinic_time import ClinicClock
from smsgate.queue import Store, views
from smsgate.queue.clock import parse_ts
from smsgate.queue.records import PRIORITY_NAMES

HEARTBEAT_STALE_S = 30.0


def gather_status(store: Store, *, now: datetime, clock: ClinicClock | None = None) -> dict[str, Any]:
    """`clock` writes the times in sentences (the daemon's stop) for people; UTC without one."""
    clock = clock or ClinicClock.named("UTC")
    daemon = store.get_status("daemon")
    if daemon is None:
        summary = "daemon: never started on this database (run `smsgate serve`)"
        running = False
        info: dict[str, Any] = {}
    else:
        info, updated = daemon
        age = (now - parse_ts(updated)).total_seconds()
        running = bool(info.get("running")) and age < HEARTBEAT_STALE_S
        if running:
            summary = f"daemon: running (pid {info.get('pid')}, heartbeat {age:.0f} s ago)"
        elif info.get("running"):
            summary = f"daemon: NOT RESPONDING (last heartbeat {age:.0f} s ago, pid {info.get('pid')})"
        else:
            summary = f"daemon: stopped ({clock.show(updated)})"
    modems = []
    for m in store.modems.all():
        modems.append({
            "id": m["id"],
            "name": m["name"],
            "state": m["state"] + (f" ({m['state_detail']})" if m["state_detail"] else ""),
            "signal": (f"{m['signal_bars']}/5 {m['signal_dbm']} dBm" if m["signal_dbm"] is not None else "?"),
            "signal_dbm": m["signal_dbm"],
            "signal_bars": m["signal_bars"],
            "registration": m["registration"] or "?",
            "operator": m["operator"] or "",
            "msisdn": m["msisdn"],
            "storage": (f"{m['storage_used']}/{m['storage_total']}" if m["storage_total"] else "?"),
            "sent": m["sent_count"],
            "failed": m["failed_count"],
            "received": m["received_count"],
            "last_error": m["last_error"] or "",
            "last_error_at": m["last_error_at"],
            "heartbeat_at": m["heartbeat_at"],
            "device": m["device"],
        })
    counts = store.outbox.queue_counts()
    queue: dict[str, int] = {state: sum(by_prio.values()) for state, by_prio in sorted(counts.items())}
    queued_by_priority = {PRIORITY_NAMES.get(p, str(p)): n for p, n in counts.get("queued", {}).items()}

    return {
        "daemon": {"running": running, "summary": summary, **info},
        "modems": modems,
        "queue": queue,
        "queued_by_priority": queued_by_priority,
        "oldest_queued_age_s": views.oldest_queued_age(store, now),
        "alerts": store.alerts.open_alerts(),
    }
