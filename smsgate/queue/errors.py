"""Errors the store raises; each message says what an admin can do about it."""

from __future__ import annotations


class StoreError(Exception):
    """Base class of store errors."""


class MessageRejected(StoreError):
    """A message was refused before it was queued (bad number, empty or over-long text); nothing stored."""


class IdempotencyConflict(MessageRejected):
    """An idempotency key came back with a different request (recipient, text, kind, ...): a client bug,
    not a retry."""


class ConsentRefused(MessageRejected):
    """The consent ledger does not allow this message (`code` says which rule: see `consent.Refusal`)."""

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.code = code


class OptedOut(ConsentRefused):
    """The number opted out (of everything, or of the message's purpose): nothing was queued."""


class NotFound(StoreError):
    """The row asked for does not exist."""


class IllegalTransition(StoreError):
    """A state change that would move a message backwards; refused so a late event cannot undo a newer one."""

    def __init__(self, message_id: int, old: str, new: str) -> None:
        super().__init__(f"message #{message_id}: cannot go from {old} to {new}")
        self.message_id, self.old, self.new = message_id, old, new


class LeaseLost(StoreError):
    """The worker's lease on a message expired and another worker may hold it now; stop working on it."""

    def __init__(self, message_id: int, owner: str) -> None:
        super().__init__(f"message #{message_id}: lease held by {owner!r} was lost")
        self.message_id, self.owner = message_id, owner


class DatabaseCorrupt(StoreError):
    """`PRAGMA integrity_check` found damage."""
