"""Properties of the segment filter language: any text is a filter or a `SegmentError` (never another
exception), every filter the grammar allows runs on a real store, NOT selects exactly the rest, and the
consent terms select exactly the contacts the consent ledger's rule would let a message reach."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from smsgate.queue import Kind, Store
from smsgate.queue.segment_filter import SegmentError, SegmentFilter, parse

PIECES = ["tag:", "field:", "language:", "tz:", "region:", "list:", "consent:", "optedout", "optedout:",
          "replied:", "texted:", "asked:", "answered:", "AND", "OR", "NOT", "and", "not", "(", ")", '"', "\\",
          "=", ":", " ", "30d", "news", "diabetes", "America/Chicago", "US", "+52", "none", "x" * 3, "\t", "é"]


@settings(max_examples=600, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(st.sampled_from(PIECES), max_size=25).map("".join),
                 st.lists(st.sampled_from(PIECES), max_size=25).map(" ".join)))
def test_any_text_is_a_filter_or_a_segment_error(text: str) -> None:
    try:
        result = parse(text)
    except SegmentError as exc:
        assert str(exc).startswith("segment filter: ")
        assert exc.column is None or 1 <= exc.column <= len(text) + 1
    else:
        assert isinstance(result, SegmentFilter)


TERMS = st.sampled_from([
    "tag:diabetes", 'tag:"heart-failure"', "tag:DIABETES", "field:mrn", "field:mrn=123", 'field:"m r n"="1 2"',
    "language:es", "language:en-US", "tz:America/Chicago", "region:US", "region:+44", "list:news",
    "consent:news", "consent:transactional", "optedout", "optedout:news", "optedout:transactional",
    "replied:30d", "texted:12h", "asked:2w", "answered:confirmed", "answered:none", 'answered:"rating:5"',
])


def filters() -> st.SearchStrategy[str]:
    return st.recursive(
        TERMS,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from([" AND ", " OR ", " and ", " or "]), inner).map("".join),
            inner.map(lambda f: f"NOT {f}"),
            inner.map(lambda f: f"({f})"),
        ),
        max_leaves=8,
    )


@pytest.fixture(scope="module")
def populated() -> Iterator[Store]:
    with tempfile.TemporaryDirectory() as d:
        store = Store.open(Path(d) / "s.db")
        store.lists.create("news", actor="test")
        numbers = ["+12025550101", "+12025550102", "+447911123456", "+525512345678"]
        for i, n in enumerate(numbers):
            store.contacts.update(n, tags=["diabetes"] if i % 2 else ["heart-failure"],
                                  fields={"mrn": "123"} if i < 2 else {}, timezone="America/Chicago" if i else None)
        store.lists.add_numbers("news", numbers[:2], actor="test", source="test")
        store.consent.record(numbers[0], "opt_in", scope="news", source="test", actor="test")
        store.consent.record(numbers[1], "opt_out", source="test", actor="test")
        yield store
        store.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(filters())
def test_every_filter_of_the_grammar_runs_and_not_selects_exactly_the_rest(populated: Store, text: str) -> None:
    store = populated
    everyone = store.segments.count(store.segments.check("region:US OR NOT region:US"))
    chosen = store.segments.count(store.segments.check(text))
    rest = store.segments.count(store.segments.check(f"NOT ({text})"))
    assert chosen + rest == everyone


EVENTS = st.lists(st.tuples(st.integers(0, 1),
                            st.sampled_from([("opt_in", "news"), ("opt_out", "news"), ("restore", "news"),
                                             ("opt_out", "all"), ("restore", "all"), ("opt_out", "transactional"),
                                             ("restore", "transactional")])), max_size=12)
_fresh = itertools.count()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(EVENTS)
def test_the_consent_terms_select_exactly_whom_the_ledgers_rule_lets_a_message_reach(
        populated: Store, events: list[tuple[int, tuple[str, str]]]) -> None:
    store = populated
    # Two numbers no earlier example has used, so each example starts from an empty ledger for them.
    numbers = [f"+1312555{next(_fresh) % 10000:04d}" for _ in range(2)]
    for n in numbers:
        store.contacts.ensure(n)
    for who, (event, scope) in events:
        store.consent.record(numbers[who], event, scope=scope, source="test", actor="test")
    for where, kind, list_name in (("consent:news", Kind.MARKETING, "news"),
                                   ("consent:transactional", Kind.TRANSACTIONAL, None)):
        selected = {r["number"] for r in store.segments.contacts(store.segments.check(where), limit=10_000)}
        allowed = {n for n in numbers if store.consent.may_send(n, kind, list_name) is None}
        assert selected & set(numbers) == allowed, (where, events)
    stopped = {n for n in numbers if (store.consent.latest(n, "all") or {}).get("event") == "opt_out"}
    optedout = store.segments.contacts(store.segments.check("optedout"), limit=10_000)
    assert {r["number"] for r in optedout} & set(numbers) == stopped
