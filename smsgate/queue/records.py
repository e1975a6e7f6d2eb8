"""Records and state vocabularies of the store.

The outbound state machine lives here as data (`TRANSITIONS`) so that every writer, in every process,
applies the same rule: states only move forward, except the few explicit ways back to the queue.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from smsgate.config import Config


class State(enum.StrEnum):
    QUEUED = "queued"
    CLAIMED = "claimed"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    FAILED = "failed"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


TERMINAL = frozenset({State.DELIVERED, State.UNDELIVERABLE, State.FAILED, State.CANCELLED})

# Ways back to `queued` are explicit: a lease that expired or was released before anything was sent, a
# retry after a definite (non-ambiguous) error, or a person deciding to re-send an `unknown`/`failed`.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.QUEUED: frozenset({State.CLAIMED, State.CANCELLED, State.FAILED}),
    State.CLAIMED: frozenset({State.SUBMITTING, State.QUEUED, State.CANCELLED, State.FAILED}),
    State.SUBMITTING: frozenset(
        {State.SUBMITTING, State.SUBMITTED, State.QUEUED, State.UNKNOWN, State.FAILED}
    ),
    State.SUBMITTED: frozenset({State.DELIVERED, State.UNDELIVERABLE}),
    State.UNKNOWN: frozenset({State.QUEUED, State.FAILED, State.CANCELLED, State.SUBMITTED}),
    State.FAILED: frozenset({State.QUEUED}),
    State.DELIVERED: frozenset(),
    State.UNDELIVERABLE: frozenset(),
    State.CANCELLED: frozenset(),
}


class PartState(enum.StrEnum):
    PENDING = "pending"
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    DELIVERED = "delivered"
    UNDELIVERABLE = "undeliverable"
    FAILED = "failed"
    UNKNOWN = "unknown"


PART_RANK = {
    PartState.PENDING: 0,
    PartState.SUBMITTING: 1,
    PartState.UNKNOWN: 2,
    PartState.SUBMITTED: 3,
    PartState.FAILED: 4,
    PartState.DELIVERED: 5,
    PartState.UNDELIVERABLE: 5,
}


class Priority(enum.IntEnum):
    """Lower goes first: a reply never waits behind a campaign."""

    REPLY = 0
    TRANSACTIONAL = 1
    BULK = 2


PRIORITY_NAMES: dict[int, str] = {p.value: p.name.lower() for p in Priority}

class Kind(enum.StrEnum):
    """What a message is, which decides its priority and its consent rule."""

    COMPLIANCE = "compliance"  # STOP/START/HELP confirmations: sent even to an opted-out number
    REPLY = "reply"  # a person's or a rule's answer to an inbound message
    TRANSACTIONAL = "transactional"  # reminders, API sends: need "not opted out"
    MARKETING = "marketing"  # needs an opt-in on the ledger
    BULK = "bulk"  # campaigns: need "not opted out", wait for quiet hours

    @property
    def priority(self) -> Priority:
        if self in (Kind.COMPLIANCE, Kind.REPLY):
            return Priority.REPLY
        if self is Kind.TRANSACTIONAL:
            return Priority.TRANSACTIONAL
        return Priority.BULK


@dataclass(frozen=True)
class SendPolicy:
    """How far the store may go for one message: its size, its retries, its first-message footer.

    The CLI, the API, the pages and the rules engine take it from the configuration with `from_config`, so
    a change to `sending.max_parts` or the footer reaches every way a message can be queued.
    """

    max_parts: int = 6
    max_attempts: int = 5
    footer: str | None = None
    status_report: bool = True

    @classmethod
    def from_config(cls, config: Config, kind: Kind | str, *, footer: bool = True) -> SendPolicy:
        """The policy for a message of `kind`. Replies and compliance confirmations answer a text the
        person sent, so they never carry the first-message footer; `footer=False` leaves it off others
        too (a text forwarded to a staff member's phone is not a first message to a patient)."""
        wants_footer = footer and Kind(kind) not in (Kind.REPLY, Kind.COMPLIANCE)
        return cls(
            max_parts=config.sending.max_parts,
            max_attempts=config.sending.max_attempts,
            footer=config.compliance.first_message_footer if wants_footer else None,
        )


DEFAULT_POLICY = SendPolicy()


@dataclass(frozen=True)
class EnqueueResult:
    id: int
    created: bool
    parts: int
    encoding: str


@dataclass
class Part:
    message_id: int
    part_no: int
    state: PartState
    tp_mr: int | None = None
    modem_id: int | None = None


@dataclass
class Message:
    id: int
    to_number: str
    body: str
    kind: Kind
    priority: Priority
    state: State
    parts_total: int
    encoding: str
    concat_ref: int
    attempts: int
    max_attempts: int
    created_at: str
    due_at: str
    created_by: str
    source: str
    modem_id: int | None = None
    preferred_modem_id: int | None = None
    required_modem_id: int | None = None
    lease_owner: str | None = None
    lease_until: str | None = None
    idempotency_key: str | None = None
    in_reply_to: int | None = None
    conversation_id: int | None = None
    campaign: str | None = None
    scope: str | None = None
    expect: dict[str, str] | None = None
    follow_up: dict[str, str] | None = None
    outcome: str | None = None
    last_error: str | None = None
    error_class: str | None = None
    status_report: bool = True
    failover_from: int | None = None
    parts: list[Part] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Message:
        import json

        return cls(
            id=row["id"],
            to_number=row["to_number"],
            body=row["body"],
            kind=Kind(row["kind"]),
            priority=Priority(row["priority"]),
            state=State(row["state"]),
            parts_total=row["parts_total"],
            encoding=row["encoding"],
            concat_ref=row["concat_ref"],
            attempts=row["attempts"],
            max_attempts=row["max_attempts"],
            created_at=row["created_at"],
            due_at=row["due_at"],
            created_by=row["created_by"],
            source=row["source"],
            modem_id=row["modem_id"],
            preferred_modem_id=row["preferred_modem_id"],
            required_modem_id=row["required_modem_id"],
            lease_owner=row["lease_owner"],
            lease_until=row["lease_until"],
            idempotency_key=row["idempotency_key"],
            in_reply_to=row["in_reply_to"],
            conversation_id=row["conversation_id"],
            campaign=row["campaign"],
            scope=row["scope"],
            expect=json.loads(row["expect"]) if row["expect"] else None,
            follow_up=json.loads(row["follow_up"]) if row["follow_up"] else None,
            outcome=row["outcome"],
            last_error=row["last_error"],
            error_class=row["error_class"],
            status_report=bool(row["status_report"]),
            failover_from=row["failover_from"],
        )


@dataclass(frozen=True)
class Claim:
    """A message leased to one worker: only the holder of `owner` may move it on."""

    message: Message
    owner: str
    lease_until: str

    @property
    def pending_parts(self) -> list[Part]:
        return [p for p in self.message.parts if p.state == PartState.PENDING]


@dataclass
class Inbound:
    id: int
    modem_id: int | None
    sender: str
    body: str
    received_at: str
    sent_at: str | None
    encoding: str | None
    conversation_id: int | None
    contact_id: int | None
    decode_error: str | None
    parts_total: int
    missing_parts: str | None
    in_reply_to: int | None
    decode_notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConsentStatus:
    number: str
    scope: str
    opted_out: bool
    opted_in: bool
    last_event: str | None
    last_event_at: str | None
    last_source: str | None
    last_evidence: str | None


@dataclass(frozen=True)
class ReportMatch:
    report_id: int
    message_id: int | None
    part_no: int | None
    new_state: str | None
