"""The event feed: state changes, answer outcomes and received messages become signed webhook POSTs,
each exactly once, without any caller having to emit them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_web_webhooks import CLINIC, SECRET, Receiver
from web_helpers import PATIENT

from smsgate.config import Config, config_from_dict
from smsgate.keywords import RulesEngine, Vocabulary, build_rule
from smsgate.queue import Store, inbound_key
from smsgate.webhooks import FEED_CURSOR, WebhookDeliverer, feed_events, verify_signature


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _config(tmp_path: Path, url: str, events: list[str], **web: object) -> Config:
    return config_from_dict({"database": str(tmp_path / "smsgate.db"), "web": web, "clinic": CLINIC,
                             "webhooks": [{"url": url, "secret": SECRET, "events": events}]},
                            tmp_path / "smsgate.toml")


def _bodies(receiver: Receiver) -> list[dict]:
    return [json.loads(body) for _headers, body in receiver.requests]


def test_state_changes_and_inbound_messages_are_posted_once_each(tmp_path: Path, receiver: Receiver) -> None:
    config = _config(tmp_path, receiver.url, ["inbound", "state", "outcome"])
    store = Store.open(config.database_path)
    assert feed_events(store, config) == 0  # a new feed starts at the present
    store.outbox.enqueue(PATIENT, "Reminder: Dr Rivera at 3:15 PM tomorrow")
    claim = store.outbox.claim("test:1:m", None)[0]
    store.outbox.mark_submitting(claim, 1)
    store.outbox.mark_part_submitted(claim, 1, tp_mr=7)
    store.inbox.store(modem_id=None, sender=PATIENT, body="yes", dedupe_key=inbound_key("sim", "00AA"))

    queued = feed_events(store, config)
    assert queued == 5  # queued, claimed, submitting, submitted, and one inbound
    assert feed_events(store, config) == 0  # the cursor moved with the deliveries

    deliverer = WebhookDeliverer(config)
    assert deliverer.deliver_due(store) == 5
    receiver.wait_for(5)
    bodies = _bodies(receiver)
    states = [b["data"]["state"] for b in bodies if b["event"] == "state"]
    assert states == ["queued", "claimed", "submitting", "submitted"]
    inbound = [b["data"] for b in bodies if b["event"] == "inbound"]
    assert inbound[0]["from"] == PATIENT and inbound[0]["text"] == "yes"
    for headers, body in receiver.requests:
        assert verify_signature(SECRET, headers["X-Smsgate-Timestamp"], body, headers["X-Smsgate-Signature"])


def test_unsubscribed_events_are_not_posted(tmp_path: Path, receiver: Receiver) -> None:
    config = _config(tmp_path, receiver.url, ["inbound"])
    store = Store.open(config.database_path)
    feed_events(store, config)
    store.outbox.enqueue(PATIENT, "Your results are ready")
    assert feed_events(store, config) == 0
    assert store.get_status(FEED_CURSOR)[0]["audit"] > 0


def test_a_keyword_webhook_has_the_inbound_event_shape_and_is_signed_with_the_keyword_secret(
        tmp_path: Path, receiver: Receiver) -> None:
    config = _config(tmp_path, receiver.url, ["inbound"], keyword_webhook_secret="kw-secret")
    keyword_url = receiver.url + "?keyword=JOIN"
    store = Store.open(config.database_path)
    feed_events(store, config)
    rule = build_rule("JOIN", vocabulary=Vocabulary(config.compliance), webhook=keyword_url)
    store.keywords.add(rule.keyword, webhook=rule.webhook)
    modem = store.modems.upsert("front-desk", state="ready")
    with store.transaction():
        inbound, _ = store.inbox.store(modem_id=modem, sender=PATIENT, body="join",
                                       dedupe_key=inbound_key("sim", "00BB"))
        RulesEngine(config).process(store, inbound)
    assert feed_events(store, config) == 1
    assert WebhookDeliverer(config).deliver_due(store) == 2
    receiver.wait_for(2)
    posts = {json.loads(body)["event"]: (headers, body) for headers, body in receiver.requests}
    kw_headers, kw_body = posts["keyword"]
    keyword, received = json.loads(kw_body), json.loads(posts["inbound"][1])
    assert set(keyword) == set(received) == {"event", "at", "data"}
    assert keyword["data"] == {**received["data"], "keyword": "JOIN"}
    assert keyword["data"]["modem"] == "front-desk" and keyword["data"]["text"] == "join"
    assert verify_signature("kw-secret", kw_headers["X-Smsgate-Timestamp"], kw_body,
                            kw_headers["X-Smsgate-Signature"])
