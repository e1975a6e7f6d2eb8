"""Keyword rules as data: what an admin configured, validated before it is stored.

A rule is a row of plain values (a word, a reply text, a tag, a team, a number, a URL); nothing in it
is ever evaluated as code, so a rule can do only what these fields describe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from smsgate.numbers import InvalidNumber, normalize
from smsgate.queue.contacts import ContactError, clean_tag
from smsgate.queue.enqueue import text_problem
from smsgate.queue.lists import ListError, list_name
from smsgate.templates import TemplateError, check_template

from .answers import WordMapError, parse_word_map
from .compliance import Vocabulary
from .hours import BusinessHours, HoursError
from .normalize import canonical, squash

__all__ = ["Rule", "RuleError", "build_rule", "parse_menu"]

MAX_KEYWORD_WORDS = 4


class RuleError(ValueError):
    """A keyword rule that cannot be stored as given; the message says which field and how to fix it."""


@dataclass(frozen=True)
class Rule:
    keyword: str
    aliases: tuple[str, ...] = ()
    reply: str | None = None
    tag: str | None = None
    opt_in_scope: str | None = None
    route: str | None = None
    forward_to: str | None = None
    webhook: str | None = None
    hours: str | None = None
    menu: dict[str, str] = field(default_factory=dict)  # answer -> team, offered by `reply`
    priority: int = 100
    enabled: bool = True
    id: int | None = None

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Rule:
        return cls(
            id=row["id"], keyword=row["keyword"], aliases=tuple(json.loads(row["aliases"] or "[]")),
            reply=row["reply"], tag=row["tag"], opt_in_scope=row["opt_in_scope"], route=row["route"],
            forward_to=row["forward_to"], webhook=row["webhook"], hours=row["hours"],
            menu=json.loads(row.get("menu") or "{}"), priority=row["priority"], enabled=bool(row["enabled"]),
        )

    def words(self) -> set[str]:
        """The squashed forms this rule answers to."""
        return {squash(w) for w in (self.keyword, *self.aliases)}

    def active(self, when: datetime, clinic_tz: str) -> bool:
        """A rule with hours applies only inside them (in the clinic's zone)."""
        if not self.hours:
            return True
        specs = [s for s in self.hours.split(";") if s.strip()]
        return BusinessHours(specs, [], clinic_tz).is_open(when)

    def actions(self) -> list[str]:
        out = []
        if self.reply:
            out.append("reply")
        if self.tag:
            out.append(f"tag {self.tag}")
        if self.opt_in_scope:
            out.append(f"opt-in {self.opt_in_scope}")
        if self.route:
            out.append(f"route {self.route}")
        if self.menu:
            out.append("menu " + ",".join(f"{k}={v}" for k, v in self.menu.items()))
        if self.forward_to:
            out.append(f"forward {self.forward_to}")
        if self.webhook:
            out.append(f"webhook {self.webhook}")
        return out


def parse_menu(text: str | None) -> dict[str, str]:
    """ "1=billing,2=support" -> {"1": "billing", "2": "support"}: `parse_word_map`, with team names
    lower-cased like every other team and tag name of a rule."""
    try:
        return {answer: team.lower() for answer, team in
                parse_word_map(text, what="team", example="1=billing,2=support").items()}
    except WordMapError as exc:
        raise RuleError(f"--menu {exc}") from None


def build_rule(
    keyword: str,
    *,
    vocabulary: Vocabulary,
    aliases: Sequence[str] = (),
    reply: str | None = None,
    tag: str | None = None,
    opt_in_scope: str | None = None,
    route: str | None = None,
    forward_to: str | None = None,
    webhook: str | None = None,
    hours: str | None = None,
    menu: Mapping[str, str] | None = None,
    priority: int = 100,
    default_region: str | None = None,
) -> Rule:
    """Check every field and return the rule in its stored form (canonical words, E.164 number)."""
    words = [canonical(keyword), *(canonical(a) for a in aliases)]
    for raw, word in zip([keyword, *aliases], words, strict=True):
        if not word:
            raise RuleError(f"keyword {raw!r} has no letters or digits; a keyword is a word such as JOIN")
        if len(word.split()) > MAX_KEYWORD_WORDS:
            raise RuleError(f"keyword {raw!r} is too long; a keyword is at most {MAX_KEYWORD_WORDS} words")
        if vocabulary.is_reserved(word):
            raise RuleError(
                f"{word} is a built-in compliance word (STOP/START/HELP and their synonyms); it always opts "
                "out, opts in or answers HELP and cannot be given another meaning. Pick another keyword."
            )
    if len({squash(w) for w in words}) != len(words):
        raise RuleError("an alias repeats the keyword or another alias")
    if not any((reply, tag, opt_in_scope, route, forward_to, webhook, menu)):
        raise RuleError(
            f"keyword {words[0]} does nothing; give it at least one of --reply, --tag, --opt-in, --route, "
            "--menu, --forward or --webhook"
        )
    if reply is not None:
        if not reply.strip():
            raise RuleError("--reply is empty; write the text the patient should receive")
        try:
            check_template(reply)
        except TemplateError as exc:
            raise RuleError(f"--reply: {exc}") from None
        problem = text_problem(reply)
        if problem is not None:
            raise RuleError(f"--reply cannot be sent as an SMS: {problem}")
    if forward_to:
        try:
            forward_to = normalize(forward_to, default_region=default_region)
        except InvalidNumber as exc:
            raise RuleError(f"--forward: {exc}") from None
    if webhook:
        parts = urlsplit(webhook)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise RuleError(f"--webhook {webhook!r} is not an http(s) URL such as https://example.org/hook")
    if hours:
        try:
            BusinessHours([s for s in hours.split(";") if s.strip()], [], "UTC")
        except HoursError as exc:
            raise RuleError(f"--hours: {exc}") from None
    for name, value in (("--tag", tag), ("--opt-in", opt_in_scope), ("--route", route)):
        if value is not None and (not value.strip() or len(value) > 64):
            raise RuleError(f"{name} {value!r}: give a short name such as 'newsletter' or 'billing'")
    if opt_in_scope is not None:
        try:
            opt_in_scope = list_name(opt_in_scope)
        except ListError as exc:
            raise RuleError(f"--opt-in: {exc}") from None
    if tag is not None:
        try:
            clean_tag(tag)
        except ContactError as exc:
            raise RuleError(f"--tag {tag!r}: {exc}") from None
    if menu and not reply:
        raise RuleError("--menu needs a --reply that offers the choices, e.g. \"Reply 1 for Billing, 2 for Support\"")
    return Rule(
        keyword=words[0], aliases=tuple(words[1:]), reply=reply, tag=tag.strip().lower() if tag else None,
        opt_in_scope=opt_in_scope.strip().lower() if opt_in_scope else None,
        route=route.strip().lower() if route else None, forward_to=forward_to or None, webhook=webhook or None,
        hours=hours or None, menu=dict(menu or {}), priority=priority,
    )
