"""Filling `{first_name}` and the like in reply texts, safely.

A tiny substitution of our own, one pass, over a fixed list of field names: no attribute access, no
indexing, no expressions, and a value (which may come from a patient, e.g. a name typed by staff) is
inserted as text and never read again as a template. Template engines on SMS text are how playSMS
got remote code execution (CVE-2020-8644).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["FIELDS", "TemplateError", "check_template", "render"]

FIELDS = frozenset({"first_name", "name", "number", "clinic", "contact", "keyword"})
_FALLBACK = {"first_name": "there", "name": "there", "contact": "the clinic"}

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")


class TemplateError(ValueError):
    """A reply text with a placeholder smsgate does not fill; the message lists the ones it does."""


def check_template(template: str, fields: frozenset[str] = FIELDS) -> list[str]:
    """The placeholders of `template`, or `TemplateError` for an unknown or malformed one. `fields` are
    the names the caller fills (reply texts by default; reminder texts have their own)."""
    used: list[str] = []
    for m in _TOKEN.finditer(template):
        tok = m.group(0)
        if tok in ("{{", "}}"):
            continue
        name = m.group(1)
        if name is None:
            raise TemplateError(
                f"unmatched {tok!r} at position {m.start()} in {template!r}; write {{{{ or }}}} for a literal brace"
            )
        if name.strip() not in fields:
            raise TemplateError(
                f"{{{name}}} is not a field smsgate can fill; use one of "
                + ", ".join("{" + f + "}" for f in sorted(fields))
            )
        used.append(name.strip())
    return used


def render(template: str, values: Mapping[str, str | None], *, fields: frozenset[str] = FIELDS,
           fallback: Mapping[str, str] = _FALLBACK) -> str:
    """Fill `template` from `values`; a field with no value reads as its `fallback` (by default a missing
    first name reads "there", "Hi there"), others read empty."""
    check_template(template, fields)

    def fill(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok == "{{":
            return "{"
        if tok == "}}":
            return "}"
        name = (m.group(1) or "").strip()
        value = values.get(name)
        if value is None or not str(value).strip():
            return fallback.get(name, "")
        return str(value)

    return _TOKEN.sub(fill, template)
