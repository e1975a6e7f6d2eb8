"""`smsgate users ...`, `smsgate tokens ...` and `smsgate web` against a real configuration and database."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from click.testing import CliRunner

from smsgate.cli import cli
from smsgate.queue import Store


def init(tmp_path: Path) -> tuple[CliRunner, list[str], Path]:
    runner = CliRunner()
    config = tmp_path / "smsgate.toml"
    result = runner.invoke(cli, ["--config", str(config), "init"])
    assert result.exit_code == 0, result.output
    return runner, ["--config", str(config)], tmp_path / "smsgate.db"


def test_users_add_list_and_disable(tmp_path: Path) -> None:
    runner, base, db = init(tmp_path)
    added = runner.invoke(cli, [*base, "users", "add", "maria", "--role", "staff"],
                          input="a long passphrase\na long passphrase\n")
    assert added.exit_code == 0, added.output
    assert "added maria (staff)" in added.output
    piped = runner.invoke(cli, [*base, "users", "add", "ops", "--role", "admin", "--password-stdin"],
                          input="another long one\n")
    assert piped.exit_code == 0, piped.output
    listed = runner.invoke(cli, [*base, "users", "list"])
    assert re.search(r"maria\s+staff", listed.output) and re.search(r"ops\s+admin", listed.output)
    assert runner.invoke(cli, [*base, "users", "disable", "maria"]).exit_code == 0
    with Store.open(db) as store:
        assert store.accounts.check_password("ops", "another long one") is not None
        assert store.accounts.check_password("maria", "a long passphrase") is None  # disabled
        assert "a long passphrase" not in str(store.query("SELECT * FROM users"))


def test_users_add_refuses_short_passwords_and_duplicates(tmp_path: Path) -> None:
    runner, base, _ = init(tmp_path)
    short = runner.invoke(cli, [*base, "users", "add", "x", "--role", "viewer", "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    runner.invoke(cli, [*base, "users", "add", "x", "--role", "viewer", "--password-stdin"], input="long enough!\n")
    again = runner.invoke(cli, [*base, "users", "add", "x", "--role", "admin", "--password-stdin"],
                          input="long enough!\n")
    assert again.exit_code == 1 and "already exists" in again.output
    missing = runner.invoke(cli, [*base, "users", "disable", "nobody"])
    assert missing.exit_code == 1 and "no user 'nobody'" in missing.output


def test_tokens_are_shown_once_stored_hashed_and_revocable(tmp_path: Path) -> None:
    runner, base, db = init(tmp_path)
    created = runner.invoke(cli, [*base, "tokens", "create", "crm", "--scope", "send"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert secret.startswith("smsg_") and len(secret) > 40
    listed = runner.invoke(cli, [*base, "tokens", "list"]).output
    assert secret not in listed and secret[:11] in listed and "send" in listed
    with Store.open(db) as store:
        assert secret not in str(store.query("SELECT * FROM api_tokens"))
        assert store.accounts.token_for_secret(secret) is not None
        assert runner.invoke(cli, [*base, "tokens", "revoke", "1"]).exit_code == 0
        assert store.accounts.token_for_secret(secret) is None
    assert runner.invoke(cli, [*base, "tokens", "revoke", "99"]).exit_code == 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_smsgate_web_serves_the_app_with_waitress(tmp_path: Path) -> None:
    _, base, _ = init(tmp_path)
    port = free_port()
    log = tmp_path / "web.log"
    with log.open("wb") as out, subprocess.Popen(
            [sys.executable, "-m", "smsgate.cli", *base, "web", "--port", str(port)], stdout=out,
            stderr=subprocess.STDOUT) as proc:
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=2) as response:
                        assert response.status == 200
                        assert response.headers["Server"] == "smsgate"
                        break
                except OSError:
                    assert proc.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, "smsgate web did not start"
                    time.sleep(0.05)
        finally:
            proc.terminate()
            proc.wait(10)
