"""Delivery (status) reports, matched to the part they describe by (modem, TP-MR, recipient, time window).

TP-MR is one octet and wraps every 256 sends, so a report is matched to the newest submitted part with
that reference within the window; a report that arrives before its `+CMGS:` is kept and matched later.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from .clock import parse_ts, ts
from .contacts import Contacts
from .db import Db
from .outbox import Outbox
from .records import PartState, ReportMatch, State

REPORT_BEFORE_SUBMIT_SLACK_S = 600.0
OUTCOMES = {"delivered": PartState.DELIVERED, "failed": PartState.UNDELIVERABLE, "pending": None}


class DeliveryReports:
    """Status reports from the network, matched to the part they describe."""

    def __init__(self, db: Db, *, outbox: Outbox, contacts: Contacts) -> None:
        self.db = db
        self.outbox = outbox
        self.contacts = contacts

    def record(self, *, modem_id: int | None, tp_mr: int, recipient: str, status_code: int,
               outcome: str, dedupe_key: str, sc_timestamp: str | None = None,
               discharge_time: str | None = None, pdu: str | None = None,
               window_hours: float = 72.0) -> ReportMatch:
        if outcome not in OUTCOMES:
            raise ValueError(f"report outcome must be one of {sorted(OUTCOMES)}, not {outcome!r}")
        recipient = self.contacts.canonical(recipient)
        with self.db.transaction():
            existing = self.db.one("SELECT * FROM status_reports WHERE dedupe_key = ?", (dedupe_key,))
            if existing is not None:
                return ReportMatch(existing["id"], existing["message_id"], existing["part_no"], None)
            cur = self.db.execute(
                "INSERT INTO status_reports (dedupe_key, modem_id, tp_mr, recipient, status_code, outcome,"
                " sc_timestamp, discharge_time, received_at, pdu) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (dedupe_key, modem_id, tp_mr, recipient, status_code, outcome, sc_timestamp, discharge_time,
                 self.db.now(), pdu),
            )
            return self._match_report(int(cur.lastrowid or 0), window_hours)

    def rematch(self, window_hours: float = 72.0) -> int:
        """Try unmatched reports again (their part may have been committed since). Returns matches made."""
        made = 0
        with self.db.transaction():
            for r in self.db.all("SELECT id FROM status_reports WHERE matched_at IS NULL ORDER BY id"):
                if self._match_report(r["id"], window_hours).message_id is not None:
                    made += 1
        return made

    def unmatched(self) -> list[dict[str, Any]]:
        return self.db.all("SELECT * FROM status_reports WHERE matched_at IS NULL ORDER BY id")

    def _match_report(self, report_id: int, window_hours: float) -> ReportMatch:
        rep = self.db.one("SELECT * FROM status_reports WHERE id = ?", (report_id,))
        assert rep is not None
        # The window is anchored on when the report arrived, not on now: a report kept unmatched for a
        # while must not be matched later to a newer part that reused its TP-MR after wraparound. The
        # slack admits the part whose TP-MR was committed just after its report came in.
        received = parse_ts(rep["received_at"])
        since = ts(received - timedelta(hours=window_hours))
        until = ts(received + timedelta(seconds=REPORT_BEFORE_SUBMIT_SLACK_S))
        part = self.db.one(
            "SELECT * FROM message_parts WHERE modem_id IS ? AND tp_mr = ? AND recipient = ?"
            " AND state IN ('submitted', 'delivered', 'undeliverable') AND submitted_at >= ?"
            " AND submitted_at <= ? ORDER BY submitted_at DESC LIMIT 1",
            (rep["modem_id"], rep["tp_mr"], rep["recipient"], since, until),
        )
        if part is None:
            return ReportMatch(report_id, None, None, None)
        self.db.execute("UPDATE status_reports SET message_id = ?, part_no = ?, matched_at = ? WHERE id = ?",
                        (part["message_id"], part["part_no"], self.db.now(), report_id))
        target = OUTCOMES[rep["outcome"]]
        self.db.execute("UPDATE message_parts SET status_code = ?, status_at = ? WHERE message_id = ? AND part_no = ?",
                        (rep["status_code"], self.db.now(), part["message_id"], part["part_no"]))
        if target is not None and part["state"] == PartState.SUBMITTED:
            self.outbox.part_to(part["message_id"], part["part_no"], target)
        new_state = self.settle_delivery(part["message_id"])
        return ReportMatch(report_id, part["message_id"], part["part_no"], new_state)

    def settle_delivery(self, message_id: int) -> str | None:
        """Move a submitted message to delivered/undeliverable once its parts say so (never backwards)."""
        msg = self.db.one("SELECT state FROM messages WHERE id = ?", (message_id,))
        if msg is None or msg["state"] != State.SUBMITTED:
            return None
        states = [
            r["state"] for r in self.db.all("SELECT state FROM message_parts WHERE message_id = ?", (message_id,))
        ]
        if PartState.UNDELIVERABLE in states:
            self.outbox.transition(message_id, State.SUBMITTED, State.UNDELIVERABLE, "status-report", {})
            return State.UNDELIVERABLE.value
        if all(s == PartState.DELIVERED for s in states):
            self.outbox.transition(message_id, State.SUBMITTED, State.DELIVERED, "status-report", {})
            return State.DELIVERED.value
        return None
