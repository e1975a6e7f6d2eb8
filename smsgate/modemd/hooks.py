"""Where the daemon hands work to the rules engine: after an inbound message is stored, and at claim time.

The rules engine is a plain import: a daemon that cannot load it must not start, because it would store
every STOP without recording the opt-out. Tests that want no rules pass `on_inbound=None, gate=None`.
"""

from __future__ import annotations

from collections.abc import Callable

from smsgate.appointments.waitlist import handle_answer
from smsgate.config import Config
from smsgate.keywords import RulesEngine, make_gate
from smsgate.queue import Gate, Inbound, Store

InboundHook = Callable[[Store, Inbound], object]


def default_on_inbound(config: Config) -> InboundHook:
    """`RulesEngine(config).process`: compliance keywords, answers, custom keywords, the inbox."""
    process: InboundHook = RulesEngine(
        config, on_answer=lambda store, message_id, outcome, now: handle_answer(store, config, message_id, outcome, now)
    ).process
    return process


def default_gate(config: Config) -> Gate:
    """`make_gate(config)`: quiet hours and frequency caps at claim time (consent is the store's own check)."""
    gate: Gate = make_gate(config)
    return gate
