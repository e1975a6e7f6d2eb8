"""Webhooks: signed POSTs from the durable outbox to a real HTTP server on loopback, with retries."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from web_helpers import PATIENT

from smsgate.config import Config, config_from_dict
from smsgate.queue import Store
from smsgate.web.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookDeliverer,
    enqueue_webhook_event,
    verify_signature,
)

SECRET = "s3cret-shared-with-the-crm"


class Receiver:
    """An HTTP server that records POSTs and answers with the next queued status (200 when none left)."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.received = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.received:
                    receiver.requests.append((dict(self.headers), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.received.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        with self.received:
            assert self.received.wait_for(lambda: len(self.requests) >= count, timeout), self.requests

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def config_for(tmp_path: Path, url: str, **hook: object) -> Config:
    return config_from_dict({"database": str(tmp_path / "smsgate.db"), "webhooks": [
        {"url": url, "secret": SECRET, "events": ["inbound", "outcome"], "retry_base_seconds": 30.0, **hook}]},
        tmp_path / "smsgate.toml")


class Clock:
    def __init__(self) -> None:
        from datetime import UTC, datetime

        self.now = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now


def test_event_is_posted_as_signed_json(tmp_path: Path, receiver: Receiver) -> None:
    config = config_for(tmp_path, receiver.url)
    with Store.open(config.database_path) as store:
        (delivery_id,) = enqueue_webhook_event(store, config, "inbound", {"from": PATIENT, "text": "hi <b>"})
        assert WebhookDeliverer(config, lambda: Store.open(config.database_path)).deliver_due(store) == 1
        headers, body = receiver.requests[0]
        assert verify_signature(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
        assert not verify_signature("wrong secret", headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
        assert not verify_signature(SECRET, headers[TIMESTAMP_HEADER], body + b" ", headers[SIGNATURE_HEADER])
        assert headers[DELIVERY_HEADER] == str(delivery_id) and headers["Content-Type"] == "application/json"
        payload = json.loads(body)
        assert payload["event"] == "inbound" and payload["data"] == {"from": PATIENT, "text": "hi <b>"}
        assert store.get_webhook_delivery(delivery_id).state == "delivered"


def test_events_nobody_subscribed_to_are_not_queued(tmp_path: Path, receiver: Receiver) -> None:
    config = config_for(tmp_path, receiver.url)
    with Store.open(config.database_path) as store:
        assert enqueue_webhook_event(store, config, "state", {"message_id": 1, "state": "delivered"}) == []
        with pytest.raises(ValueError, match="must be one of"):
            enqueue_webhook_event(store, config, "bogus", {})


def test_failed_delivery_is_retried_with_backoff_until_it_succeeds(tmp_path: Path, receiver: Receiver) -> None:
    config = config_for(tmp_path, receiver.url)
    clock = Clock()
    receiver.statuses = [500, 503]
    with Store.open(config.database_path, clock=clock) as store:
        (d,) = enqueue_webhook_event(store, config, "outcome", {"message_id": 3, "outcome": "confirmed"})
        deliverer = WebhookDeliverer(config)
        assert deliverer.deliver_due(store) == 0
        first = store.get_webhook_delivery(d)
        assert (first.state, first.attempts, first.last_error) == ("pending", 1, "HTTP 500 Internal Server Error")
        assert first.next_attempt_at == "2026-11-22T18:00:30.000000Z"
        assert deliverer.deliver_due(store) == 0, "not due yet: nothing is posted"
        assert len(receiver.requests) == 1
        clock.now += timedelta(seconds=31)
        deliverer.deliver_due(store)
        assert store.get_webhook_delivery(d).next_attempt_at == "2026-11-22T18:01:31.000000Z"  # 30 s, then 60 s
        clock.now += timedelta(seconds=61)
        assert deliverer.deliver_due(store) == 1
        assert store.get_webhook_delivery(d).state == "delivered" and len(receiver.requests) == 3


def test_delivery_gives_up_after_max_attempts(tmp_path: Path, receiver: Receiver) -> None:
    config = config_for(tmp_path, receiver.url, max_attempts=2, retry_base_seconds=1.0)
    clock = Clock()
    receiver.statuses = [500, 500]
    with Store.open(config.database_path, clock=clock) as store:
        (d,) = enqueue_webhook_event(store, config, "inbound", {"x": 1})
        deliverer = WebhookDeliverer(config)
        deliverer.deliver_due(store)
        clock.now += timedelta(seconds=2)
        deliverer.deliver_due(store)
        final = store.get_webhook_delivery(d)
        assert final.state == "failed" and final.last_error.startswith("gave up after 2 attempts")


def test_unreachable_receiver_and_redirects_count_as_failures(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = config_for(tmp_path, f"http://127.0.0.1:{port}/gone", timeout_seconds=2.0)
    with Store.open(config.database_path) as store:
        (d,) = enqueue_webhook_event(store, config, "inbound", {"x": 1})
        WebhookDeliverer(config).deliver_due(store)
        assert store.get_webhook_delivery(d).last_error.startswith("cannot reach it")


def test_deliverer_thread_delivers_without_blocking_the_caller(tmp_path: Path, receiver: Receiver) -> None:
    config = config_for(tmp_path, receiver.url)
    deliverer = WebhookDeliverer(config, poll_seconds=0.05)
    with Store.open(config.database_path) as store:
        deliverer.start()
        try:
            started = time.monotonic()
            enqueue_webhook_event(store, config, "inbound", {"n": 1})
            enqueue_webhook_event(store, config, "inbound", {"n": 2})
            deliverer.wake()
            assert time.monotonic() - started < 1.0
            receiver.wait_for(2)
        finally:
            deliverer.stop()
        assert [json.loads(b)["data"]["n"] for _, b in receiver.requests] == [1, 2]
        deadline = time.monotonic() + 5
        while store.webhook_counts().get("delivered") != 2:
            assert time.monotonic() < deadline, store.webhook_counts()
            time.sleep(0.01)
