"""What the CLI (and the web app) show about consent, keywords and answers.

`consent_csv` is for an auditor: every ledger event, oldest first, with cells that a spreadsheet will
never run as a formula (`smsgate.spreadsheet`, the rule every export shares). `explain_consent` answers
the admin's question "can we text this number, and if not, why?". `build_report` sums up answers to
reminders, ratings, keyword hits and opt-outs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from smsgate.config import Config
from smsgate.names import label
from smsgate.numbers import InvalidNumber, normalize
from smsgate.queue import Kind, Store, views
from smsgate.spreadsheet import write_csv

from .compliance import Vocabulary
from .guard import Guard, recipient_zones

__all__ = [
    "CONSENT_COLUMNS",
    "ConsentExplanation",
    "Report",
    "build_report",
    "consent_csv",
    "explain_consent",
]

CONSENT_COLUMNS = ("number", "event", "scope", "time", "source", "evidence", "actor", "inbound_id")
_LEDGER_KEYS = ("number", "event", "scope", "at", "source", "evidence", "actor", "inbound_id")


def consent_csv(store: Store, out: TextIO, *, number: str | None = None) -> int:
    """Write the consent ledger (or one number's part of it) as CSV; returns the rows written."""
    return write_csv(out, CONSENT_COLUMNS,
                     ([row[k] for k in _LEDGER_KEYS] for row in store.consent.history(number)))


@dataclass
class ConsentExplanation:
    number: str
    can_text: dict[str, bool]  # kind -> may it be sent now
    reasons: list[str]
    history: list[dict[str, Any]] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"{self.number}:"]
        for kind, ok in self.can_text.items():
            out.append(f"  {kind:<14} {'yes' if ok else 'NO'}")
        out.extend(f"  - {r}" for r in self.reasons)
        if self.history:
            out.append("  ledger:")
            out.extend(f"    {h['at']}  {h['event']:<7} scope={h['scope']} source={h['source']}"
                       f" actor={h['actor']} evidence={h['evidence'] or ''}" for h in self.history)
        else:
            out.append("  ledger: no consent events for this number")
        return out


def explain_consent(store: Store, config: Config, number: str, *, now: datetime | None = None) -> ConsentExplanation:
    """Why `number` can or cannot be texted now, per kind of message, in sentences."""
    try:
        number = normalize(number, default_region=store.default_region)
    except InvalidNumber:
        number = number.strip()
    now = now or store.clock()
    status = store.consent.status(number)
    reasons: list[str] = []
    can = {k.value: True for k in (Kind.COMPLIANCE, Kind.REPLY, Kind.TRANSACTIONAL, Kind.BULK, Kind.MARKETING)}
    if status.opted_out:
        for k in (Kind.REPLY, Kind.TRANSACTIONAL, Kind.BULK, Kind.MARKETING):
            can[k.value] = False
        reasons.append(f"opted out on {status.last_event_at} (source {status.last_source}: "
                       f"{status.last_evidence or 'no evidence recorded'}); only STOP/START/HELP confirmations go out."
                       " A new START from the patient (or a recorded opt-in) lifts it.")
    elif status.opted_in:
        reasons.append(f"opted in on {status.last_event_at} (source {status.last_source}).")
    else:
        reasons.append("no consent event: transactional messages may go; marketing needs an opt-in.")
        can[Kind.MARKETING.value] = False
    for scope in sorted({h["scope"] for h in store.consent.history(number)} - {"all"}):
        s = store.consent.status(number, scope)
        reasons.append(f"list '{scope}': {'opted out' if s.opted_out else 'opted in'} ({s.last_event_at}).")
    guard = Guard(config)
    zones = recipient_zones(store, number, guard.clinic_tz)
    names = ", ".join(sorted(str(z) for z in zones))
    if not guard.quiet.allowed(now, zones):
        reasons.append(f"quiet hours now in {names} ({config.hours.quiet_start}-{config.hours.quiet_end} "
                       f"allowed): {', '.join(sorted(guard.quiet_kinds))} messages wait.")
        for name in guard.quiet_kinds:
            can[name] = False
    else:
        reasons.append(f"recipient time zone(s) {names}: within allowed hours now.")
    cap = guard.cap_until(store, number, now)
    if cap is not None:
        reasons.append(cap[1])
        for k in (Kind.TRANSACTIONAL, Kind.BULK, Kind.MARKETING):
            can[k.value] = False
    vocab = Vocabulary(config.compliance)
    reasons.append(f"opt-out words in force: {', '.join(vocab.opt_out)}")
    return ConsentExplanation(number, can, reasons, store.consent.history(number))


@dataclass
class Report:
    outcomes: list[dict[str, Any]]
    ratings: dict[int, int]
    keyword_hits: list[dict[str, Any]]
    consent: list[dict[str, Any]]
    likely_opt_outs: list[dict[str, Any]]

    @property
    def rating_average(self) -> float | None:
        total = sum(self.ratings.values())
        return sum(k * v for k, v in self.ratings.items()) / total if total else None

    def lines(self) -> list[str]:
        out = ["Answers to messages with expected answers:"]
        out.extend(f"  {r['outcome']:<24} {r['n']}" for r in self.outcomes)
        if len(out) == 1:
            out.append("  (none)")
        out.append("Ratings:")
        if self.ratings:
            peak = max(self.ratings.values())
            for k in range(1, 6):
                n = self.ratings.get(k, 0)
                out.append(f"  {k} {'#' * round(20 * n / peak) if peak else ''} {n}")
            out.append(f"  average {self.rating_average:.2f} over {sum(self.ratings.values())} ratings")
        else:
            out.append("  (none)")
        out.append("Keyword hits:")
        out.extend(f"  {r['keyword']:<16} {r['action']:<10} {r['n']}" for r in self.keyword_hits)
        if not self.keyword_hits:
            out.append("  (none)")
        out.append("Consent events:")
        out.extend(f"  {r['event']:<8} scope={r['scope']:<10} source={r['source']:<10} {r['n']}" for r in self.consent)
        if not self.consent:
            out.append("  (none)")
        out.append(f"Likely opt-outs flagged for staff: {len(self.likely_opt_outs)}")
        out.extend(f"  #{r['id']} {label(r.get('name'), r['sender'])} {r['received_at'][:19]}: {r['body'][:60]!r}"
                   for r in self.likely_opt_outs[:20])
        return out


def build_report(store: Store, *, since: str | None = None) -> Report:
    outcomes = [{"outcome": o, "n": n} for o, n in views.answer_outcomes(store, since).items()]
    hits = [{"keyword": k, "action": a, "n": n} for (k, a), n in views.keyword_hits(store, since).items()]
    return Report(outcomes, views.ratings(store, since), hits, views.consent_counts(store, since),
                  views.likely_opt_outs(store, since))
