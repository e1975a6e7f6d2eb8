"""Store operations for keyword rules (custom and built-in keywords) and their hit counts."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Store  # noqa: F401


class RulesMixin:
    pass
