"""Outbound guard rails, applied when a message is handed to a modem (`Store.outbox.claim(..., gate=...)`).

The store has already refused anything the consent ledger forbids; the gate adds what depends on the
recipient and the clock: quiet hours in the recipient's zone for kinds that can wait, and frequency caps
for campaigns (and, when configured, for reminders), each counting only the kinds it holds. Replies and
compliance confirmations are never held: someone who just texted us is awake, and a STOP confirmation
must go out within minutes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from smsgate.clinic_time import ClinicClock
from smsgate.config import Config
from smsgate.numbers import timezones_for
from smsgate.queue import Defer, Gate, Kind, Message, Refuse, Store
from smsgate.queue.clock import parse_ts, ts

from .hours import HoursError, QuietHours, zone

__all__ = ["CAPPED_KINDS", "CAP_GROUPS", "Guard", "make_gate", "recipient_zones"]

log = logging.getLogger(__name__)

# Each frequency cap and the kinds it holds and counts: `hours.per_day`/`per_week` are for campaigns (bulk and
# marketing), `hours.transactional_per_day`/`_per_week` (off by default) for reminders and API sends. A
# second reminder the same day (a changed time, "bring your card") is not a campaign and does not wait a
# day behind the first. Replies, STOP/START/HELP confirmations and forwards to staff are never capped.
CAP_GROUPS: dict[str, tuple[str, ...]] = {
    "campaign": (Kind.BULK.value, Kind.MARKETING.value),
    "transactional": (Kind.TRANSACTIONAL.value,),
}
CAPPED_KINDS = tuple(kind for kinds in CAP_GROUPS.values() for kind in kinds)
EXEMPT_SOURCES = frozenset({"forward"})  # a rule forwarding a patient's text to staff


def recipient_zones(store: Store, number: str, fallback: str) -> list[ZoneInfo]:
    """The zones to respect for `number`: the contact's, else the prefix's candidates, else `fallback`."""
    contact = store.contacts.get(number)
    if contact and contact.get("timezone"):
        try:
            return [zone(contact["timezone"])]
        except HoursError:
            log.warning("contact %s has an unknown time zone %r; using the number's region", number,
                        contact["timezone"])
    zones: list[ZoneInfo] = []
    for name in timezones_for(number):
        try:
            zones.append(zone(name))
        except HoursError:
            log.debug("phonenumbers zone %s unknown to zoneinfo", name)
    return zones or [zone(fallback)]


class Guard:
    """The gate: callable as `Gate`, with its decisions explained for `consent show`."""

    def __init__(self, config: Config) -> None:
        hours = config.hours
        self.quiet = QuietHours(hours.quiet_start, hours.quiet_end)
        bad = sorted(set(hours.quiet_kinds) - {k.value for k in Kind})
        if bad:
            raise HoursError(f"hours.quiet_kinds: {bad[0]!r} is not a kind; use bulk, marketing, transactional")
        self.quiet_kinds = frozenset(hours.quiet_kinds) - {Kind.REPLY.value, Kind.COMPLIANCE.value}
        self.limits = {"campaign": (hours.per_day, hours.per_week),
                       "transactional": (hours.transactional_per_day, hours.transactional_per_week)}
        self.clinic_tz = config.clinic.timezone or "UTC"
        zone(self.clinic_tz)
        self.clock = ClinicClock.named(self.clinic_tz)  # the reasons staff read say "until" in clinic time

    def __call__(self, store: Store, msg: Message, now: datetime) -> Defer | Refuse | None:
        if msg.kind in (Kind.COMPLIANCE, Kind.REPLY) or msg.source in EXEMPT_SOURCES:
            return None
        later = self.cap_until(store, msg.to_number, now, exclude_id=msg.id, kind=msg.kind)
        if later is not None:
            until, reason = later
            return Defer(self._after_quiet(store, msg, until), reason)
        if msg.kind.value in self.quiet_kinds:
            zones = recipient_zones(store, msg.to_number, self.clinic_tz)
            if not self.quiet.allowed(now, zones):
                until = self._next_allowed(now, zones)
                names = ", ".join(sorted({str(z) for z in zones}))
                return Defer(until, f"quiet hours for the recipient ({names}); waits until "
                                    f"{self.clock.show(until)}")
        return None

    def _next_allowed(self, now: datetime, zones: Sequence[ZoneInfo]) -> datetime:
        until = self.quiet.next_allowed(now, zones)
        if until is None:
            # The zones share no daytime at all (a number that could be anywhere): use the clinic's day.
            until = self.quiet.next_allowed(now, [zone(self.clinic_tz)]) or now + timedelta(hours=1)
        return until

    def _after_quiet(self, store: Store, msg: Message, when: datetime) -> datetime:
        if msg.kind.value not in self.quiet_kinds:
            return when
        return self._next_allowed(when, recipient_zones(store, msg.to_number, self.clinic_tz))

    def cap_until(self, store: Store, number: str, now: datetime, exclude_id: int | None = None, *,
                  kind: Kind | str = Kind.BULK) -> tuple[datetime, str] | None:
        """When the next message of `kind` to `number` may go under its frequency cap, or None if it may go
        now (or no cap holds that kind). A cap of 0 is no cap."""
        group = next((g for g, kinds in CAP_GROUPS.items() if Kind(kind).value in kinds), None)
        if group is None:
            return None
        per_day, per_week = self.limits[group]
        limits = [(per_day, timedelta(days=1), "a day"), (per_week, timedelta(days=7), "a week")]
        worst: tuple[datetime, str] | None = None
        for limit, span, label in limits:
            if limit <= 0:
                continue
            sent = store.outbox.capped_send_times(number, CAP_GROUPS[group], ts(now - span), exclude_id=exclude_id)
            if len(sent) >= limit:
                # The oldest send inside the window that must age out before one more fits.
                until = parse_ts(sent[len(sent) - limit]) + span
                if worst is None or until > worst[0]:
                    worst = (until, f"frequency cap: at most {limit} {group} message(s) {label} to {number}; "
                                    f"waits until {self.clock.show(until)}")
        return worst


def make_gate(config: Config) -> Gate:
    """The gate to pass to `Store.outbox.claim(..., gate=...)`; raises `HoursError` on unreadable settings."""
    return Guard(config)
