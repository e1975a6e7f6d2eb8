"""Names appear wherever a number appears (inbox, conversation, outbox, message, reports, exports, the
CLI), through one display rule, and hostile names are shown inert: escaped in pages, isolated in <bdi>,
direction overrides and control characters replaced, CSV cells defused."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from web_helpers import PASSWORD, PATIENT, WebEnv, add_modem, make_env, receive

from smsgate.cli import cli
from smsgate.config import load_config
from smsgate.queue import Store
from smsgate.queue.contacts import ContactValues

ZOE = "Zoë Núñez (+1 555-555-0101)"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[WebEnv]:
    e = make_env(tmp_path)
    e.store.accounts.add_user("ada", PASSWORD, "admin", actor="test")
    e.store.contacts.save(PATIENT, ContactValues(first_name="Zoë", last_name="Núñez"), actor="test")
    yield e
    e.store.close()


def _traffic(store: Store) -> tuple[int, int]:
    modem = add_modem(store)
    inbound = receive(store, modem, PATIENT, "Can I come at 4?")
    queued = store.outbox.enqueue(PATIENT, "Yes, see you at 4", kind="reply").id
    return inbound.conversation_id or 0, queued


def test_the_inbox_and_the_conversation_name_the_patient_with_the_number(env: WebEnv) -> None:
    conversation, _ = _traffic(env.store)
    client = env.login("ada")
    assert f"<bdi>{ZOE}</bdi>" in client.get("/inbox").get_data(as_text=True)
    page = client.get(f"/inbox/{conversation}").get_data(as_text=True)
    assert f'<h1 id="contact"><bdi>{ZOE}</bdi>' in page and f"<title>{ZOE}" in page


def test_the_outbox_and_a_message_name_the_recipient(env: WebEnv) -> None:
    _, message = _traffic(env.store)
    client = env.login("ada")
    assert f"<td><bdi>{ZOE}</bdi></td>" in client.get("/outbox").get_data(as_text=True)
    assert f"<dd><bdi>{ZOE}</bdi></dd>" in client.get(f"/outbox/{message}").get_data(as_text=True)


def test_a_number_without_a_name_is_shown_as_its_country_writes_it(env: WebEnv) -> None:
    env.store.outbox.enqueue("+15555550102", "hello", kind="reply")
    assert "<td><bdi>+1 555-555-0102</bdi></td>" in env.login("ada").get("/outbox").get_data(as_text=True)


def _export(env: WebEnv, what: str) -> list[dict[str, str]]:
    text = env.login("ada").get(f"/export/{what}.csv").get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(text)))


def test_the_csv_exports_have_name_columns(env: WebEnv) -> None:
    _traffic(env.store)
    [sent] = _export(env, "outbox")
    assert (sent["to_number"], sent["first_name"], sent["last_name"]) == ("'" + PATIENT, "Zoë", "Núñez")
    [received] = _export(env, "inbound")
    assert (received["sender"], received["first_name"], received["last_name"]) == ("'" + PATIENT, "Zoë", "Núñez")


HOSTILE_NAMES = ["<script>alert(1)</script>", '"><img src=x onerror=alert(2)>', "=cmd|' /C calc'!A0",
                 "@SUM(1+1)", "\u202eevil\u202c", "Bell\x07\x1b[31m", "x" * 100]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_name_is_inert_on_every_page(env: WebEnv, name: str) -> None:
    env.store.contacts.save(PATIENT, ContactValues(first_name=name, last_name=""), actor="test")
    conversation, message = _traffic(env.store)
    client = env.login("ada")
    for path in ("/inbox", f"/inbox/{conversation}", "/outbox", f"/outbox/{message}", "/contacts",
                 f"/contacts/{PATIENT}"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in html and "<img src=x" not in html, path
        assert "\u202e" not in html and "\x1b" not in html and "\x07" not in html, path
        if name.startswith("<"):
            assert "&lt;" in html, path


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_name_is_defused_in_the_csv_exports(env: WebEnv, name: str) -> None:
    env.store.contacts.save(PATIENT, ContactValues(first_name=name, last_name=""), actor="test")
    _traffic(env.store)
    for what in ("outbox", "inbound"):
        [row] = _export(env, what)
        expected = "'" + name if name[0] in "=+-@" else name
        assert row["first_name"] == expected, what


def test_a_right_to_left_override_in_a_name_is_replaced_and_isolated(env: WebEnv) -> None:
    env.store.contacts.save(PATIENT, ContactValues(first_name="\u202eevil\u202c"), actor="test")
    conversation, _ = _traffic(env.store)
    html = env.login("ada").get(f"/inbox/{conversation}").get_data(as_text=True)
    assert '<h1 id="contact"><bdi>\ufffdevil\ufffd Núñez (+1 555-555-0101)</bdi>' in html


# --- the CLI ---------------------------------------------------------------------------------------------

def _cli(config: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--config", str(config), *args])
    return result.exit_code, result.output


@pytest.fixture
def cli_store(cli_config: Path) -> Iterator[Store]:
    store = Store.for_config(load_config(cli_config))
    store.contacts.save("+12025550123", ContactValues(first_name="Zoë", last_name="Núñez"), actor="test")
    yield store
    store.close()


def test_the_cli_outbox_and_inbox_name_the_patient(cli_config: Path, cli_store: Store) -> None:
    cli_store.outbox.enqueue("+12025550123", "Reminder", kind="transactional")
    cli_store.inbox.store(modem_id=None, sender="+12025550123", body="YES", dedupe_key="k1")
    for command, key in (("outbox", "to"), ("inbox", "from")):
        code, out = _cli(cli_config, command)
        assert code == 0 and "Zoë Núñez (+1 202-555-0123)" in out, command
        [row] = json.loads(_cli(cli_config, command, "--json")[1])
        assert (row[key], row["name"]) == ("+12025550123", "Zoë Núñez"), command


def test_the_cli_report_names_likely_opt_outs(cli_config: Path, cli_store: Store) -> None:
    inbound, _ = cli_store.inbox.store(modem_id=None, sender="+12025550123", body="please stop", dedupe_key="k2")
    cli_store.inbox.mark_handled(inbound.id, likely_opt_out=True)
    code, out = _cli(cli_config, "report")
    assert code == 0 and f"#{inbound.id} Zoë Núñez (+1 202-555-0123)" in out


def test_the_cli_never_prints_a_names_control_characters(cli_config: Path, cli_store: Store) -> None:
    cli_store.contacts.save("+12025550123", ContactValues(first_name="\x1b[2J\u202eevil"), actor="test")
    cli_store.outbox.enqueue("+12025550123", "Reminder", kind="transactional")
    for args in (("outbox",), ("contacts", "list"), ("contacts", "show", "+12025550123")):
        code, out = _cli(cli_config, *args)
        assert code == 0 and "\x1b" not in out and "\u202e" not in out and "\ufffd[2J\ufffdevil" in out, args
