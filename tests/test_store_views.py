"""The figures pages and reports read (`queue/views.py`): each counted once, from the rows that mean it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from click.testing import CliRunner
from sqlite_utils import Database

from smsgate.cli import cli
from smsgate.queue import Store, views
from smsgate.queue.schema import migrations

PATIENT = "+12125550123"


def _handled(store: Store, body: str, keyword: str, action: str, key: str) -> None:
    inbound, _ = store.inbox.store(modem_id=None, sender=PATIENT, body=body, dedupe_key=key)
    store.inbox.mark_handled(inbound.id, keyword=keyword, action=action)


def test_a_rule_is_used_only_when_the_engine_applied_it_not_when_an_answer_shares_its_word(store: Store) -> None:
    store.keywords.add("HOURS", aliases=["OPEN"], reply="We are open 9-5.")
    store.keywords.add("JOIN", reply="Welcome!")
    for n in range(3):
        _handled(store, "open?", "HOURS", "keyword", f"k{n}")  # stored under the rule's keyword, any alias
    _handled(store, "hours", "HOURS", "answer", "a1")  # an answer to a question whose word is HOURS
    _handled(store, "open", "OPEN", "menu", "m1")  # a menu choice spelled like the alias
    rules = {r["keyword"]: r["hits"] for r in views.keyword_rules(store)}
    assert rules == {"HOURS": 3, "JOIN": 0}
    hits = views.keyword_hits(store)
    assert hits[("HOURS", "keyword")] == rules["HOURS"], "the report's figure and the page's are the same rows"


def test_keywords_list_shows_the_same_uses_as_the_reports_page(cli_config: Path) -> None:
    runner = CliRunner()
    with Store.open(cli_config.parent / "smsgate.db") as store:
        store.keywords.add("HOURS", reply="We are open 9-5.")
        _handled(store, "hours", "HOURS", "keyword", "k1")
        _handled(store, "hours", "HOURS", "answer", "a1")
        _handled(store, "stop", "STOP", "opt_out", "s1")
        page = {r["keyword"]: r["hits"] for r in views.keyword_rules(store)}
    result = runner.invoke(cli, ["--config", str(cli_config), "keywords", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = {r["keyword"]: r["hits"] for r in json.loads(result.output)}
    assert listed["HOURS"] == page["HOURS"] == 1
    assert listed["STOP"] == 1  # a built-in word, counted from the same inbox rows


def test_answers_and_ratings_split_one_figure_and_keep_every_outcome(store: Store) -> None:
    for n, outcome in enumerate(("confirmed", "confirmed", None, "rating:5", "rating:4", "rating:5",
                                 "rating:great")):
        mid = store.outbox.enqueue(PATIENT, f"question {n}", expect={"YES": "confirmed"}).id
        if outcome:
            store.outbox.record_outcome(mid, outcome, inbound_id=None)
    assert views.answer_outcomes(store) == {"confirmed": 2, "no answer": 1, "rating:great": 1}
    assert views.ratings(store) == {4: 1, 5: 2}


def test_a_database_from_before_the_inbox_count_keeps_its_rules_and_counts_their_past_uses(tmp_path: Path) -> None:
    """The upgrade drops the old per-rule counter; the uses the engine already recorded in the inbox are
    what the pages count from then on, so nothing a clinic saw disappears."""
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    migrations.apply(Database(conn), stop_before="m050_keyword_use_from_the_inbox")
    conn.execute("INSERT INTO keywords (keyword, hits, created_at, updated_at) VALUES ('HOURS', 9, 'x', 'x')")
    conn.execute("INSERT INTO inbound (dedupe_key, sender, body, received_at, keyword, action)"
                 " VALUES ('k1', ?, 'hours', '2026-01-01T00:00:00.000000Z', 'HOURS', 'keyword')", (PATIENT,))
    conn.commit()
    conn.close()
    with Store.open(path) as store:
        assert [(r["keyword"], r["hits"]) for r in views.keyword_rules(store)] == [("HOURS", 1)]
        assert store.integrity_check() == ["ok"]
