"""Answers to our own questions: "Reply YES to confirm, NO to cancel, 1 to reschedule", and ratings.

`expect` maps an answer word to an outcome ({"YES": "confirmed", "1": "rating:1"}), `follow_up` maps an
answer word (or an outcome) to the text sent back. Answers are matched as tolerantly as keywords:
"yes!", "Yes please", "y", "yep" all mean YES; "5 stars", "5/5" and "five" mean 5.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from .normalize import canonical

__all__ = ["match_answer", "parse_expect", "rating_of"]

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "YES": ("Y", "YES", "YEA", "YEAH", "YEP", "YUP", "YA", "YS", "YESS", "YESSS", "SURE", "CONFIRM", "CONFIRMED",
            "OK", "OKAY", "SI", "OUI", "JA", "SIM", "CORRECT", "ABSOLUTELY", "OF COURSE", "WILL DO",
            "I WILL BE THERE", "ILL BE THERE", "SEE YOU THEN"),
    "NO": ("N", "NO", "NOPE", "NAH", "NON", "NEIN", "NAO", "CANT", "CAN NOT", "CANNOT", "CANT MAKE IT"),
}
_NUMBER_WORDS = {"ONE": "1", "TWO": "2", "THREE": "3", "FOUR": "4", "FIVE": "5", "SIX": "6", "SEVEN": "7",
                 "EIGHT": "8", "NINE": "9", "TEN": "10"}
_NUMERIC = re.compile(r"^(?:NUMBER |NO |OPTION |#)?(\d{1,2})(?: (?:STARS?|OUT OF \d+|\d+|POINTS?))?$")


def parse_expect(value: str | None) -> dict[str, str] | None:
    """`YES=confirmed,NO=cancelled,1=reschedule` or `1-5` -> the stored `expect` mapping."""
    if not value or not value.strip():
        return None
    if value.strip().lower() in ("1-5", "rating"):
        return {str(i): f"rating:{i}" for i in range(1, 6)}
    out: dict[str, str] = {}
    for item in value.split(","):
        if "=" not in item:
            raise ValueError(f"{item!r}: write answers as WORD=outcome, e.g. YES=confirmed,NO=cancelled")
        word, outcome = (x.strip() for x in item.split("=", 1))
        if not canonical(word) or not outcome:
            raise ValueError(f"{item!r}: both the answer word and the outcome are needed")
        out[canonical(word)] = outcome
    return out


def _key_of(text: str) -> str:
    c = canonical(text)
    c = " ".join(_NUMBER_WORDS.get(w, w) for w in c.split())
    m = _NUMERIC.match(c)
    if m:
        return str(int(m.group(1)))
    for key, words in _SYNONYMS.items():
        if c in words:
            return key
    return c


def match_answer(text: str, expect: Mapping[str, str]) -> str | None:
    """The answer word of `expect` that `text` gives, or None when it is not one of the answers."""
    by_canonical = {canonical(k): k for k in expect}
    c = canonical(text)
    if c in by_canonical:
        return by_canonical[c]
    key = _key_of(text)
    if key in by_canonical:
        return by_canonical[key]
    # An answer word may be a synonym group's member: "--expect Y=confirmed" still takes "yes".
    for group, words in _SYNONYMS.items():
        if key == group:
            for k in by_canonical:
                if k in words:
                    return by_canonical[k]
    return None


def rating_of(outcome: str | None) -> int | None:
    """The number in a `rating:N` outcome."""
    if outcome and outcome.startswith("rating:"):
        tail = outcome.split(":", 1)[1]
        return int(tail) if tail.isdigit() else None
    return None
