"""One shared, short-lived picture of the system for the status page, `/api/v1/modems`, health and metrics.

Computing it scans the queue (`gather_status` counts every message by state), so with many staff
browsers and a monitoring system polling, it is computed once per `web.status_cache_seconds` (default
1 s) by one request while the others wait for that result instead of repeating the scan. The daemon
itself only updates modem facts every few seconds, so the page shows nothing staler than it would anyway.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from flask import Flask, current_app

from smsgate.clinic_time import ClinicClock
from smsgate.queue import views
from smsgate.status import gather_status

from .context import get_store, smsgate_config


@dataclass(frozen=True)
class Snapshot:
    """Read-only once built: requests share it."""

    at: datetime
    report: dict[str, Any]
    activity: dict[int, views.Activity]
    active: dict[str, dict[int, int]]


@dataclass
class _Cache:
    lock: threading.Lock = field(default_factory=threading.Lock)
    value: Snapshot | None = None
    built: float = 0.0


def init_app(app: Flask) -> None:
    app.extensions["smsgate"]["status_cache"] = _Cache()


def _build() -> Snapshot:
    store = get_store()
    now = datetime.now(UTC)
    with store.read_snapshot():
        return Snapshot(now, gather_status(store, now=now, clock=ClinicClock.for_config(smsgate_config())),
                        views.modem_activity(store, now),
                        views.active_queue_counts(store))


def status_snapshot() -> Snapshot:
    ttl = smsgate_config().web.status_cache_seconds
    if ttl <= 0:
        return _build()
    cache: _Cache = current_app.extensions["smsgate"]["status_cache"]
    with cache.lock:
        if cache.value is None or time.monotonic() - cache.built >= ttl:
            cache.value = _build()
            cache.built = time.monotonic()
        return cache.value
