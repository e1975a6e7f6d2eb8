"""Turning stored states and codes into words a front-desk person understands."""

from __future__ import annotations

from datetime import datetime

from smsgate.queue.clock import parse_ts

STATE_WORDS = {
    "queued": "waiting to be sent",
    "claimed": "being picked up by a modem",
    "submitting": "being sent",
    "submitted": "sent, waiting for the delivery report",
    "delivered": "delivered to the phone",
    "undeliverable": "the network could not deliver it",
    "failed": "not sent",
    "unknown": "may or may not have been sent: a person must decide",
    "cancelled": "cancelled",
}

CLASS_WORDS = {
    "permanent": "The network refused this message and will keep refusing it",
    "transient": "A temporary problem; it was retried",
    "modem": "The modem had a problem (not the message)",
    "ambiguous": "The modem stopped answering while sending, so it may have gone out",
    "policy": "Blocked by a rule (consent, quiet hours or a cap)",
}


def failure_in_words(state: str, last_error: str | None, error_class: str | None) -> str:
    """One sentence for a failed, undeliverable, cancelled or unknown message."""
    if state == "undeliverable":
        base = "The phone network accepted it but could not deliver it (number out of service or phone off too long)"
    elif state == "unknown":
        base = CLASS_WORDS["ambiguous"]
    elif state == "cancelled":
        base = "Cancelled"
    else:
        base = CLASS_WORDS.get(error_class or "", "Not sent")
    if last_error:
        return f"{base}: {last_error}"
    return base + "."


def age(value: str | None, now: datetime) -> str:
    """'3 min ago' style text for a stored timestamp."""
    if not value:
        return "never"
    try:
        seconds = (now - parse_ts(value)).total_seconds()
    except ValueError:
        return value
    return duration(seconds) + " ago"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(max(seconds, 0))
    if s < 90:
        return f"{s} s"
    if s < 90 * 60:
        return f"{s // 60} min"
    if s < 48 * 3600:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} days"
