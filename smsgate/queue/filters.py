"""Optional filters of list queries (pages, CLI, API) turned into one WHERE clause."""

from __future__ import annotations

from typing import Any


def where(*conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """`(" WHERE a = ? AND b > 0", [value])` from `("a = ?", value)` pairs; an unset filter (None, "",
    False) is left out, and a condition without `?` is a flag that takes no parameter."""
    parts: list[str] = []
    params: list[Any] = []
    for fragment, value in conditions:
        if value is None or value is False or value == "":
            continue
        parts.append(fragment)
        if "?" in fragment:
            params.append(value)
    return (" WHERE " + " AND ".join(parts) if parts else ""), params
