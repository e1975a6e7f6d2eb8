"""What a webhook event looks like, and the one function that puts one in the durable outbox.

Every webhook body is `{"event": "<name>", "at": "<when queued>", "data": {...}}`, whoever queues it: the
event feed in `smsgate.webhooks` (state, outcome, inbound) and the rules engine (a keyword's own
`--webhook URL`). This module sits at package level and imports only `queue`, so `keywords`, which may not
import the top layer, and the feed, which lives there, build the same body from the same functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from smsgate.queue import Store
from smsgate.queue.clock import ts

EVENTS = ("inbound", "state", "outcome")
"""The events a `[[webhooks]]` entry can subscribe to."""

KEYWORD_EVENT = "keyword"
"""Sent only to the URL set on a custom keyword (`smsgate keywords add ... --webhook URL`)."""


def inbound_data(*, inbound_id: int, sender: str, text: str, received_at: str, sent_at: str | None,
                 modem: str | None, conversation_id: int | None, undecodable: bool) -> dict[str, Any]:
    """The `data` of an `inbound` event; a `keyword` event carries the same fields plus `keyword`."""
    return {"inbound_id": inbound_id, "from": sender, "text": text, "received_at": received_at,
            "sent_at": sent_at, "modem": modem, "conversation_id": conversation_id, "undecodable": undecodable}


def queue_event(store: Store, urls: Iterable[str], event: str, data: Mapping[str, Any]) -> list[int]:
    """Queue one delivery of `event` per URL, in the caller's transaction when one is open; the ids."""
    targets = list(urls)
    if not targets:
        return []
    envelope = {"event": event, "at": ts(store.clock()), "data": dict(data)}
    with store.transaction():
        return [store.webhooks.add(url, event, envelope) for url in targets]


__all__ = ["EVENTS", "KEYWORD_EVENT", "inbound_data", "queue_event"]
