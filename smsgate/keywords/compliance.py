"""The built-in compliance vocabulary: opt-out, opt-in and help words, and likely opt-out phrases.

The defaults are the US FCC list (revocation "as a matter of law": stop, quit, end, revoke, opt out,
cancel, unsubscribe) plus CTIA practice (STOPALL, START/UNSTOP, HELP/INFO). Admins add words per
language in `[compliance]`; they are never able to remove the defaults, because an opt-out that stops
working is the one mistake that costs a clinic per message.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass

from smsgate.config import ComplianceConfig

from .normalize import canonical, squash, tokens

__all__ = [
    "DEFAULT_HELP",
    "DEFAULT_OPT_IN",
    "DEFAULT_OPT_OUT",
    "LANGUAGE_PACKS",
    "ComplianceMatch",
    "Intent",
    "Vocabulary",
]

DEFAULT_OPT_OUT = ("STOP", "STOPALL", "STOP ALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPT OUT",
                   "OPTOUT")
DEFAULT_OPT_IN = ("START", "UNSTOP")
DEFAULT_HELP = ("HELP", "INFO")

# Enabled with `languages = ["es", "fr"]`; words a clinic's patients are likely to send.
LANGUAGE_PACKS: dict[str, dict[str, tuple[str, ...]]] = {
    "es": {
        "opt_out": ("ALTO", "BAJA", "PARAR", "DETENER", "CANCELAR", "NO MAS", "NO MANDAR"),
        "opt_in": ("INICIO", "ALTA"),
        "help": ("AYUDA",),
    },
    "fr": {
        "opt_out": ("ARRET", "ARRETER", "DESABONNER", "DESINSCRIRE"),
        "opt_in": ("DEMARRER",),
        "help": ("AIDE",),
    },
    "de": {
        "opt_out": ("ABMELDEN", "STOPP", "BEENDEN"),
        "opt_in": ("ANMELDEN",),
        "help": ("HILFE",),
    },
    "pt": {
        "opt_out": ("PARE", "PARAR", "SAIR", "CANCELAR"),
        "opt_in": ("INICIAR",),
        "help": ("AJUDA",),
    },
}

# Wording that a reasonable person would read as "stop texting me" but that is not a keyword: flagged
# for staff (who decide), never acted on automatically.
DEFAULT_LIKELY_OPT_OUT = (
    r"\b(DONT|DO NOT|PLEASE DONT|NEVER) (TEXT|MESSAGE|SMS|CONTACT|WRITE|SEND)",
    r"\bSTOP (TEXTING|MESSAGING|SENDING|CONTACTING|WRITING|IT|THIS|THESE|NOW)\b",
    r"\bNO MORE (TEXTS?|MESSAGES?|SMS)\b",
    r"\b(REMOVE|TAKE) ME\b",
    r"\bUNSUBSCRIBE ME\b",
    r"\bOPT ME OUT\b",
    r"\bLEAVE ME ALONE\b",
    r"\bWRONG NUMBER\b",
    r"\bNOT INTERESTED\b",
    r"\bNO MAS\b",
    r"^(STOP|STOPALL|UNSUBSCRIBE|QUIT|REVOKE|OPTOUT|OPT OUT)\b",
    r"\b(STOP|UNSUBSCRIBE|OPTOUT)$",
)


class Intent(enum.StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"
    HELP = "help"


TRANSACTIONAL = "transactional"


@dataclass(frozen=True)
class ComplianceMatch:
    intent: Intent
    word: str  # the vocabulary entry that matched, e.g. "STOP"
    scope: str  # "all", "transactional", or a list such as "newsletter"
    scope_word: str | None = None  # what the patient wrote after the keyword, e.g. "NEWS"


class Vocabulary:
    """The words in force for one configuration, matched tolerantly (see `normalize`)."""

    def __init__(self, config: ComplianceConfig) -> None:
        unknown = sorted(set(config.languages) - set(LANGUAGE_PACKS))
        if unknown:
            raise ValueError(
                f"compliance.languages: no built-in words for {unknown[0]!r}; known: "
                f"{', '.join(sorted(LANGUAGE_PACKS))} (add your own with opt_out_words / opt_in_words / help_words)"
            )
        self.opt_out = self._words(DEFAULT_OPT_OUT, config.opt_out_words, config.languages, "opt_out")
        self.opt_in = self._words(DEFAULT_OPT_IN, config.opt_in_words, config.languages, "opt_in")
        self.help = self._words(DEFAULT_HELP, config.help_words, config.languages, "help")
        self.scopes = {squash(s): s.strip().lower() for s in config.list_scopes if s.strip()}
        self.transactional_words = {squash(w) for w in config.transactional_words if squash(w)}
        self._likely = [re.compile(p) for p in DEFAULT_LIKELY_OPT_OUT]
        # Admins add plain phrases, never patterns: configuration text is matched, not interpreted.
        self._likely += [re.compile(r"\b" + re.escape(" ".join(tokens(p))) + r"\b")
                         for p in config.likely_opt_out_phrases if tokens(p)]
        self._by_squash: dict[str, tuple[Intent, str]] = {}
        # Order matters only for a word in two lists; opt-out wins, because honouring a STOP is the safe side.
        for intent, words in ((Intent.HELP, self.help), (Intent.OPT_IN, self.opt_in),
                              (Intent.OPT_OUT, self.opt_out)):
            for w in words:
                self._by_squash[w.replace(" ", "")] = (intent, w)

    @staticmethod
    def _words(defaults: tuple[str, ...], extra: list[str], languages: list[str], key: str) -> tuple[str, ...]:
        out: list[str] = []
        for w in (*defaults, *(w for lang in languages for w in LANGUAGE_PACKS[lang][key]), *extra):
            c = canonical(w)
            if c and c not in out:
                out.append(c)
        return tuple(out)

    def is_reserved(self, word: str) -> bool:
        return squash(word) in self._by_squash

    def list_keyword_conflict(self, keyword: str) -> str | None:
        """Why `keyword` cannot name a list after STOP/START here, or None when it can."""
        word = squash(keyword)
        if word in self._by_squash or word == "ALL":
            return (f"{keyword!r} is a compliance word (STOP/START/HELP, STOP ALL); patients could not send "
                    "it after STOP to leave one list. Pick another keyword.")
        if word in self.transactional_words:
            return (f"{keyword!r} is one of compliance.transactional_words: STOP {word} already stops "
                    "transactional messages. Pick another keyword.")
        return None

    def classify(self, text: str, list_keywords: Mapping[str, str] | None = None) -> ComplianceMatch | None:
        """The compliance intent of a whole message, or None. "STOP NEWS" is an opt-out of the list whose
        keyword is NEWS (`list_keywords`: keyword -> list name, from the store), "STOP REMINDERS" one of the
        transactional purpose when REMINDERS is one of `transactional_words`."""
        whole = squash(text)
        hit = self._by_squash.get(whole)
        if hit is not None:
            return ComplianceMatch(hit[0], hit[1], "all")
        scopes = {**self.scopes, **{squash(k): v for k, v in (list_keywords or {}).items()},
                  **dict.fromkeys(self.transactional_words, TRANSACTIONAL)}
        words = canonical(text).split()
        for split in range(1, len(words)):
            head, tail = "".join(words[:split]), "".join(words[split:])
            if head in self._by_squash and tail in scopes:
                intent, word = self._by_squash[head]
                if intent is not Intent.HELP:
                    return ComplianceMatch(intent, word, scopes[tail], " ".join(words[split:]))
        return None

    def likely_opt_out(self, text: str) -> bool:
        """True when a message reads like "stop texting me" without being an exact keyword."""
        flat = " ".join(tokens(text.replace("'", "").replace("’", "")))
        return any(p.search(flat) for p in self._likely)
