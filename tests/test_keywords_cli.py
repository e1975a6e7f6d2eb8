"""The keywords, consent and report commands, through click against a real configuration and database."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from keywords_support import PATIENT

from smsgate.cli import cli
from smsgate.queue import Kind, Store


@pytest.fixture
def run(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = tmp_path / "smsgate.toml"
    runner = CliRunner()
    assert runner.invoke(cli, ["--config", str(config), "init"]).exit_code == 0

    def invoke(*args: str) -> tuple[int, str]:
        result = runner.invoke(cli, ["--config", str(config), *args])
        return result.exit_code, result.output

    invoke.db = tmp_path / "smsgate.db"  # type: ignore[attr-defined]
    return invoke


def test_keywords_add_list_test_remove(run) -> None:  # type: ignore[no-untyped-def]
    code, out = run("keywords", "add", "JOIN", "--reply", "Hi {first_name}!", "--alias", "sign up", "--tag",
                    "newsletter", "--opt-in", "marketing", "--route", "front")
    assert code == 0 and "JOIN" in out and "opt-in marketing" in out
    code, out = run("keywords", "list")
    assert code == 0 and "SIGN UP" in out and "built-in opt_out" in out
    code, out = run("keywords", "test", "Sign up!", "--from", PATIENT)
    assert code == 0 and "keyword JOIN" in out and "Hi there!" in out
    with Store.open(run.db) as store:
        assert store.query("SELECT COUNT(*) AS n FROM inbound")[0]["n"] == 0  # the dry run stored nothing
        assert store.consent.history() == []
    assert run("keywords", "remove", "join")[0] == 0
    code, out = run("keywords", "remove", "join")
    assert code == 1 and "no keyword 'JOIN'" in out


@pytest.mark.parametrize(("args", "message"), [
    (["STOP", "--reply", "x"], "built-in compliance word"),
    (["JOIN", "--reply", "Hi {password}"], "not a field"),
    (["JOIN", "--hours", "weekdays", "--reply", "x"], "Mon-Fri 08:00-18:00"),
    (["JOIN", "--menu", "1:billing", "--reply", "x"], "ANSWER=team"),
])
def test_keywords_add_refuses_bad_rules_with_a_fix(run, args: list[str], message: str) -> None:  # type: ignore[no-untyped-def]
    code, out = run("keywords", "add", *args)
    assert code == 1 and message in out


def test_consent_export_is_csv_with_formula_cells_defused(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with Store.open(run.db) as store:
        store.consent.record(PATIENT, "opt_out", source="sms", actor="rules", evidence='=HYPERLINK("http://x")')
    target = tmp_path / "ledger.csv"
    code, _ = run("consent", "export", "--output", str(target))
    assert code == 0
    rows = list(csv.reader(io.StringIO(target.read_text(encoding="utf-8"))))
    assert rows[0][:6] == ["number", "event", "scope", "time", "source", "evidence"]
    assert rows[1][0] == "'" + PATIENT and rows[1][1] == "opt_out"
    assert rows[1][5] == "'=HYPERLINK(\"http://x\")"


def test_consent_show_explains_an_opt_out(run) -> None:  # type: ignore[no-untyped-def]
    with Store.open(run.db) as store:
        store.consent.record(PATIENT, "opt_out", source="sms", actor="rules", evidence="inbound #7: STOP")
    code, out = run("consent", "show", "(212) 555-0123")
    assert code == 0 and PATIENT in out and "opted out" in out and "inbound #7: STOP" in out
    assert "transactional  NO" in out and "compliance     yes" in out


def test_consent_show_says_the_campaign_cap_holds_campaigns_and_not_reminders(run) -> None:  # type: ignore[no-untyped-def]
    with Store.open(run.db) as store:
        store.outbox.enqueue(PATIENT, "Flu shots this week", kind=Kind.BULK)
        (claim,) = store.outbox.claim("w", None)
        store.outbox.mark_submitting(claim, 1)
        store.outbox.mark_part_submitted(claim, 1, tp_mr=1)
    code, out = run("consent", "show", PATIENT)
    assert code == 0 and "at most 1 campaign message(s) a day" in out
    assert "transactional  yes" in out and "bulk           NO" in out


def test_report_shows_outcomes_ratings_and_opt_outs(run) -> None:  # type: ignore[no-untyped-def]
    with Store.open(run.db) as store:
        for n, outcome in enumerate(["confirmed", "confirmed", "rating:5", "rating:4", "rating:5"]):
            mid = store.outbox.enqueue(f"+1212555{n:04d}", "q?", expect={"YES": "confirmed"}).id
            store.outbox.record_outcome(mid, outcome, inbound_id=None)
        store.consent.record(PATIENT, "opt_out", source="sms", actor="rules")
    code, out = run("report")
    assert code == 0
    assert "confirmed" in out and "average 4.67 over 3 ratings" in out and "opt_out" in out
