"""`WORD=value` answer maps: one parser and one normalisation for the CLI's --expect/--follow-up, the API's
`expect`/`follow_up` objects and keyword menus."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner

from smsgate.cli import cli
from smsgate.config import load_config
from smsgate.keywords import RuleError, WordMapError, match_answer, parse_expect, parse_menu, parse_word_map
from smsgate.queue import Store

Source = str | Sequence[str] | Mapping[str, str] | None


@pytest.mark.parametrize(("given", "stored"), [
    ("YES=confirmed,NO=cancelled,1=reschedule", {"YES": "confirmed", "NO": "cancelled", "1": "reschedule"}),
    (" yes = confirmed , no=cancelled ", {"YES": "confirmed", "NO": "cancelled"}),
    ("Yes!=confirmed", {"YES": "confirmed"}),
    ("Sí=confirmado", {"SI": "confirmado"}),
    ("opt-in=joined", {"OPT IN": "joined"}),
    ("#1=billing", {"1": "billing"}),
    ("YES=confirmed,", {"YES": "confirmed"}),
    ("YES=confirmed,,NO=cancelled", {"YES": "confirmed", "NO": "cancelled"}),
    ("YES=a=b", {"YES": "a=b"}),
    ("YES=Confirmed", {"YES": "Confirmed"}),
    (("YES=See you then, Ann!", "no= Call us, please "), {"YES": "See you then, Ann!", "NO": "Call us, please"}),
    ({"yes": " confirmed ", "NO": "cancelled"}, {"YES": "confirmed", "NO": "cancelled"}),
    (None, {}), ("", {}), ("  ", {}), ((), {}), ({}, {}),
])
def test_a_word_map_is_stored_with_canonical_words_and_stripped_values(given: Source,
                                                                       stored: dict[str, str]) -> None:
    assert parse_word_map(given) == stored


@pytest.mark.parametrize(("given", "needle"), [
    ("YES", "write each answer as ANSWER=outcome"),
    ("YES=confirmed,NO", "'NO': write each answer"),
    ("=confirmed", "both the answer word and its outcome are needed"),
    ("YES=", "both the answer word and its outcome are needed"),
    ("YES= ", "both the answer word and its outcome are needed"),
    ({"YES": ""}, "both the answer word and its outcome are needed"),
    ("!!=confirmed", "has no letters or digits"),
    ("yes=confirmed,YES=cancelled", "the answer YES is already given by 'yes=confirmed'"),
    (("YES=See you", "yes!=Bye"), "give each answer once"),
    ({"yes": "a", "Yes": "b"}, "give each answer once"),
    ({"YES": 1}, "must be text"),
])
def test_a_word_map_that_cannot_work_is_refused_with_the_item_named(given: Source, needle: str) -> None:
    with pytest.raises(WordMapError, match=re.escape(needle)):
        parse_word_map(given)  # type: ignore[arg-type]  # {"YES": 1} is what a JSON client may send


def test_the_error_speaks_of_what_the_map_leads_to() -> None:
    with pytest.raises(WordMapError, match=re.escape("ANSWER=team, e.g. 1=billing")):
        parse_word_map("1:billing", what="team", example="1=billing")


@pytest.mark.parametrize(("given", "reply"), [("yes=confirmed", "Yes please"), ("Sí=confirmed", "si"),
                                             ("1=reschedule", "#1"), ("Y=confirmed", "yes")])
def test_every_stored_word_is_the_one_a_reply_matches(given: str, reply: str) -> None:
    stored = parse_word_map(given)
    assert match_answer(reply, stored) == next(iter(stored))


def test_expect_menu_and_api_object_agree_on_the_same_map() -> None:
    text = "yes!=confirmed, Sí = later ,1=billing"
    as_object = {"yes!": "confirmed", "Sí": "later", "1": "billing"}
    assert parse_expect(text) == parse_expect(as_object) == parse_word_map(text) == {
        "YES": "confirmed", "SI": "later", "1": "billing"}
    assert parse_menu("yes!=Billing, Sí = Front-Desk") == {"YES": "billing", "SI": "front-desk"}


@pytest.mark.parametrize("given", ["1-5", "rating", " Rating "])
def test_expect_1_to_5_asks_for_a_rating(given: str) -> None:
    assert parse_expect(given) == {str(i): f"rating:{i}" for i in range(1, 6)}


def test_a_menu_that_cannot_work_is_a_rule_error() -> None:
    with pytest.raises(RuleError, match=r"--menu .*give each answer once"):
        parse_menu("1=billing,#1=support")


def test_cli_send_stores_the_canonical_map_and_refuses_a_repeated_word(cli_config: Path) -> None:
    def run(*args: str) -> tuple[int, str]:
        result = CliRunner().invoke(cli, ["--config", str(cli_config), *args])
        return result.exit_code, result.output

    code, out = run("send", "+12025550123", "Reply YES", "--expect", "yes=confirmed,yeah!=sure")
    assert code == 0, out
    code, out = run("send", "+12025550124", "Reply YES", "--expect", "yes=confirmed,YES!=cancelled")
    assert code == 2 and "--expect" in out and "give each answer once" in out
    code, out = run("send", "+12025550125", "Reply YES", "--expect", "YES=confirmed",
                    "--follow-up", "yes=See you, Ann!", "--follow-up", "Yes!=Bye")
    assert code == 2 and "--follow-up" in out and "give each answer once" in out
    rows = json.loads(run("outbox", "--json")[1])
    assert [r["to"] for r in rows] == ["+12025550123"]
    with Store.open(load_config(cli_config).database_path) as store:
        assert store.outbox.get(rows[0]["id"]).expect == {"YES": "confirmed", "YEAH": "sure"}
