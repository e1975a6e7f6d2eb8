"""The CLI skeleton over a real config file and database: init, send, outbox, inbox, status, db check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from smsgate.cli import cli
from smsgate.queue import Store


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_init_writes_config_and_creates_the_database(tmp_path: Path, cli_config: Path) -> None:
    assert cli_config.exists()
    assert (cli_config.parent / "smsgate.db").exists()
    code, out = run(cli_config, "init")
    assert code != 0 and "already exists" in out and "--force" in out


def test_send_queues_and_outbox_lists_it(cli_config: Path) -> None:
    code, out = run(cli_config, "send", "(202) 555-0123", "Reminder: Dr Rivera 3:15 PM tomorrow")
    assert code == 0 and out.startswith("queued #1 (1 part, gsm7)")
    code, out = run(cli_config, "outbox", "--json")
    rows = json.loads(out)
    assert rows[0]["to"] == "+12025550123" and rows[0]["state"] == "queued"
    code, out = run(cli_config, "outbox")
    assert code == 0 and "+1 202-555-0123" in out and "queued" in out  # smsgate.names.label


def test_send_with_the_same_key_twice_queues_once(cli_config: Path) -> None:
    assert run(cli_config, "send", "+12025550123", "hi", "--key", "k1")[1].startswith("queued #1")
    assert run(cli_config, "send", "+12025550123", "hi", "--key", "k1")[1].startswith("already queued #1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["+1202", "hello"], "not a valid phone number"),
        (["+12025550123", "   "], "the text is empty"),
        (["+12025550123", "x" * 2000], "SMS parts"),
    ],
)
def test_send_errors_are_sentences_with_nonzero_exit(cli_config: Path, args: list[str], message: str) -> None:
    code, out = run(cli_config, "send", *args)
    assert code != 0 and message in out and "Traceback" not in out
    assert json.loads(run(cli_config, "outbox", "--json")[1]) == []


def test_inbox_lists_received_messages(cli_config: Path) -> None:
    with Store.open(cli_config.parent / "smsgate.db") as store:
        store.inbox.store(modem_id=None, sender="+12025550123", body="YES please", dedupe_key="k")
    code, out = run(cli_config, "inbox")
    assert code == 0 and "YES please" in out and "+1 202-555-0123" in out
    assert json.loads(run(cli_config, "inbox", "--json")[1])[0]["text"] == "YES please"


def test_inbox_shows_what_the_codec_noticed_in_an_odd_text(cli_config: Path) -> None:
    with Store.open(cli_config.parent / "smsgate.db") as store:
        store.inbox.store(modem_id=None, sender="+12025550123", body="Price: 10 ", dedupe_key="k",
                          decode_notes=["GSM-7 text ends in an escape (0x1B) at octet 30"])
    assert "noted" in run(cli_config, "inbox")[1]
    (row,) = json.loads(run(cli_config, "inbox", "--json")[1])
    assert (row["flag"], row["notes"]) == ("noted", ["GSM-7 text ends in an escape (0x1B) at octet 30"])


def test_status_reports_daemon_and_queue(cli_config: Path) -> None:
    run(cli_config, "send", "+12025550123", "hi")
    code, out = run(cli_config, "status")
    assert code == 0 and "never started" in out and "queued 1" in out
    report = json.loads(run(cli_config, "status", "--json")[1])
    assert report["queue"] == {"queued": 1} and report["daemon"]["running"] is False


def test_db_check_says_ok_on_a_healthy_database(cli_config: Path) -> None:
    assert run(cli_config, "db", "check") == (0, "ok\n")


def test_db_check_reports_a_damaged_file_with_nonzero_exit(cli_config: Path) -> None:
    with Store.open(cli_config.parent / "smsgate.db") as store:
        store.outbox.enqueue_many([{"to": "+12025550123", "text": f"message {i} " * 20} for i in range(300)])
        store.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db = cli_config.parent / "smsgate.db"
    data = bytearray(db.read_bytes())
    page = 4096
    for offset in range(3 * page, len(data) - page, 7 * page):  # scribble over some b-tree pages
        data[offset + 100: offset + 400] = b"\xa5" * 300
    db.write_bytes(bytes(data))
    code, out = run(cli_config, "db", "check")
    assert code != 0 and "restore" in out and "Traceback" not in out


def test_missing_config_is_a_sentence_with_nonzero_exit(tmp_path: Path) -> None:
    code, out = run(tmp_path / "none.toml", "outbox")
    assert code != 0 and "smsgate init" in out


def test_cancel_and_resend_refuse_impossible_changes(cli_config: Path) -> None:
    run(cli_config, "send", "+12025550123", "hi")
    code, out = run(cli_config, "resend", "1")
    assert code != 0 and "cannot go from queued to queued" in out
    assert run(cli_config, "cancel", "1") == (0, "cancelled #1\n")
    code, out = run(cli_config, "cancel", "42")
    assert code != 0 and "no message #42" in out


def test_a_file_that_is_not_a_database_is_a_sentence_not_a_traceback(cli_config: Path) -> None:
    (cli_config.parent / "smsgate.db").unlink()
    (cli_config.parent / "smsgate.db").write_text("this is a text file, not SQLite\n" * 200)
    code, out = run(cli_config, "outbox")
    assert code != 0 and "not a readable smsgate database" in out and "Traceback" not in out
