"""The arrows point one way: the libraries never import the top layer, and the simulator stays independent
of the AT engine it is used to test (a shared bug would hide in both).

Layers, bottom up: config, clinic_time, numbers, names, retry; at_commands, simulator; queue; keywords,
webhook_events and imports; then the top layer: modemd (the daemon), webhooks and status (library code for
the running system, beside each other), web (HTTP only), simulated and testing (the simulator wired to a
configuration), gateway (the one composition root) and cli. Only `smsgate.gateway`, the CLI and the
`__main__` entry points assemble the parts, which is why nothing below them may import the gateway.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "smsgate"
TOP_LAYER = ("smsgate.cli", "smsgate.gateway", "smsgate.web", "smsgate.modemd", "smsgate.status",
             "smsgate.webhooks", "smsgate.simulated", "smsgate.testing")
ASSEMBLY = ("smsgate.cli", "smsgate.gateway", "smsgate.simulated", "smsgate.testing")

# A part is a package folder or a module of the package (`status` is `smsgate/status.py`).
RULES = {
    "clinic_time": (*TOP_LAYER, "smsgate.queue", "smsgate.keywords", "smsgate.webhook_events", "smsgate.simulator",
                    "smsgate.at_commands"),
    "queue": (*TOP_LAYER, "smsgate.keywords", "smsgate.webhook_events", "smsgate.simulator", "smsgate.appointments"),
    "appointments": (*TOP_LAYER, "smsgate.simulator"),
    "keywords": (*TOP_LAYER, "smsgate.simulator"),
    "webhook_events": (*TOP_LAYER, "smsgate.keywords", "smsgate.simulator"),
    "at_commands": (*TOP_LAYER, "smsgate.queue", "smsgate.keywords", "smsgate.simulator", "smsgate.config"),
    "simulator": (*TOP_LAYER, "smsgate.at_commands", "smsgate.queue", "smsgate.keywords"),
    "modemd": (*ASSEMBLY, "smsgate.web", "smsgate.webhooks", "smsgate.status", "smsgate.simulator"),
    "webhooks": (*ASSEMBLY, "smsgate.web", "smsgate.modemd", "smsgate.status", "smsgate.simulator"),
    "status": (*ASSEMBLY, "smsgate.web", "smsgate.modemd", "smsgate.webhooks", "smsgate.simulator"),
    "web": (*ASSEMBLY, "smsgate.modemd", "smsgate.simulator"),
    "imports": (*TOP_LAYER, "smsgate.keywords", "smsgate.webhook_events", "smsgate.simulator"),
    "templates": (*TOP_LAYER, "smsgate.config", "smsgate.queue", "smsgate.keywords", "smsgate.appointments",
                  "smsgate.imports", "smsgate.simulator", "smsgate.at_commands"),
    "names": (*TOP_LAYER, "smsgate.queue", "smsgate.keywords", "smsgate.imports", "smsgate.simulator",
              "smsgate.at_commands"),
}

# An entry point (`python -m smsgate.modemd`) starts the system the one way there is: through the Gateway.
ENTRY_POINT_MAY_IMPORT = ("smsgate.gateway",)


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


def _files(part: str) -> list[Path]:
    folder = PACKAGE / part
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{part}.py"]


def _forbidden(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in prefixes)


@pytest.mark.parametrize("part", sorted(RULES))
def test_library_parts_never_import_the_layers_above_them(part: str) -> None:
    forbidden = RULES[part]
    offenders = []
    files = _files(part)
    assert files and all(f.exists() for f in files), f"no module or package smsgate.{part}"
    for path in files:
        for name in _imports(path):
            if path.name == "__main__.py" and _forbidden(name, ENTRY_POINT_MAY_IMPORT):
                continue
            if _forbidden(name, forbidden):
                offenders.append(f"{path.relative_to(PACKAGE.parent)} imports {name}")
    assert offenders == []


def _module_name(path: Path) -> str:
    parts = ["smsgate", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph(part: str) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports (at any depth in the file, functions too)."""
    paths = sorted((PACKAGE / part).rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    graph: dict[str, set[str]] = {}
    for path in paths:
        name = _module_name(path)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package_parts = ["smsgate", *path.relative_to(PACKAGE).parent.parts]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = (".".join(package_parts[: len(package_parts) - node.level + 1]) if node.level else "")
                module = ".".join(x for x in (base, node.module) if x)
                targets.add(module)
                targets.update(f"{module}.{alias.name}" for alias in node.names)
        # A package's __init__ runs before any of its modules, so it is never part of a cycle through them.
        graph[name] = {t for t in targets if t in modules and t != name and t != f"smsgate.{part}"}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle in `graph` as [a, b, ..., a], or [] when there is none."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str]:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done:
            return []
        for nxt in sorted(graph.get(node, ())):
            found = visit(nxt, [*path, node])
            if found:
                return found
        done.add(node)
        return []

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return []


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


@pytest.mark.parametrize("part", ["web"])
def test_a_package_has_no_import_cycle(part: str) -> None:
    """Blueprints import request helpers from `web.context`, never from `web.app` (which imports them)."""
    graph = _import_graph(part)
    assert graph, f"no modules found under smsgate/{part}"
    assert _cycle(graph) == []
