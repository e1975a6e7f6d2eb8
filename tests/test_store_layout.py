"""The store is repositories over one `Db`: its import graph is a DAG and every SQLite-only statement has
one home, so a second engine can be added behind the same methods."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from smsgate.queue import Store

QUEUE = Path(__file__).resolve().parent.parent / "smsgate" / "queue"
SMSGATE = QUEUE.parent


def _local_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:  # from . import outbox
                found.update(alias.name for alias in node.names)
            elif node.module and node.module.startswith("smsgate.queue."):
                found.add(node.module.split(".")[2])
            elif node.module == "smsgate.queue":
                found.update(alias.name for alias in node.names)
    return found


def test_the_modules_of_the_store_import_each_other_without_a_cycle() -> None:
    graph = {p.stem: _local_imports(p) for p in QUEUE.glob("*.py") if p.stem != "__init__"}
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        assert node not in path, "import cycle: " + " -> ".join([*path, node])
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, [*path, node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])


def test_each_repository_is_reached_by_name_from_the_store(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.db") as store:
        names = ("audit", "alerts", "modems", "keywords", "accounts", "webhooks", "contacts", "conversations",
                 "lists", "segments", "consent", "outbox", "inbox", "reports")
        for name in names:
            repo = getattr(store, name)
            assert repo.db is store, name
        assert store.outbox.consent is store.consent and store.reports.outbox is store.outbox
        assert store.consent.lists is store.lists and store.segments.lists is store.lists


# A statement starts a string literal; mentions in docstrings (after a backtick) are not statements.
SQLITE_ONLY = re.compile(r"[\"'](?:BEGIN IMMEDIATE|BEGIN DEFERRED|PRAGMA|SAVEPOINT)|json_extract\(|json_each\(|"
                         r"last_insert_rowid|INSERT OR |random\(\)|GLOB ")


def test_sqlite_only_statements_live_in_the_db_or_the_schema() -> None:
    allowed = {QUEUE / "db.py", QUEUE / "schema.py", QUEUE / "audit.py"}
    offenders = [f"{p.relative_to(SMSGATE.parent)}:{n}" for p in sorted(SMSGATE.rglob("*.py")) if p not in allowed
                 for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
                 if SQLITE_ONLY.search(line)]
    assert offenders == []
