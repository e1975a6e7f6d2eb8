"""Filling the slot a cancellation frees from the waitlist.

`offer_freed_slots` (a daemon job, also safe to call by hand) reads new `cancelled` appointment events and
texts the first `[waitlist] offer_to` matching waitlisted patients "An earlier slot opened: Tue 10:30 with
Dr. Rivera. Reply YES to take it." Each offer is an ordinary transactional message, so the consent ledger
decides whether it may go, like for any reminder. `handle_answer` is what the rules engine calls when an
answer is recorded: the first YES fills the slot (see `Waitlist.take`) and becomes an appointment through
the one upsert (source "waitlist"); everyone after is told the slot has been taken and stays on the list.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from smsgate.config import Config
from smsgate.queue import IllegalTransition, Kind, MessageRejected, NotFound, SendPolicy, Store
from smsgate.queue.appointments import Appointment, AppointmentInput
from smsgate.queue.clock import ts
from smsgate.queue.waitlist import Offer, Slot, WaitlistEntry
from smsgate.webhook_events import queue_event

from .service import AppointmentService

__all__ = ["CURSOR", "FILLED_EVENT", "OFFER_OUTCOME", "SOURCE", "OfferRound", "handle_answer", "offer_freed_slots",
           "offer_text", "waitlist_round"]

log = logging.getLogger(__name__)

OFFER_OUTCOME = "waitlist:take"
"""The outcome an offer's YES records on the message (its `expect` is {"YES": OFFER_OUTCOME})."""
FILLED_EVENT = "appointment.waitlist_filled"
"""The webhook event the clinic's system hears when a waitlisted patient took a freed slot."""
SOURCE = "waitlist"
CURSOR = "waitlist_cursor"
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass
class OfferRound:
    """What one pass over new cancellations did."""

    slots: list[Slot] = field(default_factory=list)
    offers: list[Offer] = field(default_factory=list)
    expired: list[Slot] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def when(start: datetime, zone: str, now: datetime) -> str:
    """ "Tue 10:30" within the coming week, "Tue Dec 8 10:30" further out, in the slot's own zone."""
    local = start.astimezone(ZoneInfo(zone))
    day = _WEEKDAYS[local.weekday()]
    if local - now.astimezone(ZoneInfo(zone)) >= timedelta(days=6):
        day = f"{day} {_MONTHS[local.month - 1]} {local.day}"
    return f"{day} {local:%H:%M}"


def offer_text(config: Config, slot: Slot, now: datetime) -> str:
    with_whom = f" with {slot.provider}" if slot.provider else ""
    return (f"{config.clinic.name}: An earlier slot opened: {when(slot.start, slot.timezone, now)}{with_whom}. "
            "Reply YES to take it.")


def offer_freed_slots(store: Store, config: Config, *, now: datetime | None = None, limit: int = 200) -> OfferRound:
    """Offer each slot freed since the last pass, and expire slots nobody took in time.

    The cursor (the last appointment event read) moves in the same transaction as the offers it led to,
    so a crash never offers one slot twice, and the offers' idempotency keys make a re-run harmless too.
    A cancellation of a visit that has already started, or that has been booked again since, frees nothing.
    """
    at = now or store.clock()
    result = OfferRound()
    with store.transaction():
        saved = store.get_status(CURSOR)
        cursor = int(saved[0]) if saved is not None else 0
        events = store.appointments.events_after(cursor, limit=limit)
        for event in events:
            if event.kind == "cancelled":
                _offer_slot(store, config, event.id, store.appointments.get(event.appointment_id), at, result)
        if events:
            store.set_status(CURSOR, events[-1].id)
        for slot in store.waitlist.expire_slots(at):
            result.expired.append(slot)
            _withdraw(store, slot.id, keep=None, reason="waitlist offer expired")
    return result


def waitlist_round(store: Store, config: Config) -> None:
    """The daemon's job: `offer_freed_slots`, with what it did in the log."""
    done = offer_freed_slots(store, config)
    for note in done.notes:
        log.info("waitlist: %s", note)
    if done.slots or done.expired:
        log.info("waitlist: %d freed slot(s) offered (%d offer(s)), %d expired", len(done.slots),
                 sum(o.state == "offered" for o in done.offers), len(done.expired))


def _offer_slot(store: Store, config: Config, event_id: int, appointment: Appointment, now: datetime,
                result: OfferRound) -> None:
    if appointment.status != "cancelled" or appointment.start <= now:
        return
    expires = min(now + timedelta(hours=config.waitlist.offer_hours), appointment.start)
    slot = store.waitlist.open_slot(
        event_id=event_id, appointment_id=appointment.id, provider=appointment.provider,
        location=appointment.location, appointment_type=appointment.appointment_type, start=appointment.start,
        timezone=appointment.timezone, duration_minutes=appointment.duration_minutes, expires_at=expires)
    result.slots.append(slot)
    sent = 0
    text = offer_text(config, slot, now)
    # Candidates whose offer consent refuses do not count against `offer_to`: the next in line gets one.
    while sent < config.waitlist.offer_to:
        candidates = store.waitlist.matching(slot, exclude_contact=appointment.contact_id,
                                             limit=config.waitlist.offer_to - sent)
        if not candidates:
            break
        for entry in candidates:
            offer = _send_offer(store, config, slot, entry, text, expires)
            result.offers.append(offer)
            if offer.state == "offered":
                sent += 1
            else:
                result.notes.append(f"waitlist entry #{entry.id} ({entry.number}): no offer: {offer.reason}")


def _send_offer(store: Store, config: Config, slot: Slot, entry: WaitlistEntry, text: str,
                expires: datetime) -> Offer:
    try:
        with store.transaction():
            res = store.outbox.enqueue(
                entry.number, text, kind=Kind.TRANSACTIONAL, idempotency_key=f"waitlist-offer:{slot.id}:{entry.id}",
                created_by=SOURCE, source=SOURCE, expect={"YES": OFFER_OUTCOME},
                policy=SendPolicy.from_config(config, Kind.TRANSACTIONAL))
            return store.waitlist.record_offer(slot.id, entry.id, message_id=res.id)
    except MessageRejected as exc:
        return store.waitlist.record_offer(slot.id, entry.id, message_id=None, state="refused", reason=str(exc))


def _withdraw(store: Store, slot_id: int, *, keep: int | None, reason: str) -> None:
    """Stop the slot's offers still waiting in the outbox: nobody should be offered a slot that is gone."""
    for offer in store.waitlist.offers(slot_id):
        if offer.id == keep or offer.message_id is None:
            continue
        try:
            store.outbox.cancel(offer.message_id, SOURCE, reason=reason)
        except (IllegalTransition, NotFound):
            pass  # already sent (the patient's YES will be told it is taken) or gone


def handle_answer(store: Store, config: Config, message_id: int, outcome: str, now: datetime) -> bool:
    """The answer the rules engine recorded on `message_id`, if that message was a waitlist offer; True
    when it was (the caller then sends nothing more), False for every other message."""
    offer = store.waitlist.offer_for_message(message_id)
    if offer is None:
        return False
    with store.transaction():
        entry = store.waitlist.get(offer.entry_id)
        if outcome != OFFER_OUTCOME:
            return True  # an opt-out recorded on the offer: the ledger already stops the rest
        state = store.waitlist.take(offer.id, now)
        slot = store.waitlist.slot(offer.slot_id)
        if state != "won":
            reply = ("That slot has been taken, you stay on the waitlist." if entry.state == "waiting"
                     else "That slot has been taken.")
            if state == "expired" and entry.state == "waiting":
                reply = "That offer has expired, you stay on the waitlist."
            _reply(store, config, entry, offer, reply)
            return True
        appointment, moved_from = _book(store, config, slot, entry, now)
        store.waitlist.filled_with(slot.id, appointment.id)
        _withdraw(store, slot.id, keep=offer.id, reason="waitlist slot taken by another patient")
        with_whom = f" with {slot.provider}" if slot.provider else ""
        _reply(store, config, entry, offer,
               f"You have the slot: {when(slot.start, slot.timezone, now)}{with_whom}. See you then!")
        cancelled = store.appointments.get(slot.cancelled_appointment_id)
        queue_event(store, (h.url for h in config.webhooks if h.url and FILLED_EVENT in h.events), FILLED_EVENT, {
            "appointment": appointment.external_id, "appointment_id": appointment.id, "number": entry.number,
            "name": entry.name, "moved_from": moved_from, "waitlist_entry": entry.id,
            "slot": {"cancelled_appointment": cancelled.external_id, "provider": slot.provider,
                     "location": slot.location, "start": ts(slot.start), "timezone": slot.timezone,
                     "duration_minutes": slot.duration_minutes, "type": slot.appointment_type}})
        return True


def _book(store: Store, config: Config, slot: Slot, entry: WaitlistEntry,
          now: datetime) -> tuple[Appointment, str | None]:
    """The winner's appointment in the slot: their own appointment moved there when the entry names one
    that is still coming up, else a new one keyed `waitlist-<slot id>`. Confirmed: they just said YES."""
    existing: Appointment | None = None
    if entry.appointment_id is not None:
        existing = store.appointments.get(entry.appointment_id)
        if existing.status not in ("booked", "confirmed", "rescheduled"):
            existing = None
    item = AppointmentInput(
        external_id=existing.external_id if existing else f"waitlist-{slot.id}", number=entry.number,
        start=slot.start, timezone=slot.timezone, status="confirmed", duration_minutes=slot.duration_minutes,
        provider=slot.provider, location=slot.location, appointment_type=slot.appointment_type,
        notes=existing.notes if existing else f"from the waitlist (entry #{entry.id})")
    done = AppointmentService(config).upsert(store, item, source=SOURCE, now=now)
    booked = done.result.appointment
    assert booked is not None  # a new external id or our own confirmed move is never refused as older
    return booked, ts(existing.start) if existing else None


def _reply(store: Store, config: Config, entry: WaitlistEntry, offer: Offer, text: str) -> None:
    try:
        store.outbox.enqueue(entry.number, text, kind=Kind.REPLY, idempotency_key=f"waitlist-answer:{offer.id}",
                             created_by=SOURCE, source=SOURCE, policy=SendPolicy.from_config(config, Kind.REPLY))
    except MessageRejected as exc:
        log.warning("waitlist: answer to offer #%s not queued: %s", offer.id, exc)
