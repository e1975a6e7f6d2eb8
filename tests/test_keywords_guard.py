"""The outbound gate: quiet hours in the recipient's zone, frequency caps, and the first-message footer."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

import pytest
from keywords_support import PATIENT, PATIENT2, make_config, send_all

from smsgate.keywords import make_gate, recipient_zones
from smsgate.queue import Kind, MessageRejected, SendPolicy, State, Store
from smsgate.queue.clock import parse_ts

NIGHT_NY = datetime(2026, 11, 24, 3, 30, tzinfo=UTC)  # 22:30 New York (Mon)
MORNING_NY = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)  # 08:00 New York (Tue)


def test_bulk_waits_for_morning_in_the_recipients_zone_but_replies_go_at_once(store: Store, clock) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    modem = store.modems.upsert("m", state="ready")
    clock.now = NIGHT_NY
    bulk = store.outbox.enqueue(PATIENT, "Flu shots", kind=Kind.BULK).id
    reply = store.outbox.enqueue(PATIENT, "Yes, 3 PM works", kind=Kind.REPLY).id
    reminder = store.outbox.enqueue(PATIENT2, "Reminder tomorrow", kind=Kind.TRANSACTIONAL).id
    claimed = {c.message.id for c in send_all(store, config, modem)}
    assert claimed == {reply, reminder}
    deferred = store.outbox.get(bulk)
    assert deferred.state == State.QUEUED and parse_ts(deferred.due_at) == MORNING_NY
    assert "quiet hours" in (deferred.last_error or "")
    clock.now = MORNING_NY
    assert {c.message.id for c in send_all(store, config, modem)} == {bulk}


def test_a_deferred_messages_reason_says_until_when_in_clinic_time(store: Store, clock) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    modem = store.modems.upsert("m", state="ready")
    clock.now = NIGHT_NY
    quiet = store.outbox.enqueue(PATIENT, "Flu shots", kind=Kind.BULK).id
    assert send_all(store, config, modem) == []
    assert (store.outbox.get(quiet).last_error or "").endswith("waits until 2026-11-24 08:00 EST")
    clock.now = MORNING_NY
    assert len(send_all(store, config, modem)) == 1
    capped = store.outbox.enqueue(PATIENT, "Second campaign", kind=Kind.BULK).id  # per_day holds campaigns
    assert send_all(store, config, modem) == []
    assert (store.outbox.get(capped).last_error or "").endswith("waits until 2026-11-25 08:00 EST")


def test_transactional_can_be_made_to_wait_too(store: Store, clock) -> None:  # type: ignore[no-untyped-def]
    config = make_config(hours={"quiet_kinds": ["bulk", "marketing", "transactional"]})
    clock.now = NIGHT_NY
    store.outbox.enqueue(PATIENT, "Reminder tomorrow")
    assert send_all(store, config, store.modems.upsert("m", state="ready")) == []


def test_the_contacts_own_zone_wins_over_the_numbers_region(store: Store, clock) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    store.contacts.update(PATIENT, timezone="Europe/Paris")  # a New York number living in Paris
    assert [str(z) for z in recipient_zones(store, PATIENT, "UTC")] == ["Europe/Paris"]
    clock.now = NIGHT_NY  # 04:30 in Paris
    store.outbox.enqueue(PATIENT, "Flu shots", kind=Kind.BULK)
    assert send_all(store, config, store.modems.upsert("m", state="ready")) == []


def test_a_number_with_several_candidate_zones_waits_for_the_latest_morning(store: Store, clock) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    number = "+18005550123"  # toll-free: could be anywhere in the +1 zone
    zones = recipient_zones(store, number, "UTC")
    assert len(zones) > 1
    clock.now = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)  # 09:00 New York, 06:00 Los Angeles
    mid = store.outbox.enqueue(number, "Flu shots", kind=Kind.BULK).id
    send_all(store, config, store.modems.upsert("m", state="ready"))
    due = parse_ts(store.outbox.get(mid).due_at)
    assert all(8 <= due.astimezone(z).hour < 21 for z in zones)


def test_frequency_caps_hold_campaign_messages_to_one_a_day_and_three_a_week(store: Store, clock) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    modem = store.modems.upsert("m", state="ready")
    clock.now = MORNING_NY
    sent_days = []
    for day in range(7):
        for n in range(2):
            store.outbox.enqueue(PATIENT, f"Flu shots {day}.{n}", kind=Kind.BULK, idempotency_key=f"r{day}.{n}")
        if send_all(store, config, modem):
            sent_days.append(day)
        clock.advance(86400)
    assert sent_days == [0, 1, 2]
    waiting = store.query("SELECT last_error FROM messages WHERE state = 'queued' LIMIT 1")[0]
    assert "frequency cap" in waiting["last_error"] and "campaign" in waiting["last_error"]


def test_a_second_reminder_the_same_day_is_not_held_by_the_campaign_cap(store: Store, clock) -> None:  # type: ignore[no-untyped-def]
    config = make_config()  # per_day = 1, per_week = 3
    modem = store.modems.upsert("m", state="ready")
    clock.now = MORNING_NY
    store.outbox.enqueue(PATIENT, "Flu shots this week", kind=Kind.BULK)
    for text in ("Reminder: 9:00 tomorrow", "Changed: 11:00 tomorrow", "Bring your insurance card", "Lab ready"):
        store.outbox.enqueue(PATIENT, text)
    assert len(send_all(store, config, modem)) == 5  # reminders neither wait for nor count against the cap
    store.outbox.enqueue(PATIENT, "Another campaign", kind=Kind.BULK)
    assert send_all(store, config, modem) == []  # the campaign cap still holds campaigns


def test_reminders_have_a_cap_of_their_own_that_campaigns_do_not_count_against(store: Store, clock) -> None:  # type: ignore[no-untyped-def]
    config = make_config(hours={"transactional_per_day": 2, "transactional_per_week": 0})
    modem = store.modems.upsert("m", state="ready")
    clock.now = MORNING_NY
    store.outbox.enqueue(PATIENT, "Flu shots this week", kind=Kind.BULK)
    for n in range(3):
        store.outbox.enqueue(PATIENT, f"Reminder {n}")
    assert len(send_all(store, config, modem)) == 3  # the campaign and two reminders
    waiting = store.query("SELECT body, last_error FROM messages WHERE state = 'queued'")
    assert [w["body"] for w in waiting] == ["Reminder 2"] and "2 transactional message(s) a day" in waiting[0][
        "last_error"]
    clock.advance(86400)
    assert len(send_all(store, config, modem)) == 1


def test_a_cap_of_zero_is_no_cap(store: Store, clock) -> None:  # type: ignore[no-untyped-def]
    config = make_config(hours={"per_day": 0, "per_week": 0})
    modem = store.modems.upsert("m", state="ready")
    clock.now = MORNING_NY
    for n in range(5):
        store.outbox.enqueue(PATIENT, f"Campaign {n}", kind=Kind.BULK)
    assert len(send_all(store, config, modem)) == 5


def test_caps_do_not_count_or_hold_replies_and_are_per_recipient(store: Store, clock) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    modem = store.modems.upsert("m", state="ready")
    clock.now = MORNING_NY
    store.outbox.enqueue(PATIENT, "Reminder")
    store.outbox.enqueue(PATIENT, "Thanks, see you", kind=Kind.REPLY)
    store.outbox.enqueue(PATIENT, "And another reply", kind=Kind.REPLY)
    store.outbox.enqueue(PATIENT2, "Reminder")
    assert len(send_all(store, config, modem)) == 4


def test_first_message_to_a_new_number_carries_the_stop_footer(store: Store) -> None:
    footer = make_config().compliance.first_message_footer
    first = store.outbox.enqueue(PATIENT, "Welcome to Rivera Clinic.", policy=SendPolicy(footer=footer),
                                 idempotency_key="welcome")
    assert store.outbox.get(first.id).body == "Welcome to Rivera Clinic. Reply STOP to opt out."
    again = store.outbox.enqueue(PATIENT, "Welcome to Rivera Clinic.", policy=SendPolicy(footer=footer),
                                 idempotency_key="welcome")
    assert (again.id, again.created) == (first.id, False)  # a retried request matches the stored text
    second = store.outbox.enqueue(PATIENT, "Second message", policy=SendPolicy(footer=footer))
    assert store.outbox.get(second.id).body == "Second message"
    stop_text = store.outbox.enqueue(PATIENT2, "Text STOP to end", policy=SendPolicy(footer=footer))
    assert store.outbox.get(stop_text.id).body == "Text STOP to end"
    off = store.outbox.enqueue("+12025550188", "Hello", policy=SendPolicy(footer=""))
    assert store.outbox.get(off.id).body == "Hello"


FOOTER = "Reply STOP to opt out."
URL = "https://clinic.example/r/8f3K"
# (what the message ends with, the text, what the first message must read)
FOOTER_ENDINGS = [
    ("no punctuation", "Reminder: Dr Rivera 3:15 PM tomorrow. Reply YES to confirm",
     "Reminder: Dr Rivera 3:15 PM tomorrow. Reply YES to confirm\nReply STOP to opt out."),
    ("a full stop", "Welcome to Rivera Clinic.", "Welcome to Rivera Clinic. Reply STOP to opt out."),
    ("an exclamation mark", "See you tomorrow!", "See you tomorrow! Reply STOP to opt out."),
    ("a question mark", "Can you come at 3?", "Can you come at 3? Reply STOP to opt out."),
    ("a quoted sentence", 'Reply "YES."', 'Reply "YES." Reply STOP to opt out.'),
    ("an emoji", "See you soon \U0001f642", "See you soon \U0001f642\nReply STOP to opt out."),
    ("a URL", f"Confirm at {URL}", f"Confirm at {URL}\nReply STOP to opt out."),
    ("a URL ending in a slash", "Forms: https://clinic.example/",
     "Forms: https://clinic.example/\nReply STOP to opt out."),
    ("a URL with a query", "Pay: www.clinic.example/p?id=7", "Pay: www.clinic.example/p?id=7\nReply STOP to opt out."),
    ("trailing spaces", "Thanks.   ", "Thanks. Reply STOP to opt out."),
    ("a new line", "Thanks\n", "Thanks\nReply STOP to opt out."),
    ("a digit", "Your code is 4411", "Your code is 4411\nReply STOP to opt out."),
]


@pytest.mark.parametrize(("ending", "text", "expected"), FOOTER_ENDINGS, ids=[e[0] for e in FOOTER_ENDINGS])
def test_the_first_message_footer_reads_well_after_any_ending(store: Store, ending: str, text: str,
                                                              expected: str) -> None:
    from smsgate.at_commands.pdu import preview

    result = store.outbox.enqueue(PATIENT, text, policy=SendPolicy(footer=FOOTER))
    body = store.outbox.get(result.id).body
    assert body == expected
    assert (result.parts, result.encoding) == (preview(body).parts, preview(body).encoding)
    assert result.encoding == preview(text).encoding  # the separator never turns GSM-7 into UCS-2
    for token in text.split():
        if "://" in token or token.startswith("www."):
            after = body[body.index(token) + len(token)]
            assert after.isspace(), f"{token!r} runs into {after!r}"


def test_a_footer_that_just_fits_keeps_a_one_part_message_one_part(store: Store) -> None:
    text = "x" * (160 - len(FOOTER) - 1)  # one septet left for the separator
    result = store.outbox.enqueue(PATIENT, text, policy=SendPolicy(footer=FOOTER))
    assert (result.parts, result.encoding) == (1, "gsm7")
    assert store.outbox.get(result.id).body == text + "\n" + FOOTER


def test_marketing_needs_an_opt_in_that_still_holds_at_claim_time(store: Store, clock) -> None:  # type: ignore[no-untyped-def]
    config = make_config()
    modem = store.modems.upsert("m", state="ready")
    clock.now = MORNING_NY.replace(hour=16)  # 10:00 in Chicago
    store.lists.create("spa", actor="admin")
    with pytest.raises(MessageRejected, match="opted in"):
        store.outbox.enqueue(PATIENT, "Spa day offer", kind=Kind.MARKETING, scope="spa")
    for number in (PATIENT, PATIENT2):
        store.consent.record(number, "opt_in", scope="spa", source="web form", actor="staff",
                             evidence="signed form #12")
    kept = store.outbox.enqueue(PATIENT2, "Spa day offer", kind=Kind.MARKETING, scope="spa").id
    revoked = store.outbox.enqueue(PATIENT, "Spa day offer", kind=Kind.MARKETING, scope="spa").id
    store.consent.record(PATIENT, "opt_out", source="phone call", actor="staff", evidence="asked at the desk")
    assert {c.message.id for c in store.outbox.claim("w", modem, limit=5, gate=partial(make_gate(config), store))} == {
        kept
    }
    assert store.outbox.get(revoked).state == State.CANCELLED
