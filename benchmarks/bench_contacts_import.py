"""Contacts import: a practice system's export of 100,000 patients, as `smsgate contacts import` reads it.

Run: .venv/bin/python benchmarks/bench_contacts_import.py [--rows 100000] [--dir DIR]
Prints the machine, then for each size: the first import (every row a new contact), the same file again
(every row unchanged), a dry run, each one's wall and CPU time (the CPU time shows what the import costs
when other work shares the 2 cores) and peak memory (max RSS of a fresh process, so the figures do not
include each other). The file is UTF-8 with a BOM, semicolon-separated, national numbers written
with spaces, dashes and parentheses, accented names, a language column, a tag and a note: the slow path
of every rule.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

AREA = [202, 212, 213, 305, 312, 404, 415, 503, 512, 617, 702, 713, 718, 206, 303, 602, 615, 704, 916, 971]
FIRST = ["Zoë", "Ana", "Chidi", "Thảo", "Jörg", "Siobhán", "Kwame", "Anaïs", "Søren", "Mei", "José", "Aaliyah"]
LAST = ["Núñez", "Rivera", "Okafor", "Nguyễn", "Müller", "O'Brien", "Mensah", "Brontë", "Ørsted", "Chen"]
LANGUAGES = ["Spanish", "English", "vi", "de", "", "", "fr"]


def write_file(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    seen: set[str] = set()
    with open(path, "w", encoding="utf-8-sig", newline="") as out:
        out.write("Mobile Phone;First Name;LAST NAME;Preferred Language;Tags;Notes\r\n")
        while len(seen) < rows:
            area, exchange, line = rng.choice(AREA), rng.randint(200, 999), rng.randint(0, 9999)
            number = f"({area}) {exchange}-{line:04d}"
            if number in seen:
                continue
            seen.add(number)
            tag = "flu-2026" if rng.random() < 0.3 else ""
            note = "prefers mornings" if rng.random() < 0.1 else ""
            out.write(f"{number};{rng.choice(FIRST)};{rng.choice(LAST)};{rng.choice(LANGUAGES)};{tag};{note}\r\n")


def child(db: str, csv_path: str, dry_run: bool) -> None:
    from smsgate.imports import ContactImport, open_table
    from smsgate.queue import Store

    store = Store.open(db, default_region="US")
    start, cpu = time.perf_counter(), time.process_time()
    with open(csv_path, "rb") as source:
        report = ContactImport(store, actor="bench", source_name="bench.csv", dry_run=dry_run,
                               to_list="recall").run(open_table(source))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": elapsed, "cpu": cpu, "peak_mib": peak, "created": report.created,
                      "unchanged": report.unchanged, "errors": report.error_count}))


def measure(db: Path, csv_path: Path, dry_run: bool = False) -> dict[str, float]:
    mode = "--dry" if dry_run else "--real"
    out = subprocess.run([sys.executable, __file__, "--child", str(db), str(csv_path), mode],
                         check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out)
    return result


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4] == "--dry")
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    print(f"machine: {describe()}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for rows in sorted({args.rows // 10, args.rows}):
            csv_path = Path(tmp) / f"patients-{rows}.csv"
            write_file(csv_path, rows)
            db = Path(tmp) / f"smsgate-{rows}.db"
            size = csv_path.stat().st_size / 2**20
            first = measure(db, csv_path)
            assert first["created"] == rows and first["errors"] == 0, first
            again = measure(db, csv_path)
            assert again["unchanged"] == rows, again
            dry = measure(Path(tmp) / f"empty-{rows}.db", csv_path, dry_run=True)
            print(f"{rows:>7} rows ({size:.1f} MiB file):")
            for label, r in (("first import", first), ("same file again", again), ("dry run", dry)):
                print(f"  {label:<16} {r['seconds']:6.2f} s  ({rows / r['seconds']:>8,.0f} rows/s),"
                      f" CPU {r['cpu']:5.2f} s, peak RSS {r['peak_mib']:6.1f} MiB")


if __name__ == "__main__":
    main()
