"""Every `# type: ignore` in the package names its error code and says why, so the next reader can tell a
checker limitation from a bug that was silenced."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "smsgate"
IGNORE = re.compile(r"#\s*type:\s*ignore(?P<code>\[[\w, -]+\])?(?P<rest>.*)$")
REASON = re.compile(r"^\s+#\s*\S")
FILES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_every_type_ignore_names_its_code_and_a_reason(path: Path) -> None:
    bare = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = IGNORE.search(line)
        if match and (not match.group("code") or not REASON.match(match.group("rest"))):
            bare.append(f"{path.name}:{lineno}: write `# type: ignore[code]  # why`")
    assert bare == []


@pytest.mark.parametrize(("line", "ok"), [
    ("x = f()  # type: ignore[arg-type]  # the stub is wrong about None", True),
    ("x = f()  # type: ignore[arg-type]", False),
    ("x = f()  # type: ignore", False),
    ("x = f()  # type: ignore  # reason without a code", False),
])
def test_the_rule_reads_a_type_ignore_as_intended(line: str, ok: bool) -> None:
    match = IGNORE.search(line)
    assert match is not None
    assert bool(match.group("code") and REASON.match(match.group("rest"))) is ok
