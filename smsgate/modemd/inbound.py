"""Inbound pick-up: a PDU read from the modem becomes a stored row before the modem's copy is deleted.

Order per message (RELIABILITY.md §2.2): decode -> store under a unique key, raw PDU kept -> commit ->
only then may the caller `AT+CMGD`. A PDU that does not decode is stored raw and flagged. A part of a
multipart message goes to the store's fragment table, so reassembly survives restarts; fragments stay
there until the reassembly timeout, which lets a part re-read after a crash fold into the message it
already completed instead of starting a new one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from smsgate.at_commands.pdu import Deliver, PduError, StatusReport, Submit, decode
from smsgate.at_commands.reassembly import completed_escapes, join_parts
from smsgate.queue import Inbound, Store, inbound_key
from smsgate.queue.clock import ts
from smsgate.queue.inbox import fragment_of, notes_of

from .hooks import InboundHook

log = logging.getLogger(__name__)

UNKNOWN_SENDER = "unknown"


@dataclass(frozen=True)
class Outcome:
    """What became of one PDU; `delete` says whether the modem's copy may now be removed."""

    kind: str  # "message", "fragment", "report", "undecodable", "duplicate", "not-inbound"
    delete: bool
    inbound_id: int | None = None


def modem_identity(store: Store, modem_id: int) -> str:
    """The receiving SIM's stable identity for dedupe keys: IMSI, else ICCID, else IMEI, else the name."""
    row = store.modems.get(modem_id)
    for key in ("imsi", "iccid", "imei", "name"):
        if row.get(key):
            return f"{key}:{row[key]}"
    return f"modem:{modem_id}"


def _when(dt: datetime | None) -> str | None:
    return ts(dt) if dt is not None else None


class InboundProcessor:
    """Stores what one modem receives; one instance per worker thread (it uses that thread's Store)."""

    def __init__(self, store: Store, modem_id: int, identity: str, on_inbound: InboundHook | None, *,
                 report_window_hours: float = 72.0) -> None:
        self.store = store
        self.modem_id = modem_id
        self.identity = identity
        self.on_inbound = on_inbound
        self.report_window_hours = report_window_hours

    def process(self, pdu_hex: str, *, has_smsc: bool = True) -> Outcome:
        pdu_hex = pdu_hex.strip().upper()
        key = inbound_key(self.identity, pdu_hex)
        try:
            msg = decode(pdu_hex, has_smsc=has_smsc)
        except (PduError, ValueError) as exc:
            return self._undecodable(pdu_hex, key, exc, has_smsc)
        if isinstance(msg, StatusReport):
            return self._report(msg, pdu_hex, key)
        if isinstance(msg, Submit):
            # An outgoing message someone saved on the SIM: not ours to store or delete.
            return Outcome("not-inbound", delete=False)
        assert isinstance(msg, Deliver)
        if msg.concat is not None and msg.concat.total > 1:
            return self._fragment(msg, pdu_hex, key)
        with self.store.transaction():
            row, created = self.store.inbox.store(
                modem_id=self.modem_id, sender=msg.number or UNKNOWN_SENDER, body=msg.text, dedupe_key=key,
                sent_at=_when(msg.timestamp), pdu=pdu_hex, encoding=msg.encoding, decode_notes=msg.warnings,
            )
            if created:
                run_hook(self.store, self.on_inbound, row)
        return Outcome("message" if created else "duplicate", delete=True, inbound_id=row.id)

    def _undecodable(self, pdu_hex: str, key: str, exc: Exception, has_smsc: bool) -> Outcome:
        body = ""
        sender = UNKNOWN_SENDER
        try:
            partial = decode(pdu_hex, has_smsc=has_smsc, lenient=True)
            body, sender = partial.text, partial.number or UNKNOWN_SENDER
        except (PduError, ValueError):
            pass
        log.warning("modem #%s: stored an undecodable PDU raw (%s)", self.modem_id, exc)
        with self.store.transaction():
            row, created = self.store.inbox.store(
                modem_id=self.modem_id, sender=sender, body=body, dedupe_key=key, pdu=pdu_hex,
                decode_error=f"could not decode this SMS: {exc}",
            )
        return Outcome("undecodable" if created else "duplicate", delete=True, inbound_id=row.id)

    def _report(self, rep: StatusReport, pdu_hex: str, key: str) -> Outcome:
        match = self.store.reports.record(
            modem_id=self.modem_id, tp_mr=rep.reference, recipient=rep.number, status_code=rep.status,
            outcome=rep.outcome, dedupe_key=key, sc_timestamp=_when(rep.timestamp),
            discharge_time=_when(rep.discharge), pdu=pdu_hex, window_hours=self.report_window_hours,
        )
        if match.message_id is None:
            log.info("status report TP-MR %s for %s kept unmatched for now", rep.reference, rep.number)
        return Outcome("report", delete=True)

    def _fragment(self, msg: Deliver, pdu_hex: str, key: str) -> Outcome:
        c = msg.concat
        assert c is not None
        with self.store.transaction():
            group = self.store.inbox.add_fragment(
                modem_id=self.modem_id, sender=msg.number or UNKNOWN_SENDER, ref=c.ref, ref_bits=c.ref_bits,
                total=c.total, seq=c.seq, body=msg.text, dedupe_key=key, encoding=msg.encoding,
                sent_at=_when(msg.timestamp), pdu=pdu_hex, ends_in_escape=msg.ends_in_escape,
                decode_notes=[f.message for f in msg.flags if f.code != "lone-escape"],
            )
            row = assemble(self.store, self.on_inbound, self.identity, group, complete_only=True)
        return Outcome("message" if row else "fragment", delete=True, inbound_id=row.id if row else None)


def assemble(store: Store, on_inbound: InboundHook | None, identity: str, group: list[dict[str, Any]], *,
             complete_only: bool) -> Inbound | None:
    """Store a fragment group as one message (with a visible gap unless complete); None if left waiting.

    Runs inside the caller's transaction. The key is built from the parts' own keys, so assembling the
    same parts again (a re-read after a crash) finds the stored message instead of making a second one.
    """
    if not group:
        return None
    total = group[0]["total"]
    by_seq: dict[int, dict[str, Any]] = {}
    for frag in group:
        by_seq.setdefault(frag["seq"], frag)
    missing = [n for n in range(1, total + 1) if n not in by_seq]
    if missing and complete_only:
        return None
    parts = {n: fragment_of(f) for n, f in by_seq.items()}
    body = join_parts(parts, total, gap=lambda n: f"[part {n} of {total} missing]")
    completed = completed_escapes(parts, total)
    notes = [f"part {n}: {note}" for n in sorted(by_seq) for note in notes_of(by_seq[n])]
    notes += [f"part {n} of {total} ends in a lone escape (0x1B) that the next part does not complete; it is"
              " shown as a space" for n in sorted(by_seq) if parts[n].ends_in_escape and n not in completed]
    first = by_seq[min(by_seq)]
    key = inbound_key(identity, "concat:" + ",".join(sorted(f["dedupe_key"] for f in by_seq.values())))
    row, created = store.inbox.store(
        modem_id=first["modem_id"], sender=first["sender"], body=body, dedupe_key=key,
        sent_at=first["sent_at"], pdu="\n".join(by_seq[n]["pdu"] or "" for n in sorted(by_seq)),
        encoding=first["encoding"], parts_total=total,
        missing_parts=",".join(str(n) for n in missing) or None, decode_notes=notes,
    )
    if created:
        if missing:
            log.warning("stored a %s-part message from %s with parts %s missing", total, first["sender"], missing)
        run_hook(store, on_inbound, row)
    return row


def flush_stale_fragments(store: Store, on_inbound: InboundHook | None, *, older_than: timedelta) -> int:
    """Store every fragment group older than the reassembly timeout (with gaps), then drop its fragments."""
    cutoff = ts(store.clock() - older_than)
    stored = 0
    for g in store.inbox.stale_fragment_groups(cutoff):
        with store.transaction():
            group = store.inbox.fragment_group(g["group_id"])
            identity = modem_identity(store, g["modem_id"]) if g["modem_id"] is not None else "modem:none"
            row = assemble(store, on_inbound, identity, group, complete_only=False)
            store.inbox.drop_fragments([f["id"] for f in group])
            if row is not None and row.missing_parts:
                stored += 1
    return stored


def run_hook(store: Store, on_inbound: InboundHook | None, row: Inbound) -> None:
    """Run the rules on a just-stored message in the same transaction, in a savepoint of its own.

    A failing rule must not lose the SMS: its writes roll back, the message stays stored (unhandled, for
    staff to see), and an alert says so.
    """
    if on_inbound is None:
        return
    try:
        with store.transaction():
            on_inbound(store, row)
    except Exception as exc:  # the rules engine is a plug-in boundary; the SMS itself must survive it
        log.exception("rules failed on inbound #%s; the message is stored but unhandled", row.id)
        store.alerts.raise_alert("rules_failed", f"the rules engine failed on inbound message #{row.id} ({exc!r}); "
                                 "it is stored but no automatic reply was sent. Check the log and answer it by hand.",
                                 level="warning")
