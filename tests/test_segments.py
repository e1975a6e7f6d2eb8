"""Saved segments through the store: each term of the filter language selects what the reference in
docs/contacts.md says, errors point at a column, and a segment is evaluated when used."""

from __future__ import annotations

import json

import pytest
from conftest import FakeClock

from smsgate.queue import NotFound, Store
from smsgate.queue.segment_filter import SegmentError
from smsgate.queue.segments import SegmentExists

P1, P2, P3, P4 = "+12025550101", "+12025550102", "+525512345678", "+447911123456"


def _contact(store: Store, number: str, **columns: object) -> int:
    contact_id = store.contacts.ensure(number)
    for name, value in columns.items():
        value = json.dumps(value) if isinstance(value, list | dict) else value
        store.execute(f"UPDATE contacts SET {name} = ? WHERE id = ?", (value, contact_id))
    return contact_id


def _sent(store: Store, number: str, **kw: object) -> int:
    mid = store.outbox.enqueue(number, "Reminder: Monday 9 AM", **kw).id  # type: ignore[arg-type]
    for claim in store.outbox.claim("w", None, limit=10):
        for part in claim.pending_parts:
            store.outbox.mark_submitting(claim, part.part_no)
            store.outbox.mark_part_submitted(claim, part.part_no, tp_mr=1)
    return mid


@pytest.fixture
def people(store: Store, clock: FakeClock) -> Store:
    store.lists.create("news", actor="admin", keyword="NEWS")
    news = _contact(store, P1, tags=["diabetes", "heart-failure"], fields={"mrn": "123"}, language="es-MX",
                    timezone="America/Chicago")
    _contact(store, P2, tags=["Diabetes"], fields={"mrn": "456"}, language="en", timezone="America/New_York")
    _contact(store, P3, language="ES")
    _contact(store, P4)
    store.lists.add_members("news", [news], actor="admin", source="cli")
    store.consent.record(P1, "opt_in", scope="news", source="web form", actor="staff", evidence="form 1")
    store.consent.record(P3, "opt_in", scope="news", source="web form", actor="staff", evidence="form 2")
    store.consent.record(P3, "opt_out", scope="news", source="sms", actor="rules")
    asked = _sent(store, P1, expect={"YES": "confirmed"})
    _sent(store, P2, expect={"YES": "confirmed"})
    store.outbox.record_outcome(asked, "confirmed", inbound_id=None)
    store.consent.record(P2, "opt_out", source="sms", actor="rules")
    clock.advance(3 * 86400)
    store.inbox.store(modem_id=None, sender=P1, body="thanks", dedupe_key="in-1")
    clock.advance(86400)
    return store


def _selected(store: Store, where: str) -> set[str]:
    return {r["number"] for r in store.segments.contacts(store.segments.check(where), limit=100)}


@pytest.mark.parametrize(("where", "expected"), [
    ("tag:diabetes", {P1, P2}),
    ('tag:"heart-failure"', {P1}),
    ("field:mrn", {P1, P2}),
    ("field:mrn=456", {P2}),
    ("language:es", {P1, P3}),
    ("tz:america/chicago", {P1}),
    ("region:US", {P1, P2}),
    ("region:MX", {P3}),
    ("region:+44", {P4}),
    ("list:news", {P1}),
    ("consent:news", {P1}),
    ("consent:transactional", {P1, P3, P4}),
    ("optedout", {P2}),
    ("optedout:news", {P3}),
    ("replied:2d", {P1}),
    ("replied:12h", set()),
    ("texted:7d", {P1, P2}),
    ("texted:3d", set()),
    ("asked:1w", {P1, P2}),
    ("answered:confirmed", {P1}),
    ("answered:none", {P2}),
    ("NOT tag:diabetes", {P3, P4}),
    ("NOT language:es", {P2, P4}),
    ("(tag:diabetes OR region:MX) and not optedout", {P1, P3}),
    ("asked:7d AND NOT answered:confirmed", {P2}),
])
def test_each_term_selects_the_contacts_it_describes(people: Store, where: str, expected: set[str]) -> None:
    assert _selected(people, where) == expected


def test_the_issues_example_selects_diabetic_patients_who_have_not_replied_for_30_days(
        store: Store, clock: FakeClock) -> None:
    for number, tag in ((P1, "diabetes"), (P2, "diabetes"), (P4, "asthma")):
        store.contacts.update(number, tags=[tag])
    store.inbox.store(modem_id=None, sender=P1, body="ok", dedupe_key="in-1")
    clock.advance(10 * 86400)
    store.segments.create("diabetes-quiet", "tag:diabetes AND NOT replied:30d", actor="admin")
    preview = store.segments.preview("diabetes-quiet")
    assert (preview.count, [r["number"] for r in preview.rows]) == (1, [P2])


def test_a_segment_is_evaluated_when_used_not_when_saved(store: Store) -> None:
    store.segments.create("flu", "tag:flu", actor="admin")
    assert store.segments.preview("FLU").count == 0
    store.contacts.update(P1, tags=["flu"])
    assert store.segments.preview("flu").count == 1 and store.segments.numbers("flu") == [P1]


def test_erased_contacts_are_never_selected(store: Store) -> None:
    _contact(store, P1, tags=["flu"])
    _contact(store, P2, tags=["flu"], erased_at="2026-11-20T10:00:00.000000Z")
    store.segments.create("flu", "tag:flu", actor="admin")
    assert store.segments.numbers("flu") == [P1]


def test_the_preview_is_a_count_and_the_first_rows_by_number(store: Store) -> None:
    for n in range(12):
        store.contacts.update(f"+1202555{n:04d}", tags=["flu"])
    store.segments.create("flu", "tag:flu", actor="admin")
    preview = store.segments.preview("flu", limit=3)
    assert preview.count == 12 and [r["number"] for r in preview.rows] == ["+12025550000", "+12025550001",
                                                                           "+12025550002"]


@pytest.mark.parametrize(("where", "message"), [
    ("tag:diabetes AND NOT", "expected a term after NOT at column 21"),
    ("replied:30d AND", "expected a term, found the end at column 16"),
    ("tag:a tag:b", "expected AND, OR or the end before 'tag:b' at column 7"),
    ("(tag:a OR tag:b", "expected ')' to close the '(' at column 1, found the end at column 16"),
    ("tag:a)", "this ')' closes nothing at column 6"),
    ("tga:a", "unknown term 'tga:'"),
    ("diabetes", "'diabetes' is not a term"),
    ("replied:30", "'30' is not a time span; write a number and h, d or w, e.g. 30d at column 9"),
    ("tz:Mars/Olympus", "not a time zone"),
    ("region:XX", "not a region"),
    ('tag:"open', "this quote is never closed at column 5"),
    ("list:nope", "there is no list named 'nope'"),
    ("field:mrn=", "needs a value after '='"),
    ("   ", "the filter is empty"),
    ("tag:a OR", "expected a term, found the end"),
    ("AND tag:a", "expected a term, found 'AND' (AND joins two terms) at column 1"),
    ("NOT " * 30 + "tag:a", "nested more than"),
])
def test_a_bad_filter_is_refused_with_the_column_it_went_wrong_at(store: Store, where: str, message: str) -> None:
    with pytest.raises(SegmentError, match="segment filter: ") as raised:
        store.segments.create("s", where, actor="admin")
    assert message in str(raised.value)
    assert store.segments.all() == []


def test_no_value_reaches_the_sql_as_text(store: Store) -> None:
    where = "tag:\"x') OR 1=1 --\" OR field:\"a' OR '1'='1\"=1"
    sql, params = store.segments.check(where).to_sql(store, store.clock())
    assert "1=1" not in sql and "'1'='1" not in sql
    assert "x') OR 1=1 --" in params
    assert store.segments.count(store.segments.check(where)) == 0


def test_a_segment_is_saved_replaced_and_deleted_with_an_audit_trail(store: Store) -> None:
    store.segments.create("Recall", "tag:recall", actor="admin", description="due a recall visit")
    with pytest.raises(SegmentExists, match="--replace"):
        store.segments.create("recall", "tag:other", actor="admin")
    store.segments.create("recall", "tag:recall AND region:US", actor="admin", replace=True)
    assert store.segments.require("recall").filter == "tag:recall AND region:US"
    store.segments.delete("recall", actor="admin")
    with pytest.raises(NotFound, match="smsgate segments list"):
        store.segments.preview("recall")
    actions = [e["action"] for e in store.audit.entries(action_prefix="segment.")]
    assert sorted(actions) == ["segment.create", "segment.delete", "segment.replace"]
