"""Tolerant matching: keywords, answers, templates, hours and rule validation (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from smsgate.config import ComplianceConfig
from smsgate.keywords import (
    HoursError,
    Intent,
    QuietHours,
    RuleError,
    TemplateError,
    Vocabulary,
    build_rule,
    canonical,
    match_answer,
    parse_expect,
    render,
)
from smsgate.keywords.hours import BusinessHours, parse_window, zone

VOCAB = Vocabulary(ComplianceConfig())


@pytest.mark.parametrize("text", ["STOP", "stop", "Stop.", "stop please", "STOP!!", "  Stop  ", "Stop, thanks",
                                  "please stop", "opt out", "Opt-Out", "OPTOUT", "unsubscribe", "Cancel",
                                  "END", "quit", "Revoke", "STOPALL", "stop all", "stop 🙏", "ＳＴＯＰ"])
def test_opt_out_words_match_as_the_whole_message_however_typed(text: str) -> None:
    match = VOCAB.classify(text)
    assert match is not None and match.intent is Intent.OPT_OUT and match.scope == "all"


@pytest.mark.parametrize("text", ["unstoppable", "I can't stop by today", "stop by at 3?", "Don't stop me now",
                                  "the end of the week works", "postpone", ""])
def test_words_inside_sentences_are_not_keywords(text: str) -> None:
    assert VOCAB.classify(text) is None


@pytest.mark.parametrize(("text", "intent"), [("START", Intent.OPT_IN), ("unstop", Intent.OPT_IN),
                                              ("Help", Intent.HELP), ("info?", Intent.HELP)])
def test_opt_in_and_help_words(text: str, intent: Intent) -> None:
    match = VOCAB.classify(text)
    assert match is not None and match.intent is intent


def test_language_packs_and_configured_words_add_to_the_defaults() -> None:
    vocab = Vocabulary(ComplianceConfig(languages=["es", "fr"], opt_out_words=["basta"], help_words=["socorro"]))
    assert vocab.classify("Arrêt").intent is Intent.OPT_OUT  # type: ignore[union-attr]
    assert vocab.classify("alto por favor").intent is Intent.OPT_OUT  # type: ignore[union-attr]
    assert vocab.classify("no más").intent is Intent.OPT_OUT  # type: ignore[union-attr]
    assert vocab.classify("BASTA!").intent is Intent.OPT_OUT  # type: ignore[union-attr]
    assert vocab.classify("ayuda").intent is Intent.HELP  # type: ignore[union-attr]
    assert vocab.classify("socorro").intent is Intent.HELP  # type: ignore[union-attr]
    assert vocab.classify("STOP").intent is Intent.OPT_OUT  # type: ignore[union-attr]


def test_unknown_language_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no built-in words for 'xx'"):
        Vocabulary(ComplianceConfig(languages=["xx"]))


def test_stop_followed_by_a_configured_list_is_a_scoped_opt_out() -> None:
    vocab = Vocabulary(ComplianceConfig(list_scopes=["reminders"]))
    match = vocab.classify("Stop reminders please")
    assert match is not None and match.intent is Intent.OPT_OUT and match.scope == "reminders"
    assert vocab.classify("stop newsletters") is None  # not a configured list: not a keyword at all
    assert vocab.classify("START REMINDERS").scope == "reminders"  # type: ignore[union-attr]


@pytest.mark.parametrize("text", ["please don't text me anymore", "Stop texting me", "no more messages please",
                                  "Remove me from your list", "wrong number", "STOP it", "leave me alone!!",
                                  "Please unsubscribe me", "no mas"])
def test_opt_out_wording_that_is_not_a_keyword_is_a_likely_opt_out(text: str) -> None:
    assert VOCAB.classify(text) is None
    assert VOCAB.likely_opt_out(text)


@pytest.mark.parametrize("text", ["See you tomorrow", "Can I stop by at 3?", "Is the clinic open?", "Yes"])
def test_ordinary_messages_are_not_likely_opt_outs(text: str) -> None:
    assert not VOCAB.likely_opt_out(text)


def test_configured_likely_opt_out_phrases_are_plain_words_not_patterns() -> None:
    vocab = Vocabulary(ComplianceConfig(likely_opt_out_phrases=["do not disturb", "(.*)"]))
    assert vocab.likely_opt_out("Do not disturb, thanks")
    assert not vocab.likely_opt_out("anything at all")


@pytest.mark.parametrize(("text", "word"), [("yes!", "YES"), ("Yes please", "YES"), ("y", "YES"), ("Yep", "YES"),
                                            ("no", "NO"), ("Nope.", "NO"), ("can't", "NO"), ("1", "1"),
                                            ("#1", "1"), ("one", "1"), ("maybe", None), ("yes and no", None)])
def test_answers_are_matched_tolerantly(text: str, word: str | None) -> None:
    expect = {"YES": "confirmed", "NO": "cancelled", "1": "reschedule"}
    assert match_answer(text, expect) == word


@pytest.mark.parametrize(("text", "word"), [("5", "5"), ("5 stars", "5"), ("5/5", "5"), ("four", "4"),
                                            ("3!", "3"), ("6", None), ("0", None)])
def test_ratings_accept_common_forms(text: str, word: str | None) -> None:
    assert match_answer(text, parse_expect("1-5") or {}) == word


def test_parse_expect_reads_the_send_option_format() -> None:
    assert parse_expect("YES=confirmed, no = cancelled,1=reschedule") == {
        "YES": "confirmed", "NO": "cancelled", "1": "reschedule"}
    assert parse_expect("1-5") == {str(i): f"rating:{i}" for i in range(1, 6)}
    with pytest.raises(ValueError, match="ANSWER=outcome"):
        parse_expect("YES")


def test_templates_fill_known_fields_once_and_never_evaluate_values() -> None:
    values = {"first_name": "{clinic} {{7*7}} ${x}", "clinic": "Rivera"}
    assert render("Hi {first_name}, {clinic} here. {{literal}}", values) == (
        "Hi {clinic} {{7*7}} ${x}, Rivera here. {literal}")
    assert render("Hi {first_name}!", {}) == "Hi there!"


@pytest.mark.parametrize("template", ["{first_name.__class__}", "{0}", "{os}", "{first_name", "oops }"])
def test_templates_refuse_anything_but_plain_known_fields(template: str) -> None:
    with pytest.raises(TemplateError):
        render(template, {"first_name": "Ann"})


def test_business_hours_with_holidays_and_overnight_windows() -> None:
    hours = BusinessHours(["Mon-Fri 08:00-18:00", "Sat 09:00-12:00"], ["12-25", "2026-11-26"], "America/New_York")
    assert hours.is_open(datetime(2026, 11, 23, 14, 0, tzinfo=UTC))  # Mon 09:00 New York
    assert not hours.is_open(datetime(2026, 11, 23, 12, 59, tzinfo=UTC))  # Mon 07:59
    assert not hours.is_open(datetime(2026, 11, 26, 15, 0, tzinfo=UTC))  # Thanksgiving (dated holiday)
    assert not hours.is_open(datetime(2027, 12, 25, 15, 0, tzinfo=UTC))  # every-year holiday
    assert hours.is_open(datetime(2026, 11, 28, 15, 0, tzinfo=UTC))  # Sat 10:00
    night = parse_window("Fri 22:00-06:00")
    assert night.contains(datetime(2026, 11, 28, 3, 0))  # Saturday 03:00 belongs to Friday night
    assert not night.contains(datetime(2026, 11, 29, 3, 0))


@pytest.mark.parametrize("spec", ["Mon-Fri 8-18", "Funday 08:00-10:00", "Mon-Fri 08:00-25:00", "weekdays"])
def test_unreadable_hours_are_clear_errors(spec: str) -> None:
    with pytest.raises(HoursError, match="Mon"):
        parse_window(spec)


def test_quiet_hours_take_the_most_restrictive_of_several_zones() -> None:
    quiet = QuietHours("08:00", "21:00")
    zones = [zone("America/New_York"), zone("America/Los_Angeles")]
    at_0700_la = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)  # 10:00 New York, 07:00 Los Angeles
    assert quiet.allowed(at_0700_la, [zone("America/New_York")])
    assert not quiet.allowed(at_0700_la, zones)
    assert quiet.next_allowed(at_0700_la, zones) == datetime(2026, 11, 23, 16, 0, tzinfo=UTC)
    late = datetime(2026, 11, 24, 2, 30, tzinfo=UTC)  # 21:30 New York, 18:30 Los Angeles
    assert quiet.next_allowed(late, zones) == datetime(2026, 11, 24, 16, 0, tzinfo=UTC)


def test_rules_refuse_compliance_words_unknown_placeholders_and_bad_targets() -> None:
    with pytest.raises(RuleError, match="built-in compliance word"):
        build_rule("stop", vocabulary=VOCAB, reply="x")
    with pytest.raises(RuleError, match="built-in compliance word"):
        build_rule("JOIN", aliases=["opt-out"], vocabulary=VOCAB, reply="x")
    with pytest.raises(RuleError, match="not a field"):
        build_rule("JOIN", vocabulary=VOCAB, reply="Hi {password}")
    with pytest.raises(RuleError, match="does nothing"):
        build_rule("JOIN", vocabulary=VOCAB)
    with pytest.raises(RuleError, match="http"):
        build_rule("JOIN", vocabulary=VOCAB, webhook="file:///etc/passwd")
    with pytest.raises(RuleError, match="--forward"):
        build_rule("JOIN", vocabulary=VOCAB, forward_to="12")
    with pytest.raises(RuleError, match="--hours"):
        build_rule("JOIN", vocabulary=VOCAB, reply="x", hours="sometimes")
    rule = build_rule("join!", aliases=["Sign up"], vocabulary=VOCAB, reply="Hi {first_name}", tag="News",
                      forward_to="(212) 555-0199", default_region="US")
    assert (rule.keyword, rule.aliases, rule.tag, rule.forward_to) == ("JOIN", ("SIGN UP",), "news", "+12125550199")
    assert canonical("Sign-up") in {canonical(a) for a in rule.aliases}
