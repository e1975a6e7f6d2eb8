"""The repository stands alone: a plain clone with nothing beside it runs, and every path it names is its own.

Tests once read the reference folder beside a developer's checkout, and docs cited that machine's absolute
paths; both break on a fresh clone. These checks scan every text file of the repository, not a list of known offenders,
so a new file that reaches outside fails here the day it is added.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# Generated or installed trees, all in .gitignore: not the project's text.
SKIP_DIRS = {".git", ".venv", "__pycache__", "build", "dist", ".pytest_cache", ".ruff_cache", ".mypy_cache",
             ".hypothesis", "var", "test-artifacts", "node_modules"}
THIS_FILE = Path(__file__).resolve()

# Home and workspace roots of developer machines; system paths a deployment uses (/etc, /var/lib, /dev) are fine.
ABSOLUTE = re.compile(r"(?<![\w.:/~-])/(?:work|home|Users|root|mnt)/[\w.-]")
SHARED_BESIDE = re.compile(r"\.\./+shared\b")
CLIMB = re.compile(r"(?<![\w.])((?:\.\./)+)")
FILE_ANCESTOR = re.compile(r"__file__\)(?:\.resolve\(\)|\.absolute\(\))?((?:\.parent\b)*)(?:\.parents\[(\d+)\])?")
CITED = re.compile(r"(?:docs/reference|tests/data)/[\w.-]+\.(?:md|json)")
MD_LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")


def _text_files() -> list[Path]:
    out = []
    for path in sorted(REPO.rglob("*")):
        rel = path.relative_to(REPO)
        if (any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts)
                or not path.is_file() or path == THIS_FILE):
            continue
        try:
            path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        out.append(path)
    return out


FILES = _text_files()


def _outside(path: Path) -> bool:
    return not path.resolve().is_relative_to(REPO)


def _offences(path: Path, text: str | None = None) -> list[str]:
    rel = path.relative_to(REPO)
    found = []
    text = path.read_text(encoding="utf-8") if text is None else text
    for lineno, line in enumerate(text.splitlines(), 1):
        where = f"{rel}:{lineno}"
        for match in ABSOLUTE.finditer(line):
            found.append(f"{where}: absolute path {match.group(0)!r}")
        if SHARED_BESIDE.search(line):
            found.append(f"{where}: the shared folder beside the checkout")
        for match in CLIMB.finditer(line):
            if _outside(path.parent / match.group(1)):
                found.append(f"{where}: {match.group(1)!r} climbs out of the repository")
        for match in FILE_ANCESTOR.finditer(line):
            dots, index = match.group(1) or "", match.group(2)
            levels = dots.count(".parent") + (int(index) + 1 if index is not None else 0)
            if _outside(path.parents[levels - 1] if levels else path):
                found.append(f"{where}: Path(__file__) climbs {levels} levels, above the repository root")
    return found


def test_the_scan_sees_the_whole_repository() -> None:
    names = {p.relative_to(REPO).as_posix() for p in FILES}
    assert {"README.md", "pyproject.toml", "scripts/test.sh", "tests/conftest.py", "benchmarks/bench_codec.py",
            "smsgate/cli.py", "docs/reference/RELIABILITY.md", ".ci/run"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_no_file_refers_to_a_path_outside_the_repository(path: Path) -> None:
    assert _offences(path) == []


@pytest.mark.parametrize("text", [
    'Path(__file__).resolve().parents[2] / "shared"',
    "see /work/" "shared/RELIABILITY.md",  # split so a plain grep for such paths finds none in the repo
    "cat ../" "shared/data/modem-profiles.md",
    "open('/home/alice/vectors.json')",
    "Path(__file__).parent.parent.parent",
])
def test_the_scan_catches_each_way_of_reaching_outside(text: str) -> None:
    # As if in a file one level below the root, like every test: two levels up is already outside.
    assert _offences(REPO / "tests" / "probe.py", text) != []


@pytest.mark.parametrize("text", [
    'Path(__file__).resolve().parent.parent / "docs"',
    'Path(__file__).resolve().parents[1] / "tests" / "data"',
    "[the notes](../docs/reference/FIELD.md)",
    "ExecStart=/opt/smsgate/.venv/bin/smsgate --config /etc/smsgate/smsgate.toml serve",
])
def test_the_scan_lets_paths_inside_the_repository_and_system_paths_pass(text: str) -> None:
    assert _offences(REPO / "tests" / "probe.py", text) == []


@pytest.mark.parametrize("path", [p for p in FILES if p.suffix == ".md"], ids=lambda p: p.relative_to(REPO).as_posix())
def test_relative_links_in_the_docs_lead_to_files_of_the_repository(path: Path) -> None:
    targets = [t for t in MD_LINK.findall(path.read_text(encoding="utf-8")) if "://" not in t
               and not t.startswith("mailto:")]
    assert [t for t in targets if _outside(path.parent / t) or not (path.parent / t).exists()] == []


def test_the_data_and_notes_the_repository_cites_are_inside_it() -> None:
    cited = set()
    for path in FILES:
        cited |= set(CITED.findall(path.read_text(encoding="utf-8")))
    assert "tests/data/pdu-vectors.json" in cited and "docs/reference/modem-profiles.md" in cited
    assert sorted(c for c in cited if not (REPO / c).is_file()) == []
