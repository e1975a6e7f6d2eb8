"""Helpers for the keyword tests: a configuration, an inbound message through the engine in one
transaction (as the daemon does it), and a modem that "sends" whatever it may claim."""

from __future__ import annotations

import itertools
from functools import partial
from typing import Any

from smsgate.config import Config, config_from_dict
from smsgate.keywords import Outcome, RulesEngine, make_gate
from smsgate.queue import Claim, Inbound, Store

PATIENT = "+12125550123"  # New York
PATIENT2 = "+13125550188"  # Chicago
STAFF = "+12125550199"
_keys = itertools.count(1)


def make_config(**sections: dict[str, Any]) -> Config:
    raw: dict[str, Any] = {"clinic": {"name": "Rivera Clinic", "contact": "+12125550100",
                                      "timezone": "America/New_York"}}
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return config_from_dict(raw)


def receive(store: Store, engine: RulesEngine, sender: str, body: str, modem_id: int | None = None,
            key: str | None = None) -> tuple[Inbound, Outcome]:
    """Store an inbound message and run the rules on it in one transaction, as the daemon does."""
    with store.transaction():
        inbound, _ = store.inbox.store(modem_id=modem_id, sender=sender, body=body,
                                       dedupe_key=key or f"test-{next(_keys)}")
        outcome = engine.process(store, inbound)
    return inbound, outcome


def send_all(store: Store, config: Config, modem_id: int, limit: int = 50) -> list[Claim]:
    """Claim through the gate and mark every claimed message submitted (a modem that always succeeds)."""
    claims = store.outbox.claim("test-worker", modem_id, limit=limit, gate=partial(make_gate(config), store))
    for n, c in enumerate(claims):
        for p in c.pending_parts:
            store.outbox.mark_submitting(c, p.part_no)
            store.outbox.mark_part_submitted(c, p.part_no, tp_mr=n % 256)
    return claims


def queued_to(store: Store, number: str) -> list[dict[str, Any]]:
    return store.query("SELECT * FROM messages WHERE to_number = ? AND state = 'queued' ORDER BY id", (number,))
