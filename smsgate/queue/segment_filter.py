"""The segment filter language: `tag:diabetes AND NOT replied:30d`, read by a tokenizer and a
recursive-descent parser, and compiled to one parameterised SQL condition over `contacts k`.

Nothing a user types becomes SQL: every value is a bound parameter, and the SQL around it comes from the
fixed table of terms below. docs/contacts.md is the reference; in short:

    filter  := or
    or      := and ("OR" and)*
    and     := unary ("AND" unary)*
    unary   := "NOT" unary | "(" or ")" | term
    term    := NAME ":" VALUE | "optedout"

Words are case-insensitive, values may be quoted ("heart failure"), and every error names the column.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import available_timezones

import phonenumbers

from .clock import ts
from .db import Db
from .errors import StoreError
from .lists import RESERVED, ListError, list_name

MAX_CHARS = 2000
MAX_TERMS = 64
MAX_DEPTH = 24
MAX_DAYS = 3650
_DURATION = re.compile(r"^(\d{1,5})([hdw])$", re.IGNORECASE)
_LANGUAGE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{1,8})*$")
_TERM_NAME = re.compile(r"^[A-Za-z]+$")


class SegmentError(StoreError):
    """A filter that cannot be read, with the (1-based) column it went wrong at."""

    def __init__(self, message: str, column: int | None = None, *, field: str = "where") -> None:
        where = f" at column {column}" if column is not None else ""
        super().__init__(f"segment filter: {message}{where}" if field == "where" else message)
        self.column = column
        self.field = field


# -- tokens ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Token:
    kind: str  # "word", "(", ")", "end"
    column: int
    parts: tuple[tuple[str, bool], ...] = ()  # a word's pieces: (text, was it quoted)

    @property
    def text(self) -> str:
        return "".join(p for p, _ in self.parts)

    @property
    def operator(self) -> str | None:
        if len(self.parts) == 1 and not self.parts[0][1] and self.parts[0][0].upper() in ("AND", "OR", "NOT"):
            return self.parts[0][0].upper()
        return None

    def shown(self) -> str:
        return {"end": "the end", "(": "'('", ")": "')'"}.get(self.kind) or repr(self.text)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()":
            tokens.append(Token(c, i + 1))
            i += 1
        else:
            start = i
            parts: list[tuple[str, bool]] = []
            bare: list[str] = []
            while i < n and not text[i].isspace() and text[i] not in "()":
                if text[i] != '"':
                    bare.append(text[i])
                    i += 1
                    continue
                if bare:
                    parts.append(("".join(bare), False))
                    bare = []
                quote, i, quoted = i, i + 1, []
                while i < n and text[i] != '"':
                    if text[i] == "\\" and i + 1 < n:
                        i += 1
                    quoted.append(text[i])
                    i += 1
                if i >= n:
                    raise SegmentError("this quote is never closed", quote + 1)
                parts.append(("".join(quoted), True))
                i += 1
            if bare:
                parts.append(("".join(bare), False))
            tokens.append(Token("word", start + 1, tuple(parts)))
    tokens.append(Token("end", n + 1))
    return tokens


# -- the tree -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Term:
    name: str
    value: str
    column: int
    key: str | None = None  # field:KEY=VALUE


@dataclass(frozen=True)
class Not:
    item: Node


@dataclass(frozen=True)
class AllOf:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Node, ...]


Node = Term | Not | AllOf | AnyOf


@dataclass(frozen=True)
class SegmentFilter:
    """A parsed filter: the text as written and its tree."""

    text: str
    tree: Node

    def terms(self) -> list[Term]:
        out: list[Term] = []

        def walk(node: Node) -> None:
            if isinstance(node, Term):
                out.append(node)
            elif isinstance(node, Not):
                walk(node.item)
            else:
                for item in node.items:
                    walk(item)

        walk(self.tree)
        return out

    def scopes(self) -> list[Term]:
        """The terms that name a list or consent purpose, which must exist when the filter is saved."""
        return [t for t in self.terms() if t.name in ("list", "consent", "optedout") and t.value]

    def to_sql(self, db: Db, now: datetime) -> tuple[str, list[Any]]:
        """One condition over `contacts k`, and its parameters; time windows end at `now`."""
        params: list[Any] = []
        return _compile(self.tree, db, now, params), params


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.at = 0
        self.terms = 0

    def peek(self) -> Token:
        return self.tokens[self.at]

    def take(self) -> Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise SegmentError("the filter is empty; write a term such as tag:diabetes")
        tree = self.any_of(0)
        token = self.peek()
        if token.kind == ")":
            raise SegmentError("this ')' closes nothing", token.column)
        if token.kind != "end":
            raise SegmentError(f"expected AND, OR or the end before {token.shown()}", token.column)
        return tree

    def any_of(self, depth: int) -> Node:
        items = [self.all_of(depth)]
        while self.peek().operator == "OR":
            self.take()
            items.append(self.all_of(depth))
        return items[0] if len(items) == 1 else AnyOf(tuple(items))

    def all_of(self, depth: int) -> Node:
        items = [self.unary(depth)]
        while self.peek().operator == "AND":
            self.take()
            items.append(self.unary(depth))
        return items[0] if len(items) == 1 else AllOf(tuple(items))

    def unary(self, depth: int) -> Node:
        if depth > MAX_DEPTH:
            raise SegmentError(f"nested more than {MAX_DEPTH} deep; write it more simply", self.peek().column)
        token = self.peek()
        if token.operator == "NOT":
            self.take()
            after = self.peek()
            if after.kind in (")", "end") or after.operator in ("AND", "OR"):
                raise SegmentError("expected a term after NOT", after.column)
            return Not(self.unary(depth + 1))
        if token.kind == "(":
            self.take()
            if self.peek().kind == ")":
                raise SegmentError("expected a term inside '()'", self.peek().column)
            inner = self.any_of(depth + 1)
            close = self.peek()
            if close.kind != ")":
                raise SegmentError(f"expected ')' to close the '(' at column {token.column}, found "
                                   f"{close.shown()}", close.column)
            self.take()
            return inner
        if token.kind == "word" and token.operator is None:
            self.take()
            self.terms += 1
            if self.terms > MAX_TERMS:
                raise SegmentError(f"more than {MAX_TERMS} terms; split it into segments", token.column)
            return _term(token)
        what = f"{token.shown()} ({token.operator} joins two terms)" if token.operator else token.shown()
        raise SegmentError(f"expected a term, found {what}", token.column)


def parse(text: str) -> SegmentFilter:
    """The filter `text` means, or a `SegmentError` naming the column where it stops making sense."""
    if not isinstance(text, str):
        raise SegmentError("the filter must be text")
    if len(text) > MAX_CHARS:
        raise SegmentError(f"the filter has {len(text)} characters; at most {MAX_CHARS} are read")
    cleaned = text.strip()
    return SegmentFilter(cleaned, _Parser(text).parse())


# -- terms ----------------------------------------------------------------------------------------------

def _term(token: Token) -> Term:
    head, head_quoted = token.parts[0]
    name, colon, rest = head.partition(":")
    if head_quoted or not colon:
        if not head_quoted and len(token.parts) == 1 and head.lower() == "optedout":
            return Term("optedout", "", token.column)
        raise SegmentError(f"{token.text!r} is not a term; terms look like tag:diabetes (known: {_known()})",
                           token.column)
    name = name.lower()
    if not _TERM_NAME.match(name) or name not in TERMS:
        raise SegmentError(f"unknown term {name + ':'!r}; known terms: {_known()}", token.column)
    pieces = ((rest, False), *token.parts[1:])
    value = "".join(p for p, _ in pieces)
    column = token.column + len(name) + 1
    if not value:
        raise SegmentError(f"{name}: needs a value, e.g. {TERMS[name][1]}", column)
    if name == "field":
        key, value, has_value = _split_field(pieces)
        if not key:
            raise SegmentError(f"field: needs a field name, e.g. {TERMS['field'][1]}", column)
        if has_value and not value:
            raise SegmentError(f"field:{key}= needs a value after '=' (or write field:{key} for any value)",
                               column)
        return Term("field", value if has_value else "", column, key=key)
    return Term(name, TERMS[name][0](value, column), column)


def _known() -> str:
    return ", ".join(f"{n}:" for n in TERMS) + " and optedout"


def _split_field(pieces: tuple[tuple[str, bool], ...]) -> tuple[str, str, bool]:
    """KEY=VALUE at the first '=' outside quotes."""
    key: list[str] = []
    value: list[str] = []
    found = False
    for text, quoted in pieces:
        if found:
            value.append(text)
        elif not quoted and "=" in text:
            before, _, after = text.partition("=")
            key.append(before)
            value.append(after)
            found = True
        else:
            key.append(text)
    return "".join(key), "".join(value), found


def _text(value: str, column: int) -> str:
    if len(value) > 200 or not value.isprintable():
        raise SegmentError("a value must be printable text of at most 200 characters", column)
    return value


def _duration(value: str, column: int) -> str:
    m = _DURATION.match(value)
    if m is None:
        raise SegmentError(f"{value!r} is not a time span; write a number and h, d or w, e.g. 30d", column)
    hours = int(m.group(1)) * {"h": 1, "d": 24, "w": 168}[m.group(2).lower()]
    if not 0 < hours <= MAX_DAYS * 24:
        raise SegmentError(f"{value!r}: a time span is from 1h to {MAX_DAYS}d", column)
    return f"{hours}h"


def _language(value: str, column: int) -> str:
    if not _LANGUAGE.match(value.lower()):
        raise SegmentError(f"{value!r} is not a language code; write one such as es or pt-BR", column)
    return value.lower()


@cache
def _zones() -> dict[str, str]:
    return {z.lower(): z for z in available_timezones()}


def _zone(value: str, column: int) -> str:
    found = _zones().get(value.lower())
    if found is None:
        raise SegmentError(f"{value!r} is not a time zone; write one such as America/Chicago", column)
    return found


def _region(value: str, column: int) -> str:
    """The calling code of a region (`US` -> `1`) or of `+CC`: numbers are compared by their prefix."""
    if value.startswith("+") and value[1:].isdigit() and len(value) <= 4:
        if phonenumbers.region_code_for_country_code(int(value[1:])) == "ZZ":
            raise SegmentError(f"{value!r} is not a country calling code", column)
        return value[1:]
    if len(value) == 2 and value.isascii() and value.isalpha():
        code = phonenumbers.country_code_for_region(value.upper())
        if code:
            return str(code)
    raise SegmentError(f"{value!r} is not a region; write a two-letter code such as US or a calling code "
                       "such as +52", column)


def _scope(value: str, column: int) -> str:
    if value.strip().lower() == "transactional":
        return "transactional"
    try:
        return list_name(value)
    except ListError as exc:
        raise SegmentError(str(exc), column) from None


def _list(value: str, column: int) -> str:
    name = _scope(value, column)
    if name in RESERVED:
        raise SegmentError(f"{value!r} is a consent purpose, not a list", column)
    return name


def _outcome(value: str, column: int) -> str:
    return _text(value, column).lower() if value.lower() == "none" else _text(value, column)


# name -> (check and normalise the value, an example)
TERMS: dict[str, tuple[Callable[[str, int], str], str]] = {
    "tag": (_text, "tag:diabetes"),
    "field": (_text, "field:mrn=12345"),
    "language": (_language, "language:es"),
    "tz": (_zone, "tz:America/Chicago"),
    "region": (_region, "region:US"),
    "list": (_list, "list:newsletter"),
    "consent": (_scope, "consent:newsletter"),
    "optedout": (_scope, "optedout:newsletter"),
    "replied": (_duration, "replied:30d"),
    "texted": (_duration, "texted:7d"),
    "asked": (_duration, "asked:7d"),
    "answered": (_outcome, "answered:confirmed"),
}


# -- SQL ------------------------------------------------------------------------------------------------

_LATEST = "(SELECT MAX(d.id) FROM consent_events d WHERE d.number = k.number AND d.scope = ?)"
_LATEST_QUESTION = ("(SELECT q.id FROM messages q WHERE q.to_number = k.number AND q.expect IS NOT NULL"
                    " AND q.submitted_at IS NOT NULL ORDER BY q.submitted_at DESC, q.id DESC LIMIT 1)")


def _compile(node: Node, db: Db, now: datetime, params: list[Any]) -> str:
    # Every term is true or false, never NULL (a contact without a language is simply not language:es),
    # so NOT selects exactly the contacts a term does not.
    if isinstance(node, Not):
        return f"NOT ({_compile(node.item, db, now, params)})"
    if isinstance(node, AllOf | AnyOf):
        joiner = " AND " if isinstance(node, AllOf) else " OR "
        return "(" + joiner.join(_compile(item, db, now, params) for item in node.items) + ")"
    return _term_sql(node, db, now, params)


def _term_sql(t: Term, db: Db, now: datetime, params: list[Any]) -> str:
    v = t.value
    if t.name == "tag":
        params.append(v)
        return db.json_array_has("k.tags")
    if t.name == "field":
        params.extend([t.key, v] if v else [t.key])
        return db.json_object_has("k.fields", with_value=bool(v))
    if t.name == "language":
        params.extend([v, v + "-%"])
        return "(COALESCE(LOWER(k.language), '') = ? OR COALESCE(LOWER(k.language), '') LIKE ?)"
    if t.name == "tz":
        params.append(v)
        return "COALESCE(LOWER(k.timezone), '') = LOWER(?)"
    if t.name == "region":
        params.append(f"+{v}%")
        return "k.number LIKE ?"
    if t.name == "list":
        params.append(v)
        return ("EXISTS (SELECT 1 FROM list_members m JOIN lists l ON l.id = m.list_id"
                " WHERE m.contact_id = k.id AND l.name = ?)")
    if t.name == "consent":
        return _consent_sql(v, params)
    if t.name == "optedout":
        scope = v or "all"
        params.append(scope)
        return ("EXISTS (SELECT 1 FROM consent_events e WHERE e.number = k.number AND e.event = 'opt_out'"
                f" AND e.id = {_LATEST})")
    if t.name in ("replied", "texted", "asked"):
        params.append(ts(now - timedelta(hours=int(v[:-1]))))
        if t.name == "replied":
            return "EXISTS (SELECT 1 FROM inbound i WHERE i.sender = k.number AND i.received_at >= ?)"
        question = " AND m.expect IS NOT NULL" if t.name == "asked" else ""
        return f"EXISTS (SELECT 1 FROM messages m WHERE m.to_number = k.number{question} AND m.submitted_at >= ?)"
    if v == "none":
        return f"EXISTS (SELECT 1 FROM messages a WHERE a.id = {_LATEST_QUESTION} AND a.outcome IS NULL)"
    params.append(v)
    return f"EXISTS (SELECT 1 FROM messages a WHERE a.id = {_LATEST_QUESTION} AND a.outcome = ?)"


def _consent_sql(scope: str, params: list[Any]) -> str:
    """`ConsentLedger.decide` for one scope, as SQL: marketing to a list (or, for `transactional`, any
    other message) may go to this contact now. tests/test_segments_property.py holds the two together."""
    # The scope's own latest event is not an opt-out...
    parts = ["NOT EXISTS (SELECT 1 FROM consent_events e WHERE e.number = k.number AND e.scope = ?"
             f" AND e.event = 'opt_out' AND e.id = {_LATEST})"]
    params.extend([scope, scope])
    # ...no global opt-out is newer than it...
    parts.append("NOT EXISTS (SELECT 1 FROM consent_events g WHERE g.number = k.number AND g.scope = 'all'"
                 " AND g.event = 'opt_out' AND g.id = (SELECT MAX(d.id) FROM consent_events d"
                 " WHERE d.number = k.number AND d.scope = 'all')"
                 f" AND g.id > COALESCE({_LATEST}, 0))")
    params.append(scope)
    if scope != "transactional":
        # ...and a list was opted in to at some time.
        parts.append("EXISTS (SELECT 1 FROM consent_events o WHERE o.number = k.number AND o.scope = ?"
                     " AND o.event = 'opt_in')")
        params.append(scope)
    return "(" + " AND ".join(parts) + ")"
