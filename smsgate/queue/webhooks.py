"""Store operations for the durable outbox of webhook deliveries."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import Store  # noqa: F401


class WebhooksMixin:
    pass
