"""Every keyword behaviour of the rules engine, through the whole system: a simulated handset texts a
simulated modem (latency 0), the real daemon stores the message and runs the rules, and whatever the
rules decided arrives (or visibly does not arrive) at the handset. Each test checks both sides: what the
handset received and what the store recorded (consent ledger, outcomes, conversations, inbound flags,
audit).

The daemon reads the system clock, so tests that depend on the time of day (after-hours, quiet hours)
derive their settings from the current time at run time instead of pinning a clock.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from smsgate.clinic_time import ClinicClock
from smsgate.keywords import (
    BusinessHours,
    QuietHours,
    RulesEngine,
    Vocabulary,
    build_report,
    build_rule,
    make_gate,
    parse_expect,
    parse_menu,
    recipient_zones,
)
from smsgate.keywords.hours import zone
from smsgate.queue import OptedOut, views
from smsgate.queue.clock import parse_ts, ts
from smsgate.simulator import SimModemSpec
from smsgate.simulator.core import HandsetHandle
from smsgate.testing import Harness, harness, wait_until

MODEM = "+12125550100"
CLINIC = "Rivera Clinic"
CLINIC_PHONE = "+12125550111"
STAFF = "+12125550199"
STOP_CONFIRMATION = f"{CLINIC}: you will receive no more messages from this number. Reply START to resubscribe."
START_CONFIRMATION = f"{CLINIC}: you are subscribed again. Reply HELP for help, STOP to opt out."
HELP_REPLY = (f"{CLINIC}: appointment reminders and replies, a few msgs per month. Call {CLINIC_PHONE} for help. "
              "Reply STOP to opt out.")
SENT_STATES = ("submitted", "delivered")


@contextlib.contextmanager
def gateway(tmp_path: Any, *, hours: dict[str, Any] | None = None, compliance: dict[str, Any] | None = None,
            clinic_tz: str = "America/New_York", keywords: dict[str, dict[str, Any]] | None = None,
            start: bool = True, **modem_fields: Any) -> Iterator[Harness]:
    """One simulated modem and the daemon with the real rules engine and gate.

    Quiet hours and frequency caps are off unless a test sets them, so that a test's outcome never
    depends on the hour it runs at or on how many messages an earlier step sent to the same number.
    """
    with harness(tmp_path, [SimModemSpec("front", msisdn=MODEM)], start=False, config_kwargs=modem_fields) as h:
        cfg = h.config
        cfg.clinic.name, cfg.clinic.contact, cfg.clinic.timezone = CLINIC, CLINIC_PHONE, clinic_tz
        settings = {"quiet_kinds": [], "per_day": 0, "per_week": 0, **(hours or {})}
        for section, values in ((cfg.hours, settings), (cfg.compliance, compliance or {})):
            for key, value in values.items():
                assert hasattr(section, key), f"no setting {key}"
                setattr(section, key, value)
        for word, options in (keywords or {}).items():
            add_keyword(h, word, **options)
        if start:
            start_rules_daemon(h)
        yield h


def start_rules_daemon(h: Harness) -> None:
    h.start_daemon(on_inbound=RulesEngine(h.config).process, gate=make_gate(h.config))
    h.wait_ready()


def add_keyword(h: Harness, word: str, *, menu: str | None = None, **options: Any) -> None:
    """What `smsgate keywords add` does: validate with `build_rule`, store with `store.keywords.add`."""
    cfg = h.config
    rule = build_rule(word, vocabulary=Vocabulary(cfg.compliance), menu=parse_menu(menu),
                      default_region=cfg.clinic.region, **options)
    h.store.keywords.add(rule.keyword, aliases=rule.aliases, reply=rule.reply, tag=rule.tag,
                         opt_in_scope=rule.opt_in_scope, route=rule.route, forward_to=rule.forward_to,
                         webhook=rule.webhook, hours=rule.hours, menu=rule.menu, priority=rule.priority, actor="cli")


def text_in(h: Harness, phone: HandsetHandle, text: str, timeout: float = 15.0) -> dict[str, Any]:
    """The handset texts the clinic; returns the inbound row once the daemon stored it and ran the rules."""
    before = h.store.query("SELECT COALESCE(MAX(id), 0) AS m FROM inbound")[0]["m"]
    phone.send(MODEM, text)
    row: dict[str, Any] = wait_until(
        lambda: next(iter(h.store.query(
            "SELECT * FROM inbound WHERE id > ? AND sender = ? AND body = ? AND handled_at IS NOT NULL",
            (before, phone.number, text))), None),
        timeout, what=f"{text!r} from {phone.number} stored and handled")
    return row


def settle(h: Harness, timeout: float = 15.0) -> None:
    """Wait until every inbound message is handled and nothing due is waiting for, or on, a modem."""
    def quiet() -> bool:
        row = h.store.query(
            "SELECT (SELECT COUNT(*) FROM inbound WHERE handled_at IS NULL)"
            " + (SELECT COUNT(*) FROM messages WHERE state IN ('claimed', 'submitting')"
            "    OR (state = 'queued' AND due_at <= ?)) AS busy", (ts(h.store.clock()),))[0]
        return row["busy"] == 0
    wait_until(quiet, timeout, what="the daemon idle")


def sent_to(h: Harness, number: str) -> list[str]:
    """Bodies of messages handed to the network for `number`, in the order they went."""
    rows = h.store.query("SELECT body FROM messages WHERE to_number = ? AND state IN (?, ?)"
                         " ORDER BY submitted_at, id", (number, *SENT_STATES))
    return [r["body"] for r in rows]


def received_exactly(h: Harness, phone: HandsetHandle, expected: list[str]) -> None:
    """Once the daemon is idle, the handset holds exactly `expected`, and the store agrees it sent them."""
    settle(h)
    assert sent_to(h, phone.number) == expected
    phone.wait_for(lambda _: len(phone.received_texts()) >= len(expected), timeout=10)
    assert phone.received_texts() == expected


def conversation(h: Harness, inbound: dict[str, Any]) -> dict[str, Any]:
    return h.store.conversations.get(inbound["conversation_id"])


def wait_state(h: Harness, message_id: int, *states: str) -> dict[str, Any]:
    marks = ",".join("?" * len(states))
    row: dict[str, Any] = wait_until(
        lambda: next(iter(h.store.query(f"SELECT * FROM messages WHERE id = ? AND state IN ({marks})",
                                        (message_id, *states))), None),
        15, what=f"message #{message_id} in {states}")
    return row


# -- opt-out ---------------------------------------------------------------------------------------

def test_opt_out_variants_get_one_confirmation_and_nothing_reaches_the_handset_afterwards(tmp_path: Any) -> None:
    variants = {"+12125550131": ("Stop.", "STOP"), "+12125550132": ("stop please", "STOP"),
                "+12125550133": ("STOP!!", "STOP"), "+12125550134": ("Arrêt !", "ARRET"),
                "+12125550135": ("basta", "BASTA")}
    bystander = "+12125550139"
    with gateway(tmp_path, compliance={"languages": ["fr"], "opt_out_words": ["BASTA"]},
                 keywords={"HOURS": {"reply": "Open Mon-Fri 8-6"}}) as h:
        phones = {n: h.sim.handset(n) for n in variants}
        inbound = {n: text_in(h, phones[n], text) for n, (text, _) in variants.items()}
        for number, (text, word) in variants.items():
            phones[number].wait_for_text(STOP_CONFIRMATION, timeout=15)
            row = inbound[number]
            assert (row["action"], row["keyword"], row["likely_opt_out"]) == ("opt_out", word, 0)
            (event,) = h.store.consent.history(number)
            assert (event["event"], event["scope"], event["source"], event["inbound_id"]) == (
                "opt_out", "all", "sms", row["id"])
            assert text in event["evidence"]
            assert h.store.consent.status(number).opted_out
        audited = {e["detail"]["number"] for e in h.store.audit.entries(action_prefix="consent.opt_out")}
        assert audited == set(variants)

        # A reminder queued after the STOP is refused at once; a campaign is refused at claim time, and a
        # bystander in the same campaign gets it, which shows the daemon was sending all along. A keyword
        # text gets no reply either.
        for n in variants:
            with pytest.raises(OptedOut, match=f"{re.escape(n)} opted out"):
                h.store.outbox.enqueue(n, "Reminder: Dr Rivera 3:15 PM tomorrow")
        campaign = h.store.outbox.enqueue_many(
            [{"to": n, "text": "Flu shots this week"} for n in [*variants, bystander]], campaign="flu"
        )
        text_in(h, phones["+12125550131"], "hours")
        for mid in campaign[:-1]:
            assert "opted out" in wait_state(h, mid, "cancelled")["last_error"]
        h.sim.handset(bystander).wait_for_text("Flu shots this week", timeout=15)
        for number in variants:
            received_exactly(h, phones[number], [STOP_CONFIRMATION])


def test_unstoppable_is_not_an_opt_out_and_dont_text_me_is_flagged_without_a_reply(tmp_path: Any) -> None:
    with gateway(tmp_path) as h:
        word, plea = h.sim.handset("+12125550141"), h.sim.handset("+12125550142")
        a = text_in(h, word, "unstoppable")
        b = text_in(h, plea, "Please don’t text me anymore")
        assert (a["action"], a["keyword"], a["likely_opt_out"]) == ("inbox", None, 0)
        assert (b["action"], b["likely_opt_out"]) == ("inbox", 1)
        assert conversation(h, b)["likely_opt_out"] == 1 and conversation(h, a)["likely_opt_out"] == 0
        assert h.store.consent.history() == []
        assert [r["id"] for r in build_report(h.store).likely_opt_outs] == [b["id"]]
        received_exactly(h, word, [])
        received_exactly(h, plea, [])
        # Neither is opted out: a person decides about the flagged one, so a reminder still goes.
        for phone in (word, plea):
            h.store.outbox.enqueue(phone.number, "Reminder: Dr Rivera 3:15 PM tomorrow")
        for phone in (word, plea):
            phone.wait_for_text("Reminder: Dr Rivera 3:15 PM tomorrow", timeout=15)
            received_exactly(h, phone, ["Reminder: Dr Rivera 3:15 PM tomorrow"])


def test_start_and_unstop_resubscribe_with_a_confirmation_and_messages_flow_again(tmp_path: Any) -> None:
    with gateway(tmp_path) as h:
        for number, stop, start, word in (
            ("+12125550151", "STOP", "Start", "START"),
            ("+12125550152", "stop", "unstop please", "UNSTOP"),
        ):
            phone = h.sim.handset(number)
            text_in(h, phone, stop)
            phone.wait_for_text(STOP_CONFIRMATION, timeout=15)
            with pytest.raises(OptedOut):
                h.store.outbox.enqueue(number, "Reminder: bring your insurance card")
            row = text_in(h, phone, start)
            assert (row["action"], row["keyword"]) == ("opt_in", word)
            phone.wait_for_text(START_CONFIRMATION, timeout=15)
            assert [e["event"] for e in h.store.consent.history(number)] == ["opt_out", "restore"]
            assert not h.store.consent.status(number).opted_out
            h.store.outbox.enqueue(number, "Reminder: Dr Rivera 3:15 PM tomorrow")
            phone.wait_for_text("Reminder: Dr Rivera 3:15 PM tomorrow", timeout=15)
            received_exactly(h, phone, [STOP_CONFIRMATION, START_CONFIRMATION, "Reminder: Dr Rivera 3:15 PM tomorrow"])
            confirmations = h.store.query(
                "SELECT kind FROM messages WHERE to_number = ? AND created_by = 'rules'", (number,)
            )
            assert [c["kind"] for c in confirmations] == ["compliance", "compliance"]


def test_help_and_info_reply_with_clinic_contact_and_how_to_stop_even_when_opted_out(tmp_path: Any) -> None:
    with gateway(tmp_path) as h:
        opted_out, curious = h.sim.handset("+12125550161"), h.sim.handset("+12125550162")
        text_in(h, opted_out, "STOP")
        opted_out.wait_for_text(STOP_CONFIRMATION, timeout=15)
        helped = text_in(h, opted_out, "Help!")
        info = text_in(h, curious, "info")
        for row, phone, expected in (
            (helped, opted_out, [STOP_CONFIRMATION, HELP_REPLY]),
            (info, curious, [HELP_REPLY]),
        ):
            assert (row["action"], row["keyword"]) == ("help", "HELP" if phone is opted_out else "INFO")
            phone.wait_for_text(HELP_REPLY, timeout=15)
            received_exactly(h, phone, expected)
        assert CLINIC in HELP_REPLY and CLINIC_PHONE in HELP_REPLY and "Reply STOP" in HELP_REPLY
        assert h.store.consent.status(opted_out.number).opted_out  # HELP is not an opt-in
        assert h.store.consent.history(curious.number) == []


def test_stop_reminders_opts_out_of_that_list_only(tmp_path: Any) -> None:
    confirmation = (
        f"{CLINIC}: you will get no more reminders messages from this number. Reply START REMINDERS to get them again."
    )
    again = f"{CLINIC}: you will get reminders messages again. Reply STOP to opt out."
    with gateway(tmp_path, compliance={"list_scopes": ["reminders"]}) as h:
        phone = h.sim.handset("+12125550171")
        row = text_in(h, phone, "Stop reminders")
        assert (row["action"], row["keyword"]) == ("opt_out", "STOP")
        phone.wait_for_text(confirmation, timeout=15)
        (event,) = h.store.consent.history(phone.number)
        assert (event["event"], event["scope"]) == ("opt_out", "reminders")
        assert not h.store.consent.status(phone.number).opted_out
        assert h.store.consent.status(phone.number, "reminders").opted_out

        with pytest.raises(OptedOut, match="opted out of 'reminders'"):
            h.store.outbox.enqueue(phone.number, "Reminder: Dr Rivera 3:15 PM tomorrow", scope="reminders")
        h.store.outbox.enqueue(phone.number, "Your lab results are ready")
        phone.wait_for_text("Your lab results are ready", timeout=15)
        received_exactly(h, phone, [confirmation, "Your lab results are ready"])

        text_in(h, phone, "start reminders")
        phone.wait_for_text(again, timeout=15)
        h.store.outbox.enqueue(phone.number, "Reminder: Dr Rivera 9:00 AM Friday", scope="reminders")
        phone.wait_for_text("Reminder: Dr Rivera 9:00 AM Friday", timeout=15)
        received_exactly(
            h, phone, [confirmation, "Your lab results are ready", again, "Reminder: Dr Rivera 9:00 AM Friday"]
        )


# -- custom keywords, routing, the inbox ----------------------------------------------------------


def test_custom_keyword_replies_with_the_first_name_tags_and_records_the_opt_in(tmp_path: Any) -> None:
    join = {
        "aliases": ["SIGN UP"],
        "reply": "Hi {first_name}, you're on the {clinic} news list.",
        "tag": "newsletter",
        "opt_in_scope": "marketing",
    }
    with gateway(tmp_path, keywords={"JOIN": join}) as h:
        ana, stranger = h.sim.handset("+12125550181"), h.sim.handset("+12125550182")
        h.store.contacts.update(ana.number, first_name="Ana")
        row = text_in(h, ana, "join please")
        text_in(h, stranger, "Sign-up!")
        assert (row["action"], row["keyword"]) == ("keyword", "JOIN")
        ana.wait_for_text(f"Hi Ana, you're on the {CLINIC} news list.", timeout=15)
        stranger.wait_for_text(f"Hi there, you're on the {CLINIC} news list.", timeout=15)
        for phone in (ana, stranger):
            contact = h.store.contacts.get(phone.number)
            assert contact is not None and "newsletter" in contact["tags"]
            (event,) = h.store.consent.history(phone.number)
            assert (event["event"], event["scope"], event["source"]) == ("opt_in", "marketing", "sms-keyword")
            assert h.store.consent.status(phone.number, "marketing").opted_in
        assert views.keyword_hits(h.store)[("JOIN", "keyword")] == 2
        # The opt-in is what lets a marketing message to that list go out.
        h.store.outbox.enqueue(ana.number, "Our newsletter: flu shots are here", kind="marketing", scope="marketing")
        ana.wait_for_text("Our newsletter: flu shots are here", timeout=15)
        received_exactly(h, ana, [f"Hi Ana, you're on the {CLINIC} news list.", "Our newsletter: flu shots are here"])


def test_a_routing_keyword_moves_the_conversation_and_forwards_the_text_to_the_staff_handset(tmp_path: Any) -> None:
    with gateway(tmp_path, keywords={"BILL": {"route": "billing", "forward_to": STAFF}}) as h:
        patient, staff = h.sim.handset("+12125550191"), h.sim.handset(STAFF)
        row = text_in(h, patient, "Bill")
        forwarded = f"BILL from {patient.number}: Bill"
        staff.wait_for_text(forwarded, timeout=15)
        assert (row["action"], row["keyword"]) == ("keyword", "BILL")
        assert conversation(h, row)["team"] == "billing"
        received_exactly(h, staff, [forwarded])
        received_exactly(h, patient, [])
        team_changes = h.store.audit.entries(subject_type="conversation", subject_id=row["conversation_id"])
        assert any(e["detail"].get("team") == "billing" for e in team_changes)


def test_a_menu_answer_routes_the_conversation_to_the_chosen_team(tmp_path: Any) -> None:
    menu_text = "Reply 1 for Billing, 2 for Support"
    with gateway(tmp_path, keywords={"MENU": {"reply": menu_text, "menu": "1=billing,2=support"}}) as h:
        phone = h.sim.handset("+12125550192")
        text_in(h, phone, "menu")
        phone.wait_for_text(menu_text, timeout=15)
        answer = text_in(h, phone, "2")
        assert (answer["action"], answer["keyword"]) == ("menu", "2")
        conv = conversation(h, answer)
        assert conv["team"] == "support" and conv["menu"] is None  # answered once, then closed
        received_exactly(h, phone, [menu_text])


def test_an_unrecognised_text_lands_unread_in_the_shared_inbox_without_a_reply(tmp_path: Any) -> None:
    with gateway(tmp_path, keywords={"HOURS": {"reply": "Open Mon-Fri 8-6"}}) as h:
        phone = h.sim.handset("+12125550193")
        row = text_in(h, phone, "Can I bring my dog to the appointment?")
        assert (row["action"], row["keyword"], row["likely_opt_out"]) == ("inbox", None, 0)
        conv = conversation(h, row)
        assert (conv["team"], conv["unread"], conv["status"]) == (None, 1, "open")
        assert [c["id"] for c in h.store.conversations.threads(status="open")] == [conv["id"]]
        received_exactly(h, phone, [])


# -- after-hours and the loop guard ---------------------------------------------------------------


def test_after_hours_reply_goes_once_per_conversation_per_window(tmp_path: Any) -> None:
    clinic_tz = "America/New_York"
    local = datetime.now(zone(clinic_tz))
    # Open for one hour, six hours from now: closed now whatever the hour the test runs at.
    hours = [f"Daily {local + timedelta(hours=6):%H:%M}-{local + timedelta(hours=7):%H:%M}"]
    assert not BusinessHours(hours, [], clinic_tz).is_open(local)
    closed = "Rivera Clinic is closed; we will answer when we open. For emergencies call 911."
    with gateway(tmp_path, clinic_tz=clinic_tz, hours={"business_hours": hours, "after_hours_reply": closed}) as h:
        first, second = h.sim.handset("+12125550201"), h.sim.handset("+12125550202")
        a1 = text_in(h, first, "Hello, is anyone there?")
        first.wait_for_text(closed, timeout=15)
        a2 = text_in(h, first, "My appointment is tomorrow")
        b1 = text_in(h, second, "I need a refill")
        second.wait_for_text(closed, timeout=15)
        assert [r["action"] for r in (a1, a2, b1)] == ["inbox"] * 3
        conv = conversation(h, a2)
        assert conv["unread"] == 2 and conv["after_hours_replied_at"] is not None
        assert conversation(h, b1)["after_hours_replied_at"] is not None
        received_exactly(h, first, [closed])
        received_exactly(h, second, [closed])


def test_loop_guard_caps_automatic_replies_to_one_handset_per_window(tmp_path: Any) -> None:
    with gateway(tmp_path, compliance={"auto_reply_limit": 3}, keywords={"HOURS": {"reply": "Open Mon-Fri 8-6"}}) as h:
        phone = h.sim.handset("+12125550211")
        rows = [text_in(h, phone, t) for t in ("hours", "Hours!", "HOURS?", "hours please", "hours thanks")]
        assert [r["action"] for r in rows] == ["keyword"] * 5
        received_exactly(h, phone, ["Open Mon-Fri 8-6"] * 3)
        replies = h.store.query(
            "SELECT in_reply_to FROM messages WHERE to_number = ? AND created_by = 'rules'", (phone.number,)
        )
        assert [r["in_reply_to"] for r in replies] == [r["id"] for r in rows[:3]]


def test_no_automatic_reply_to_a_short_code(tmp_path: Any) -> None:
    # The simulator's network carries only numeric originators, so an alphanumeric sender cannot be
    # played end to end; a short code is the robot the network can carry (the unit tests cover both).
    with gateway(tmp_path, keywords={"HOURS": {"reply": "Open Mon-Fri 8-6"}}) as h:
        robot, person = h.sim.handset("72345"), h.sim.handset("+12125550212")
        rows = [text_in(h, robot, t) for t in ("HOURS", "HELP", "Your code is 1234")]
        assert [r["action"] for r in rows] == ["keyword", "help", "inbox"]
        text_in(h, person, "HOURS")
        person.wait_for_text("Open Mon-Fri 8-6", timeout=15)
        settle(h)
        assert h.store.query("SELECT to_number FROM messages") == [{"to_number": person.number}]
        assert robot.received_texts() == []


# -- answers to our own questions -----------------------------------------------------------------


def ask(h: Harness, phone: HandsetHandle, text: str, expect: dict[str, str], follow_up: dict[str, str]) -> int:
    """Send a question to the handset and wait until it went out (only then can it be answered)."""
    mid = h.store.outbox.enqueue(phone.number, text, expect=expect, follow_up=follow_up).id
    phone.wait_for_text(text, timeout=15)
    wait_state(h, mid, *SENT_STATES)
    return mid


def test_a_rating_answer_is_recorded_and_shows_in_the_report(tmp_path: Any) -> None:
    question = "How was your visit with Dr Rivera? Reply 1 to 5"
    with gateway(tmp_path) as h:
        fan, critic = h.sim.handset("+12125550221"), h.sim.handset("+12125550222")
        follow = {"5": "Thank you for the five stars!", "4": "Thank you!"}
        asked = {p.number: ask(h, p, question, parse_expect("1-5") or {}, follow) for p in (fan, critic)}
        a = text_in(h, fan, "5 stars")
        b = text_in(h, critic, "four")
        fan.wait_for_text("Thank you for the five stars!", timeout=15)
        critic.wait_for_text("Thank you!", timeout=15)
        assert (a["action"], a["in_reply_to"]) == ("answer", asked[fan.number])
        assert h.store.outbox.get(asked[fan.number]).outcome == "rating:5"
        assert h.store.outbox.get(asked[critic.number]).outcome == "rating:4"
        report = build_report(h.store)
        assert report.ratings == {5: 1, 4: 1} and report.rating_average == 4.5
        assert "  average 4.50 over 2 ratings" in report.lines(ClinicClock.for_config(h.config))
        assert b["action"] == "answer"
        received_exactly(h, fan, [question, "Thank you for the five stars!"])


def test_answers_are_matched_tolerantly_and_the_follow_up_arrives(tmp_path: Any) -> None:
    question = "Reminder: Dr Rivera 3:15 PM tomorrow. Reply YES to confirm, NO to cancel"
    expect = {"YES": "confirmed", "NO": "cancelled"}
    follow = {"YES": "See you then!", "NO": "Thanks, we've freed your slot. Call us to rebook."}
    with gateway(tmp_path) as h:
        cases = [
            ("+12125550231", "Yes please", "confirmed"),
            ("+12125550232", "y", "confirmed"),
            ("+12125550233", "nope", "cancelled"),
        ]
        for number, answer, outcome in cases:
            phone = h.sim.handset(number)
            mid = ask(h, phone, question, expect, follow)
            row = text_in(h, phone, answer)
            reply = follow["YES" if outcome == "confirmed" else "NO"]
            phone.wait_for_text(reply, timeout=15)
            assert (row["action"], row["in_reply_to"]) == ("answer", mid)
            assert h.store.outbox.get(mid).outcome == outcome
            audit = h.store.audit.entries(action_prefix="message.outcome", subject_id=mid)
            assert [e["detail"] for e in audit] == [{"outcome": outcome, "inbound_id": row["id"]}]
            received_exactly(h, phone, [question, reply])


# -- outbound guard rails -------------------------------------------------------------------------


def test_quiet_hours_hold_a_campaign_at_night_in_the_recipients_zone_but_not_a_reply(tmp_path: Any) -> None:
    patient, clinic_tz = "+13105550241", "America/New_York"  # a Los Angeles number, a New York clinic
    now = datetime.now(UTC)
    with gateway(
        tmp_path,
        clinic_tz=clinic_tz,
        keywords={"HOURS": {"reply": "Open Mon-Fri 8-6"}},
        hours={"quiet_kinds": ["bulk", "marketing"]},
        start=False,
    ) as h:
        zones = recipient_zones(h.store, patient, clinic_tz)
        assert [str(z) for z in zones] == ["America/Los_Angeles"]
        # Texting is allowed from one to five hours from now on the patient's clock: "now" is quiet in
        # Los Angeles but inside the same clock times in New York, so only the recipient's zone holds it.
        local = now.astimezone(zones[0])
        window = (f"{local + timedelta(hours=1):%H:%M}", f"{local + timedelta(hours=5):%H:%M}")
        assert not QuietHours(*window).allowed(now, zones)
        assert QuietHours(*window).allowed(now, [zone(clinic_tz)])
        h.config.hours.quiet_start, h.config.hours.quiet_end = window
        start_rules_daemon(h)
        phone = h.sim.handset(patient)
        (held,) = h.store.outbox.enqueue_many([{"to": patient, "text": "Flu shots this week"}], campaign="flu")
        deferred = wait_until(lambda: (m := h.store.outbox.get(held)).last_error and m, 15, what="campaign held")
        assert deferred.state.value == "queued" and "quiet hours" in (deferred.last_error or "")
        # It waits for exactly the start of the patient's daytime.
        due = parse_ts(deferred.due_at)
        quiet = QuietHours(*window)
        assert quiet.allowed(due, zones) and not quiet.allowed(due - timedelta(minutes=1), zones)
        assert due - now < timedelta(hours=2)

        row = text_in(h, phone, "hours")
        phone.wait_for_text("Open Mon-Fri 8-6", timeout=15)
        h.store.outbox.enqueue(patient, "Yes, and we open at 8 tomorrow too.", kind="reply", in_reply_to=row["id"])
        phone.wait_for_text("Yes, and we open at 8 tomorrow too.", timeout=15)
        received_exactly(h, phone, ["Open Mon-Fri 8-6", "Yes, and we open at 8 tomorrow too."])
        assert h.store.outbox.get(held).state.value == "queued"


def test_a_keyword_reply_overtakes_a_campaign_that_is_already_going_out(tmp_path: Any) -> None:
    # 60 parts a minute with a 5-part burst: the 20-message campaign needs about 15 s, so it is still
    # going out when the patient's text arrives, and the reply must jump ahead of what is left.
    with gateway(tmp_path, keywords={"HOURS": {"reply": "Open Mon-Fri 8-6"}}, parts_per_minute=60) as h:
        campaign = h.store.outbox.enqueue_many(
            [{"to": f"+1312555{n:04d}", "text": "Newsletter"} for n in range(100, 120)], campaign="news"
        )
        wait_until(
            lambda: (
                h.store.query(
                    "SELECT COUNT(*) AS n FROM messages WHERE campaign = 'news' AND submitted_at IS NOT NULL"
                )[0]["n"]
                > 0
            ),
            15,
            what="campaign started",
        )
        phone = h.sim.handset("+12125550251")
        text_in(h, phone, "hours")
        phone.wait_for_text("Open Mon-Fri 8-6", timeout=15)
        # The handset can hold the text before the daemon has read +CMGS and recorded the submission.
        (queued,) = h.store.query("SELECT id FROM messages WHERE to_number = ?", (phone.number,))
        reply = wait_state(h, queued["id"], *SENT_STATES)
        assert reply["kind"] == "reply" and reply["submitted_at"] is not None
        went = h.store.query("SELECT submitted_at FROM messages WHERE campaign = 'news'")
        before = [r for r in went if r["submitted_at"] and r["submitted_at"] < reply["submitted_at"]]
        after = [r for r in went if not r["submitted_at"] or r["submitted_at"] > reply["submitted_at"]]
        assert before and after and len(before) + len(after) == len(campaign)
        # Between the reply being queued and going out, at most the one campaign message that was
        # already on its way to the modem went first.
        overtook = [r for r in before if r["submitted_at"] > reply["created_at"]]
        assert len(overtook) <= 1
