"""`smsgate lists`, `smsgate segments`, `smsgate consent optin|optout` and `send --list`, through click
against the configuration `smsgate init` writes and its real database."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from smsgate.cli import cli
from smsgate.config import load_config
from smsgate.keywords import RulesEngine
from smsgate.queue import Store

A, B = "+12025550101", "+12025550102"
Run = Callable[..., tuple[int, str]]


@pytest.fixture
def run(cli_config: Path) -> Run:
    runner = CliRunner()

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["--config", str(cli_config), *args])
        return result.exit_code, result.output

    return invoke


@pytest.fixture
def db(cli_config: Path) -> Callable[[], Store]:
    return lambda: Store.for_config(load_config(cli_config))


def test_marketing_without_a_list_is_refused_with_a_sentence_saying_to_name_one(run: Run) -> None:
    code, out = run("send", A, "Spring offer", "--kind", "marketing")
    assert code == 1 and "must name its list (`--list NAME`" in out


def test_a_join_keyword_opt_in_is_what_send_kind_marketing_list_then_needs(
        run: Run, db: Callable[[], Store], cli_config: Path) -> None:
    assert run("keywords", "add", "JOIN", "--reply", "Welcome!", "--opt-in", "marketing")[0] == 0
    with db() as store:
        engine = RulesEngine(load_config(cli_config))
        with store.transaction():
            inbound, _ = store.inbox.store(modem_id=None, sender=A, body="JOIN", dedupe_key="join-1")
            engine.process(store, inbound)
    code, out = run("send", A, "Flu shots are here", "--kind", "marketing", "--list", "marketing")
    assert code == 0 and "queued #" in out, out
    code, out = run("send", B, "Flu shots are here", "--kind", "marketing", "--list", "marketing")
    assert code == 1 and "has not opted in to 'marketing'" in out


def test_staff_record_an_opt_in_with_its_evidence_and_the_number_joins_the_list(
        run: Run, db: Callable[[], Store]) -> None:
    assert run("lists", "create", "newsletter")[0] == 0
    code, out = run("consent", "optin", "(202) 555-0101", "--list", "Newsletter",
                    "--evidence", "signed form 2026-11-30")
    assert code == 0 and f"opt-in to newsletter recorded for {A}" in out, out
    with db() as store:
        (event,) = store.consent.history(A)
        assert (event["event"], event["scope"], event["source"], event["evidence"]) == (
            "opt_in", "newsletter", "staff", "signed form 2026-11-30")
        assert [m["number"] for m in store.lists.members("newsletter")] == [A]
    assert run("send", A, "News", "--kind", "marketing", "--list", "newsletter")[0] == 0


@pytest.mark.parametrize(("args", "message"), [
    (["consent", "optin", A, "--evidence", "form"], "Missing option '--list'"),
    (["consent", "optin", A, "--list", "newsletter"], "Missing option '--evidence'"),
    (["consent", "optin", A, "--list", "nope", "--evidence", "form"], "no list named 'nope'"),
    (["consent", "optin", "12", "--list", "newsletter", "--evidence", "form"], "not a valid phone number"),
    (["consent", "optout", A], "Missing option '--reason'"),
    (["consent", "optout", A, "--reason", "x", "--list", "newsletter", "--transactional"], "not both"),
])
def test_consent_commands_refuse_what_would_record_a_guess(run: Run, db: Callable[[], Store], args: list[str],
                                                         message: str) -> None:
    run("lists", "create", "newsletter")
    code, out = run(*args)
    assert code != 0 and message in out, out
    with db() as store:
        assert store.consent.history() == []


def test_a_staff_opt_out_without_a_list_stops_everything(run: Run, db: Callable[[], Store]) -> None:
    code, out = run("consent", "optout", A, "--reason", "asked at the front desk")
    assert code == 0 and f"opt-out recorded: {A} gets no more messages of any kind" in out
    with db() as store:
        (event,) = store.consent.history(A)
        assert (event["event"], event["scope"], event["evidence"]) == ("opt_out", "all", "asked at the front desk")
    code, out = run("send", A, "Reminder: Monday 9 AM")
    assert code == 1 and "opted out of all messages" in out


def test_a_staff_opt_out_of_one_list_or_of_transactional_leaves_the_rest(run: Run, db: Callable[[], Store]) -> None:
    run("lists", "create", "newsletter")
    run("consent", "optin", A, "--list", "newsletter", "--evidence", "web form")
    assert run("consent", "optout", A, "--reason", "letter", "--list", "newsletter")[0] == 0
    assert run("send", A, "Reminder: Monday 9 AM")[0] == 0
    code, out = run("send", A, "News", "--kind", "marketing", "--list", "newsletter")
    assert code == 1 and "opted out of 'newsletter'" in out
    assert run("consent", "optout", B, "--reason", "phone call", "--transactional")[0] == 0
    code, out = run("send", B, "Reminder: Monday 9 AM")
    assert code == 1 and "opted out of 'transactional'" in out


def test_lists_create_add_show_remove_and_list(run: Run) -> None:
    code, out = run("lists", "create", "Newsletter", "--keyword", "news", "--description", "Monthly news")
    assert code == 0 and "list newsletter created (patients leave it with STOP NEWS)" in out
    code, out = run("lists", "add", "newsletter", A, "(202) 555-0102")
    assert code == 0 and "added 2 to newsletter" in out
    code, out = run("lists", "add", "newsletter", A)
    assert code == 0 and "added 0 to newsletter (1 already on it)" in out
    code, out = run("lists", "show", "newsletter")
    assert code == 0 and "newsletter: 2 members, keyword NEWS - Monthly news" in out
    assert A in out and B in out and "marketing" in out
    code, out = run("lists", "show", "newsletter", "--json")
    shown = json.loads(out)
    assert shown["members"] == 2 and {r["marketing"] for r in shown["rows"]} == {"no"}
    code, out = run("lists", "remove", "newsletter", A, "+12025550199")
    assert code == 0 and "removed 1 from newsletter; not on it: +12025550199" in out
    code, out = run("lists", "list", "--json")
    assert json.loads(out) == [{"name": "newsletter", "keyword": "NEWS", "members": 1, "description": "Monthly news"}]


@pytest.mark.parametrize(("args", "message"), [
    (["lists", "create", "all"], "cannot be a list name"),
    (["lists", "create", "news", "--keyword", "STOP"], "is a compliance word"),
    (["lists", "create", "news", "--keyword", "two words"], "cannot be a list keyword"),
    (["lists", "add", "nope", A], "no list named 'nope'"),
    (["lists", "show", "nope"], "smsgate lists list"),
])
def test_lists_commands_refuse_bad_input_with_a_fix(run: Run, args: list[str], message: str) -> None:
    code, out = run(*args)
    assert code != 0 and message in out, out


def test_a_bad_number_in_lists_add_adds_nothing(run: Run, db: Callable[[], Store]) -> None:
    run("lists", "create", "newsletter")
    code, out = run("lists", "add", "newsletter", A, "12")
    assert code == 1 and "'12' is not a valid phone number" in out and "Nothing was changed" in out
    with db() as store:
        assert store.lists.count("newsletter") == 0


def test_segments_create_preview_list_show_and_delete(run: Run, db: Callable[[], Store]) -> None:
    with db() as store:
        store.contacts.update(A, tags=["diabetes"], first_name="Ana")
        store.contacts.update(B, tags=["asthma"])
    code, out = run("segments", "create", "diabetes-quiet", "--where", "tag:diabetes AND NOT replied:30d")
    assert code == 0 and "segment diabetes-quiet saved: tag:diabetes AND NOT replied:30d (1 contacts now)" in out
    code, out = run("segments", "preview", "diabetes-quiet")
    assert code == 0 and "1 contacts" in out and A in out and "Ana" in out and B not in out
    code, out = run("segments", "preview", "diabetes-quiet", "--json")
    assert json.loads(out)["count"] == 1
    code, out = run("segments", "list")
    assert code == 0 and "diabetes-quiet" in out and "tag:diabetes AND NOT replied:30d" in out
    code, out = run("segments", "show", "diabetes-quiet")
    assert code == 0 and "selects 1 contacts now" in out and "saved by cli" in out
    assert run("segments", "delete", "diabetes-quiet")[0] == 0
    code, out = run("segments", "show", "diabetes-quiet")
    assert code == 1 and "smsgate segments list" in out


def test_a_bad_segment_filter_is_refused_with_its_column(run: Run) -> None:
    code, out = run("segments", "create", "broken", "--where", "tag:diabetes AND NOT")
    assert code == 1 and "segment filter: expected a term after NOT at column 21" in out
    code, out = run("segments", "list")
    assert "(none)" in out


def test_a_join_keyword_must_opt_in_to_something_that_can_be_a_list(run: Run) -> None:
    code, out = run("keywords", "add", "JOIN", "--reply", "Welcome!", "--opt-in", "news letter")
    assert code == 1 and "--opt-in: 'news letter' cannot be a list name" in out


def test_consent_show_explains_marketing_per_list(run: Run, db: Callable[[], Store]) -> None:
    run("lists", "create", "newsletter", "--keyword", "NEWS")
    run("lists", "create", "flu")
    run("consent", "optin", A, "--list", "newsletter", "--evidence", "signed form 12")
    run("consent", "optin", A, "--list", "flu", "--evidence", "web form")
    run("consent", "optout", A, "--reason", "texted the desk", "--list", "newsletter")
    code, out = run("consent", "show", A)
    assert code == 0, out
    assert "marketing:flu yes" in " ".join(out.split())
    assert "marketing:newsletter NO" in " ".join(out.split())
    assert "marketing to 'newsletter': +12025550101 opted out of 'newsletter' messages" in out
    assert "transactional  yes" in out
