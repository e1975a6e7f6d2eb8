"""The consent ledger: append-only opt-in, opt-out and restore events per number and purpose, and the one
rule that says what they allow now.

Purposes (scopes): `all` (a plain STOP and START), `transactional` (reminders, replies, non-marketing
campaigns) and one scope per list, named as the list is. `decide` is the rule, used both when a message
is queued (`may_send`) and when it is claimed for a modem, so the two can never disagree:

- a compliance message (the answer to STOP, START or HELP) is never refused;
- marketing to list L is refused without a list, without an `opt_in` for L ever, when the latest L event
  is an `opt_out`, or when a global `opt_out` is newer than the latest L event;
- any other message (for list L, or for none) is refused when the latest `transactional` event is an
  `opt_out`, when the latest L event is an `opt_out`, or when a global `opt_out` is newer than the latest
  event of those scopes.

So START (a global `restore`) lifts a STOP and brings back whatever that STOP had covered, never more: a
list the number was never opted in to stays closed, and so does one it left on its own (STOP L).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .audit import AuditLog
from .contacts import Contacts
from .db import Db
from .lists import Lists
from .records import ConsentStatus, Kind

GLOBAL = "all"
TRANSACTIONAL = "transactional"
EVENTS = ("opt_in", "opt_out", "restore")


@dataclass(frozen=True)
class Refusal:
    """Why a message may not go to a number now: `code` for programs, `reason` for the admin."""

    code: str  # no_list, unknown_list, no_opt_in, list_opted_out, transactional_opted_out, opted_out
    reason: str


NO_LIST = Refusal("no_list", "a marketing message must name its list (`--list NAME`, or \"list\" in the API): "
                            "marketing consent is given per list")


@dataclass(frozen=True)
class LedgerEvent:
    id: int
    event: str
    scope: str
    at: str
    source: str


def purposes(kind: Kind, list_name: str | None) -> tuple[str, ...]:
    """The scopes whose events decide a message of `kind` (besides the global one)."""
    if kind is Kind.MARKETING:
        return (list_name,) if list_name else ()
    return (TRANSACTIONAL, list_name) if list_name else (TRANSACTIONAL,)


def decide(number: str, kind: Kind | str, list_name: str | None,
           events: Iterable[LedgerEvent]) -> Refusal | None:
    """The consent rule over `number`'s events (oldest first) in the global scope and the message's purposes."""
    kind = Kind(kind)
    if kind is Kind.COMPLIANCE:
        return None
    if kind is Kind.MARKETING and not list_name:
        return NO_LIST
    scopes = purposes(kind, list_name)
    latest: dict[str, LedgerEvent] = {}
    granted = False
    for e in events:
        latest[e.scope] = e
        if e.event == "opt_in" and e.scope == list_name:
            granted = True
    if kind is Kind.MARKETING and not granted:
        return Refusal("no_opt_in", f"{number} has not opted in to {list_name!r}; marketing to a list needs an "
                                    "opt-in for that list on the consent ledger (a JOIN keyword, `smsgate consent "
                                    "optin`, or an import with evidence). Send it as transactional only if it is "
                                    "not marketing.")
    for scope in scopes:
        last = latest.get(scope)
        if last is not None and last.event == "opt_out":
            code = "transactional_opted_out" if scope == TRANSACTIONAL else "list_opted_out"
            return Refusal(code, f"{number} opted out of {scope!r} messages ({last.source}, {last.at})")
    stop = latest.get(GLOBAL)
    if stop is not None and stop.event == "opt_out" and all(
            stop.id > latest[s].id for s in scopes if s in latest):
        return Refusal("opted_out", f"{number} opted out of all messages ({stop.source}, {stop.at})")
    return None


class ConsentLedger:
    """Append-only consent events per number and scope, and what they allow now."""

    def __init__(self, db: Db, *, audit: AuditLog, contacts: Contacts, lists: Lists) -> None:
        self.db = db
        self.audit = audit
        self.contacts = contacts
        self.lists = lists

    def record(self, number: str, event: str, *, source: str, actor: str,
               scope: str = GLOBAL, evidence: str | None = None, inbound_id: int | None = None) -> int:
        """Append an event; from this commit on, claims see it.

        `opt_in` grants one list and so must name it; `restore` (a patient's START) and `opt_out` may be
        global, for the transactional purpose, or for one list.
        """
        if event not in EVENTS:
            raise ValueError(f"consent event must be one of {', '.join(EVENTS)}, not {event!r}")
        scope = scope.strip().lower()
        if not scope:
            raise ValueError("a consent event needs a scope: 'all', 'transactional' or a list name")
        if event == "opt_in" and scope in (GLOBAL, TRANSACTIONAL):
            raise ValueError(f"an opt-in is given for one list, not for {scope!r}: name the list (scope=...). "
                             "Transactional messages need no opt-in, and a patient's START is a 'restore'.")
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

    def events(self, number: str, scopes: Sequence[str]) -> list[LedgerEvent]:
        """`number`'s events in the global scope and `scopes`, oldest first (`number` already canonical)."""
        wanted = (GLOBAL, *scopes)
        marks = ",".join("?" * len(wanted))
        rows = self.db.execute(
            f"SELECT id, event, scope, at, source FROM consent_events WHERE number = ? AND scope IN ({marks})"
            " ORDER BY id", (number, *wanted)).fetchall()
        return [LedgerEvent(*r) for r in rows]

    def decide(self, number: str, kind: Kind | str, list_name: str | None) -> Refusal | None:
        """The consent rule for a number already in canonical form (the claim's check)."""
        kind = Kind(kind)
        if kind is Kind.COMPLIANCE:
            return None
        return decide(number, kind, list_name, self.events(number, purposes(kind, list_name)))

    def may_send(self, number: str, kind: Kind | str, list_name: str | None = None) -> Refusal | None:
        """Whether a message of `kind` (for `list_name`) may go to `number` now; None when it may.

        The same rule as the claim's, plus what only a new message can get wrong: a marketing message
        naming a list that does not exist.
        """
        kind = Kind(kind)
        if list_name is not None:
            list_name = list_name.strip().lower() or None
        return self.check_list(kind, list_name) or self.decide(self.contacts.canonical(number), kind, list_name)

    def check_list(self, kind: Kind | str, list_name: str | None) -> Refusal | None:
        """The part of the rule that does not depend on the number: marketing names a list that exists."""
        if Kind(kind) is not Kind.MARKETING:
            return None
        if not list_name:
            return NO_LIST
        if self.lists.get(list_name) is None:
            return Refusal("unknown_list", f"there is no list named {list_name!r}; `smsgate lists list` shows "
                                           "the lists a marketing message can be sent to")
        return None

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

    def has_opted_in(self, number: str, list_name: str) -> bool:
        """True once `number` has ever opted in to `list_name` (what a START for that list can restore)."""
        number = self.contacts.canonical(number)
        return self.db.one("SELECT 1 FROM consent_events WHERE number = ? AND scope = ? AND event = 'opt_in'",
                           (number, list_name.strip().lower())) is not None

    def latest(self, number: str, scope: str) -> dict[str, Any] | None:
        """The newest event for `number` in exactly `scope`."""
        number = self.contacts.canonical(number)
        return self.db.one("SELECT * FROM consent_events WHERE number = ? AND scope = ? ORDER BY id DESC LIMIT 1",
                           (number, scope))

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
