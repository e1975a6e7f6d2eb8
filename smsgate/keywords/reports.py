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

from smsgate.clinic_time import ClinicClock
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


def consent_csv(store: Store, out: TextIO, *, clock: ClinicClock, number: str | None = None) -> int:
    """Write the consent ledger (or one number's part of it) as CSV, times in the clinic's zone with their
    offset; returns the rows written."""
    return write_csv(out, CONSENT_COLUMNS,
                     ([clock.iso(row[k]) if k == "at" else row[k] for k in _LEDGER_KEYS]
                      for row in store.consent.history(number)))


@dataclass
class ConsentExplanation:
    number: str
    can_text: dict[str, bool]  # kind (or "marketing:<list>") -> may it be sent now
    reasons: list[str]
    history: list[dict[str, Any]] = field(default_factory=list)

    def lines(self, clock: ClinicClock) -> list[str]:
        out = [f"{self.number}:"]
        for kind, ok in self.can_text.items():
            out.append(f"  {kind:<14} {'yes' if ok else 'NO'}")
        out.extend(f"  - {r}" for r in self.reasons)
        if self.history:
            out.append("  ledger:")
            out.extend(f"    {clock.show(h['at'])}  {h['event']:<7} scope={h['scope']} source={h['source']}"
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
    show = ClinicClock.for_config(config).show
    reasons: list[str] = []
    can: dict[str, bool] = {}
    for kind in (Kind.COMPLIANCE, Kind.REPLY, Kind.TRANSACTIONAL, Kind.BULK):
        can[kind.value] = store.consent.may_send(number, kind) is None
    history = store.consent.history(number)
    contact = store.contacts.get(number)
    lists = sorted({h["scope"] for h in history} - {"all", "transactional"}
                   | set(store.lists.lists_of(contact["id"]) if contact else []))
    for name in lists:
        refusal = store.consent.may_send(number, Kind.MARKETING, name)
        can[f"marketing:{name}"] = refusal is None
        if refusal is not None:
            reasons.append(f"marketing to '{name}': {refusal.reason}")
    if not lists:
        can[Kind.MARKETING.value] = False
        reasons.append("marketing: no opt-in for any list (each list needs its own opt-in).")
    stop = store.consent.latest(number, "all")
    if stop is not None and stop["event"] == "opt_out":
        reasons.append(f"opted out of everything on {show(stop['at'])} (source {stop['source']}: "
                       f"{stop['evidence'] or 'no evidence recorded'}); only STOP/START/HELP confirmations go out."
                       " A START from the patient lifts it.")
    elif stop is not None:
        reasons.append(f"a STOP was lifted on {show(stop['at'])} (source {stop['source']}).")
    own = store.consent.latest(number, "transactional")
    if own is not None and own["event"] == "opt_out":
        reasons.append(f"left transactional messages on {show(own['at'])} (source {own['source']}).")
    for name in lists:
        last = store.consent.latest(number, name)
        if last is not None:
            reasons.append(f"list '{name}': last {last['event']} on {show(last['at'])} (source {last['source']}: "
                           f"{last['evidence'] or 'no evidence recorded'}).")
    if not history:
        reasons.append("no consent event: transactional messages may go; marketing needs an opt-in for its list.")
    guard = Guard(config)
    zones = recipient_zones(store, number, guard.clinic_tz)
    names = ", ".join(sorted(str(z) for z in zones))
    if not guard.quiet.allowed(now, zones):
        reasons.append(f"quiet hours now in {names} ({config.hours.quiet_start}-{config.hours.quiet_end} "
                       f"allowed): {', '.join(sorted(guard.quiet_kinds))} messages wait.")
        for key in can:
            if key.split(":")[0] in guard.quiet_kinds:
                can[key] = False
    else:
        reasons.append(f"recipient time zone(s) {names}: within allowed hours now.")
    for k in (Kind.TRANSACTIONAL, Kind.BULK, Kind.MARKETING):
        cap = guard.cap_until(store, number, now, kind=k)
        if cap is not None:
            if cap[1] not in reasons:
                reasons.append(cap[1])
            for key in can:
                if key.split(":")[0] == k.value:
                    can[key] = False
    vocab = Vocabulary(config.compliance)
    reasons.append(f"opt-out words in force: {', '.join(vocab.opt_out)}")
    return ConsentExplanation(number, can, reasons, history)


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

    def lines(self, clock: ClinicClock) -> list[str]:
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
        out.extend(f"  #{r['id']} {label(r.get('name'), r['sender'])} {clock.show(r['received_at'])}: "
                   f"{r['body'][:60]!r}" for r in self.likely_opt_outs[:20])
        return out


def build_report(store: Store, *, since: str | None = None) -> Report:
    outcomes = [{"outcome": o, "n": n} for o, n in views.answer_outcomes(store, since).items()]
    hits = [{"keyword": k, "action": a, "n": n} for (k, a), n in views.keyword_hits(store, since).items()]
    return Report(outcomes, views.ratings(store, since), hits, views.consent_counts(store, since),
                  views.likely_opt_outs(store, since))
