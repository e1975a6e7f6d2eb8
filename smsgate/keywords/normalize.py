"""Tolerant matching of what people type: "Stop.", "stop please", "STOP!!" and "Yes :)" all count.

A keyword is matched as the WHOLE message after this clean-up, never as a word inside a sentence, so
"unstoppable" or "I can't stop by today" are not opt-outs (the second is flagged as a likely one instead).
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "POLITE_WORDS",
    "canonical",
    "squash",
    "tokens",
]

# Words people wrap around a keyword; at most two are peeled off each end.
POLITE_WORDS = frozenset({
    "PLEASE", "PLS", "PLZ", "THANKS", "THANK", "YOU", "THANKYOU", "THX", "TY", "KINDLY", "HI", "HELLO",
    "HEY", "OK", "OKAY", "MERCI", "GRACIAS", "POR", "FAVOR", "SVP",
})
_MAX_POLITE = 2

_APOSTROPHES = frozenset("'’`´")
_NON_WORD = re.compile(r"[^\w]+", re.UNICODE)


def tokens(text: str) -> list[str]:
    """Upper-case words of `text` with accents, punctuation, emoji and extra spaces removed."""
    decomposed = unicodedata.normalize("NFKD", text or "")
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch) and ch not in _APOSTROPHES)
    cleaned = _NON_WORD.sub(" ", plain.replace("_", " ")).upper()
    return cleaned.split()


def _strip_polite(words: list[str]) -> list[str]:
    out = list(words)
    for _ in range(_MAX_POLITE):
        if len(out) > 1 and out[-1] in POLITE_WORDS:
            out.pop()
    for _ in range(_MAX_POLITE):
        if len(out) > 1 and out[0] in POLITE_WORDS:
            out.pop(0)
    return out


def canonical(text: str) -> str:
    """The message as one comparable string: "  Stop, please!! " -> "STOP"."""
    return " ".join(_strip_polite(tokens(text)))


def squash(text: str) -> str:
    """`canonical` without spaces, so "OPT OUT", "opt-out" and "optout" compare equal."""
    return canonical(text).replace(" ", "")
