"""Answers to our own questions: "Reply YES to confirm, NO to cancel, 1 to reschedule", and ratings.

`expect` maps an answer word to an outcome ({"YES": "confirmed", "1": "rating:1"}), `follow_up` maps an
answer word (or an outcome) to the text sent back. Answers are matched as tolerantly as keywords:
"yes!", "Yes please", "y", "yep" all mean YES; "5 stars", "5/5" and "five" mean 5.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from .normalize import canonical

__all__ = ["WordMapError", "match_answer", "parse_expect", "parse_word_map", "rating_of"]

_SYNONYMS: dict[str, tuple[str, ...]] = {
    "YES": ("Y", "YES", "YEA", "YEAH", "YEP", "YUP", "YA", "YS", "YESS", "YESSS", "SURE", "CONFIRM", "CONFIRMED",
            "OK", "OKAY", "SI", "OUI", "JA", "SIM", "CORRECT", "ABSOLUTELY", "OF COURSE", "WILL DO",
            "I WILL BE THERE", "ILL BE THERE", "SEE YOU THEN"),
    "NO": ("N", "NO", "NOPE", "NAH", "NON", "NEIN", "NAO", "CANT", "CAN NOT", "CANNOT", "CANT MAKE IT"),
}
_NUMBER_WORDS = {"ONE": "1", "TWO": "2", "THREE": "3", "FOUR": "4", "FIVE": "5", "SIX": "6", "SEVEN": "7",
                 "EIGHT": "8", "NINE": "9", "TEN": "10"}
_NUMERIC = re.compile(r"^(?:NUMBER |NO |OPTION |#)?(\d{1,2})(?: (?:STARS?|OUT OF \d+|\d+|POINTS?))?$")


class WordMapError(ValueError):
    """A `WORD=value` answer map that cannot be stored as given; the message names the item and the fix."""


def parse_word_map(
    value: str | Sequence[str] | Mapping[str, str] | None,
    *,
    what: str = "outcome",
    example: str = "YES=confirmed,NO=cancelled",
) -> dict[str, str]:
    """A map from answer word to `what` (an outcome, a reply text, a team), in its stored form.

    It reads the three ways people write one: a comma-separated string (`--expect`, `--menu`:
    "YES=confirmed, no = cancelled,1=reschedule"), a sequence of `WORD=value` items whose values may hold
    commas (repeated `--follow-up YES="See you, Ann"`), and a mapping (the API's JSON object).

    The normalisation, and why:
    - The word is stored as `canonical(word)` ("yes!" -> "YES", "Sí" -> "SI"): that is the form
      `match_answer` compares a patient's reply in, so the stored key is exactly what is matched, and an
      admin reading the map sees the word as it will be compared. Plain upper-casing (once used by the CLI
      and the API) stored "YES!" or "SÍ", which matched only through a second canonicalisation.
    - A word with no letters or digits ("!!") is refused: it canonicalises to nothing and no reply could
      ever match it.
    - Two items whose words canonicalise alike ("yes" and "YES") are refused rather than letting the
      last one win: one of them could never be reached, and the sender meant something by both.
    - The value is stripped and must not be empty: an empty outcome records nothing and an empty reply
      sends nothing, and the mistake would only show weeks later as "no answer".
    - In a string, blank items between commas are skipped (a trailing comma means nothing else); the
      first `=` splits word from value, so a value may contain `=`.
    Case and content of the value are the caller's business (a team name is lower-cased by `parse_menu`;
    a reply text keeps its case).
    """
    if value is None:
        return {}
    items: list[tuple[str, str, str]] = []  # (word, value, the item as the sender wrote it)
    if isinstance(value, Mapping):
        for word, text in value.items():
            shown = json.dumps({str(word): text}, ensure_ascii=False, default=str)
            if not isinstance(word, str) or not isinstance(text, str):
                raise WordMapError(f"{shown}: both the answer word and its {what} must be text, e.g. {example}")
            items.append((word, text, shown))
    else:
        raw = [x for x in value.split(",") if x.strip()] if isinstance(value, str) else list(value)
        for item in raw:
            if "=" not in item:
                raise WordMapError(f"{item!r}: write each answer as ANSWER={what}, e.g. {example}")
            word, text = item.split("=", 1)
            items.append((word, text, repr(item)))
    out: dict[str, str] = {}
    first: dict[str, str] = {}
    for word, text, shown in items:
        if not word.strip() or not text.strip():
            raise WordMapError(f"{shown}: both the answer word and its {what} are needed, e.g. {example}")
        key = canonical(word)
        if not key:
            raise WordMapError(f"{shown}: the answer word {word.strip()!r} has no letters or digits, so no reply "
                               "could ever match it; use a word such as YES or a number such as 1")
        if key in out:
            raise WordMapError(f"{shown}: the answer {key} is already given by {first[key]}; "
                               "give each answer once")
        out[key], first[key] = text.strip(), shown
    return out


_RATING_WORDS = ("1-5", "rating")


def parse_expect(value: str | Mapping[str, str] | None) -> dict[str, str] | None:
    """`YES=confirmed,NO=cancelled,1=reschedule` (or the API's object) -> the stored `expect` mapping;
    `1-5` or `rating` asks for a rating, recorded as `rating:N`."""
    if isinstance(value, str) and value.strip().lower() in _RATING_WORDS:
        return {str(i): f"rating:{i}" for i in range(1, 6)}
    return parse_word_map(value) or None


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
