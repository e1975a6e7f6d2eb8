"""Webhooks: events POSTed as signed JSON to configured URLs, from a durable outbox, in their own thread.

The daemon and the rules call `enqueue_webhook_event` (a database insert, inside their transaction when
they hold one); `WebhookDeliverer` posts due rows from its own thread with its own `Store`, so a slow
receiver never blocks the modem loop and a restart loses nothing (delivery is at least once: receivers
dedupe on the `X-Smsgate-Delivery` id).

Signature: `X-Smsgate-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>" keyed with the secret>`
and `X-Smsgate-Timestamp: <unix seconds>`; `verify_signature` is the reference check for receivers.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from smsgate.config import Config, WebhookConfig
from smsgate.queue import Store
from smsgate.queue.clock import ts
from smsgate.queue.webhooks import WebhookDelivery

log = logging.getLogger(__name__)

EVENTS = ("inbound", "state", "outcome")
SIGNATURE_HEADER = "X-Smsgate-Signature"
TIMESTAMP_HEADER = "X-Smsgate-Timestamp"
EVENT_HEADER = "X-Smsgate-Event"
DELIVERY_HEADER = "X-Smsgate-Delivery"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str, *, now: float | None = None,
                     tolerance_s: float = 300.0) -> bool:
    """True if `signature` is ours for this body and the timestamp is recent (replays are refused)."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs((time.time() if now is None else now) - stamp) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, stamp, body), signature)


def enqueue_webhook_event(store: Store, config: Config, event: str, payload: dict[str, Any]) -> list[int]:
    """Queue `event` for every webhook subscribed to it; returns the delivery ids (none if no webhook)."""
    if event not in EVENTS:
        raise ValueError(f"webhook event must be one of {', '.join(EVENTS)}, not {event!r}")
    hooks = [h for h in config.webhooks if h.url and event in h.events]
    if not hooks:
        return []
    envelope = {"event": event, "at": ts(store.clock()), "data": payload}
    with store.transaction():
        return [store.webhooks.add(h.url, event, envelope) for h in hooks]


FEED_CURSOR = "webhook_feed_cursor"


def feed_events(store: Store, config: Config, *, limit: int = 500) -> int:
    """Turn new state changes, answer outcomes and received messages into webhook deliveries.

    The audit log and the inbound table are the event stream: every writer already records there, in
    the transaction of the change, so no caller has to remember to emit an event. The cursor moves in
    the same transaction as the deliveries it produces, so each event is queued exactly once even if
    the process dies mid-way. Returns how many deliveries were queued.
    """
    hooks = [h for h in config.webhooks if h.url]
    with store.transaction():
        saved = store.get_status(FEED_CURSOR)
        if saved is None or not hooks:
            # A new feed (or none configured) starts at the present: no flood of past events.
            audit_id, inbound_id = store.webhooks.event_heads()
            store.set_status(FEED_CURSOR, {"audit": audit_id, "inbound": inbound_id})
            return 0
        cursor = saved[0]
        audit_rows, inbound_rows = store.webhooks.events_after(cursor["audit"], cursor["inbound"], limit=limit)
        queued = 0
        for row in audit_rows:
            event = "outcome" if row["action"] == "message.outcome" else "state"
            detail = json.loads(row["detail"]) if row["detail"] else {}
            payload = {"message_id": row["subject_id"], "at": row["at"], "actor": row["actor"]}
            if event == "state":
                payload.update(state=row["action"].split(".", 1)[1], previous=detail.get("from"),
                               reason=detail.get("reason"))
            else:
                payload.update(outcome=detail.get("outcome"), inbound_id=detail.get("inbound_id"))
            queued += _queue_for(store, hooks, event, payload)
        for row in inbound_rows:
            payload = {"inbound_id": row["id"], "from": row["sender"], "text": row["body"],
                       "received_at": row["received_at"], "sent_at": row["sent_at"], "modem": row["modem"],
                       "conversation_id": row["conversation_id"], "undecodable": bool(row["decode_error"])}
            queued += _queue_for(store, hooks, "inbound", payload)
        store.set_status(FEED_CURSOR, {
            "audit": audit_rows[-1]["id"] if audit_rows else cursor["audit"],
            "inbound": inbound_rows[-1]["id"] if inbound_rows else cursor["inbound"],
        })
        return queued


def _queue_for(store: Store, hooks: list[WebhookConfig], event: str, payload: dict[str, Any]) -> int:
    envelope = {"event": event, "at": ts(store.clock()), "data": payload}
    n = 0
    for h in hooks:
        if event in h.events:
            store.webhooks.add(h.url, event, envelope)
            n += 1
    return n


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect is a failed delivery, not a hop to wherever the receiver points (SSRF)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookDeliverer:
    """Posts due webhook deliveries; `deliver_due()` once, or `start()` a thread that polls."""

    def __init__(self, config: Config, store_factory: Callable[[], Store] | None = None, *,
                 poll_seconds: float = 2.0) -> None:
        self.config = config
        self._store_factory = store_factory or (
            lambda: Store.for_config(config, migrate=False))
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._opener = urllib.request.build_opener(_NoRedirect())

    def _hook_for(self, url: str, event: str = "") -> WebhookConfig | None:
        hook = next((h for h in self.config.webhooks if h.url == url), None)
        if hook is None and event == "keyword":
            # A keyword's own webhook (`keywords add --webhook URL`) lives in the database, not the config;
            # it is signed with web.keyword_webhook_secret.
            return WebhookConfig(url=url, secret=self.config.web.keyword_webhook_secret, events=["keyword"])
        return hook

    def deliver_due(self, store: Store | None = None, *, limit: int = 20) -> int:
        """Attempt every due delivery once; returns how many were delivered."""
        own = store is None
        store = store or self._store_factory()
        try:
            delivered = 0
            for d in store.webhooks.claim(limit=limit, lease_seconds=self._lease_seconds()):
                delivered += self._attempt(store, d)
            return delivered
        finally:
            if own:
                store.close()

    def _lease_seconds(self) -> float:
        return max([h.timeout_seconds for h in self.config.webhooks] or [10.0]) * 2 + 5

    def _attempt(self, store: Store, d: WebhookDelivery) -> int:
        hook = self._hook_for(d.url, d.event)
        if hook is None:
            store.webhooks.attempt_failed(d.id, "this URL is no longer in the configuration", retry_at=None)
            return 0
        error = self._post(hook, d)
        if error is None:
            store.webhooks.delivered(d.id)
            return 1
        attempts = d.attempts + 1
        if attempts >= hook.max_attempts:
            log.warning("webhook %s: giving up on delivery #%s after %s attempts: %s", d.url, d.id, attempts, error)
            store.webhooks.attempt_failed(d.id, f"gave up after {attempts} attempts: {error}", retry_at=None)
        else:
            delay = min(hook.retry_base_seconds * 2 ** (attempts - 1), hook.retry_max_seconds)
            log.info("webhook %s: delivery #%s failed (%s); retrying in %.0f s", d.url, d.id, error, delay)
            store.webhooks.attempt_failed(d.id, error, retry_at=store.clock() + timedelta(seconds=delay))
        return 0

    def _post(self, hook: WebhookConfig, d: WebhookDelivery) -> str | None:
        """POST one delivery; None on a 2xx answer, else what went wrong."""
        if urlsplit(hook.url).scheme not in ("http", "https"):
            return f"{hook.url!r} is not an http(s) URL"
        body = d.payload.encode()
        stamp = int(time.time())
        request = urllib.request.Request(hook.url, data=body, method="POST", headers={
            "Content-Type": "application/json",
            "User-Agent": "smsgate-webhooks",
            SIGNATURE_HEADER: sign(hook.secret, stamp, body),
            TIMESTAMP_HEADER: str(stamp),
            EVENT_HEADER: d.event,
            DELIVERY_HEADER: str(d.id),
        })
        try:
            with self._opener.open(request, timeout=hook.timeout_seconds) as response:
                response.read(4096)
                status = response.status
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code} {exc.reason}"
        except urllib.error.URLError as exc:
            return f"cannot reach it: {exc.reason}"
        except (TimeoutError, OSError) as exc:
            return f"connection failed: {exc}"
        except (http.client.InvalidURL, ValueError) as exc:
            return f"the URL cannot be used: {exc}"
        except http.client.HTTPException as exc:
            return f"the receiver did not answer in HTTP: {exc!r}"
        if not 200 <= status < 300:
            return f"HTTP {status}"
        return None

    # -- thread ----------------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Deliver now rather than at the next poll (after enqueueing an event)."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        store = self._store_factory()
        try:
            while not self._stop.is_set():
                try:
                    feed_events(store, self.config)
                    while self.deliver_due(store) and not self._stop.is_set():
                        pass
                except Exception:
                    log.exception("webhook delivery round failed; retrying at the next poll")
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
        finally:
            store.close()
