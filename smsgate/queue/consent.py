"""The consent ledger: append-only opt-in/opt-out events, and what they mean for one number now."""

from __future__ import annotations

from typing import Any

from .audit import AuditLog
from .contacts import Contacts
from .db import Db
from .records import ConsentStatus

GLOBAL = "all"


class ConsentLedger:
    """Append-only opt-in and opt-out events per number and scope; what they mean for a number now."""

    def __init__(self, db: Db, *, audit: AuditLog, contacts: Contacts) -> None:
        self.db = db
        self.audit = audit
        self.contacts = contacts

    def record(self, number: str, event: str, *, source: str, actor: str,
               scope: str = GLOBAL, evidence: str | None = None, inbound_id: int | None = None) -> int:
        """Append an `opt_out` or `opt_in` event; from this commit on, claims see it."""
        if event not in ("opt_out", "opt_in"):
            raise ValueError(f"consent event must be opt_out or opt_in, not {event!r}")
        number = self.contacts.canonical(number)
        with self.db.transaction():
            cur = self.db.execute(
                "INSERT INTO consent_events (number, event, scope, at, source, evidence, actor, inbound_id)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (number, event, scope, self.db.now(), source, evidence, actor, inbound_id),
            )
            self.audit.record(actor, f"consent.{event}", "consent", int(cur.lastrowid or 0),
                              {"number": number, "scope": scope, "source": source})
            return int(cur.lastrowid or 0)

    def status(self, number: str, scope: str = GLOBAL) -> ConsentStatus:
        """The latest event that applies: a global one, or one for `scope`.

        The number is normalised first, so a STOP from `+1 (202) 555-0123` covers `+12025550123`.
        """
        number = self.contacts.canonical(number)
        row = self.db.one(
            "SELECT * FROM consent_events WHERE number = ? AND scope IN (?, ?) ORDER BY id DESC LIMIT 1",
            (number, GLOBAL, scope),
        )
        if row is None:
            return ConsentStatus(number, scope, False, False, None, None, None, None)
        return ConsentStatus(
            number, scope,
            opted_out=row["event"] == "opt_out",
            opted_in=row["event"] == "opt_in",
            last_event=row["event"], last_event_at=row["at"], last_source=row["source"],
            last_evidence=row["evidence"],
        )

    def history(self, number: str | None = None) -> list[dict[str, Any]]:
        if number is None:
            return self.db.all("SELECT * FROM consent_events ORDER BY id")
        number = self.contacts.canonical(number)
        return self.db.all("SELECT * FROM consent_events WHERE number = ? ORDER BY id", (number,))

    def opted_out_numbers(self, scope: str = GLOBAL) -> set[str]:
        rows = self.db.all(
            "SELECT number, event FROM consent_events c WHERE id = (SELECT MAX(id) FROM consent_events d"
            " WHERE d.number = c.number AND d.scope IN (?, ?))", (GLOBAL, scope))
        return {r["number"] for r in rows if r["event"] == "opt_out"}
