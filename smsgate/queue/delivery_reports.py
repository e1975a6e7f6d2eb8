"""Delivery (status) reports, matched to the part they describe by (modem, TP-MR, recipient, time window).

TP-MR is one octet and wraps every 256 sends, so a report is matched to the newest submitted part with
that reference within the window; a report that arrives before its `+CMGS:` is kept and matched later.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from .clock import parse_ts, ts
from .contacts import Contacts
from .db import Db
from .outbox import Outbox
from .records import PartState, ReportMatch, State

REPORT_BEFORE_SUBMIT_SLACK_S = 600.0
# How far a report's service-centre timestamp may lie before the send it answers (the SMSC's clock is not
# ours): a report stamped earlier belongs to an older message.
SCTS_SLACK_S = 600.0
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

    def settle_unknown(self, window_hours: float = 72.0) -> dict[str, int]:
        """Settle `unknown` messages that the network has already answered for; say why the rest wait.

        A part left unsure (its `+CMGS` answer lost to a killed daemon or an ambiguous error) has no TP-MR,
        so its report stays unmatched. A report can only be the answer to a part handed to the modem it
        came from, for the same number, before the report arrived; it is taken as that part's answer only
        when nothing else can have caused it:

        - no other send to that number from that modem is in flight (its report may come before its own
          `+CMGS` answer);
        - among the unsure parts to that number on that modem, taken oldest first, the report arrived
          before the next one was handed over (so it cannot be the next one's), or no later one is unsure,
          and every report so taken carries one TP-MR (a "pending" then a "delivered" report are one send);
          a later report with the TP-MR of a part settled this way is that part's too.

        Anything less is not guessed at: two unsure messages whose reports both came after the second was
        handed over, or reports with different references, leave the messages `unknown` for a person, with
        the reason on them and the candidate reports in their history. Returns how many messages were
        settled and how many are ambiguous.
        """
        counts = {"settled": 0, "ambiguous": 0}
        since = ts(self.db.clock() - timedelta(hours=window_hours))
        unsure_sql = ("SELECT p.message_id, p.part_no, p.modem_id, p.recipient, p.submitting_at"
                      " FROM messages m JOIN message_parts p ON p.message_id = m.id WHERE m.state = 'unknown'"
                      " AND p.state = 'unknown' AND p.modem_id IS NOT NULL AND p.submitting_at >= ?"
                      " ORDER BY p.submitting_at, p.message_id, p.part_no")
        if not self.db.all(unsure_sql, (since,)):
            return counts  # the usual round: nothing unsure, and no write lock taken for it
        with self.db.transaction():
            groups: dict[tuple[int, str], list[dict[str, Any]]] = {}
            for part in self.db.all(unsure_sql, (since,)):
                groups.setdefault((part["modem_id"], part["recipient"]), []).append(part)
            for (modem_id, recipient), parts in groups.items():
                found = [self._candidates(p, window_hours) for p in parts]
                if not any(found):
                    continue
                if self.db.one("SELECT 1 FROM messages m JOIN message_parts p ON p.message_id = m.id"
                               " WHERE m.state = 'submitting' AND p.state = 'submitting' AND p.modem_id = ?"
                               " AND p.recipient = ? LIMIT 1", (modem_id, recipient)) is not None:
                    continue  # a send in flight: its report may be among the candidates; look next round
                settled, ambiguous = self._settle_group(modem_id, recipient, parts, found)
                counts["settled"] += settled
                counts["ambiguous"] += ambiguous
        return counts

    def _settle_group(self, modem_id: int, recipient: str, parts: list[dict[str, Any]],
                      found: list[list[dict[str, Any]]]) -> tuple[int, int]:
        """Settle the unsure parts to one number on one modem, oldest first, while each can be told apart."""
        known: set[int] = set()  # TP-MRs of the parts settled here: their later reports are theirs
        settled = 0
        for i, part in enumerate(parts):
            next_start = parts[i + 1]["submitting_at"] if i + 1 < len(parts) else None
            own = [r for r in found[i] if r["tp_mr"] not in known]
            sure = [r for r in own if next_start is None or r["received_at"] <= next_start]
            tp_mrs = sorted({r["tp_mr"] for r in sure})
            if len(tp_mrs) == 1:
                mine = [r for r in own if r["tp_mr"] == tp_mrs[0]]
                self.outbox.settle_unknown_part(part["message_id"], part["part_no"], tp_mr=tp_mrs[0],
                                                evidence={**_evidence(mine), "tp_mr": tp_mrs[0],
                                                          "modem_id": modem_id})
                for rep in mine:
                    self._apply(rep, part["message_id"], part["part_no"])
                known.add(tp_mrs[0])
                settled += 1
                continue
            rest = parts[i:]
            reports = sorted({r["id"]: r for rs in found[i:] for r in rs if r["tp_mr"] not in known}.values(),
                             key=lambda r: r["id"])
            if not reports:
                break
            ids = sorted({p["message_id"] for p in rest})
            if len(rest) == 1:
                reason = (f"{_reports_text(reports)} from modem #{modem_id} for {recipient} came after this message "
                          f"was sent, with different references (TP-MR {', '.join(map(str, tp_mrs))}): at most one "
                          "can be its answer, so a person decides")
            else:
                reason = (f"{len(ids)} unsure messages to {recipient} from modem #{modem_id} (#"
                          f"{', #'.join(map(str, ids))}) and {_reports_text(reports)} received after more "
                          "than one of them was sent: which report belongs to which message cannot be told, so a "
                          "person decides")
            for mid in ids:
                self.outbox.note_unknown(mid, reason, {**_evidence(reports), "messages": ids}, actor="status-report")
            return settled, len(ids)
        return settled, 0

    def _candidates(self, part: dict[str, Any], window_hours: float) -> list[dict[str, Any]]:
        """Unmatched reports that may be the network's answer to an unsure part."""
        start = parse_ts(part["submitting_at"])
        rows = self.db.all(
            "SELECT * FROM status_reports WHERE matched_at IS NULL AND modem_id = ? AND recipient = ?"
            " AND received_at > ? AND received_at <= ? ORDER BY id",
            (part["modem_id"], part["recipient"], part["submitting_at"], ts(start + timedelta(hours=window_hours))))
        # A service-centre time well before the send is another message's report, delivered late.
        earliest = start - timedelta(seconds=SCTS_SLACK_S)
        return [r for r in rows if not (r["sc_timestamp"] and _before(r["sc_timestamp"], earliest))]

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
        return self._apply(rep, part["message_id"], part["part_no"])

    def _apply(self, rep: dict[str, Any], message_id: int, part_no: int) -> ReportMatch:
        """Record that report `rep` is about this part, and move the part and its message forward."""
        self.db.execute("UPDATE status_reports SET message_id = ?, part_no = ?, matched_at = ? WHERE id = ?",
                        (message_id, part_no, self.db.now(), rep["id"]))
        target = OUTCOMES[rep["outcome"]]
        self.db.execute("UPDATE message_parts SET status_code = ?, status_at = ? WHERE message_id = ? AND part_no = ?",
                        (rep["status_code"], self.db.now(), message_id, part_no))
        state = self.db.scalar("SELECT state FROM message_parts WHERE message_id = ? AND part_no = ?",
                               (message_id, part_no))
        if target is not None and state == PartState.SUBMITTED:
            self.outbox.part_to(message_id, part_no, target)
        new_state = self.settle_delivery(message_id)
        return ReportMatch(rep["id"], message_id, part_no, new_state)

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


def _evidence(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """What the history keeps of the reports a decision rests on."""
    return {"report_ids": [r["id"] for r in reports], "tp_mrs": sorted({r["tp_mr"] for r in reports}),
            "status_codes": [r["status_code"] for r in reports], "outcomes": [r["outcome"] for r in reports],
            "received_at": [r["received_at"] for r in reports],
            "sc_timestamp": reports[-1]["sc_timestamp"], "discharge_time": reports[-1]["discharge_time"]}


def _reports_text(reports: list[dict[str, Any]]) -> str:
    ids = ", #".join(str(r["id"]) for r in reports)
    return f"delivery report #{ids}" if len(reports) == 1 else f"delivery reports #{ids}"


def _before(stamp: str, moment: datetime) -> bool:
    try:
        return parse_ts(stamp) < moment
    except ValueError:
        return False

