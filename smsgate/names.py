"""People's names as smsgate shows and searches them: the one display rule, "Zoë Núñez (+1 202-555-0123)".

Names are typed by staff or come from a practice system's export, so they are stored as given (within
length limits) and made safe where they are shown: `label` replaces control characters and the Unicode
direction overrides (U+202E can make "Zoë" read as a different name, or flip the number beside it) with
U+FFFD. Pages escape the result as they escape every value and put it in `<bdi>`; CSV exports pass the
stored text through `smsgate.spreadsheet.csv_cell`.

`search_text` is what a contact's name is found by, without case or accents ("nunez" finds "Núñez");
`search_terms` reads a search box, where "555-0123" means the digits of a number (+12025550123).
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers

__all__ = ["display_number", "full_name", "label", "safe_text", "search_terms", "search_text"]

# C0 and C1 controls (tab and newline too: a name is one line) and the bidirectional embeddings,
# overrides, isolates and marks.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NUMBERISH = re.compile(r"^[\d\s().+/-]+$")


def safe_text(text: str) -> str:
    """`text` with every character that could change how the line around it reads replaced by U+FFFD."""
    return _UNSAFE.sub("\ufffd", text)


def full_name(first: str | None, last: str | None, fallback: str | None = None) -> str | None:
    """First and last name as one string, or `fallback` (a name stored whole) when both are empty."""
    joined = " ".join(part.strip() for part in (first, last) if part and part.strip())
    return joined or (fallback.strip() if fallback and fallback.strip() else None)


def display_number(number: str) -> str:
    """An E.164 number grouped the way its country writes it, `+1 202-555-0123`; other senders as given."""
    if not number.startswith("+"):
        return safe_text(number)
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return safe_text(number)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def label(name: str | None, number: str) -> str:
    """The one way a person is shown: `Zoë Núñez (+1 202-555-0123)`, or the number alone."""
    shown = display_number(number)
    if name and name.strip():
        return f"{safe_text(name.strip())} ({shown})"
    return shown


# The combining marks of Latin, Greek, Cyrillic and Vietnamese accents (after NFKD, "ñ" is "n" + U+0303).
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")


# Latin letters that carry their mark inside (no decomposition): "Ørsted" is found by "orsted".
_LETTERS = str.maketrans({"ø": "o", "ł": "l", "đ": "d", "ħ": "h", "ŧ": "t", "ı": "i", "æ": "ae", "œ": "oe",
                          "þ": "th"})


def _fold(text: str) -> str:
    if text.isascii():
        return text.casefold()
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text.casefold())).translate(_LETTERS)


def search_text(first: str | None, last: str | None, *, fallback: str | None = None) -> str:
    """What a contact's name is found by (stored in `contacts.search`): the name folded."""
    return _fold(full_name(first, last, fallback) or "")


def search_terms(query: str) -> tuple[str | None, list[str]]:
    """A search box's text as (digits the number must contain, words the folded name must contain): the
    digits alone for something that looks like a phone number, else each folded word."""
    q = query.strip()
    if _NUMBERISH.match(q) and any(c.isdigit() for c in q):
        return "".join(c for c in q if c.isdigit()), []
    return None, _fold(q).split()
