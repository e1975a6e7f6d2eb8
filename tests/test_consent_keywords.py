"""What a patient's STOP, START, STOP <LIST> and JOIN texts do to consent per purpose, through the rules
engine and a real store, as the daemon drives it."""

from __future__ import annotations

import pytest
from keywords_support import PATIENT, make_config, queued_to, receive

from smsgate.config import ComplianceConfig
from smsgate.keywords import RulesEngine, Vocabulary, build_rule
from smsgate.queue import ConsentRefused, Kind, Store


@pytest.fixture
def engine() -> RulesEngine:
    return RulesEngine(make_config(compliance={"transactional_words": ["REMINDERS"]}))


@pytest.fixture
def modem(store: Store) -> int:
    return store.modems.upsert("front-desk", state="ready")


@pytest.fixture
def newsletter(store: Store) -> str:
    store.lists.create("newsletter", actor="admin", keyword="NEWS")
    store.lists.create("flu", actor="admin", keyword="FLU")
    return "newsletter"


def refusal(store: Store, kind: Kind, list_name: str | None = None) -> str | None:
    found = store.consent.may_send(PATIENT, kind, list_name)
    return found.code if found else None


def test_a_bare_start_from_an_unknown_number_does_not_unlock_marketing(
        store: Store, engine: RulesEngine, modem: int, newsletter: str) -> None:
    _, out = receive(store, engine, PATIENT, "START", modem)
    assert out.action == "opt_in" and out.consent_event == "restore"
    assert [(e["event"], e["scope"]) for e in store.consent.history(PATIENT)] == [("restore", "all")]
    with pytest.raises(ConsentRefused, match="has not opted in to 'newsletter'"):
        store.outbox.enqueue(PATIENT, "Spring offer", kind=Kind.MARKETING, scope=newsletter)


def test_a_join_keyword_opts_in_to_its_list_puts_the_number_on_it_and_lets_marketing_to_it_go(
        store: Store, engine: RulesEngine, modem: int) -> None:
    rule = build_rule("JOIN", vocabulary=Vocabulary(ComplianceConfig()), reply="Welcome!", opt_in_scope="Newsletter")
    store.keywords.add(rule.keyword, aliases=rule.aliases, reply=rule.reply, opt_in_scope=rule.opt_in_scope,
                       actor="admin")
    _, out = receive(store, engine, PATIENT, "join", modem)
    assert (out.consent_event, out.consent_scope) == ("opt_in", "newsletter")
    assert [m["number"] for m in store.lists.members("newsletter")] == [PATIENT]
    assert store.lists.members("newsletter")[0]["source"] == "keyword"
    assert store.outbox.enqueue(PATIENT, "Spring offer", kind=Kind.MARKETING, scope="newsletter").created
    with pytest.raises(ConsentRefused, match="must name its list"):
        store.outbox.enqueue(PATIENT, "Spring offer", kind=Kind.MARKETING)


def test_stop_with_a_list_keyword_leaves_that_list_only(
        store: Store, engine: RulesEngine, modem: int, newsletter: str) -> None:
    for name in ("newsletter", "flu"):
        store.consent.record(PATIENT, "opt_in", scope=name, source="web form", actor="staff", evidence="form 7")
    _, out = receive(store, engine, PATIENT, "Stop news", modem)
    assert (out.action, out.consent_event, out.consent_scope) == ("opt_out", "opt_out", "newsletter")
    assert queued_to(store, PATIENT)[-1]["body"] == ("Rivera Clinic: you will get no more newsletter messages from "
                                                     "this number. Reply START NEWS to get them again.")
    assert refusal(store, Kind.MARKETING, "newsletter") == "list_opted_out"
    assert refusal(store, Kind.MARKETING, "flu") is None
    assert refusal(store, Kind.TRANSACTIONAL) is None


def test_start_with_a_list_keyword_after_a_stop_restores_that_list_and_nothing_else(
        store: Store, engine: RulesEngine, modem: int, newsletter: str) -> None:
    for name in ("newsletter", "flu"):
        store.consent.record(PATIENT, "opt_in", scope=name, source="web form", actor="staff", evidence="form 7")
    receive(store, engine, PATIENT, "STOP", modem)
    assert refusal(store, Kind.MARKETING, "newsletter") == "opted_out"
    _, out = receive(store, engine, PATIENT, "start NEWS", modem)
    assert (out.consent_event, out.consent_scope) == ("restore", "newsletter")
    assert "you will get newsletter messages again" in queued_to(store, PATIENT)[-1]["body"]
    assert refusal(store, Kind.MARKETING, "newsletter") is None
    assert refusal(store, Kind.MARKETING, "flu") == "opted_out"
    assert refusal(store, Kind.TRANSACTIONAL) == "opted_out"


def test_start_for_a_list_never_joined_records_nothing_and_says_so(
        store: Store, engine: RulesEngine, modem: int, newsletter: str) -> None:
    _, out = receive(store, engine, PATIENT, "START NEWS", modem)
    assert out.action == "opt_in" and out.consent_event is None
    assert store.consent.history(PATIENT) == []
    assert "you have not signed up for newsletter messages" in queued_to(store, PATIENT)[-1]["body"]
    assert refusal(store, Kind.MARKETING, "newsletter") == "no_opt_in"


def test_a_bare_start_restores_what_stop_covered_but_not_a_list_left_on_its_own(
        store: Store, engine: RulesEngine, modem: int, newsletter: str) -> None:
    for name in ("newsletter", "flu"):
        store.consent.record(PATIENT, "opt_in", scope=name, source="web form", actor="staff", evidence="form 7")
    for text in ("STOP NEWS", "STOP", "START"):
        receive(store, engine, PATIENT, text, modem)
    assert refusal(store, Kind.MARKETING, "flu") is None
    assert refusal(store, Kind.TRANSACTIONAL) is None
    assert refusal(store, Kind.MARKETING, "newsletter") == "list_opted_out"


def test_stop_reminders_stops_transactional_messages_only_and_start_reminders_brings_them_back(
        store: Store, engine: RulesEngine, modem: int, newsletter: str) -> None:
    store.consent.record(PATIENT, "opt_in", scope="newsletter", source="web form", actor="staff", evidence="form 7")
    _, out = receive(store, engine, PATIENT, "STOP REMINDERS", modem)
    assert (out.consent_event, out.consent_scope) == ("opt_out", "transactional")
    assert "no more reminders messages" in queued_to(store, PATIENT)[-1]["body"]
    assert "Reply START REMINDERS" in queued_to(store, PATIENT)[-1]["body"]
    assert refusal(store, Kind.TRANSACTIONAL) == "transactional_opted_out"
    assert refusal(store, Kind.REPLY) == "transactional_opted_out"
    assert refusal(store, Kind.MARKETING, "newsletter") is None
    receive(store, engine, PATIENT, "start reminders", modem)
    assert refusal(store, Kind.TRANSACTIONAL) is None


def test_stop_all_stays_a_global_stop_whatever_the_lists_are_called(
        store: Store, engine: RulesEngine, modem: int) -> None:
    store.lists.create("everyone", actor="admin", keyword="ALL")
    _, out = receive(store, engine, PATIENT, "STOP ALL", modem)
    assert out.consent_scope == "all"
    assert refusal(store, Kind.TRANSACTIONAL) == "opted_out"


def test_an_unknown_word_after_stop_is_flagged_for_staff_not_guessed(
        store: Store, engine: RulesEngine, modem: int, newsletter: str) -> None:
    _, out = receive(store, engine, PATIENT, "STOP NEWSLETTERS", modem)
    assert out.action == "inbox" and out.likely_opt_out
    assert store.consent.history(PATIENT) == []
