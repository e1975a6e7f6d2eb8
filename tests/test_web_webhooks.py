"""Webhooks: signed POSTs from the durable outbox to a real HTTP server on loopback, with retries."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from web_helpers import PATIENT

from smsgate.config import Config, config_from_dict
from smsgate.queue import Store
from smsgate.queue.clock import parse_ts
from smsgate.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookDeliverer,
    enqueue_webhook_event,
    verify_signature,
)

SECRET = "s3cret-shared-with-the-crm"
CLINIC = {"timezone": "America/New_York"}


class Receiver:
    """An HTTP server that records POSTs and answers with the next queued status (200 when none left).

    A 3xx answer points elsewhere on the same server; clearing `answering` holds every answer back.
    """

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.statuses: list[int] = []
        self.received = threading.Condition()
        self.answering = threading.Event()
        self.answering.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.received:
                    receiver.requests.append((dict(self.headers), body))
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.received.notify_all()
                receiver.answering.wait(10)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", receiver.url + "/moved")
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
        self.answering.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def config_for(tmp_path: Path, url: str, **hook: object) -> Config:
    return config_from_dict({"database": str(tmp_path / "smsgate.db"), "clinic": CLINIC, "webhooks": [
        {"url": url, "secret": SECRET, "events": ["inbound", "outcome"], "retry_base_seconds": 30.0, **hook}]},
        tmp_path / "smsgate.toml")


class Clock:
    def __init__(self) -> None:
        from datetime import UTC, datetime

        self.now = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)

    def __call__(self):  # type: ignore[no-untyped-def]
        return self.now


def seconds_until(stamp: str | None, now: datetime) -> float:
    assert stamp is not None
    return (parse_ts(stamp) - now).total_seconds()


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
        assert store.webhooks.get(delivery_id).state == "delivered"


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
        first = store.webhooks.get(d)
        assert (first.state, first.attempts, first.last_error) == ("pending", 1, "HTTP 500 Internal Server Error")
        assert 24 <= seconds_until(first.next_attempt_at, clock.now) <= 36  # 30 s, ±20 % jitter
        assert deliverer.deliver_due(store) == 0, "not due yet: nothing is posted"
        assert len(receiver.requests) == 1
        clock.now += timedelta(seconds=37)
        deliverer.deliver_due(store)
        assert 48 <= seconds_until(store.webhooks.get(d).next_attempt_at, clock.now) <= 72  # then 60 s
        clock.now += timedelta(seconds=73)
        assert deliverer.deliver_due(store) == 1
        assert store.webhooks.get(d).state == "delivered" and len(receiver.requests) == 3


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
        final = store.webhooks.get(d)
        assert final.state == "failed" and final.last_error.startswith("gave up after 2 attempts")


def test_unreachable_receiver_counts_as_a_failure(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = config_for(tmp_path, f"http://127.0.0.1:{port}/gone", timeout_seconds=2.0)
    with Store.open(config.database_path) as store:
        (d,) = enqueue_webhook_event(store, config, "inbound", {"x": 1})
        WebhookDeliverer(config).deliver_due(store)
        assert store.webhooks.get(d).last_error.startswith("cannot reach it")


def test_a_redirect_is_a_failure_and_is_not_followed(tmp_path: Path, receiver: Receiver) -> None:
    config = config_for(tmp_path, receiver.url)
    receiver.statuses = [302]
    with Store.open(config.database_path) as store:
        (d,) = enqueue_webhook_event(store, config, "inbound", {"x": 1})
        assert WebhookDeliverer(config).deliver_due(store) == 0
        delivery = store.webhooks.get(d)
        assert (delivery.state, delivery.attempts, delivery.last_error) == ("pending", 1, "HTTP 302 Found")
    assert len(receiver.requests) == 1, "the redirect target must not be requested"


@pytest.fixture
def not_http() -> Iterator[str]:
    """A TCP server that answers every request with a line that is not HTTP."""
    server = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def answer() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                if not stop.is_set():
                    conn.recv(65536)
                    conn.sendall(b"NOT HTTP AT ALL\r\n\r\n")

    thread = threading.Thread(target=answer, name="not-http", daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    stop.set()
    socket.create_connection(server.getsockname(), timeout=2).close()  # wakes accept() to see `stop`
    thread.join(5)
    server.close()


@pytest.mark.parametrize("broken", ["not_http", "bad_port"])
def test_a_receiver_that_breaks_http_is_a_counted_failure_and_the_rest_of_the_batch_goes_out(
        tmp_path: Path, receiver: Receiver, not_http: str, broken: str) -> None:
    bad_url = not_http if broken == "not_http" else "http://127.0.0.1:notaport/hook"
    config = config_from_dict({"database": str(tmp_path / "smsgate.db"), "clinic": CLINIC, "webhooks": [
        {"url": bad_url, "secret": SECRET, "events": ["inbound"], "timeout_seconds": 2.0},
        {"url": receiver.url, "secret": SECRET, "events": ["inbound"]}]}, tmp_path / "smsgate.toml")
    with Store.open(config.database_path) as store:
        bad, good = enqueue_webhook_event(store, config, "inbound", {"x": 1})
        assert WebhookDeliverer(config).deliver_due(store) == 1
        failed = store.webhooks.get(bad)
        assert failed.attempts == 1 and failed.state == "pending"
        assert failed.last_error.startswith(("the receiver did not answer in HTTP", "the URL cannot be used"))
        assert store.webhooks.get(good).state == "delivered"


def test_deliverer_thread_delivers_without_blocking_the_caller(tmp_path: Path, receiver: Receiver) -> None:
    config = config_for(tmp_path, receiver.url)
    deliverer = WebhookDeliverer(config, poll_seconds=0.05)
    receiver.answering.clear()
    with Store.open(config.database_path) as store:
        deliverer.start()
        try:
            enqueue_webhook_event(store, config, "inbound", {"n": 1})
            deliverer.wake()
            receiver.wait_for(1)
            # The receiver is stuck on the first POST; queueing another event does not wait for it.
            enqueue_webhook_event(store, config, "inbound", {"n": 2})
            assert store.webhooks.counts() == {"pending": 2}
            receiver.answering.set()
            deliverer.wake()
            receiver.wait_for(2)
        finally:
            deliverer.stop()
        assert [json.loads(b)["data"]["n"] for _, b in receiver.requests] == [1, 2]
        deadline = time.monotonic() + 5
        while store.webhooks.counts().get("delivered") != 2:
            assert time.monotonic() < deadline, store.webhooks.counts()
            time.sleep(0.01)
