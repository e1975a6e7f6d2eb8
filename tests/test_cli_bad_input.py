"""Bad input on the command line: a sentence and a non-zero exit, never a traceback or a silent no-op."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from smsgate.cli import cli


def run(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_outbox_refuses_a_state_that_does_not_exist_and_names_the_real_ones(cli_config: Path) -> None:
    code, out = run(cli_config, "outbox", "--state", "sent")
    assert code == 2 and "'sent' is not one of" in out and "queued" in out and "unknown" in out


@pytest.mark.parametrize("command", ["outbox", "inbox"])
def test_a_limit_below_one_is_refused_rather_than_read_as_no_limit(cli_config: Path, command: str) -> None:
    code, out = run(cli_config, command, "--limit", "-5")
    assert code == 2 and "--limit" in out


@pytest.mark.parametrize("expect", ["YES=,NO=cancelled", "=confirmed", "YES= "])
def test_send_refuses_an_expected_answer_without_word_or_outcome(cli_config: Path, expect: str) -> None:
    code, out = run(cli_config, "send", "+12025550123", "Reply YES", "--expect", expect)
    assert code == 2 and "both the answer word and its outcome" in out
    assert json.loads(run(cli_config, "outbox", "--json")[1]) == []


@pytest.mark.parametrize("follow_up", ["=See you", "YES="])
def test_send_refuses_a_follow_up_without_word_or_text(cli_config: Path, follow_up: str) -> None:
    code, out = run(cli_config, "send", "+12025550123", "Reply YES", "--expect", "YES=confirmed",
                    "--follow-up", follow_up)
    assert code == 2 and "both the answer word and its reply" in out
    assert json.loads(run(cli_config, "outbox", "--json")[1]) == []


def test_send_refuses_a_text_with_a_control_character(cli_config: Path) -> None:
    code, out = run(cli_config, "send", "+12025550123", "Name\tDate\tTime")
    assert code == 1 and "a tab (U+0009) at character 5" in out
    assert json.loads(run(cli_config, "outbox", "--json")[1]) == []


def test_send_to_an_opted_out_number_is_refused_with_the_reason(cli_config: Path) -> None:
    from smsgate.config import load_config
    from smsgate.queue import Store

    with Store.for_config(load_config(cli_config)) as store:
        store.consent.record("+12025550123", "opt_out", source="sms", actor="rules", evidence="STOP")
    code, out = run(cli_config, "send", "+12025550123", "Reminder: Dr Rivera tomorrow")
    assert code == 1 and "+12025550123 opted out of all messages (sms, " in out and "START" in out
    assert json.loads(run(cli_config, "outbox", "--json")[1]) == []


def test_consent_export_to_a_missing_folder_is_a_sentence(cli_config: Path, tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "consent.csv"
    code, out = run(cli_config, "consent", "export", "--output", str(target))
    assert code == 1 and f"cannot write {target}" in out and "folder" in out
    assert not target.exists()


def test_init_where_the_configuration_cannot_be_written_is_a_sentence(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    result = CliRunner().invoke(cli, ["--config", str(blocker / "smsgate.toml"), "init"])
    assert result.exit_code == 1, result.output
    assert f"cannot write {blocker / 'smsgate.toml'}" in result.output and "Traceback" not in result.output
