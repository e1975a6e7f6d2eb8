"""The arrows point one way: the libraries never import the top layer, and the simulator stays independent
of the AT engine it is used to test (a shared bug would hide in both)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "smsgate"
TOP_LAYER = ("smsgate.cli", "smsgate.web", "smsgate.modemd", "smsgate.status")

RULES = {
    "queue": (*TOP_LAYER, "smsgate.keywords", "smsgate.simulator"),
    "keywords": (*TOP_LAYER, "smsgate.simulator"),
    "at_commands": (*TOP_LAYER, "smsgate.queue", "smsgate.keywords", "smsgate.simulator", "smsgate.config"),
    "simulator": (*TOP_LAYER, "smsgate.at_commands", "smsgate.queue", "smsgate.keywords"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    package_parts = ["smsgate", *path.relative_to(PACKAGE).parent.parts]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package_parts[: len(package_parts) - node.level + 1]
                found.add(".".join([*base, node.module] if node.module else base))
            elif node.module:
                found.add(node.module)
    return found


@pytest.mark.parametrize("part", sorted(RULES))
def test_library_parts_never_import_the_layers_above_them(part: str) -> None:
    forbidden = RULES[part]
    offenders = []
    for path in sorted((PACKAGE / part).rglob("*.py")):
        for name in _imports(path):
            if any(name == f or name.startswith(f + ".") for f in forbidden):
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert offenders == []
