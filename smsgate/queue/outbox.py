"""Outbound messages: admission (the checks and writes are in `enqueue.py`), atomic claims with leases,
and the monotone state machine.

The order of writes is the crash-safety argument (RELIABILITY.md §2.2): a part is committed as
`submitting` before `AT+CMGS` is written, and its TP-MR is committed the moment the modem answers. After a
crash, a part still `submitting` may have gone out, so it becomes `unknown` and is never re-sent blindly.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .audit import AuditLog
from .clock import parse_ts, ts
from .consent import ConsentLedger, Refusal
from .contacts import Contacts, Conversations
from .db import Db
from .enqueue import (
    check_answers,
    check_number,
    check_text,
    insert_bulk,
    insert_message,
    replay_differences,
    with_footer,
)
from .errors import (
    ConsentRefused,
    IdempotencyConflict,
    IllegalTransition,
    LeaseLost,
    MessageRejected,
    NotFound,
    OptedOut,
)
from .modems import ModemRegistry
from .records import (
    DEFAULT_POLICY,
    TERMINAL,
    TRANSITIONS,
    Claim,
    EnqueueResult,
    Kind,
    Message,
    Part,
    PartState,
    SendPolicy,
    State,
)

# States in which a message has been handed to a modem (or may have been): these count against caps.
SENT_STATES = ("claimed", "submitting", "submitted", "delivered", "undeliverable", "unknown")
# Modem states (written by the daemon) in which a modem is out of service for more than a moment. A
# half-sent multipart message waits for the SIM that sent its first parts through anything milder (a
# restart, a re-initialisation): a phone joins parts by sender, so parts from two SIMs never join.
_DOWN_STATES = "('offline', 'locked', 'stopped')"
# The audit reason that marks a resend the daemon made by itself (counted against sending.max_attempts).
AUTOMATIC_RESEND = "re-sent automatically (sending.resend_unknown)"
# The audit reason of the one automatic resend of a STOP/START/HELP confirmation left unknown.
COMPLIANCE_RESEND = "re-sent automatically: a STOP/START/HELP confirmation with no delivery evidence"


@dataclass(frozen=True)
class Defer:
    """A gate's answer: not now, try again at `until` (quiet hours, frequency caps)."""

    until: datetime
    reason: str


@dataclass(frozen=True)
class Refuse:
    """A gate's answer: never send this message (no consent); it is cancelled with `reason`."""

    reason: str


# Asked inside the claim transaction for each due message: defer it, refuse it, or let it go (None).
# A gate that reads the store is bound to the caller's store before it is passed in.
ClaimGate = Callable[[Message, datetime], Defer | Refuse | None]


class Outbox:
    """Outbound messages: admission, claims with leases, and every state change."""

    def __init__(self, db: Db, *, audit: AuditLog, consent: ConsentLedger, contacts: Contacts,
                 conversations: Conversations, modems: ModemRegistry) -> None:
        self.db = db
        self.audit = audit
        self.consent = consent
        self.contacts = contacts
        self.conversations = conversations
        self.modems = modems

    # -- enqueue -------------------------------------------------------------------------------------
    def enqueue(
        self,
        to: str,
        text: str,
        *,
        kind: Kind | str = Kind.TRANSACTIONAL,
        not_before: datetime | None = None,
        idempotency_key: str | None = None,
        created_by: str = "cli",
        source: str = "cli",
        expect: Mapping[str, str] | None = None,
        follow_up: Mapping[str, str] | None = None,
        in_reply_to: int | None = None,
        preferred_modem_id: int | None = None,
        required_modem_id: int | None = None,
        campaign: str | None = None,
        scope: str | None = None,
        policy: SendPolicy = DEFAULT_POLICY,
        idempotency_scope: str | None = None,
    ) -> EnqueueResult:
        """Queue one message. The same `idempotency_key` twice yields the first message, not a second.

        A key belongs to `idempotency_scope` (by default `created_by`: the API token, the web user, the
        CLI), so two clients choosing the same key do not share a message. A replay must be the same
        request: a key that comes back with another recipient, text, kind, time, answers or consent scope
        is an `IdempotencyConflict`, not silently the first message.

        `scope` is the list the message is for (required for marketing); the consent ledger's rule
        (`ConsentLedger.may_send`) is applied now and again when the message is claimed.

        `policy.footer` ("Reply STOP to opt out.") is added when this is the first message the number will
        ever receive from us; the decision is made inside the transaction, so two concurrent first messages
        cannot both skip it, and a retried request with the same key matches the stored text either way.
        """
        kind = Kind(kind)
        footer, max_parts = policy.footer, policy.max_parts
        number = check_number(to, self.db.default_region)
        parts, encoding = check_text(text, max_parts)
        check_answers(expect, follow_up)
        now = self.db.clock()
        scope = scope.strip().lower() or None if scope is not None else None
        with self.db.transaction():
            key_scope = created_by if idempotency_scope is None else idempotency_scope
            if idempotency_key is not None:
                existing = self.db.one(
                    "SELECT * FROM messages WHERE idempotency_scope = ? AND idempotency_key = ?",
                    (key_scope, idempotency_key),
                )
                if existing is not None:
                    differs = replay_differences(existing, {
                        "to_number": number, "body": (text, with_footer(text, footer)), "kind": kind.value,
                        "not_before": ts(not_before) if not_before else None, "expect": expect,
                        "follow_up": follow_up, "scope": scope, "campaign": campaign, "in_reply_to": in_reply_to,
                        "required_modem_id": required_modem_id})
                    if differs:
                        raise IdempotencyConflict(
                            f"idempotency key {idempotency_key!r} was already used for message "
                            f"#{existing['id']} with a different {' and '.join(differs)}; a retry must repeat "
                            "the request as it was, and a new message needs a new key"
                        )
                    return EnqueueResult(existing["id"], False, existing["parts_total"], existing["encoding"])
            # A replay (above) gets its message back even after an opt-out: the claim will cancel it. A new
            # message is refused now, while the sender is there to hear why; the claim applies the same
            # rule again for messages queued before an opt-out (`_consent_verdict`).
            refusal = self.consent.may_send(number, kind, scope)
            if refusal is not None:
                raise consent_refused(refusal)
            if (footer and footer.strip() and "STOP" not in text.upper()
                    and not self.contacts.has_been_texted(number)):
                text = with_footer(text, footer)
                parts, encoding = check_text(text, max_parts)
            contact_id = self.contacts.ensure(number)
            if preferred_modem_id is None and required_modem_id is None:
                preferred_modem_id = self.contacts.last_modem_id(contact_id)
            conversation_id = self.conversations.for_contact(contact_id,
                                                             required_modem_id or preferred_modem_id or 0)
            msg_id = insert_message(self.db,
                number=number,
                text=text,
                kind=kind,
                parts=parts,
                encoding=encoding,
                now=now,
                not_before=not_before,
                idempotency_key=idempotency_key,
                idempotency_scope=key_scope if idempotency_key is not None else None,
                created_by=created_by,
                source=source,
                expect=expect,
                follow_up=follow_up,
                in_reply_to=in_reply_to,
                preferred_modem_id=preferred_modem_id,
                required_modem_id=required_modem_id,
                campaign=campaign,
                scope=scope,
                max_attempts=policy.max_attempts,
                status_report=policy.status_report,
                conversation_id=conversation_id,
            )
            self._history(msg_id, None, State.QUEUED, created_by, {"source": source, "kind": kind.value})
            self.conversations.touch(conversation_id, ts(now))
        return EnqueueResult(msg_id, True, parts, encoding)

    def enqueue_many(
        self,
        items: Iterable[Mapping[str, Any]],
        *,
        kind: Kind | str = Kind.BULK,
        created_by: str = "campaign",
        source: str = "campaign",
        campaign: str | None = None,
        scope: str | None = None,
        not_before: datetime | None = None,
        policy: SendPolicy = DEFAULT_POLICY,
    ) -> list[int]:
        """Queue many messages in one transaction (a campaign); each item has `to` and `text`.

        Returns one id per item, in order. All or nothing: one bad row rejects the batch with its row
        number, so a CSV import never half-runs. An item's `idempotency_key` already used for the same
        recipient and text yields that message's id instead of a new one (a re-run import is harmless).
        Contacts and conversations are resolved when a message is sent, and its `message_parts` rows
        are written when it first leaves the queue (`_ensure_parts`, in the same transaction as the claim
        or cancellation), which keeps a 100,000-row campaign to one pass of plain INSERTs.
        """
        kind = Kind(kind)
        scope = scope.strip().lower() or None if scope is not None else None
        # Whether each number may get its message is decided when it is claimed; a marketing campaign
        # without a list (or for a list that does not exist) could never be sent, so it is refused whole.
        refusal = self.consent.check_list(kind, scope)
        if refusal is not None:
            raise consent_refused(refusal)
        kind_v, prio = kind.value, int(kind.priority)
        max_parts, max_attempts = policy.max_parts, policy.max_attempts
        now_s = self.db.now()
        default_nb = ts(not_before) if not_before else None
        seg_cache: dict[str, tuple[int, str]] = {}
        rows: list[tuple[Any, ...]] = []
        region = self.db.default_region
        for i, item in enumerate(items, start=1):
            raw_to, text = item["to"], item["text"]
            try:
                number = check_number(raw_to, region)
                seg = seg_cache.get(text)
                if seg is None:
                    seg = seg_cache[text] = check_text(text, max_parts)
            except MessageRejected as exc:
                raise MessageRejected(f"row {i}: {exc}") from None
            nb = item.get("not_before")
            nb_s = ts(nb) if nb else default_nb
            due = nb_s if nb_s and nb_s > now_s else now_s
            rows.append((number, text, seg[0], seg[1], nb_s, due, item.get("idempotency_key")))
        with self.db.large_write():
            return insert_bulk(self.db, self.audit, rows, kind_v, prio, max_attempts, created_by, source, campaign,
                               now_s, scope=scope)

    # -- reading -------------------------------------------------------------------------------------
    def get(self, message_id: int) -> Message:
        with self.db.read_snapshot():  # the message and its parts as of one commit
            row = self.db.one("SELECT * FROM messages WHERE id = ?", (message_id,))
            if row is None:
                raise NotFound(f"no message #{message_id}")
            msg = Message.from_row(row)
            msg.parts = self._parts_of(message_id, msg.parts_total)
        return msg

    def _parts_of(self, message_id: int, parts_total: int) -> list[Part]:
        """The message's parts; a part with no row yet (a bulk message still queued) is `pending`."""
        rows = self.db.execute(
            "SELECT part_no, state, tp_mr, modem_id FROM message_parts WHERE message_id = ? ORDER BY part_no",
            (message_id,),
        ).fetchall()
        if len(rows) == parts_total:
            return [Part(message_id, r[0], PartState(r[1]), r[2], r[3]) for r in rows]
        have = {r[0]: Part(message_id, r[0], PartState(r[1]), r[2], r[3]) for r in rows}
        return [have.get(n) or Part(message_id, n, PartState.PENDING) for n in range(1, parts_total + 1)]

    def _ensure_parts(self, message_id: int, to_number: str, parts_total: int) -> int:
        """Write the part rows a bulk message was queued without; returns how many were written (0 when
        all had one already, so the caller knows whether they are all fresh `pending` parts).

        Called in the transaction that takes the message out of `queued` (claim, cancel, refusal), so
        every part has its row, committed, before `mark_submitting` can be called on it.
        """
        sql = "INSERT INTO message_parts (message_id, part_no, recipient) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
        if parts_total == 1:
            return self.db.execute(sql, (message_id, 1, to_number)).rowcount
        return self.db.executemany(sql, [(message_id, n, to_number) for n in range(1, parts_total + 1)]).rowcount

    def recent(self, *, state: str | None = None, limit: int = 50, offset: int = 0) -> list[Message]:
        where, params = ("WHERE state = ?", [state]) if state else ("", [])
        rows = self.db.all(
            f"SELECT * FROM messages {where} ORDER BY id DESC LIMIT ? OFFSET ?", (*params, limit, offset)
        )
        return [Message.from_row(r) for r in rows]

    def history(self, message_id: int) -> list[dict[str, Any]]:
        rows = self.db.all(
            "SELECT at, actor, action, detail FROM audit_log WHERE subject_type = 'message' AND subject_id = ?"
            " ORDER BY id",
            (message_id,),
        )
        for r in rows:
            r["detail"] = json.loads(r["detail"]) if r["detail"] else {}
        return rows

    def queue_counts(self) -> dict[str, dict[int, int]]:
        out: dict[str, dict[int, int]] = {}
        for r in self.db.all("SELECT state, priority, COUNT(*) AS n FROM messages GROUP BY state, priority"):
            out.setdefault(r["state"], {})[r["priority"]] = r["n"]
        return out

    def next_due(self) -> datetime | None:
        """When the earliest queued message comes due (for the drain loop's wait)."""
        row = self.db.one("SELECT MIN(due_at) AS d FROM messages WHERE state = 'queued'")
        return parse_ts(row["d"]) if row and row["d"] else None

    # -- claims --------------------------------------------------------------------------------------
    def claim(
        self,
        owner: str,
        modem_id: int | None,
        *,
        limit: int = 1,
        lease_seconds: float = 120.0,
        gate: ClaimGate | None = None,
    ) -> list[Claim]:
        """Lease up to `limit` due messages to `owner` sending from `modem_id`, best priority first.

        Consent is checked here, inside the claim transaction, not only at enqueue: a campaign queued
        before a STOP cannot slip through. `gate` (the rules engine) may defer or refuse a message.
        """
        claims: list[Claim] = []
        with self.db.transaction():
            # The clock is read once the write lock is held: a message committed while this claim waited
            # for the lock (a reply queued a moment ago) is then already due, and is not passed over for
            # an older campaign message.
            now = self.db.clock()
            now_s = ts(now)
            lease_until = ts(now + timedelta(seconds=lease_seconds))
            while len(claims) < limit:
                batch = self.db.execute(
                    "SELECT * FROM messages WHERE state = 'queued' AND due_at <= ?"
                    " AND (required_modem_id IS NULL OR required_modem_id = ?)"
                    " AND (preferred_modem_id IS NULL OR preferred_modem_id = ? OR ? IS NULL"
                    "      OR NOT EXISTS (SELECT 1 FROM modems WHERE modems.id = messages.preferred_modem_id"
                    "                     AND (modems.state = 'ready' OR (modems.state NOT IN " + _DOWN_STATES +
                    "                          AND EXISTS (SELECT 1 FROM message_parts p WHERE p.message_id ="
                    "                              messages.id AND p.state IN ('submitted', 'delivered'))))))"
                    " ORDER BY priority, due_at, created_at, id LIMIT ?",
                    (now_s, modem_id, modem_id, modem_id, limit - len(claims)),
                ).fetchall()
                if not batch:
                    break
                for row in batch:
                    if len(claims) >= limit:
                        break
                    msg = Message.from_row(row)
                    verdict: Defer | Refuse | None = self._consent_verdict(msg)
                    if verdict is None and gate is not None:
                        verdict = gate(msg, now)
                    if isinstance(verdict, Refuse):
                        self._ensure_parts(msg.id, msg.to_number, msg.parts_total)
                        self._move(msg.id, State.QUEUED, State.CANCELLED, "policy", {"reason": verdict.reason},
                                   {"last_error": verdict.reason})
                        self.db.execute("UPDATE message_parts SET state = 'failed', last_error = ?"
                                        " WHERE message_id = ? AND state = 'pending'", (verdict.reason, msg.id))
                        continue
                    if isinstance(verdict, Defer):
                        self.db.execute(
                            "UPDATE messages SET due_at = ?, last_error = ?, updated_at = ? WHERE id = ?",
                            (ts(max(verdict.until, now + timedelta(seconds=1))), verdict.reason, now_s, msg.id),
                        )
                        continue
                    failover = (
                        msg.preferred_modem_id
                        if msg.preferred_modem_id not in (None, modem_id) and modem_id is not None
                        else None
                    )
                    columns: dict[str, Any] = {"lease_owner": owner, "lease_until": lease_until,
                                               "modem_id": modem_id}
                    if failover:
                        columns["failover_from"] = failover
                    fresh_parts = self._ensure_parts(msg.id, msg.to_number, msg.parts_total)
                    if not fresh_parts and modem_id is not None and msg.parts_total > 1:
                        self._restart_if_split(msg, modem_id, owner)
                    self._move(msg.id, State.QUEUED, State.CLAIMED, owner,
                               {"modem_id": modem_id, **({"failover_from": failover} if failover else {})},
                               columns)
                    # The row as it now stands, without reading back what this transaction just wrote.
                    msg.state, msg.lease_owner, msg.lease_until, msg.modem_id = (
                        State.CLAIMED, owner, lease_until, modem_id)
                    if failover:
                        msg.failover_from = failover
                    msg.parts = ([Part(msg.id, n, PartState.PENDING) for n in range(1, msg.parts_total + 1)]
                                 if fresh_parts == msg.parts_total else self._parts_of(msg.id, msg.parts_total))
                    claims.append(Claim(msg, owner, lease_until))
        return claims

    def _restart_if_split(self, msg: Message, modem_id: int, owner: str) -> None:
        """Send the whole message again when parts of it went out from another SIM.

        A modem only gets a half-sent message when the SIM that sent its first parts is down (offline,
        locked, stopped): the claim waits for it through anything milder. Parts 2..n from another number
        would never be joined with part 1 by the phone, so every part goes again from this modem under a
        new concatenation reference; the patient may see the old fragment as well, but gets the whole text.
        """
        sent = self.db.all("SELECT part_no, modem_id, tp_mr, state FROM message_parts WHERE message_id = ?"
                           " AND state IN ('submitted', 'delivered', 'undeliverable') AND modem_id IS NOT NULL"
                           " AND modem_id != ? ORDER BY part_no", (msg.id, modem_id))
        if not sent:
            return
        new_ref = (msg.concat_ref + random.randrange(1, 256)) & 0xFF
        self.db.execute("UPDATE message_parts SET state = 'pending', tp_mr = NULL, modem_id = NULL,"
                        " submitted_at = NULL, submitting_at = NULL, status_code = NULL, status_at = NULL,"
                        " last_error = NULL WHERE message_id = ?", (msg.id,))
        self.db.execute("UPDATE messages SET concat_ref = ? WHERE id = ?", (new_ref, msg.id))
        self.audit.record(owner, "parts.restarted", "message", msg.id, {
            "reason": f"the SIM that sent parts {', '.join(str(p['part_no']) for p in sent)} is out of service; "
                      "every part goes again from this one under a new concatenation reference",
            "sent_from_modem": sent[0]["modem_id"], "parts_sent": [p["part_no"] for p in sent],
            "tp_mrs": [p["tp_mr"] for p in sent], "old_ref": msg.concat_ref, "new_ref": new_ref,
            "modem_id": modem_id})
        msg.concat_ref = new_ref

    def _consent_verdict(self, msg: Message) -> Refuse | None:
        # The rule enqueue applied, read again inside the claim; to_number was normalised when the message
        # was queued, as the ledger's numbers are when recorded.
        refusal = self.consent.decide(msg.to_number, msg.kind, msg.scope)
        return Refuse(refusal.reason) if refusal is not None else None

    def _held(self, claim: Claim) -> dict[str, Any]:
        row = self.db.one("SELECT * FROM messages WHERE id = ?", (claim.message.id,))
        if row is None:
            raise NotFound(f"no message #{claim.message.id}")
        if row["lease_owner"] != claim.owner:
            raise LeaseLost(claim.message.id, claim.owner)
        return row

    def renew(self, claim: Claim, lease_seconds: float = 120.0) -> Claim:
        until = ts(self.db.clock() + timedelta(seconds=lease_seconds))
        with self.db.transaction():
            self._held(claim)
            self.db.execute("UPDATE messages SET lease_until = ? WHERE id = ?", (until, claim.message.id))
        return Claim(claim.message, claim.owner, until)

    def _held_state(self, claim: Claim) -> tuple[str, int | None]:
        """(state, modem_id) of a message `claim` still holds; the light `_held` of the sending path."""
        row = self.db.execute("SELECT state, modem_id, lease_owner FROM messages WHERE id = ?",
                              (claim.message.id,)).fetchone()
        if row is None:
            raise NotFound(f"no message #{claim.message.id}")
        if row[2] != claim.owner:
            raise LeaseLost(claim.message.id, claim.owner)
        return row[0], row[1]

    def mark_submitting(self, claim: Claim, part_no: int) -> None:
        """Commit that `part_no` is about to be written to the modem (before `AT+CMGS`)."""
        mid = claim.message.id
        with self.db.transaction():
            state, modem_id = self._held_state(claim)
            # The part may only move forward: pending -> submitting (or stay submitting on a repeat).
            now = self.db.now()
            cur = self.db.execute("UPDATE message_parts SET state = 'submitting', modem_id = ?, submitting_at = ?"
                                  " WHERE message_id = ? AND part_no = ? AND state IN ('pending', 'submitting')",
                                  (modem_id, now, mid, part_no))
            if cur.rowcount != 1:
                self.part_to(mid, part_no, PartState.SUBMITTING, modem_id=modem_id)  # raises why not
            if state != State.SUBMITTING:
                self._move(mid, State(state), State.SUBMITTING, claim.owner, {"part": part_no}, {}, now=now)

    def mark_part_submitted(self, claim: Claim, part_no: int, tp_mr: int) -> bool:
        """Commit the TP-MR the modem gave `part_no`. Returns True when the whole message is now submitted."""
        now = self.db.now()
        mid = claim.message.id
        with self.db.transaction():
            try:
                state, modem_id = self._held_state(claim)
            except LeaseLost:
                if self._late_tp_mr(claim, part_no, tp_mr, now):
                    return self.get(mid).state == State.SUBMITTED
                raise
            # Forward only: a part already delivered or failed is not put back to submitted.
            cur = self.db.execute(
                "UPDATE message_parts SET state = 'submitted', tp_mr = ?, submitted_at = ?, modem_id = ?"
                " WHERE message_id = ? AND part_no = ? AND state IN ('pending', 'submitting', 'unknown', 'submitted')",
                (tp_mr, now, modem_id, mid, part_no))
            if cur.rowcount != 1:
                self.part_to(mid, part_no, PartState.SUBMITTED, tp_mr=tp_mr, submitted_at=now,
                              modem_id=modem_id)  # raises why not
            if claim.message.parts_total > 1 and self.db.execute(
                    "SELECT EXISTS (SELECT 1 FROM message_parts WHERE message_id = ?"
                    " AND state IN ('pending', 'submitting'))", (mid,)).fetchone()[0]:
                return False
            conversation_id = self._after_sent(mid, claim.message.to_number, modem_id, now,
                                               claim.message.conversation_id)
            self._move(mid, State(state), State.SUBMITTED, claim.owner, {"modem_id": modem_id},
                       {"lease_owner": None, "lease_until": None, "submitted_at": now,
                        "conversation_id": conversation_id}, now=now)
            return True

    def _late_tp_mr(self, claim: Claim, part_no: int, tp_mr: int, now: str) -> bool:
        """Record a TP-MR that arrived after this sender's lease expired mid-send and the part became
        `unknown`: the network did accept it, so the message is no longer in doubt. Only the sender whose
        lease expired may do this, and only while nobody has decided about the message since."""
        row = self.db.one("SELECT * FROM messages WHERE id = ?", (claim.message.id,))
        if row is None or row["state"] != State.UNKNOWN:
            return False
        last = self.db.one("SELECT actor, detail FROM audit_log WHERE subject_type = 'message' AND subject_id = ?"
                           " ORDER BY id DESC LIMIT 1", (claim.message.id,))
        if last is None or last["actor"] != "lease-expiry" or json.loads(last["detail"] or "{}").get(
                "owner") != claim.owner:
            return False
        part = self.db.one("SELECT state, modem_id FROM message_parts WHERE message_id = ? AND part_no = ?",
                           (claim.message.id, part_no))
        if part is None or part["state"] != PartState.UNKNOWN:
            return False
        modem_id = part["modem_id"] if part["modem_id"] is not None else row["modem_id"]
        self.part_to(claim.message.id, part_no, PartState.SUBMITTED, tp_mr=tp_mr, submitted_at=now,
                      modem_id=modem_id, last_error=None)
        left = self.db.scalar("SELECT COUNT(*) FROM message_parts WHERE message_id = ?"
                              " AND state IN ('pending', 'submitting', 'unknown')", (claim.message.id,))
        if left == 0:
            conversation_id = self._after_sent(row["id"], row["to_number"], modem_id, now, row["conversation_id"])
            self.transition(claim.message.id, State.UNKNOWN, State.SUBMITTED, claim.owner,
                             {"reason": "the TP-MR arrived after the lease expired", "part": part_no},
                             submitted_at=now, last_error=None, error_class=None,
                             conversation_id=conversation_id)
        return True

    def settle_unknown_part(self, message_id: int, part_no: int, *, tp_mr: int, evidence: dict[str, Any],
                            actor: str = "status-report") -> State:
        """The network has shown that the unsure `part_no` of an `unknown` message went out (a status report
        carrying `tp_mr`): record it as submitted and move the message on, with `evidence` in its history.

        With every part accepted the message is `submitted`; with parts never sent it goes back to the queue
        for them, to the SIM that sent the others. Returns the message's new state (or `unknown` when another
        of its parts is still unsure).
        """
        with self.db.transaction():
            row = self.db.one("SELECT state, to_number, conversation_id FROM messages WHERE id = ?",
                              (message_id,))
            if row is None:
                raise NotFound(f"no message #{message_id}")
            part = self.db.one("SELECT state, modem_id, submitting_at FROM message_parts WHERE message_id = ?"
                               " AND part_no = ?", (message_id, part_no))
            if row["state"] != State.UNKNOWN or part is None or part["state"] != PartState.UNKNOWN:
                raise IllegalTransition(message_id, row["state"], State.SUBMITTED)
            self.part_to(message_id, part_no, PartState.SUBMITTED, tp_mr=tp_mr, last_error=None,
                         submitted_at=part["submitting_at"] or self.db.now())
            left = {r["state"] for r in self.db.all(
                "SELECT DISTINCT state FROM message_parts WHERE message_id = ?"
                " AND state IN ('pending', 'submitting', 'unknown')", (message_id,))}
            detail = {"reason": "a status report from the network shows it went out", "part": part_no, **evidence}
            if not left:
                now = self.db.now()
                conversation_id = self._after_sent(message_id, row["to_number"], part["modem_id"], now,
                                                   row["conversation_id"])
                self.transition(message_id, State.UNKNOWN, State.SUBMITTED, actor, detail, submitted_at=now,
                                last_error=None, error_class=None, conversation_id=conversation_id)
                return State.SUBMITTED
            if PartState.UNKNOWN in left:
                return State.UNKNOWN
            detail["reason"] += "; the parts never sent go now, from the same SIM"
            self.transition(message_id, State.UNKNOWN, State.QUEUED, actor, detail, due_at=self.db.now(),
                            lease_owner=None, lease_until=None, modem_id=None, last_error=None,
                            error_class=None, **self._sticky_for_rest(message_id))
            return State.QUEUED

    def note_unknown(self, message_id: int, reason: str, detail: dict[str, Any], *, actor: str,
                     action: str = "evidence.ambiguous") -> bool:
        """Say on an `unknown` message why it still waits for a person (once: False when it already says so).

        Its `updated_at` stays when it became `unknown`, which is what the waits above count from."""
        with self.db.transaction():
            cur = self.db.execute("UPDATE messages SET last_error = ? WHERE id = ? AND state = 'unknown'"
                                  " AND last_error IS NOT ?", (reason, message_id, reason))
            if cur.rowcount != 1:
                return False
            self.audit.record(actor, action, "message", message_id, {"reason": reason, **detail})
            return True

    def _after_sent(self, message_id: int, to_number: str, modem_id: int | None, now: str,
                    conversation_id: int | None) -> int:
        """Count the send on the modem, mark the contact texted and put the message in the thread of the SIM
        that sent it (`Conversations.after_send`); returns the thread id for the caller to store on the
        message (in the same UPDATE that marks it submitted)."""
        if modem_id is not None:
            self.modems.count_sent(modem_id)
        contact_id = self.contacts.mark_texted(to_number, now)
        return self.conversations.after_send(contact_id, modem_id or 0, conversation_id, message_id, now)

    def fail(self, claim: Claim, reason: str, *, code: int | None = None,
             error_class: str = "permanent") -> None:
        """A permanent error: the message will never be sent; its unsent parts fail with it."""
        with self.db.transaction():
            row = self._held(claim)
            self._fail_held(claim, row, reason, attempts=row["attempts"] + 1, code=code, error_class=error_class)

    def retry_later(self, claim: Claim, reason: str, *, delay: float, code: int | None = None,
                    error_class: str = "transient") -> bool:
        """A definite, temporary error: back to the queue after `delay`, or `failed` when out of attempts.

        Returns True if it will be retried. Parts already accepted by the network stay accepted.
        """
        with self.db.transaction():
            row = self._held(claim)
            attempts = row["attempts"] + 1
            if attempts >= row["max_attempts"]:
                self._fail_held(claim, row, f"gave up after {attempts} attempts: {reason}", attempts=attempts,
                                code=code, error_class=error_class)
                return False
            self._requeue(claim, row, reason, delay=delay, attempts=attempts, code=code, error_class=error_class)
            return True

    def _fail_held(self, claim: Claim, row: dict[str, Any], reason: str, *, attempts: int,
                   code: int | None, error_class: str) -> None:
        # Both ways to `failed` count against the modem, so its failure counter matches the outbox.
        self.db.execute("UPDATE message_parts SET state = 'failed', last_error = ? WHERE message_id = ?"
                        " AND state IN ('pending', 'submitting')", (reason, claim.message.id))
        self.transition(claim.message.id, State(row["state"]), State.FAILED, claim.owner,
                         {"reason": reason, "code": code, "class": error_class},
                         lease_owner=None, lease_until=None, last_error=reason, last_error_code=code,
                         error_class=error_class, attempts=attempts, finished_at=self.db.now())
        if row["modem_id"] is not None:
            self.modems.count_failed(row["modem_id"])

    def requeue(self, claim: Claim, reason: str, *, delay: float = 0.0) -> None:
        """The modem, not the message, failed (or the daemon is stopping): back to the queue, no attempt used."""
        with self.db.transaction():
            row = self._held(claim)
            self._requeue(claim, row, reason, delay=delay, attempts=row["attempts"], code=None,
                          error_class="modem")


    def _requeue(self, claim: Claim, row: dict[str, Any], reason: str, *, delay: float, attempts: int,
                 code: int | None, error_class: str) -> None:
        due = ts(self.db.clock() + timedelta(seconds=delay))
        self.db.execute("UPDATE message_parts SET state = 'pending' WHERE message_id = ? AND state = 'submitting'",
                        (claim.message.id,))
        self.transition(claim.message.id, State(row["state"]), State.QUEUED, claim.owner,
                         {"reason": reason, "retry_in": delay, "class": error_class},
                         lease_owner=None, lease_until=None, modem_id=None, due_at=due, attempts=attempts,
                         last_error=reason, last_error_code=code, error_class=error_class,
                         **self._sticky_for_rest(claim.message.id))

    def _sticky_for_rest(self, message_id: int) -> dict[str, Any]:
        """A half-sent multipart message prefers the SIM that sent its first parts: a phone joins parts by
        sender, so the rest must come from the same number while that modem is ready (the claim's normal
        preferred-modem failover applies when it is not)."""
        row = self.db.one("SELECT modem_id FROM message_parts WHERE message_id = ? AND modem_id IS NOT NULL"
                          " AND state IN ('submitted', 'delivered', 'undeliverable') ORDER BY part_no LIMIT 1",
                          (message_id,))
        return {"preferred_modem_id": row["modem_id"]} if row else {}

    def mark_unknown(self, claim: Claim, part_no: int, reason: str) -> None:
        """The modem may have sent `part_no` (ambiguous error, timeout after the PDU): a person decides."""
        with self.db.transaction():
            row = self._held(claim)
            self.part_to(claim.message.id, part_no, PartState.UNKNOWN, last_error=reason)
            self.transition(claim.message.id, State(row["state"]), State.UNKNOWN, claim.owner,
                             {"reason": reason, "part": part_no}, lease_owner=None, lease_until=None,
                             last_error=reason, error_class="ambiguous")

    # -- admin decisions -----------------------------------------------------------------------------
    def cancel(self, message_id: int, actor: str, reason: str = "cancelled by staff") -> None:
        with self.db.transaction():
            row = self.db.one("SELECT state FROM messages WHERE id = ?", (message_id,))
            if row is None:
                raise NotFound(f"no message #{message_id}")
            if row["state"] not in (State.QUEUED, State.UNKNOWN):
                raise IllegalTransition(message_id, row["state"], State.CANCELLED)
            self.transition(message_id, State(row["state"]), State.CANCELLED, actor, {"reason": reason},
                             last_error=reason, finished_at=self.db.now())
            self.db.execute("UPDATE message_parts SET state = 'failed', last_error = ? WHERE message_id = ?"
                            " AND state IN ('pending', 'unknown')", (reason, message_id))

    def erase_texts(self, number: str, inbound_ids: Iterable[int], marker: str, *, actor: str) -> tuple[int, int]:
        """Erasure: what was (or would be) sent to `number`, and the forwards to staff of its texts
        `inbound_ids`, keep their rows and states but not their words. Messages still waiting are
        cancelled first, so the marker itself is never sent. Returns (cancelled, erased)."""
        with self.db.transaction():
            waiting = [r["id"] for r in self.db.all(
                "SELECT id FROM messages WHERE to_number = ? AND state IN ('queued', 'unknown')", (number,))]
            for message_id in waiting:
                self.cancel(message_id, actor, reason="the contact was erased")
            erased = self.db.execute("UPDATE messages SET body = ?, follow_up = NULL WHERE to_number = ?",
                                     (marker, number)).rowcount
            ids = list(inbound_ids)
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                marks = ",".join("?" * len(chunk))
                erased += self.db.execute(f"UPDATE messages SET body = ? WHERE source = 'forward'"
                                          f" AND in_reply_to IN ({marks})", (marker, *chunk)).rowcount
            return len(waiting), erased

    def resend(self, message_id: int, actor: str, *, reason: str = "re-sent by staff") -> None:
        """Put an `unknown` or `failed` message back in the queue: its unsure parts are sent again."""
        with self.db.transaction():
            row = self.db.one("SELECT state FROM messages WHERE id = ?", (message_id,))
            if row is None:
                raise NotFound(f"no message #{message_id}")
            if row["state"] not in (State.UNKNOWN, State.FAILED):
                raise IllegalTransition(message_id, row["state"], State.QUEUED)
            self.db.execute("UPDATE message_parts SET state = 'pending' WHERE message_id = ?"
                            " AND state IN ('unknown', 'failed', 'submitting')", (message_id,))
            # The rest of a half-sent message must come from the SIM that sent its first parts, whoever
            # the message preferred before (a phone joins parts by sender).
            self.transition(message_id, State(row["state"]), State.QUEUED, actor, {"reason": reason},
                             due_at=self.db.now(), attempts=0, finished_at=None,
                             **self._sticky_for_rest(message_id))

    def resend_automatically(self, message_id: int, actor: str, *, limit: int) -> bool:
        """`sending.resend_unknown`: back to the queue, unless it has been put back `limit` times already.

        The count comes from the audit log, not the daemon's memory, so a daemon that restarts (or
        crash-loops) mid-send cannot resend the same reminder without end. Returns False at the limit,
        leaving the message `unknown` for a person.
        """
        with self.db.transaction():
            if self.audit.count_reason("message", message_id, "message.queued", AUTOMATIC_RESEND) >= limit:
                return False
            self.resend(message_id, actor, reason=AUTOMATIC_RESEND)
            return True

    def resend_unconfirmed(self, *, after_s: float, actor: str, limit: int = 1) -> list[int]:
        """Re-send STOP/START/HELP confirmations left `unknown` for `after_s` seconds with no delivery evidence.

        For these a duplicate is harmless and a missing one is a compliance failure, so they go again
        whatever `sending.resend_unknown` says, but `limit` times at most per message, counted in the
        audit log so a crash-looping daemon cannot resend without end. The wait counts from when the
        message became `unknown`, giving the network's status report time to settle it first
        (`DeliveryReports.settle_unknown`). Returns the ids put back in the queue.
        """
        cutoff = ts(self.db.clock() - timedelta(seconds=after_s))
        resent: list[int] = []
        sql = "SELECT id FROM messages WHERE state = 'unknown' AND kind = ? AND updated_at <= ? ORDER BY id"
        if not self.db.all(sql, (Kind.COMPLIANCE.value, cutoff)):
            return resent
        with self.db.transaction():
            for row in self.db.all(sql, (Kind.COMPLIANCE.value, cutoff)):
                if self.audit.count_reason("message", row["id"], "message.queued", COMPLIANCE_RESEND) >= limit:
                    self.note_unknown(row["id"], f"a STOP/START/HELP confirmation already re-sent {limit} time(s) "
                                      "automatically and unsure again; a person decides", {}, actor=actor,
                                      action="unknown.left")
                    continue
                self.resend(row["id"], actor, reason=COMPLIANCE_RESEND)
                resent.append(row["id"])
        return resent

    # -- leases --------------------------------------------------------------------------------------
    def expire_leases(self, *, owner_is_dead: Callable[[str], bool] | None = None,
                      resend_limit: int | None = None) -> dict[str, int]:
        """Return expired (or dead owners') leases to the queue; a part caught mid-send becomes `unknown`.

        With `resend_limit` (`sending.resend_unknown`) such a message goes straight back to the queue in the
        same commit, unless it has been put back automatically that many times already.
        """
        now = self.db.now()
        counts = {"requeued": 0, "unknown": 0, "resent": 0}
        with self.db.transaction():
            rows = self.db.all("SELECT id, state, lease_owner, lease_until FROM messages"
                               " WHERE state IN ('claimed', 'submitting') AND lease_owner IS NOT NULL")
            for row in rows:
                expired = row["lease_until"] is not None and row["lease_until"] < now
                if not expired and not (owner_is_dead and owner_is_dead(row["lease_owner"])):
                    continue
                in_flight = self.db.all("SELECT part_no FROM message_parts WHERE message_id = ?"
                                        " AND state = 'submitting'", (row["id"],))
                if in_flight:
                    for p in in_flight:
                        self.part_to(row["id"], p["part_no"], PartState.UNKNOWN,
                                      last_error="the sender stopped while this part was being sent")
                    self.transition(row["id"], State(row["state"]), State.UNKNOWN, "lease-expiry",
                                     {"reason": "sender stopped mid-send", "owner": row["lease_owner"]},
                                     lease_owner=None, lease_until=None, error_class="ambiguous",
                                     last_error="the sender stopped while a part was being sent; it may have gone")
                    counts["unknown"] += 1
                    if resend_limit and self.resend_automatically(row["id"], "lease-expiry:resend_unknown",
                                                                  limit=resend_limit):
                        counts["resent"] += 1
                else:
                    self.transition(row["id"], State(row["state"]), State.QUEUED, "lease-expiry",
                                     {"reason": "lease expired", "owner": row["lease_owner"]},
                                     lease_owner=None, lease_until=None, modem_id=None,
                                     **self._sticky_for_rest(row["id"]))
                    counts["requeued"] += 1
        return counts

    # -- expected answers ----------------------------------------------------------------------------
    def latest_expecting(self, number: str, since: str) -> Message | None:
        """The newest message to `number` sent since `since` that carries expected answers.

        Messages that were cancelled or never went out are skipped: nobody can be answering them.
        """
        row = self.db.one(
            "SELECT * FROM messages WHERE to_number = ? AND expect IS NOT NULL"
            " AND COALESCE(submitted_at, created_at) >= ? AND state NOT IN ('cancelled', 'failed', 'queued')"
            " ORDER BY COALESCE(submitted_at, created_at) DESC, id DESC LIMIT 1",
            (number, since),
        )
        return Message.from_row(row) if row else None

    def record_outcome(self, message_id: int, outcome: str, *, inbound_id: int | None,
                       actor: str = "rules") -> None:
        """Record the answer to a message's question; a later answer replaces it (both are in the audit)."""
        with self.db.transaction():
            cur = self.db.execute("UPDATE messages SET outcome = ?, outcome_at = ?, answered_by = ? WHERE id = ?",
                                  (outcome, self.db.now(), inbound_id, message_id))
            if cur.rowcount != 1:
                raise NotFound(f"no message #{message_id}")
            self.audit.record(actor, "message.outcome", "message", message_id,
                              {"outcome": outcome, "inbound_id": inbound_id})

    # -- counts for guard rails and caps -------------------------------------------------------------
    def auto_replies_since(self, number: str, since: str) -> int:
        """Automatic replies queued to `number` since `since` (the loop guard's count)."""
        return int(self.db.scalar(
            "SELECT COUNT(*) FROM messages WHERE to_number = ? AND created_by = 'rules'"
            " AND source = 'rules' AND created_at >= ?", (number, since)))

    def capped_send_times(
        self, number: str, kinds: Iterable[str], since: str, exclude_id: int | None = None
    ) -> list[str]:
        """When messages of `kinds` went (or began going) to `number` since `since`, oldest first."""
        kinds = list(kinds)
        if not kinds:
            return []
        marks = ",".join("?" * len(kinds))
        states = ",".join("?" * len(SENT_STATES))
        rows = self.db.all(
            f"SELECT COALESCE(submitted_at, updated_at) AS at FROM messages WHERE to_number = ?"
            f" AND kind IN ({marks}) AND state IN ({states}) AND source != 'forward' AND id IS NOT ?"
            f" AND COALESCE(submitted_at, updated_at) > ? ORDER BY at",
            (number, *kinds, *SENT_STATES, exclude_id, since),
        )
        return [r["at"] for r in rows]

    def sends_since(self, created_by: str, seconds: float) -> int:
        """Messages `created_by` queued through the API in the last `seconds` (for per-token send caps).

        Only API messages count (`source = 'api'`), which lets the partial index `messages_api_sends`
        answer it without every campaign row having to be indexed by its creator.
        """
        since = ts(self.db.clock() - timedelta(seconds=seconds))
        return int(self.db.scalar(
            "SELECT COUNT(*) FROM messages WHERE created_by = ? AND created_at >= ? AND source = 'api'",
            (created_by, since)))

    # -- state machinery -----------------------------------------------------------------------------
    def transition(
        self, message_id: int, old: State, new: State, actor: str, detail: dict[str, Any] | None = None, **columns: Any
    ) -> None:
        if old == State.QUEUED and new != State.QUEUED:
            row = self.db.execute("SELECT to_number, parts_total FROM messages WHERE id = ?", (message_id,)).fetchone()
            if row is not None:
                self._ensure_parts(message_id, row[0], row[1])
        self._move(message_id, old, new, actor, detail, columns)

    def _move(
        self,
        message_id: int,
        old: State,
        new: State,
        actor: str,
        detail: dict[str, Any] | None,
        columns: dict[str, Any],
        *,
        now: str | None = None,
    ) -> None:
        """One guarded UPDATE of the message (only from `old`) and its audit entry, with one timestamp."""
        if new not in TRANSITIONS[old]:
            raise IllegalTransition(message_id, old, new)
        now = now or self.db.now()
        if new in TERMINAL and "finished_at" not in columns:
            columns = {**columns, "finished_at": now}
        sets = "".join(f", {col} = ?" for col in columns)
        cur = self.db.execute(
            f"UPDATE messages SET state = ?, updated_at = ?{sets} WHERE id = ? AND state = ?",
            (new.value, now, *columns.values(), message_id, old.value),
        )
        if cur.rowcount != 1:
            actual = self.db.one("SELECT state FROM messages WHERE id = ?", (message_id,))
            raise IllegalTransition(message_id, actual["state"] if actual else "missing", new)
        if old != new:
            self.db.execute(
                "INSERT INTO audit_log (at, actor, action, subject_type, subject_id, detail)"
                " VALUES (?, ?, ?, 'message', ?, ?)",
                (
                    now,
                    actor,
                    f"message.{new.value}",
                    message_id,
                    json.dumps({"from": old.value, **(detail or {})}, ensure_ascii=False, default=str),
                ),
            )

    def _history(self, message_id: int, old: State | None, new: State, actor: str, detail: dict[str, Any]) -> None:
        self.audit.record(
            actor, f"message.{new.value}", "message", message_id, {"from": old.value if old else None, **detail}
        )

    def part_to(self, message_id: int, part_no: int, new: PartState, **columns: Any) -> None:
        from .records import PART_RANK

        row = self.db.one("SELECT state FROM message_parts WHERE message_id = ? AND part_no = ?", (message_id, part_no))
        if row is None:
            raise NotFound(f"message #{message_id} has no part {part_no}")
        old = PartState(row["state"])
        if PART_RANK[new] < PART_RANK[old] and not (old == PartState.SUBMITTING and new == PartState.PENDING):
            raise IllegalTransition(message_id, f"part {part_no} {old}", f"{new}")
        sets = ["state = ?"] + [f"{c} = ?" for c in columns]
        self.db.execute(
            f"UPDATE message_parts SET {', '.join(sets)} WHERE message_id = ? AND part_no = ?",
            (new.value, *columns.values(), message_id, part_no),
        )


def consent_refused(refusal: Refusal) -> ConsentRefused:
    """The error for a message the ledger refuses at enqueue; an opt-out says who can undo it."""
    if refusal.code.endswith("opted_out"):
        return OptedOut(f"{refusal.reason}; nothing was queued. Only the patient can opt back in, by texting "
                        "START.", refusal.code)
    return ConsentRefused(f"{refusal.reason}; nothing was queued.", refusal.code)
