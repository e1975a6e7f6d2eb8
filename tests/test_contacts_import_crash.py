"""A contacts import killed with SIGKILL mid-way leaves no half-written contact, and a rerun completes it.

The import runs as `smsgate contacts import` in its own process, is killed once some batches have
committed, and is run again: every row of the file then exists exactly once, complete.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from smsgate.config import load_config
from smsgate.imports.contacts import BATCH_ROWS
from smsgate.queue import Store
from smsgate.testing import wait_until

REPO = Path(__file__).resolve().parent.parent
ROWS = 40_000


def _numbers() -> list[str]:
    return [f"+1202{200 + i // 10000:03d}{i % 10000:04d}" for i in range(ROWS)]


def _write(path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as out:
        out.write("Mobile,First Name,Last Name,Notes\n")
        for i, number in enumerate(_numbers()):
            national = f"({number[2:5]}) {number[5:8]}-{number[8:]}"
            out.write(f"{national},Zoë{i},Núñez{i},row {i + 2}\n")


def _import(config: Path, csv_path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "smsgate.cli", "--config", str(config), "contacts", "import",
                             str(csv_path), "--list", "recall", "--tag", "imported", "--json"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _complete_contacts(store: Store) -> tuple[int, int]:
    """(contacts, contacts with every value the file gives them: both names, the note, the tag, the list)."""
    total = int(store.scalar("SELECT COUNT(*) FROM contacts"))
    complete = int(store.scalar(
        "SELECT COUNT(*) FROM contacts k JOIN list_members m ON m.contact_id = k.id"
        " JOIN lists l ON l.id = m.list_id AND l.name = 'recall'"
        " WHERE k.first_name LIKE 'Zoë%' AND k.last_name LIKE 'Núñez%' AND k.notes LIKE 'row %'"
        " AND k.tags = '[\"imported\"]' AND k.name = k.first_name || ' ' || k.last_name"))
    return total, complete


def test_an_import_killed_mid_way_leaves_whole_contacts_and_a_rerun_completes_it(cli_config: Path,
                                                                                   tmp_path: Path) -> None:
    csv_path = tmp_path / "patients.csv"
    _write(csv_path)
    store = Store.for_config(load_config(cli_config))
    try:
        first = _import(cli_config, csv_path)
        try:
            wait_until(lambda: int(store.scalar("SELECT COUNT(*) FROM contacts")) >= 2 * BATCH_ROWS, timeout=60,
                       interval=0.005, what="two batches committed")
        finally:
            os.kill(first.pid, signal.SIGKILL)
            first.communicate(timeout=30)
        assert first.returncode == -signal.SIGKILL
        committed, complete = _complete_contacts(store)
        assert 2 * BATCH_ROWS <= committed < ROWS, "the import was not killed mid-way"
        assert committed == complete and committed % BATCH_ROWS == 0  # whole batches, whole contacts

        rerun = _import(cli_config, csv_path)
        out, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        report = json.loads(out)
        assert (report["created"], report["unchanged"], report["errors"]) == (ROWS - committed, committed, 0)
        assert _complete_contacts(store) == (ROWS, ROWS)
        numbers = [r["number"] for r in store.query("SELECT number FROM contacts")]
        assert sorted(numbers) == sorted(_numbers())  # every row exactly once
        assert store.lists.count("recall") == ROWS
    finally:
        store.close()
