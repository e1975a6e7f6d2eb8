"""Contacts in the store: one per number, values checked once for every writer, found by name or number,
and erased on request without losing what the law needs."""

from __future__ import annotations

import json
import sqlite3

import pytest
from conftest import FakeClock

from smsgate.names import display_number, label, safe_text
from smsgate.queue import NotFound, Store
from smsgate.queue.contacts import FIELD_VALUE_MAX, NAME_MAX, NOTES_MAX, ContactError, ContactValues
from smsgate.queue.erasure import MARKER
from smsgate.queue.inbox import inbound_key

ZOE = "+12025550123"


@pytest.fixture
def us(db_path, clock: FakeClock):  # type: ignore[no-untyped-def]
    s = Store.open(db_path, clock=clock, default_region="US")
    yield s
    s.close()


def zoe(store: Store, **extra: object) -> None:
    store.contacts.save(ZOE, ContactValues(first_name="Zoë", last_name="Núñez", **extra), actor="test")  # type: ignore[arg-type]


def test_one_contact_per_number_however_the_number_is_written(us: Store) -> None:
    for written in ("(202) 555-0123", "202-555-0123", "+1 202 555 0123", ZOE):
        us.contacts.save(written, ContactValues(first_name="Zoë"), actor="test")
    assert us.contacts.count() == 1
    assert us.contacts.require("202.555.0123").number == ZOE


def test_adding_the_same_contact_twice_changes_nothing_the_second_time(us: Store) -> None:
    first = us.contacts.save(ZOE, ContactValues(first_name="Zoë", last_name="Núñez", add_tags=("vip",)), actor="a")
    again = us.contacts.save(ZOE, ContactValues(first_name="Zoë", last_name="Núñez", add_tags=("VIP",)), actor="a")
    assert first.created and not again.created and again.changed == ()
    assert again.contact == first.contact
    assert [e["action"] for e in us.audit.entries(action_prefix="contact.")] == ["contact.add"]


def test_a_new_contact_needs_a_phone_number(us: Store) -> None:
    with pytest.raises(ContactError, match="not a valid phone number"):
        us.contacts.save("555-12", ContactValues(first_name="X"), actor="test")
    assert us.contacts.count() == 0


def test_none_leaves_a_value_and_blank_text_clears_it(us: Store) -> None:
    zoe(us, notes="prefers mornings")
    us.contacts.save(ZOE, ContactValues(first_name=None, notes="  "), actor="test")
    contact = us.contacts.require(ZOE)
    assert (contact.first_name, contact.notes, contact.name) == ("Zoë", None, "Zoë Núñez")


def test_fields_are_merged_and_a_null_value_removes_one(us: Store) -> None:
    zoe(us, fields={"mrn": "A-1042", "date_of_birth_year": 1980})
    us.contacts.save(ZOE, ContactValues(fields={"MRN": None, "insurer": "Acme"}), actor="test")
    assert us.contacts.require(ZOE).fields == {"date_of_birth_year": 1980, "insurer": "Acme"}


def test_a_language_name_becomes_its_code_and_a_code_is_written_the_standard_way(us: Store) -> None:
    for given, stored in (("Spanish", "es"), ("Español", "es"), ("pt_br", "pt-BR"), ("zh-hant-tw", "zh-Hant-TW")):
        us.contacts.save(ZOE, ContactValues(language=given), actor="test")
        assert us.contacts.require(ZOE).language == stored


def test_the_time_zone_is_the_one_set_else_the_numbers(us: Store) -> None:
    zoe(us)
    assert us.contacts.require(ZOE).timezones() == ["America/New_York"]
    us.contacts.save(ZOE, ContactValues(timezone="america/chicago"), actor="test")
    contact = us.contacts.require(ZOE)
    assert contact.timezone == "America/Chicago" and contact.timezones() == ["America/Chicago"]


@pytest.mark.parametrize(("values", "message"), [
    ({"first_name": "x" * (NAME_MAX + 1)}, "first_name has 101 characters; the limit is 100"),
    ({"notes": "x" * (NOTES_MAX + 1)}, "notes has 2001 characters"),
    ({"fields": {"mrn": "x" * (FIELD_VALUE_MAX + 1)}}, "field 'mrn' has 501 characters"),
    ({"fields": {"date of birth": "1980"}}, "cannot be a field name"),
    ({"fields": {"nested": {"a": 1}}}, "must be text, a number"),
    ({"add_tags": ("two words",)}, "cannot be a tag"),
    ({"language": "Klingon!"}, "is not a language"),
    ({"timezone": "Mars/Olympus_Mons"}, "is not a time zone"),
])
def test_a_value_out_of_bounds_is_refused_with_what_would_do_and_nothing_is_stored(
        us: Store, values: dict[str, object], message: str) -> None:
    with pytest.raises(ContactError, match=message):
        us.contacts.save(ZOE, ContactValues(**values), actor="test")  # type: ignore[arg-type]
    assert us.contacts.count() == 0


def test_too_many_fields_or_tags_are_refused(us: Store) -> None:
    zoe(us, fields={f"f{i}": "v" for i in range(30)})
    with pytest.raises(ContactError, match="at most 30 fields"):
        us.contacts.save(ZOE, ContactValues(fields={"one_more": "v"}), actor="test")


def test_search_ignores_case_and_accents_and_reads_digits_as_a_number(us: Store) -> None:
    zoe(us)
    us.contacts.save("+12025550199", ContactValues(first_name="Nuno", last_name="Silva"), actor="test")
    assert [c.number for c in us.contacts.search(q="NUNEZ")] == [ZOE]
    assert [c.number for c in us.contacts.search(q="núñez zoe")] == [ZOE]
    assert [c.number for c in us.contacts.search(q="555-0123")] == [ZOE]
    assert [c.number for c in us.contacts.search(q="nu")] == ["+12025550199", ZOE]
    us.contacts.save("+12025550198", ContactValues(first_name="Søren", last_name="Ørsted"), actor="test")
    assert [c.number for c in us.contacts.search(q="soren orsted")] == ["+12025550198"]
    assert us.contacts.count(q="nobody") == 0


def test_the_tag_filter_matches_whole_tags_only(us: Store) -> None:
    zoe(us, add_tags=("new_patient",))
    us.contacts.save("+12025550199", ContactValues(first_name="Nuno", add_tags=("newxpatient", "vip")), actor="t")
    assert [c.number for c in us.contacts.search(tag="new_patient")] == [ZOE]
    assert [c.number for c in us.contacts.search(tag="VIP")] == ["+12025550199"]
    assert us.contacts.search(tag="new") == []


def test_the_list_filter_finds_members(us: Store) -> None:
    zoe(us)
    us.contacts.save("+12025550199", ContactValues(first_name="Nuno"), actor="t")
    us.lists.create("recall", actor="t")
    us.lists.add_members("recall", [us.contacts.require(ZOE).id], actor="t", source="cli")
    assert [c.number for c in us.contacts.search(list_name="Recall")] == [ZOE]


HOSTILE = ["<script>alert(1)</script>", "=cmd|' /C calc'!A0", "\u202eevil\u202c", "Bell\x07 \x1b[31mred",
           "{{7*7}}"]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_in_names_and_notes_is_stored_as_given(us: Store, text: str) -> None:
    us.contacts.save(ZOE, ContactValues(first_name=text, notes=text), actor="test")
    contact = us.contacts.require(ZOE)
    assert (contact.first_name, contact.notes) == (text, text)


def test_the_display_rule_is_name_then_the_number_as_its_country_writes_it() -> None:
    assert label("Zoë Núñez", ZOE) == "Zoë Núñez (+1 202-555-0123)"
    assert label(None, ZOE) == display_number(ZOE) == "+1 202-555-0123"
    assert label("  ", "PHARMACY") == "PHARMACY"


def test_direction_overrides_and_control_characters_are_not_shown() -> None:
    shown = label("\u202eevil\u202c\x1b[31m", ZOE)
    assert "\u202e" not in shown and "\x1b" not in shown and shown.startswith("\ufffdevil\ufffd\ufffd[31m")
    assert safe_text("Zoë\tNúñez\n") == "Zoë\ufffdNúñez\ufffd"


# --- erasure ------------------------------------------------------------------------------------------------

def _history(store: Store) -> tuple[int, int]:
    """A patient who texted in, was answered, got a forward to staff, and has a reminder still queued."""
    modem = store.modems.upsert("m1", state="ready")
    inbound, _ = store.inbox.store(modem_id=modem, sender=ZOE, body="Zoë here, my knee still hurts",
                                   dedupe_key=inbound_key("m1", "1"), pdu="0791ABCDEF")
    store.outbox.enqueue(ZOE, "Hi Zoë, see you Monday", kind="reply", in_reply_to=inbound.id)
    store.outbox.enqueue("+12025550100", "Fwd from Zoë: my knee still hurts", kind="reply", in_reply_to=inbound.id,
                         source="forward")
    store.webhooks.add("http://hooks.example/in", "inbound",
                       {"event": "inbound", "data": {"from": ZOE, "text": "Zoë here, my knee still hurts"}})
    return modem, inbound.id


def test_erasure_removes_the_person_and_keeps_the_number_consent_and_audit_times(us: Store) -> None:
    zoe(us, language="es", timezone="America/Chicago", notes="knee", fields={"mrn": "A-1042"}, add_tags=("vip",))
    us.consent.record(ZOE, "opt_in", scope="newsletter", source="import", actor="t", evidence="paper form")
    before = [(e["id"], e["at"], e["actor"], e["action"]) for e in us.audit.entries()]
    result = us.erasure.erase("(202) 555-0123", actor="cli")
    contact = us.contacts.require(ZOE)
    assert (contact.first_name, contact.last_name, contact.name, contact.language, contact.timezone,
            contact.notes, contact.fields, contact.tags) == (None, None, None, None, None, None, {}, ())
    assert contact.erased_at == result.erased_at
    assert [(e["event"], e["scope"], e["evidence"]) for e in us.consent.history(ZOE)] == [
        ("opt_in", "newsletter", "paper form")]
    after = {e["id"]: (e["id"], e["at"], e["actor"], e["action"]) for e in us.audit.entries()}
    assert [a for a in before if after[a[0]] != a] == []
    assert us.contacts.search(q="nunez") == []


def test_erasure_takes_the_personal_values_out_of_the_audit_entries_that_recorded_them(us: Store) -> None:
    zoe(us, notes="knee", fields={"mrn": "A-1042"})
    us.erasure.erase(ZOE, actor="cli")
    rows = us.query("SELECT action, detail FROM audit_log WHERE subject_type = 'contact' ORDER BY id")
    text = json.dumps(rows, ensure_ascii=False)
    for personal in ("Zoë", "Núñez", "knee", "A-1042"):
        assert personal not in text
    add, erase = rows[0], rows[-1]
    assert add["action"] == "contact.add"
    assert json.loads(add["detail"]) == {"erased": True, "number": ZOE,
                                         "changes": ["fields", "first_name", "last_name", "notes"]}
    assert erase["action"] == "contact.erase" and json.loads(erase["detail"])["number"] == ZOE


def test_the_audit_log_still_refuses_any_change_that_is_not_an_erasure(us: Store) -> None:
    zoe(us)
    for sql in ("UPDATE audit_log SET detail = '{}'", "UPDATE audit_log SET actor = 'someone else'",
                "UPDATE audit_log SET at = '2000-01-01', detail = '{\"erased\": true}'", "DELETE FROM audit_log"):
        with pytest.raises(sqlite3.IntegrityError, match="audit_log is append-only"):
            us.execute(sql)


def test_erasure_replaces_the_words_of_every_message_both_ways(us: Store) -> None:
    zoe(us)
    _history(us)
    result = us.erasure.erase(ZOE, actor="cli")
    assert result.received_erased == 1 and result.sent_erased == 2
    assert {r["body"] for r in us.query("SELECT body FROM inbound")} == {MARKER}
    assert us.query("SELECT pdu FROM inbound") == [{"pdu": None}]
    assert {r["body"] for r in us.query("SELECT body FROM messages")} == {MARKER}
    payload = json.loads(us.query("SELECT payload FROM webhook_deliveries")[0]["payload"])
    assert payload["data"] == {"from": ZOE, "text": MARKER}


def test_erasure_cancels_what_was_still_waiting_so_the_marker_is_never_sent(us: Store) -> None:
    zoe(us)
    queued = us.outbox.enqueue(ZOE, "Reminder for Zoë", kind="transactional")
    result = us.erasure.erase(ZOE, actor="cli")
    assert result.cancelled == 1
    assert us.outbox.get(queued.id).state.value == "cancelled"


def test_erasure_takes_the_contact_off_every_list(us: Store) -> None:
    zoe(us)
    contact_id = us.contacts.require(ZOE).id
    for name in ("recall", "newsletter"):
        us.lists.create(name, actor="t")
        us.lists.add_members(name, [contact_id], actor="t", source="cli")
    result = us.erasure.erase(ZOE, actor="cli")
    assert result.lists_left == ("newsletter", "recall")
    assert us.lists.lists_of(contact_id) == []


def test_a_text_after_erasure_comes_in_on_a_fresh_nameless_contact(us: Store) -> None:
    zoe(us, add_tags=("vip",))
    _history(us)
    us.erasure.erase(ZOE, actor="cli")
    later, _ = us.inbox.store(modem_id=None, sender=ZOE, body="I am back", dedupe_key=inbound_key("m1", "2"))
    contact = us.contacts.require(ZOE)
    assert contact.name is None and contact.tags == () and later.contact_id == contact.id
    assert us.inbox.get(later.id).body == "I am back"


def test_erasing_a_number_with_no_contact_says_so(us: Store) -> None:
    with pytest.raises(NotFound, match="no contact"):
        us.erasure.erase(ZOE, actor="cli")


def test_contacts_named_before_names_were_searchable_are_found_after_the_migration(db_path) -> None:  # type: ignore[no-untyped-def]
    from sqlite_utils import Database

    from smsgate.queue.schema import migrations

    db = Database(str(db_path))
    migrations.apply(db, stop_before="m071_contact_search_and_erasure")
    db.execute("INSERT INTO contacts (number, name, created_at, updated_at) VALUES ('+12025550123', 'Zoë Núñez',"
               " '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')")
    db.conn.commit()
    db.close()
    with Store.open(db_path) as store:
        assert [c.number for c in store.contacts.search(q="nunez")] == [ZOE]
