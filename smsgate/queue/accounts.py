"""Store operations for staff accounts, login attempts and API tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Store  # noqa: F401


class AccountsMixin:
    pass
