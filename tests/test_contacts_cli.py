"""`smsgate contacts add|edit|show|list|tag|untag|delete|import` over a real configuration and database."""

from __future__ import annotations

import csv
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from smsgate.cli import cli
from smsgate.config import load_config
from smsgate.queue import Store

DATA = Path(__file__).resolve().parent / "data" / "contacts"
REPO = Path(__file__).resolve().parent.parent
NUMBER = "+12025550123"


def run(config: Path, *args: str, input: str | None = None) -> Result:
    result = CliRunner().invoke(cli, ["--config", str(config), *args], input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture
def store(cli_config: Path) -> Iterator[Store]:
    s = Store.for_config(load_config(cli_config))
    yield s
    s.close()


def add_zoe(config: Path) -> Result:
    return run(config, "contacts", "add", "(202) 555-0123", "--first-name", "Zoë", "--last-name", "Núñez",
               "--language", "Spanish", "--field", "mrn=A-1042", "--tag", "vip")


def test_add_then_add_again_changes_nothing(cli_config: Path, store: Store) -> None:
    first = add_zoe(cli_config)
    assert first.exit_code == 0 and first.output == "added Zoë Núñez (+1 202-555-0123)\n"
    again = add_zoe(cli_config)
    assert again.exit_code == 0 and again.output == "Zoë Núñez (+1 202-555-0123): nothing changed\n"
    assert store.contacts.count() == 1


def test_add_refuses_what_a_contact_cannot_hold(cli_config: Path, store: Store) -> None:
    for args, message in ((["555-12"], "not a valid phone number"),
                          ([NUMBER, "--timezone", "Mars/Base"], "not a time zone"),
                          ([NUMBER, "--first-name", "x" * 101], "limit is 100"),
                          ([NUMBER, "--field", "mrn"], "is not KEY=VALUE")):
        result = run(cli_config, "contacts", "add", *args)
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output, args
    assert store.contacts.count() == 0


def test_edit_changes_only_what_it_is_given_and_clears_with_an_empty_value(cli_config: Path, store: Store) -> None:
    add_zoe(cli_config)
    result = run(cli_config, "contacts", "edit", NUMBER, "--timezone", "America/Chicago", "--field", "mrn=",
                 "--last-name", "")
    assert result.exit_code == 0 and "changed last_name, timezone, fields" in result.output
    zoe = store.contacts.require(NUMBER)
    assert (zoe.first_name, zoe.last_name, zoe.timezone, zoe.fields) == ("Zoë", None, "America/Chicago", {})


def test_edit_of_a_number_without_a_contact_says_how_to_add_it(cli_config: Path) -> None:
    result = run(cli_config, "contacts", "edit", NUMBER, "--first-name", "Zoë")
    assert result.exit_code == 1 and "smsgate contacts add" in result.output
    assert run(cli_config, "contacts", "edit", NUMBER).exit_code == 2  # nothing to change


def test_show_prints_the_contact_and_its_history_and_json_has_it_all(cli_config: Path, store: Store) -> None:
    add_zoe(cli_config)
    store.inbox.store(modem_id=None, sender=NUMBER, body="my knee hurts", dedupe_key="k1")
    store.consent.record(NUMBER, "opt_in", scope="newsletter", source="web", actor="t", evidence="form")
    text = run(cli_config, "contacts", "show", "202-555-0123").output
    for fact in ("Zoë Núñez (+1 202-555-0123)", "language    es", "America/New_York (from the number)",
                 "mrn=A-1042", "opt_in  scope=newsletter source=web evidence=form", "in ", "my knee hurts"):
        assert fact in text, fact
    detail = json.loads(run(cli_config, "contacts", "show", NUMBER, "--json").output)
    assert (detail["first_name"], detail["tags"], detail["consent"][0]["scope"], detail["messages"][0]["body"]) == (
        "Zoë", ["vip"], "newsletter", "my knee hurts")
    missing = run(cli_config, "contacts", "show", "+12025550100")
    assert missing.exit_code == 1 and "no contact +12025550100" in missing.output


def test_list_searches_and_has_json(cli_config: Path) -> None:
    add_zoe(cli_config)
    run(cli_config, "contacts", "add", "+12025550199", "--first-name", "Nuno", "--tag", "flu")
    assert "Zoë Núñez" in run(cli_config, "contacts", "list", "--search", "nunez").output
    assert [c["number"] for c in json.loads(run(cli_config, "contacts", "list", "--tag", "flu", "--json").output)] \
        == ["+12025550199"]
    assert "(1 of 2; see more with --offset 1)" in run(cli_config, "contacts", "list", "--limit", "1").output
    assert run(cli_config, "contacts", "list", "--search", "nobody").output == "(none)\n"


def test_tag_and_untag(cli_config: Path, store: Store) -> None:
    add_zoe(cli_config)
    assert run(cli_config, "contacts", "tag", NUMBER, "flu-2026", "Diabetes").output.endswith(
        "tags diabetes, flu-2026, vip\n")
    assert run(cli_config, "contacts", "untag", NUMBER, "vip").output.endswith("tags diabetes, flu-2026\n")
    bad = run(cli_config, "contacts", "tag", NUMBER, "two words")
    assert bad.exit_code == 1 and "cannot be a tag" in bad.output


def test_delete_asks_first_then_erases_and_says_what_it_kept(cli_config: Path, store: Store) -> None:
    add_zoe(cli_config)
    refused = run(cli_config, "contacts", "delete", NUMBER, input="n\n")
    assert refused.exit_code == 1 and store.contacts.require(NUMBER).first_name == "Zoë"
    erased = run(cli_config, "contacts", "delete", NUMBER, input="y\n")
    assert erased.exit_code == 0 and "kept: the number, every consent event" in erased.output
    assert store.contacts.require(NUMBER).name is None


# --- import ----------------------------------------------------------------------------------------------

def test_import_reports_and_exits_3_when_some_rows_failed(cli_config: Path, store: Store, tmp_path: Path) -> None:
    errors = tmp_path / "errors.csv"
    result = run(cli_config, "contacts", "import", str(DATA / "practice-export-utf8-bom.csv"), "--list", "recall",
                 "--errors", str(errors))
    assert result.exit_code == 3
    assert "practice-export-utf8-bom.csv: UTF-8 with BOM, comma-separated, 8 rows" in result.output
    assert "row 8: '555-12' is not a phone number in US" in result.output
    assert f"wrote the 2 rows with errors to {errors}" in result.output
    with open(errors, encoding="utf-8-sig", newline="") as fh:
        assert [r[-1][:6] for r in csv.reader(fh)] == ["reason", "row 8:", "row 10"]
    assert store.contacts.count() == 5 and store.lists.count("recall") == 5


def test_import_with_every_row_good_exits_0_and_writes_no_error_file(cli_config: Path, tmp_path: Path) -> None:
    errors = tmp_path / "errors.csv"
    result = run(cli_config, "contacts", "import", str(DATA / "utf8-tabs.csv"), "--errors", str(errors))
    assert result.exit_code == 0 and not errors.exists()


def test_a_dry_run_lists_each_row_and_changes_nothing(cli_config: Path, store: Store) -> None:
    result = run(cli_config, "contacts", "import", str(DATA / "excel-cp1252-semicolon.csv"), "--dry-run",
                 "--tag", "imported")
    assert result.exit_code == 0 and "(dry run: nothing was changed)" in result.output
    assert "  row 2: +12025550111 created (first_name, last_name, tags)" in result.output
    assert "4 would be created" in result.output
    assert store.contacts.count() == 0


def test_import_map_skip_existing_and_json(cli_config: Path, store: Store) -> None:
    run(cli_config, "contacts", "add", "+12025550121", "--first-name", "Zoe")
    result = run(cli_config, "contacts", "import", str(DATA / "utf8-tabs.csv"), "--skip-existing", "--json",
                 "--map", "Time zone=-")
    report = json.loads(result.output)
    assert (report["encoding"], report["delimiter"], report["created"], report["skipped"]) == ("UTF-8", "\t", 1, 1)
    assert report["ignored_columns"] == ["Time zone"]
    assert store.contacts.require("+12025550121").first_name == "Zoe"


def test_a_file_that_cannot_be_read_exits_1_with_the_reason(cli_config: Path, tmp_path: Path) -> None:
    book = tmp_path / "patients.xlsx"
    book.write_bytes(b"PK\x03\x04 not csv")
    result = run(cli_config, "contacts", "import", str(book))
    assert result.exit_code == 1 and "Excel workbook" in result.output
    bad_map = run(cli_config, "contacts", "import", str(DATA / "utf8-tabs.csv"), "--map", "Mobil=number")
    assert bad_map.exit_code == 1 and "does not have" in bad_map.output


def _big_file(path: Path, rows: int) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write("number,first_name\n")
        out.writelines(f"+1202{300 + i // 10000:03d}{i % 10000:04d},N{i}\n" for i in range(rows))


def test_a_long_import_prints_plain_progress_lines_when_not_on_a_terminal(cli_config: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    _big_file(big, 20_500)
    result = run(cli_config, "contacts", "import", str(big))
    assert result.exit_code == 0
    assert "... 10000 rows read\n... 20000 rows read\n" in result.stderr
    assert "importing" not in result.stderr


def test_a_long_import_shows_a_progress_bar_on_a_terminal(cli_config: Path, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    _big_file(big, 5_000)
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([sys.executable, "-m", "smsgate.cli", "--config", str(cli_config), "contacts",
                                 "import", str(big)], stdout=subprocess.PIPE, stderr=follower,
                                env={**os.environ, "PYTHONPATH": str(REPO)})
        os.close(follower)
        out, _ = proc.communicate(timeout=120)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
    assert proc.returncode == 0, out
    assert b"importing" in shown and b"100%" in shown
    assert b"5000 created" in out
