"""Phone numbers: every number smsgate stores or dials goes through here.

Numbers are kept in E.164 (`+15551234567`) so that one patient is one row whatever way staff typed the
number, and so that a STOP from `+1 (555) 123-4567` stops messages queued for `555-123-4567`.
"""

from __future__ import annotations

import re

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType, timezone

__all__ = [
    "InvalidNumber",
    "is_robot_sender",
    "normalize",
    "region_of",
    "timezones_for",
]

_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "the country code is missing or unknown",
    NumberParseException.NOT_A_NUMBER: "it is not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short after the international prefix",
    NumberParseException.TOO_SHORT_NSN: "it is too short",
    NumberParseException.TOO_LONG: "it is too long",
}

_SHORT_CODE = re.compile(r"^\+?\d{3,8}$")


class InvalidNumber(ValueError):
    """A phone number that cannot be texted; the message says why and how to write it."""

    def __init__(self, number: str, reason: str) -> None:
        super().__init__(
            f"{number!r} is not a valid phone number: {reason}. "
            "Write it in international form, e.g. +15551234567 (+, country code, number)."
        )
        self.number = number
        self.reason = reason


def normalize(number: str, *, default_region: str | None = None) -> str:
    """Return `number` in E.164 form, or raise `InvalidNumber` saying what is wrong.

    `default_region` (ISO 3166 code such as "US") lets staff type national numbers; without it a number
    must start with `+`.
    """
    raw = (number or "").strip()
    if not raw:
        raise InvalidNumber(number, "it is empty")
    if re.search(r"[A-Za-z]", raw):
        raise InvalidNumber(number, "it contains letters")
    try:
        parsed = phonenumbers.parse(raw, default_region)
    except NumberParseException as exc:
        raise InvalidNumber(number, _REASONS.get(exc.error_type, str(exc))) from None
    if not phonenumbers.is_possible_number(parsed):
        raise InvalidNumber(number, "it has the wrong number of digits for its country")
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidNumber(number, "no such number range exists in its country")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def region_of(number: str) -> str | None:
    """The ISO region of an E.164 number (`"US"`), or None when it cannot be told."""
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException:
        return None
    return phonenumbers.region_code_for_number(parsed)


def timezones_for(number: str) -> list[str]:
    """The IANA time zones a number may be in, from its prefix (several for a country like the US)."""
    try:
        parsed = phonenumbers.parse(number, None)
    except NumberParseException:
        return []
    zones = [z for z in timezone.time_zones_for_number(parsed) if z != "Etc/Unknown"]
    return sorted(zones)


def is_robot_sender(sender: str) -> bool:
    """True for senders that are machines (short codes, alphanumeric ids): never auto-reply to them.

    Two gateways auto-replying to each other is a known way to burn through a SIM's daily cap.
    """
    s = (sender or "").strip()
    if not s:
        return True
    if re.search(r"[A-Za-z]", s):
        return True
    if _SHORT_CODE.match(s):
        return True
    try:
        parsed = phonenumbers.parse(s if s.startswith("+") else "+" + s, None)
    except NumberParseException:
        return True
    kind = phonenumbers.number_type(parsed)
    return kind in (PhoneNumberType.UNKNOWN,) and not phonenumbers.is_valid_number(parsed)
