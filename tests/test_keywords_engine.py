"""The rules engine against a real store: every inbound behaviour of issue 6, as the daemon drives it
(store the inbound and run the rules in one transaction, then claim through the gate)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import partial

import pytest
from keywords_support import PATIENT, PATIENT2, STAFF, make_config, queued_to, receive, send_all

from smsgate.config import ConfigError
from smsgate.keywords import RulesEngine, Vocabulary, build_rule, make_gate, parse_expect, parse_word_map
from smsgate.queue import Kind, OptedOut, Priority, State, Store, views

MONDAY_NOON_NY = datetime(2026, 11, 23, 17, 0, tzinfo=UTC)


@pytest.fixture
def config():  # type: ignore[no-untyped-def]
    return make_config()


@pytest.fixture
def engine(config) -> RulesEngine:  # type: ignore[no-untyped-def]
    return RulesEngine(config)


@pytest.fixture
def modem(store: Store) -> int:
    return store.modems.upsert("front-desk", state="ready")


def add_rule(store: Store, keyword: str, **kw) -> None:  # type: ignore[no-untyped-def]
    from smsgate.config import ComplianceConfig

    rule = build_rule(keyword, vocabulary=Vocabulary(ComplianceConfig()), default_region="US", **kw)
    store.keywords.add(rule.keyword, aliases=rule.aliases, reply=rule.reply, tag=rule.tag,
                       opt_in_scope=rule.opt_in_scope, route=rule.route, forward_to=rule.forward_to,
                       webhook=rule.webhook, hours=rule.hours, menu=rule.menu)


# -- opt-out ------------------------------------------------------------------------------------------

def test_stop_records_the_opt_out_and_queues_one_compliance_confirmation_from_the_same_sim(
        store: Store, engine: RulesEngine, modem: int) -> None:
    inbound, out = receive(store, engine, PATIENT, "Stop please!!", modem)
    assert out.action == "opt_out" and out.keyword == "STOP"
    status = store.consent.status(PATIENT)
    assert status.opted_out and status.last_source == "sms"
    ledger = store.consent.history(PATIENT)
    assert ledger[-1]["inbound_id"] == inbound.id and "Stop please!!" in ledger[-1]["evidence"]
    (reply,) = queued_to(store, PATIENT)
    assert reply["kind"] == Kind.COMPLIANCE and reply["priority"] == Priority.REPLY
    assert reply["required_modem_id"] == modem and reply["in_reply_to"] == inbound.id
    assert "no more messages" in reply["body"] and "Rivera Clinic" in reply["body"]
    row = store.query("SELECT handled_at, keyword, action FROM inbound WHERE id = ?", (inbound.id,))[0]
    assert row["handled_at"] and row["keyword"] == "STOP" and row["action"] == "opt_out"


def test_processing_the_same_inbound_twice_queues_one_reply_and_one_ledger_event(
        store: Store, engine: RulesEngine, modem: int) -> None:
    inbound, _ = receive(store, engine, PATIENT, "STOP", modem)
    again = engine.process(store, inbound)
    assert again.action == "already_handled"
    assert len(queued_to(store, PATIENT)) == 1
    assert len(store.consent.history(PATIENT)) == 1


def test_a_rolled_back_transaction_loses_both_the_inbound_and_the_opt_out(
        store: Store, engine: RulesEngine, modem: int) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        inbound, _ = store.inbox.store(modem_id=modem, sender=PATIENT, body="STOP", dedupe_key="x")
        engine.process(store, inbound)
        raise RuntimeError("daemon crashed before commit")
    assert store.consent.history(PATIENT) == [] and queued_to(store, PATIENT) == []


def test_stop_committed_means_a_campaign_queued_earlier_is_never_handed_out(
        store: Store, engine: RulesEngine, config, modem: int, clock) -> None:  # type: ignore[no-untyped-def]
    clock.now = MONDAY_NOON_NY
    campaign = store.outbox.enqueue_many([{"to": PATIENT, "text": "Flu shots this week!"},
                                         {"to": PATIENT2, "text": "Flu shots this week!"}], campaign="flu")
    receive(store, engine, PATIENT, "stop", modem)
    claims = send_all(store, config, modem)
    sent = {(c.message.to_number, c.message.kind) for c in claims}
    assert sent == {(PATIENT, Kind.COMPLIANCE), (PATIENT2, Kind.BULK)}
    assert store.outbox.get(campaign[0]).state == State.CANCELLED
    assert "opted out" in (store.outbox.get(campaign[0]).last_error or "")


def test_a_reply_overtakes_a_queued_campaign(store: Store, engine: RulesEngine, config, modem: int,  # type: ignore[no-untyped-def]
                                             clock) -> None:
    clock.now = MONDAY_NOON_NY
    store.outbox.enqueue_many(
        [{"to": f"+1312555{n:04d}", "text": "Newsletter"} for n in range(200, 230)], campaign="news"
    )
    clock.advance(5)
    receive(store, engine, PATIENT, "HELP", modem)
    first = store.outbox.claim("w", modem, limit=1, gate=partial(make_gate(config), store))
    assert first[0].message.to_number == PATIENT and first[0].message.kind == Kind.COMPLIANCE


def test_stop_reminders_is_a_scoped_opt_out_that_leaves_other_messages(store: Store, modem: int, clock) -> None:  # type: ignore[no-untyped-def]
    clock.now = MONDAY_NOON_NY
    config = make_config(compliance={"list_scopes": ["reminders"]})
    engine = RulesEngine(config)
    reminder = store.outbox.enqueue(PATIENT, "Reminder: tomorrow 3 PM", scope="reminders").id
    _, out = receive(store, engine, PATIENT, "STOP REMINDERS", modem)
    assert (out.action, out.consent_scope) == ("opt_out", "reminders")
    assert any("reminders" in m["body"] for m in queued_to(store, PATIENT))
    with pytest.raises(OptedOut, match="opted out of 'reminders'"):
        store.outbox.enqueue(PATIENT, "Reminder: Friday 9 AM", scope="reminders")
    result = store.outbox.enqueue(PATIENT, "Your lab results are ready, call us").id
    claimed = {c.message.id for c in send_all(store, config, modem)}
    assert result in claimed and reminder not in claimed
    assert store.outbox.get(reminder).state == State.CANCELLED


def test_start_opts_back_in_with_a_confirmation(store: Store, engine: RulesEngine, modem: int) -> None:
    receive(store, engine, PATIENT, "STOP", modem)
    _, out = receive(store, engine, PATIENT, "Start", modem)
    assert out.action == "opt_in" and not store.consent.status(PATIENT).opted_out
    bodies = [m["body"] for m in queued_to(store, PATIENT)]
    assert any("subscribed again" in b for b in bodies)


def test_help_answers_even_an_opted_out_number_with_clinic_contact_and_stop_instructions(
    store: Store, engine: RulesEngine, modem: int
) -> None:
    receive(store, engine, PATIENT, "STOP", modem)
    _, out = receive(store, engine, PATIENT, "help", modem)
    (reply,) = [r for r in out.replies if r.purpose == "help"]
    assert reply.kind == Kind.COMPLIANCE
    assert "Rivera Clinic" in reply.text and "+12125550100" in reply.text and "STOP" in reply.text


def test_an_opt_out_in_answer_to_a_reminder_is_recorded_on_the_reminder(
    store: Store, engine: RulesEngine, config, modem: int, clock
) -> None:  # type: ignore[no-untyped-def]
    clock.now = MONDAY_NOON_NY
    rid = store.outbox.enqueue(PATIENT, "Reminder. Reply YES to confirm", expect={"YES": "confirmed"}).id
    send_all(store, config, modem)
    _, out = receive(store, engine, PATIENT, "STOP", modem)
    assert out.answered_message_id == rid
    assert store.outbox.get(rid).outcome == "opted_out"


# -- likely opt-outs, inbox, routing ------------------------------------------------------------------


def test_opt_out_wording_is_flagged_for_staff_but_not_acted_on(store: Store, engine: RulesEngine, modem: int) -> None:
    inbound, out = receive(store, engine, PATIENT, "please don't text me anymore", modem)
    assert out.likely_opt_out and out.action == "inbox"
    assert not store.consent.status(PATIENT).opted_out
    row = store.query("SELECT likely_opt_out FROM inbound WHERE id = ?", (inbound.id,))[0]
    assert row["likely_opt_out"] == 1
    assert store.conversations.get(inbound.conversation_id)["likely_opt_out"] == 1  # type: ignore[arg-type]


def test_unrecognised_text_lands_in_the_shared_inbox_and_is_never_dropped(
    store: Store, engine: RulesEngine, modem: int
) -> None:
    inbound, out = receive(store, engine, PATIENT, "Can I bring my daughter too?", modem)
    assert out.action == "inbox" and out.replies == []
    conv = store.conversations.get(inbound.conversation_id)  # type: ignore[arg-type]
    assert conv["team"] is None and conv["unread"] == 1 and conv["status"] == "open"
    history = store.conversations.history(conv["id"])
    assert history[-1]["body"] == "Can I bring my daughter too?"


def test_custom_keyword_replies_with_first_name_tags_opts_in_routes_forwards_and_calls_webhook(
    store: Store, engine: RulesEngine, modem: int
) -> None:
    add_rule(
        store,
        "JOIN",
        aliases=["SIGN UP"],
        reply="Hi {first_name}, welcome to {clinic} news!",
        tag="newsletter",
        opt_in_scope="marketing",
        route="front",
        forward_to=STAFF,
        webhook="https://example.org/hook",
    )
    store.contacts.update(PATIENT, first_name="Ana")
    inbound, out = receive(store, engine, PATIENT, "sign-up please", modem)
    assert out.action == "keyword" and out.keyword == "JOIN"
    reply = next(r for r in out.replies if r.purpose == "keyword")
    assert reply.text == "Hi Ana, welcome to Rivera Clinic news!" and reply.kind == Kind.REPLY
    assert store.outbox.get(reply.message_id).required_modem_id == modem
    assert "newsletter" in store.contacts.get(PATIENT)["tags"]  # type: ignore[index]
    assert store.consent.status(PATIENT, "marketing").opted_in
    assert store.conversations.get(inbound.conversation_id)["team"] == "front"  # type: ignore[arg-type]
    fwd = next(r for r in out.replies if r.purpose == "forward")
    assert fwd.to == STAFF and "sign-up please" in fwd.text
    hook = store.query("SELECT url, event, payload FROM webhook_deliveries")[0]
    body = json.loads(hook["payload"])
    assert hook["url"] == "https://example.org/hook" and hook["event"] == body["event"] == "keyword"
    assert body["data"]["keyword"] == "JOIN" and body["data"]["modem"] == "front-desk"
    assert body["data"]["inbound_id"] == inbound.id and body["data"]["text"] == "sign-up please"
    assert views.keyword_hits(store)[("JOIN", "keyword")] == 1


def test_a_keyword_with_hours_applies_only_inside_them(store: Store, engine: RulesEngine, modem: int, clock) -> None:  # type: ignore[no-untyped-def]
    add_rule(store, "HOURS", reply="We are open now, call us", hours="Mon-Fri 08:00-18:00")
    clock.now = MONDAY_NOON_NY
    assert receive(store, engine, PATIENT, "hours", modem)[1].action == "keyword"
    clock.now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # Monday 21:00 New York
    _, out = receive(store, engine, PATIENT, "hours", modem)
    assert out.action == "inbox" and any("only active" in n for n in out.notes)


def test_a_menu_answer_routes_the_conversation_to_a_team(store: Store, engine: RulesEngine, modem: int) -> None:
    add_rule(store, "MENU", reply="Reply 1 for Billing, 2 for Support", menu={"1": "billing", "2": "support"})
    receive(store, engine, PATIENT, "menu", modem)
    inbound, out = receive(store, engine, PATIENT, "2", modem)
    assert (out.action, out.team) == ("menu", "support")
    conv = store.conversations.get(inbound.conversation_id)  # type: ignore[arg-type]
    assert conv["team"] == "support" and conv["menu"] is None
    assert receive(store, engine, PATIENT, "2", modem)[1].action == "inbox"  # the menu was answered


def test_after_hours_reply_is_sent_once_per_conversation_per_window(store: Store, modem: int, clock) -> None:  # type: ignore[no-untyped-def]
    config = make_config(
        hours={
            "after_hours_reply": "We're closed; we'll answer at 8 AM. Call 911 if urgent.",
            "after_hours_window_hours": 12.0,
        }
    )
    engine = RulesEngine(config)
    clock.now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)  # Monday 21:00 New York: closed
    _, first = receive(store, engine, PATIENT, "Is my prescription ready?", modem)
    assert [r.purpose for r in first.replies] == ["after-hours"] and first.action == "inbox"
    clock.advance(600)
    _, second = receive(store, engine, PATIENT, "Hello?", modem)
    assert second.replies == []
    clock.advance(13 * 3600)  # Tuesday 10:10: open, no reply
    assert receive(store, engine, PATIENT, "Still waiting", modem)[1].replies == []
    clock.now = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # Tuesday 21:00, window passed: once more
    assert [r.purpose for r in receive(store, engine, PATIENT, "?", modem)[1].replies] == ["after-hours"]


# -- guards on automatic replies -------------------------------------------------------------------


def test_loop_guard_caps_automatic_replies_per_number_per_window(store: Store, modem: int, clock) -> None:  # type: ignore[no-untyped-def]
    engine = RulesEngine(make_config(compliance={"auto_reply_limit": 3, "auto_reply_window_minutes": 10.0}))
    outs = [receive(store, engine, PATIENT, "help", modem)[1] for _ in range(5)]
    assert [len(o.replies) for o in outs] == [1, 1, 1, 0, 0]
    assert any("loop guard" in n for n in outs[-1].notes)
    clock.advance(11 * 60)
    assert len(receive(store, engine, PATIENT, "help", modem)[1].replies) == 1


def test_first_stop_confirmation_is_owed_even_past_the_loop_guard(store: Store, modem: int) -> None:
    engine = RulesEngine(make_config(compliance={"auto_reply_limit": 1}))
    receive(store, engine, PATIENT, "help", modem)
    _, out = receive(store, engine, PATIENT, "stop", modem)
    assert [r.purpose for r in out.replies] == ["opt-out-confirmation"]
    _, repeat = receive(store, engine, PATIENT, "stop", modem)
    assert repeat.replies == []


@pytest.mark.parametrize("sender", ["PHARMACY", "72345", "+72345"])
def test_no_automatic_replies_to_short_codes_or_alphanumeric_senders(
    store: Store, engine: RulesEngine, modem: int, sender: str
) -> None:
    _, out = receive(store, engine, sender, "HELP", modem)
    assert out.replies == [] and store.query("SELECT COUNT(*) AS n FROM messages")[0]["n"] == 0


def test_no_keyword_reply_to_an_opted_out_number(store: Store, engine: RulesEngine, modem: int) -> None:
    add_rule(store, "HOURS", reply="Mon-Fri 8-6")
    receive(store, engine, PATIENT, "STOP", modem)
    _, out = receive(store, engine, PATIENT, "hours", modem)
    assert out.replies == [] and any("opted out" in n for n in out.notes)


# -- expected answers ---------------------------------------------------------------------------------


def reminder(store: Store, config, modem: int, **kw) -> int:  # type: ignore[no-untyped-def]
    mid = store.outbox.enqueue(
        PATIENT,
        "Reminder: Dr Rivera 3:15 PM tomorrow. Reply YES to confirm, NO to cancel, 1 to reschedule",
        expect={"YES": "confirmed", "NO": "cancelled", "1": "reschedule"},
        follow_up={"YES": "See you then, {first_name}!"},
        **kw,
    ).id
    send_all(store, config, modem)
    return mid


def test_an_answer_records_the_outcome_on_the_reminder_and_queues_the_follow_up(
    store: Store, engine: RulesEngine, config, modem: int, clock
) -> None:  # type: ignore[no-untyped-def]
    clock.now = MONDAY_NOON_NY
    mid = reminder(store, config, modem)
    clock.advance(3600)
    inbound, out = receive(store, engine, PATIENT, "Yes please!", modem)
    assert (out.action, out.answered_message_id, out.answer_outcome) == ("answer", mid, "confirmed")
    row = store.query("SELECT outcome, outcome_at, answered_by FROM messages WHERE id = ?", (mid,))[0]
    assert row["outcome"] == "confirmed" and row["answered_by"] == inbound.id and row["outcome_at"]
    (follow,) = out.replies
    assert follow.text == "See you then, there!" and follow.kind == Kind.REPLY
    assert store.outbox.get(follow.message_id).required_modem_id == modem
    assert store.query("SELECT in_reply_to FROM inbound WHERE id = ?", (inbound.id,))[0]["in_reply_to"] == mid


@pytest.mark.parametrize("follow_up", ["confirmed=Thanks, see you!", "YES=Thanks, see you!"])
def test_a_follow_up_given_for_the_outcome_or_the_word_is_sent(
        store: Store, engine: RulesEngine, config, modem: int, clock, follow_up: str) -> None:  # type: ignore[no-untyped-def]
    clock.now = MONDAY_NOON_NY
    mid = store.outbox.enqueue(PATIENT, "Reply YES to confirm", expect=parse_expect("YES=confirmed,NO=cancelled"),
                               follow_up=parse_word_map((follow_up,))).id
    send_all(store, config, modem)
    clock.advance(60)
    _, out = receive(store, engine, PATIENT, "yep", modem)
    assert (out.answered_message_id, out.answer_outcome) == (mid, "confirmed")
    assert [r.text for r in out.replies] == ["Thanks, see you!"]


def test_answers_match_the_latest_question_and_only_inside_the_window(
    store: Store, engine: RulesEngine, config, modem: int, clock
) -> None:  # type: ignore[no-untyped-def]
    clock.now = MONDAY_NOON_NY
    old = reminder(store, config, modem)
    clock.advance(86400 * 2)  # past the daily cap, still inside the 72 h window
    new = reminder(store, config, modem)
    assert receive(store, engine, PATIENT, "n", modem)[1].answered_message_id == new
    assert store.outbox.get(old).outcome is None and store.outbox.get(new).outcome == "cancelled"
    clock.advance(73 * 3600)
    _, late = receive(store, engine, PATIENT, "yes", modem)
    assert late.action == "inbox" and late.answered_message_id is None


def test_a_non_answer_to_a_question_goes_to_the_inbox(
    store: Store,
    engine: RulesEngine,
    config,
    modem: int,  # type: ignore[no-untyped-def]
    clock,
) -> None:
    clock.now = MONDAY_NOON_NY
    mid = reminder(store, config, modem)
    _, out = receive(store, engine, PATIENT, "What should I bring?", modem)
    assert out.action == "inbox" and store.outbox.get(mid).outcome is None


def test_ratings_are_recorded_as_outcomes(store: Store, engine: RulesEngine, config, modem: int, clock) -> None:  # type: ignore[no-untyped-def]
    clock.now = MONDAY_NOON_NY
    ratings = {str(i): f"rating:{i}" for i in range(1, 6)}
    mid = store.outbox.enqueue(PATIENT, "How was your visit? Reply 1-5", expect=ratings).id
    send_all(store, config, modem)
    receive(store, engine, PATIENT, "5 stars!", modem)
    assert store.outbox.get(mid).outcome == "rating:5"


def test_a_reminder_that_never_went_out_cannot_be_answered(store: Store, engine: RulesEngine, modem: int) -> None:
    store.outbox.enqueue(PATIENT, "Reply YES", expect={"YES": "confirmed"})
    _, out = receive(store, engine, PATIENT, "yes", modem)
    assert out.action == "inbox"


# -- dry run and configuration ------------------------------------------------------------------------


def test_dry_run_shows_the_decision_and_writes_nothing(store: Store, engine: RulesEngine, modem: int) -> None:
    before = store.query(
        "SELECT (SELECT COUNT(*) FROM inbound) AS i, (SELECT COUNT(*) FROM messages) AS m,"
        " (SELECT COUNT(*) FROM consent_events) AS c, (SELECT COUNT(*) FROM audit_log) AS a"
    )
    out = engine.dry_run(store, PATIENT, "STOP")
    assert out.action == "opt_out" and out.replies and "STOP" in "\n".join(out.describe())
    after = store.query(
        "SELECT (SELECT COUNT(*) FROM inbound) AS i, (SELECT COUNT(*) FROM messages) AS m,"
        " (SELECT COUNT(*) FROM consent_events) AS c, (SELECT COUNT(*) FROM audit_log) AS a"
    )
    assert before == after


def test_bad_hours_in_the_configuration_are_a_config_error_naming_the_setting() -> None:
    with pytest.raises(ConfigError, match="Mon-Fri 08:00-18:00"):
        RulesEngine(make_config(hours={"business_hours": ["weekdays 9 to 5"]}))
    with pytest.raises(ConfigError, match="not a field"):
        RulesEngine(make_config(compliance={"help_reply": "{secret}"}))


@pytest.mark.parametrize("reply", ["Hours:\tMon-Fri 9-5", "Call us\x00", "Hi \ud83d there"])
def test_a_rule_whose_reply_could_never_be_sent_is_refused_when_it_is_made(store: Store, reply: str) -> None:
    from smsgate.keywords import RuleError

    with pytest.raises(RuleError, match="--reply cannot be sent as an SMS"):
        add_rule(store, "HOURS", reply=reply)
    assert store.keywords.all() == []


def test_a_rule_reply_with_line_breaks_is_kept(store: Store) -> None:
    add_rule(store, "HOURS", reply="Mon-Fri 9-5\nSat 9-12")
    assert [r["reply"] for r in store.keywords.all()] == ["Mon-Fri 9-5\nSat 9-12"]


def test_a_rule_tag_a_contact_cannot_hold_is_refused_when_the_rule_is_made() -> None:
    from smsgate.config import ComplianceConfig
    from smsgate.keywords import RuleError

    with pytest.raises(RuleError, match="--tag 'news letter'"):
        build_rule("JOIN", vocabulary=Vocabulary(ComplianceConfig()), tag="news letter")


def test_a_stored_rule_whose_tag_a_contact_cannot_hold_still_lets_the_text_be_handled(
        store: Store, engine: RulesEngine, modem: int) -> None:
    store.keywords.add("JOIN", reply="Welcome!", tag="news letter")  # written before tags were checked
    _, out = receive(store, engine, PATIENT, "join", modem)
    assert out.action == "keyword" and any("not tagged" in n for n in out.notes)
    assert store.contacts.require(PATIENT).tags == ()
    assert [r.purpose for r in out.replies] == ["keyword"]
