"""Property: whatever the sequence of consent events, sends, campaigns and claims, a message is queued and
claimed exactly when the consent its purpose needs stands, on a real store with real claims.

The expected answer comes from a model written here as a small state machine (what each event switches on
or off), not from the latest-event rule the store implements, so the two formulations check each other.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import event, given, settings
from hypothesis import strategies as st

from smsgate.queue import Kind, MessageRejected, State, Store

NUMBERS = ["+12125550123", "+13125550188", "+14155550142"]
LISTS = ["news", "flu"]
SCOPES = ["all", "transactional", *LISTS]
KINDS = [Kind.MARKETING, Kind.TRANSACTIONAL, Kind.BULK, Kind.REPLY, Kind.COMPLIANCE]


@dataclass
class Person:
    """What one number has switched on and off, event by event."""

    stop: bool = False  # a global opt-out stands...
    lifted: set[str] = field(default_factory=set)  # ...except for scopes with an event since
    off: set[str] = field(default_factory=set)  # scopes whose own opt-out stands
    granted: set[str] = field(default_factory=set)  # lists ever opted in to

    def apply(self, what: str, scope: str) -> None:
        if scope == "all":
            self.stop, self.lifted = what == "opt_out", set()
            return
        self.lifted.add(scope)
        if what == "opt_out":
            self.off.add(scope)
        else:
            self.off.discard(scope)
            if what == "opt_in":
                self.granted.add(scope)

    def allows(self, kind: Kind, list_name: str | None) -> bool:
        if kind is Kind.COMPLIANCE:
            return True
        if kind is Kind.MARKETING:
            if list_name is None or list_name not in self.granted:
                return False
            scopes = {list_name}
        else:
            scopes = {"transactional"} | ({list_name} if list_name else set())
        return not (scopes & self.off) and not (self.stop and not scopes & self.lifted)


number = st.sampled_from(NUMBERS)
list_or_none = st.sampled_from([None, *LISTS])
op = st.one_of(
    st.tuples(st.just("event"), number, st.sampled_from(["opt_in", "opt_out", "restore"]), st.sampled_from(SCOPES)),
    st.tuples(st.just("send"), number, st.sampled_from(KINDS), list_or_none),
    st.tuples(st.just("campaign"), st.lists(number, min_size=1, max_size=3, unique=True), st.sampled_from(KINDS),
              list_or_none),
    st.tuples(st.just("claim"), st.integers(1, 5), st.booleans()),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(op, min_size=1, max_size=30))
def test_a_message_is_queued_and_claimed_exactly_when_its_purpose_has_standing_consent(ops: list[tuple]) -> None:  # type: ignore[type-arg]
    people = {n: Person() for n in NUMBERS}
    with tempfile.TemporaryDirectory() as d:
        store = Store.open(Path(d) / "p.db")
        for name in LISTS:
            store.lists.create(name, actor="test")
        queued: dict[int, tuple[str, Kind, str | None]] = {}
        claimed = refused = 0
        drain = [("claim", 50, False)] * 3  # at most 90 messages are queued, so three claims leave none behind
        for item in [*ops, *drain]:
            what = item[0]
            if what == "event":
                _, n, ev, scope = item
                if ev == "opt_in" and scope in ("all", "transactional"):
                    try:
                        store.consent.record(n, ev, scope=scope, source="test", actor="test")
                    except ValueError:
                        continue
                    raise AssertionError("an opt-in without a list was recorded")
                store.consent.record(n, ev, scope=scope, source="test", actor="test")
                people[n].apply(ev, scope)
            elif what == "send":
                _, n, kind, list_name = item
                expected = people[n].allows(kind, list_name)
                try:
                    mid = store.outbox.enqueue(n, "Hello", kind=kind, scope=list_name).id
                except MessageRejected as exc:
                    assert not expected, f"refused although allowed: {exc}"
                    continue
                assert expected, (n, kind, list_name, people[n])
                queued[mid] = (n, kind, list_name)
            elif what == "campaign":
                _, ns, kind, list_name = item
                try:
                    ids = store.outbox.enqueue_many([{"to": n, "text": "News"} for n in ns], kind=kind,
                                                    scope=list_name)
                except MessageRejected:
                    assert kind is Kind.MARKETING and list_name is None
                    continue
                queued.update({mid: (n, kind, list_name) for mid, n in zip(ids, ns, strict=True)})
            else:
                _, limit, give_back = item
                before = {mid for mid in queued if store.outbox.get(mid).state == State.QUEUED}
                claims = store.outbox.claim("w", None, limit=limit)
                for c in claims:
                    n, kind, list_name = queued[c.message.id]
                    assert people[n].allows(kind, list_name), (c.message, people[n])
                    claimed += 1
                    if give_back:
                        store.outbox.requeue(c, "modem busy")
                    else:
                        for p in c.pending_parts:
                            store.outbox.mark_submitting(c, p.part_no)
                            store.outbox.mark_part_submitted(c, p.part_no, tp_mr=p.part_no)
                for mid in before - {c.message.id for c in claims}:
                    if store.outbox.get(mid).state == State.CANCELLED:
                        n, kind, list_name = queued[mid]
                        assert not people[n].allows(kind, list_name), (mid, people[n])
                        refused += 1
        assert all(store.outbox.get(mid).state != State.QUEUED for mid in queued)
        event(f"claimed {min(claimed, 5)}{'+' if claimed >= 5 else ''}, refused at claim {min(refused, 3)}"
              f"{'+' if refused >= 3 else ''}")
        store.close()
