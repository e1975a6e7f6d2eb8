"""Property: whatever the interleaving of campaigns, opt-outs, opt-ins and claims, no message other than a
compliance confirmation is ever handed to a modem for a number whose latest consent event (globally, or for
the message's list) is an opt-out, and no marketing message for a number that never opted in to its list or
left it since (tests/test_consent_property.py checks the whole rule)."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from hypothesis import event, given, settings
from hypothesis import strategies as st
from keywords_support import make_config, receive

from smsgate.keywords import RulesEngine, make_gate
from smsgate.queue import Kind, MessageRejected, Store

NUMBERS = ["+12125550123", "+13125550188", "+14155550142"]
START = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)

number = st.sampled_from(NUMBERS)
op = st.one_of(
    st.tuples(st.just("campaign"), st.lists(number, min_size=1, max_size=3),
              st.sampled_from([Kind.BULK, Kind.TRANSACTIONAL, Kind.MARKETING])),
    st.tuples(st.just("sms"), number, st.sampled_from(["STOP", "stop please", "START", "HELP", "hi", "UNSTOP"])),
    st.tuples(st.just("ledger"), number, st.sampled_from([("opt_out", "all"), ("restore", "all"),
                                                          ("opt_in", "news"), ("opt_out", "news")])),
    st.tuples(st.just("claim"), st.integers(1, 4), st.booleans()),
    st.tuples(st.just("claim"), st.integers(1, 4), st.just(False)),
    st.tuples(st.just("advance"), st.integers(1, 3 * 86400)),
)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


@settings(max_examples=100, deadline=None)
@given(st.lists(op, min_size=1, max_size=25))
def test_nothing_but_confirmations_is_claimed_for_an_opted_out_number(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    config = make_config(hours={"per_day": 2, "per_week": 10})
    engine = RulesEngine(config)
    gate = make_gate(config)
    clock = Clock()
    with tempfile.TemporaryDirectory() as d:
        store = Store.open(Path(d) / "p.db", clock=clock)
        modem = store.modems.upsert("m", state="ready")
        store.lists.create("news", actor="test")
        handed_out = 0
        # Always something queued before and a drain after, so every run exercises claims.
        for item in [("campaign", NUMBERS, Kind.BULK), *ops, ("claim", 4, False), ("claim", 4, False)]:
            what = item[0]
            if what == "campaign":
                for n in item[1]:
                    try:
                        store.outbox.enqueue(n, "News from the clinic", kind=item[2],
                                             scope="news" if item[2] is Kind.MARKETING else None)
                    except MessageRejected:  # refused up front: no opt-in, or opted out
                        assert item[2] is Kind.MARKETING or store.consent.status(n).opted_out
            elif what == "sms":
                receive(store, engine, item[1], item[2], modem)
            elif what == "ledger":
                store.consent.record(item[1], item[2][0], scope=item[2][1], source="staff", actor="test")
            elif what == "claim":
                claims = store.outbox.claim("w", modem, limit=item[1], gate=partial(gate, store))
                for c in claims:
                    status = store.consent.status(c.message.to_number, c.message.scope or "all")
                    if c.message.kind is not Kind.COMPLIANCE:
                        assert not status.opted_out, (c.message, status)
                    if c.message.kind is Kind.MARKETING:
                        news = [e["event"] for e in store.consent.history(c.message.to_number)
                                if e["scope"] == "news"]
                        assert "opt_in" in news and news[-1] != "opt_out", (c.message, news)
                    handed_out += 1
                    if item[2]:
                        store.outbox.requeue(c, "modem busy")
                    else:
                        for p in c.pending_parts:
                            store.outbox.mark_submitting(c, p.part_no)
                            store.outbox.mark_part_submitted(c, p.part_no, tp_mr=p.part_no)
            else:
                clock.now += timedelta(seconds=item[1])
        event(f"claims: {min(handed_out, 3)}+" if handed_out >= 3 else f"claims: {handed_out}")
        store.close()
