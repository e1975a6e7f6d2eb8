"""Phone numbers: every number smsgate stores or dials goes through here.

Numbers are kept in E.164 (`+12025550123`) so that one patient is one row whatever way staff typed the
number, and so that a STOP from `+1 (202) 555-0123` stops messages queued for `202-555-0123`.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import phonenumbers
from phonenumbers import (
    COUNTRY_CODE_TO_REGION_CODE,
    NumberParseException,
    PhoneMetadata,
    timezone,
)

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
_FORMATTING = re.compile(r"[\s().\-]")
_E164 = re.compile(r"^\+([1-9]\d{6,14})$")
# NANP lines 555-0100..0199 are reserved for fiction (films, docs, the simulator's handsets): they are
# well-formed but no carrier serves them, and phonenumbers calls them invalid. Accepting them keeps the
# demo and the tests on numbers that can never text a real person.
_FICTIONAL = re.compile(r"^\+1[2-9]\d{2}55501\d{2}$")


class InvalidNumber(ValueError):
    """A phone number that cannot be texted; the message says why and how to write it."""

    def __init__(self, number: str, reason: str) -> None:
        super().__init__(
            f"{number!r} is not a valid phone number: {reason}. "
            "Write it in international form, e.g. +12025550123 (+, country code, number)."
        )
        self.number = number
        self.reason = reason


def normalize(number: str, *, default_region: str | None = None) -> str:
    """Return `number` in E.164 form, or raise `InvalidNumber` saying what is wrong.

    `default_region` (ISO 3166 code such as "US") lets staff type national numbers; without it a number
    must start with `+`. Results are cached: a campaign names the same patients again and again, and
    parsing is the costliest step of queueing a message.
    """
    if not isinstance(number, str):
        raise InvalidNumber(repr(number), "it is not text")
    return _normalize(number, default_region)


@functools.lru_cache(maxsize=65536)
def _normalize(number: str, default_region: str | None) -> str:
    raw = number.strip()
    if not raw:
        raise InvalidNumber(number, "it is empty")
    fast = _E164.match(raw)
    if fast is not None:
        if _FICTIONAL.match(raw):
            return raw
        canonical = _canonical_e164(raw, fast.group(1))
        if canonical is not None:
            return canonical
    else:
        compact = _FORMATTING.sub("", raw)
        if _FICTIONAL.match(compact):
            return compact
        if default_region and compact.isdigit():
            national = _national_e164(compact, default_region)
            if national is not None:
                return national
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


@functools.cache
def _national_rules(region: str) -> tuple[int, str | None, re.Pattern[str]] | None:
    """(country code, national prefix, international prefix) of a region whose national numbers need no
    rewriting beyond dropping that prefix; None for the regions with carrier codes or other rules."""
    meta = PhoneMetadata.metadata_for_region(region.upper(), None)
    if meta is None or meta.country_code is None or meta.national_prefix_transform_rule is not None:
        return None
    if meta.national_prefix_for_parsing not in (None, meta.national_prefix) or not meta.international_prefix:
        return None
    return meta.country_code, meta.national_prefix, re.compile(meta.international_prefix)


def _national_e164(digits: str, region: str) -> str | None:
    """A national number (`2025550123` in US) as E.164 without the full parser, when that is unambiguous:
    the digits start with neither the national nor the international prefix, and country code plus digits
    is a valid number. A contacts import of 100,000 national numbers spends most of its time here
    otherwise. Anything else returns None and goes through phonenumbers; tests/test_numbers.py compares
    both for every region."""
    rules = _national_rules(region)
    if rules is None:
        return None
    cc, national_prefix, international = rules
    if (national_prefix and digits.startswith(national_prefix)) or international.match(digits):
        return None
    candidate = f"+{cc}{digits}"
    return _canonical_e164(candidate, candidate[1:])


def _canonical_e164(raw: str, digits: str) -> str | None:
    """`raw` itself when it is already a valid E.164 number, else None (the full parser then says why).

    A bulk import of 100,000 numbers spends most of its time in phonenumbers' parser and in its
    validity check, which recompiles its patterns on every call. This path skips the text parsing and
    runs the same checks (possible length and the country's number ranges, from phonenumbers' own
    metadata) on patterns compiled once. tests/test_numbers.py compares it with phonenumbers for every
    region.
    """
    for cc_len in (1, 2, 3):
        cc = int(digits[:cc_len])
        regions = COUNTRY_CODE_TO_REGION_CODE.get(cc)
        if regions:
            break
    else:
        return None
    nsn = digits[cc_len:]
    if not nsn.strip("0") or len(nsn) not in _possible_lengths(cc):
        return None
    return raw if _in_valid_range(cc, regions, nsn) else None


@functools.cache
def _possible_lengths(cc: int) -> frozenset[int]:
    """Lengths phonenumbers' `is_possible_number` accepts for the country code (local-only ones excluded)."""
    meta = PhoneMetadata.metadata_for_region_or_calling_code(cc, phonenumbers.region_code_for_country_code(cc))
    if meta is None or meta.general_desc is None:
        return frozenset()
    return frozenset(meta.general_desc.possible_length or ())


def _in_valid_range(cc: int, regions: tuple[str, ...], nsn: str) -> bool:
    """phonenumbers' `is_valid_number` for a national significant number, on precompiled patterns."""
    if len(regions) == 1:
        return _has_type(cc, regions[0], nsn)
    for region in regions:  # several regions share the code (+1): find the one the number belongs to
        leading = _leading_digits(region)
        if leading is not None:
            if leading.match(nsn):
                return _has_type(cc, region, nsn)
        elif _has_type(cc, region, nsn):
            return True
    return False


_Desc = tuple[frozenset[int], "re.Pattern[str]"]


@functools.cache
def _leading_digits(region: str) -> re.Pattern[str] | None:
    meta = PhoneMetadata.metadata_for_region(region.upper(), None)
    return re.compile(meta.leading_digits) if meta is not None and meta.leading_digits is not None else None


@functools.cache
def _descs(cc: int, region: str) -> tuple[_Desc | None, tuple[_Desc, ...]]:
    meta = PhoneMetadata.metadata_for_region_or_calling_code(cc, region.upper())
    if meta is None:
        return None, ()

    def compile_desc(desc: Any) -> _Desc | None:
        if desc is None or not desc.national_number_pattern:
            return None
        return frozenset(desc.possible_length or ()), re.compile(desc.national_number_pattern)

    # Any one type makes a number valid, so the order only decides speed: patients' numbers are almost
    # always fixed-line or mobile, tried first.
    kinds = [meta.fixed_line]
    if not meta.same_mobile_and_fixed_line_pattern:
        kinds.append(meta.mobile)
    kinds += [meta.premium_rate, meta.toll_free, meta.shared_cost, meta.voip, meta.personal_number, meta.pager,
              meta.uan, meta.voicemail]
    compiled = tuple(d for d in (compile_desc(k) for k in kinds) if d is not None)
    return compile_desc(meta.general_desc), compiled


def _has_type(cc: int, region: str, nsn: str) -> bool:
    # Written as plain loops: this runs once per number of a 100,000-row campaign.
    general, kinds = _descs(cc, region)
    if general is None:
        return False
    n = len(nsn)
    lengths, pattern = general
    if (lengths and n not in lengths) or pattern.fullmatch(nsn) is None:
        return False
    for lengths, pattern in kinds:
        if (not lengths or n in lengths) and pattern.fullmatch(nsn) is not None:
            return True
    return False


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
    # A person's number: anything normalize() accepts (it is what we would text back). A long digit
    # string it rejects is not a number we can answer either.
    try:
        normalize(s if s.startswith("+") else "+" + s)
    except InvalidNumber:
        return True
    return False
