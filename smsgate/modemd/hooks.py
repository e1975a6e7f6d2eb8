"""Where the daemon hands work to the rules engine: after an inbound message is stored, and at claim time.

Both hooks are plain callables so the daemon does not depend on `smsgate.keywords` being present: the
defaults import it lazily and fall back to "no rules" (logged once) when it is not installed yet.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable

from smsgate.config import Config
from smsgate.queue import Gate, Inbound, Store

log = logging.getLogger(__name__)

InboundHook = Callable[[Store, Inbound], object]


def default_on_inbound(config: Config) -> InboundHook | None:
    """`keywords.RulesEngine(config).process`, or None when the rules engine is not available."""
    keywords = _keywords()
    engine_cls = getattr(keywords, "RulesEngine", None) if keywords else None
    if engine_cls is None:
        log.warning("smsgate.keywords.RulesEngine is not available: inbound messages are stored without "
                    "running rules (no STOP/HELP handling)")
        return None
    engine = engine_cls(config)
    process: InboundHook = engine.process
    return process


def default_gate(config: Config) -> Gate | None:
    """`keywords.make_gate(config)`, or None (consent is still checked by the store's claim)."""
    keywords = _keywords()
    make_gate = getattr(keywords, "make_gate", None) if keywords else None
    if make_gate is None:
        log.warning("smsgate.keywords.make_gate is not available: no quiet hours or frequency caps at send time")
        return None
    gate: Gate = make_gate(config)
    return gate


def _keywords() -> object | None:
    try:
        return importlib.import_module("smsgate.keywords")
    except ImportError as exc:
        log.warning("cannot import smsgate.keywords: %s", exc)
        return None
