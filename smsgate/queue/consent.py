"""The consent ledger: append-only opt-in/opt-out events, and what they mean for one number now."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .records import ConsentStatus

if TYPE_CHECKING:
    from .store import Store

GLOBAL = "all"


class ConsentMixin:
    def record_consent(self: Store, number: str, event: str, *, source: str, actor: str,
                       scope: str = GLOBAL, evidence: str | None = None, inbound_id: int | None = None) -> int:
        """Append an `opt_out` or `opt_in` event; from this commit on, claims see it."""
        if event not in ("opt_out", "opt_in"):
            raise ValueError(f"consent event must be opt_out or opt_in, not {event!r}")
        number = self.canonical_sender(number)
        with self.transaction():
            cur = self._exec(
                "INSERT INTO consent_events (number, event, scope, at, source, evidence, actor, inbound_id)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (number, event, scope, self._now(), source, evidence, actor, inbound_id),
            )
            self.audit(actor, f"consent.{event}", "consent", int(cur.lastrowid or 0),
                       {"number": number, "scope": scope, "source": source})
            return int(cur.lastrowid or 0)

    def consent_status(self: Store, number: str, scope: str = GLOBAL) -> ConsentStatus:
        """The latest event that applies: a global one, or one for `scope`.

        The number is normalised first, so a STOP from `+1 (202) 555-0123` covers `+12025550123`.
        """
        number = self.canonical_sender(number)
        row = self._one(
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

    def consent_history(self: Store, number: str | None = None) -> list[dict[str, Any]]:
        if number is None:
            return self._all("SELECT * FROM consent_events ORDER BY id")
        number = self.canonical_sender(number)
        return self._all("SELECT * FROM consent_events WHERE number = ? ORDER BY id", (number,))

    def opted_out_numbers(self: Store, scope: str = GLOBAL) -> set[str]:
        rows = self._all(
            "SELECT number, event FROM consent_events c WHERE id = (SELECT MAX(id) FROM consent_events d"
            " WHERE d.number = c.number AND d.scope IN (?, ?))", (GLOBAL, scope))
        return {r["number"] for r in rows if r["event"] == "opt_out"}
