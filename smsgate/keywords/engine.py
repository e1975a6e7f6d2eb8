"""The rules engine: what happens to each inbound message.

The daemon calls `RulesEngine.process(store, inbound)` inside the transaction that stored the message,
so an opt-out, its confirmation, an answer's outcome and the routing commit together with the message or
not at all. Order of decisions, first match wins:

1. compliance words (STOP / START / HELP and configured synonyms), always, highest priority;
2. an answer to our latest question to this number (expected answers, ratings) or to a menu we offered;
3. custom keywords (data rows, never code), in priority order, each only inside its hours;
4. everything else lands in the conversation's inbox (the shared one unless routed), never dropped,
   with the after-hours reply when the clinic is closed.

Every automatic reply goes out from the SIM the person wrote to, under an idempotency key derived from
the inbound message, so processing the same message twice never queues two replies.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from smsgate.config import Config, ConfigError
from smsgate.numbers import is_robot_sender
from smsgate.queue import Inbound, Kind, MessageRejected, SendPolicy, Store
from smsgate.queue.clock import parse_ts, ts
from smsgate.queue.contacts import ContactError
from smsgate.queue.lists import ListError
from smsgate.queue.waitlist import WaitlistError
from smsgate.templates import TemplateError, check_template, render
from smsgate.webhook_events import KEYWORD_EVENT, inbound_data, queue_event

from .answers import match_answer
from .compliance import TRANSACTIONAL, ComplianceMatch, Intent, Vocabulary
from .hours import BusinessHours, HoursError
from .normalize import canonical, squash
from .rules import Rule

__all__ = ["AnswerHook", "Outcome", "PlannedReply", "RulesEngine"]

AnswerHook = Callable[[Store, int, str, datetime], bool]
"""Called with (store, message id, outcome, now) once an answer is recorded, in the same transaction;
True when it handled the answer itself (a waitlist offer), so the engine sends no follow-up of its own.
The composition root supplies it, keeping this package free of the appointments layer."""

WAITLIST_WORD = "WAITLIST"

log = logging.getLogger(__name__)

FORWARD_BODY_CHARS = 300
EVIDENCE_CHARS = 300


@dataclass(frozen=True)
class PlannedReply:
    """A message the engine queued (or, in a dry run, would queue)."""

    purpose: str  # opt-out-confirmation, opt-in-confirmation, help, keyword, follow-up, after-hours, forward
    to: str
    kind: str
    text: str
    message_id: int


@dataclass
class Outcome:
    """What the engine decided for one inbound message, in words an admin can read."""

    inbound_id: int
    action: str = "inbox"  # opt_out, opt_in, help, answer, menu, keyword, inbox, robot, already_handled
    keyword: str | None = None
    consent_event: str | None = None
    consent_scope: str | None = None
    answered_message_id: int | None = None
    answer: str | None = None
    answer_outcome: str | None = None
    team: str | None = None
    likely_opt_out: bool = False
    replies: list[PlannedReply] = field(default_factory=list)
    webhooks: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> list[str]:
        lines = [f"action: {self.action}" + (f" (keyword {self.keyword})" if self.keyword else "")]
        if self.consent_event:
            lines.append(f"consent: {self.consent_event} for scope {self.consent_scope}")
        if self.answered_message_id is not None:
            lines.append(f"answer {self.answer} to message #{self.answered_message_id}: outcome "
                         f"{self.answer_outcome}")
        if self.team is not None:
            lines.append(f"conversation routed to team {self.team}")
        if self.likely_opt_out:
            lines.append("flagged for staff: looks like an opt-out")
        for r in self.replies:
            lines.append(f"queue {r.purpose} ({r.kind}) to {r.to}: {r.text}")
        lines.extend(self.notes)
        return lines


class _DryRun(Exception):
    def __init__(self, outcome: Outcome) -> None:
        super().__init__("dry run rolled back")
        self.outcome = outcome


class RulesEngine:
    """Built once from the configuration; rules themselves are read from the store on every message, so
    `smsgate keywords add` takes effect without restarting the daemon."""

    def __init__(self, config: Config, *, on_answer: AnswerHook | None = None) -> None:
        self.config = config
        self.on_answer = on_answer
        comp = config.compliance
        try:
            self.vocabulary = Vocabulary(comp)
            self.business = BusinessHours(config.hours.business_hours, config.hours.holidays,
                                          config.clinic.timezone or "UTC")
            for name in ("stop_reply", "start_reply", "help_reply"):
                check_template(getattr(comp, name))
            if config.hours.after_hours_reply:
                check_template(config.hours.after_hours_reply)
        except (ValueError, HoursError, TemplateError) as exc:
            raise ConfigError(f"{config.path or 'configuration'}: {exc}") from None
        self.clinic_tz = config.clinic.timezone or "UTC"

    # -- entry points --------------------------------------------------------------------------------
    def process(self, store: Store, inbound: Inbound) -> Outcome:
        """Decide and act on one stored inbound message; joins the caller's transaction if one is open."""
        with store.transaction():
            if store.inbox.handled_at(inbound.id) is not None:
                return Outcome(inbound.id, action="already_handled",
                               notes=["this message was handled before; nothing done again"])
            return self._process(store, inbound)

    def dry_run(self, store: Store, sender: str, text: str, *, modem_id: int | None = None) -> Outcome:
        """What `process` would do with `text` from `sender`, with every write rolled back."""
        try:
            with store.transaction():
                inbound, _ = store.inbox.store(modem_id=modem_id, sender=sender, body=text,
                                               dedupe_key=f"dry-run:{uuid.uuid4()}")
                raise _DryRun(self.process(store, inbound))
        except _DryRun as done:
            return done.outcome

    # -- the decision --------------------------------------------------------------------------------
    def _process(self, store: Store, inbound: Inbound) -> Outcome:
        now = store.clock()
        out = Outcome(inbound.id)
        text = inbound.body or ""
        robot = is_robot_sender(inbound.sender)
        if robot:
            out.notes.append(f"{inbound.sender} is a short code or alphanumeric sender: no automatic replies")
        match = self.vocabulary.classify(text, store.lists.stop_scopes()) if not inbound.decode_error else None
        if match is not None:
            self._compliance(store, inbound, match, now, robot, out)
        elif not (self._answer_or_menu(store, inbound, now, robot, out)
                  or self._waitlist(store, inbound, now, robot, out)
                  or self._keyword(store, inbound, now, robot, out)):
            self._inbox(store, inbound, now, robot, out)
        if match is None and out.action not in ("answer",) and self.vocabulary.likely_opt_out(text):
            out.likely_opt_out = True
            out.notes.append("reads like an opt-out but is not a keyword: flagged for staff to decide")
            if inbound.conversation_id is not None:
                store.conversations.update(inbound.conversation_id, actor="rules", likely_opt_out=1)
        store.inbox.mark_handled(inbound.id, keyword=out.keyword, action=out.action,
                                 in_reply_to=out.answered_message_id, likely_opt_out=out.likely_opt_out)
        return out

    # -- compliance ----------------------------------------------------------------------------------
    def _compliance(self, store: Store, inbound: Inbound, match: ComplianceMatch, now: datetime, robot: bool,
                    out: Outcome) -> None:
        out.keyword = match.word
        comp = self.config.compliance
        if match.intent is Intent.HELP:
            out.action = "help"
            self._reply(store, inbound, render(comp.help_reply, self._values(store, inbound, match.word)),
                        kind=Kind.COMPLIANCE, purpose="help", now=now, robot=robot, out=out)
            return
        scope = match.scope
        event = "opt_out" if match.intent is Intent.OPT_OUT else "restore"
        before = store.consent.latest(inbound.sender, scope)
        was_off = before is not None and before["event"] == "opt_out"
        changed = before is None or (was_off if event == "restore" else not was_off)
        label = match.scope_word.lower() if scope == TRANSACTIONAL and match.scope_word else scope
        word = match.scope_word or scope.upper()
        values = self._values(store, inbound, match.word)
        out.action, out.consent_scope = match.intent.value, scope
        if (event == "restore" and not was_off and store.lists.get(scope) is not None
                and not store.consent.has_opted_in(inbound.sender, scope)):
            # START restores what a STOP revoked; it never signs anyone up for a list (a JOIN keyword does).
            out.notes.append(f"{inbound.sender} never opted in to {scope!r}: nothing to restore, nothing recorded")
            text = (f"{self.config.clinic.name}: you have not signed up for {label} messages, so there is "
                    "nothing to restart. Reply STOP to opt out.")
            self._reply(store, inbound, text, kind=Kind.COMPLIANCE, purpose="opt-in-confirmation", now=now,
                        robot=robot, out=out)
            return
        store.consent.record(inbound.sender, event, source="sms", actor="rules", scope=scope,
                             evidence=f"inbound #{inbound.id}: {text_excerpt(inbound.body)}", inbound_id=inbound.id)
        out.consent_event = event
        if match.intent is Intent.OPT_OUT:
            self._close_question(store, inbound, now, out)
            if scope == "all":
                text = render(comp.stop_reply, values)
            else:
                text = (f"{self.config.clinic.name}: you will get no more {label} messages from this "
                        f"number. Reply START {word} to get them again.")
            purpose = "opt-out-confirmation"
        else:
            text = (render(comp.start_reply, values) if scope == "all" else
                    f"{self.config.clinic.name}: you will get {label} messages again. Reply STOP to opt out.")
            purpose = "opt-in-confirmation"
        # The first confirmation of a change is owed by law and skips the loop guard; repeats do not.
        self._reply(store, inbound, text, kind=Kind.COMPLIANCE, purpose=purpose, now=now, robot=robot, out=out,
                    owed=changed)

    def _close_question(self, store: Store, inbound: Inbound, now: datetime, out: Outcome) -> None:
        """An opt-out in answer to a reminder is its answer too: staff see "opted_out" on the reminder."""
        msg = store.outbox.latest_expecting(inbound.sender, ts(now - self._answer_window()))
        if msg is not None and msg.outcome is None:
            store.outbox.record_outcome(msg.id, "opted_out", inbound_id=inbound.id)
            out.answered_message_id, out.answer_outcome = msg.id, "opted_out"

    # -- answers and menus ---------------------------------------------------------------------------
    def _answer_window(self) -> timedelta:
        return timedelta(hours=self.config.compliance.answer_window_hours)

    def _answer_or_menu(self, store: Store, inbound: Inbound, now: datetime, robot: bool, out: Outcome) -> bool:
        since = ts(now - self._answer_window())
        candidates: list[tuple[str, str, Any]] = []
        msg = store.outbox.latest_expecting(inbound.sender, since)
        if msg is not None and msg.expect:
            candidates.append((msg.created_at, "answer", msg))
        menu = self._open_menu(store, inbound, since)
        if menu is not None:
            candidates.append((menu["at"], "menu", menu))
        # The most recent question is the one being answered.
        for _, what, item in sorted(candidates, key=lambda c: c[0], reverse=True):
            if what == "answer" and self._answer(store, inbound, item, now, robot, out):
                return True
            if what == "menu" and self._menu_choice(store, inbound, item, out):
                return True
        return False

    def _answer(self, store: Store, inbound: Inbound, msg: Any, now: datetime, robot: bool, out: Outcome) -> bool:
        expect = {k: v for k, v in msg.expect.items() if not self.vocabulary.is_reserved(k)}
        word = match_answer(inbound.body or "", expect)
        if word is None:
            return False
        outcome = expect[word]
        store.outbox.record_outcome(msg.id, outcome, inbound_id=inbound.id)
        out.action, out.keyword = "answer", word
        out.answered_message_id, out.answer, out.answer_outcome = msg.id, word, outcome
        if self.on_answer is not None and self.on_answer(store, msg.id, outcome, now):
            return True
        follow = msg.follow_up or {}
        by_word = {canonical(k): v for k, v in follow.items()}
        # Keyed by the answer word, or by the outcome it records (stored canonical like a word, by
        # parse_word_map, or as given by a caller of the store).
        text = by_word.get(canonical(word)) or follow.get(outcome) or by_word.get(canonical(outcome))
        if text:
            try:
                body = render(text, self._values(store, inbound, word))
            except TemplateError as exc:
                out.notes.append(f"follow-up for {word} not sent: {exc}")
                store.alerts.raise_alert(
                    "rules", f"message #{msg.id}: follow-up for {word} has a bad placeholder: {exc}", level="warning"
                )
                return True
            self._reply(store, inbound, body, kind=Kind.REPLY, purpose="follow-up", now=now, robot=robot, out=out)
        return True

    def _open_menu(self, store: Store, inbound: Inbound, since: str) -> dict[str, Any] | None:
        if inbound.conversation_id is None:
            return None
        raw = store.conversations.get(inbound.conversation_id).get("menu")
        if not raw:
            return None
        menu: dict[str, Any] = json.loads(raw)
        return menu if menu.get("at", "") >= since else None

    def _menu_choice(self, store: Store, inbound: Inbound, menu: dict[str, Any], out: Outcome) -> bool:
        options: dict[str, str] = menu.get("options", {})
        word = match_answer(inbound.body or "", options)
        if word is None:
            return False
        team = options[word]
        out.action, out.keyword, out.team = "menu", word, team
        out.notes.append(f"menu answer {word} from keyword {menu.get('keyword')}")
        if inbound.conversation_id is not None:
            store.conversations.update(inbound.conversation_id, actor="rules", team=team, menu=None)
        return True

    # -- the waitlist --------------------------------------------------------------------------------
    def _waitlist(self, store: Store, inbound: Inbound, now: datetime, robot: bool, out: Outcome) -> bool:
        """WAITLIST (built in, before custom keywords): put the sender on the waitlist for an earlier slot;
        any words after it are kept as a note for staff ("WAITLIST mornings only")."""
        words = canonical(inbound.body or "").split(" ", 1)
        if robot or words[0] != WAITLIST_WORD:
            return False
        out.action, out.keyword = "keyword", WAITLIST_WORD
        rest = (inbound.body or "").strip().split(None, 1)
        note = rest[1].strip() or None if len(rest) > 1 else None
        clinic = self.config.clinic.name
        try:
            entry = store.waitlist.add(inbound.sender, source="sms", actor="rules", notes=note)
            out.notes.append(f"on the waitlist (entry #{entry.id})")
            text = f"{clinic}: you are on the waitlist. We will text you when an earlier slot opens."
        except WaitlistError as exc:
            out.notes.append(f"not added to the waitlist: {exc}")
            text = f"{clinic}: you are already on the waitlist. We will text you when an earlier slot opens."
        self._reply(store, inbound, text, kind=Kind.REPLY, purpose="keyword", now=now, robot=robot, out=out)
        return True

    # -- custom keywords -----------------------------------------------------------------------------
    def _keyword(self, store: Store, inbound: Inbound, now: datetime, robot: bool, out: Outcome) -> bool:
        word = squash(inbound.body or "")
        if not word:
            return False
        for row in store.keywords.all(enabled_only=True):
            rule = Rule.from_row(row)
            if word not in rule.words():
                continue
            if not rule.active(now, self.clinic_tz):
                out.notes.append(f"keyword {rule.keyword} matched but is only active {rule.hours}")
                continue
            self._apply_rule(store, inbound, rule, now, robot, out)
            return True
        return False

    def _apply_rule(self, store: Store, inbound: Inbound, rule: Rule, now: datetime, robot: bool, out: Outcome) -> None:
        out.action, out.keyword = "keyword", rule.keyword
        if rule.opt_in_scope:
            store.consent.record(
                inbound.sender,
                "opt_in",
                source="sms-keyword",
                actor="rules",
                scope=rule.opt_in_scope,
                evidence=f"keyword {rule.keyword}, inbound #{inbound.id}: {text_excerpt(inbound.body)}",
                inbound_id=inbound.id,
            )
            out.consent_event, out.consent_scope = "opt_in", rule.opt_in_scope
            self._join_list(store, inbound, rule.opt_in_scope, out)
        if rule.tag:
            try:
                store.contacts.add_tag(inbound.sender, rule.tag)
                out.notes.append(f"contact tagged {rule.tag}")
            except ContactError as exc:
                # A rule stored before tags were checked: the text is still handled, the tag is not added.
                log.warning("rules: keyword %s: contact %s not tagged: %s", rule.keyword, inbound.sender, exc)
                out.notes.append(f"contact not tagged {rule.tag!r}: {exc}")
        if inbound.conversation_id is not None:
            fields: dict[str, Any] = {}
            if rule.route:
                fields["team"] = out.team = rule.route
            if rule.menu:
                fields["menu"] = json.dumps({"keyword": rule.keyword, "at": ts(now), "options": rule.menu})
            if fields:
                store.conversations.update(inbound.conversation_id, actor="rules", **fields)
        if rule.reply:
            self._reply(
                store,
                inbound,
                render(rule.reply, self._values(store, inbound, rule.keyword)),
                kind=Kind.REPLY,
                purpose="keyword",
                now=now,
                robot=robot,
                out=out,
                scope=rule.opt_in_scope,
            )
        if rule.forward_to:
            body = (inbound.body or "")[:FORWARD_BODY_CHARS]
            self._queue(
                store,
                inbound,
                rule.forward_to,
                f"{rule.keyword} from {inbound.sender}: {body}",
                kind=Kind.TRANSACTIONAL,
                purpose="forward",
                out=out,
                source="forward",
                same_sim=False,
            )
        if rule.webhook:
            modem = store.modems.get(inbound.modem_id)["name"] if inbound.modem_id is not None else None
            data = {"keyword": rule.keyword, **inbound_data(
                inbound_id=inbound.id, sender=inbound.sender, text=inbound.body, received_at=inbound.received_at,
                sent_at=inbound.sent_at, modem=modem, conversation_id=inbound.conversation_id,
                undecodable=bool(inbound.decode_error))}
            out.webhooks.extend(queue_event(store, [rule.webhook], KEYWORD_EVENT, data))

    def _join_list(self, store: Store, inbound: Inbound, scope: str, out: Outcome) -> None:
        """Whoever opts in to a list by keyword is on it, so a campaign to the list reaches them."""
        try:
            store.lists.ensure(scope, actor="rules")
        except ListError as exc:
            out.notes.append(f"opt-in recorded, but {scope!r} cannot be a list: {exc}")
            return
        contact_id = inbound.contact_id or store.contacts.ensure(store.contacts.canonical(inbound.sender))
        if store.lists.add_members(scope, [contact_id], actor="rules", source="keyword"):
            out.notes.append(f"added to list {scope}")

    # -- the inbox and after-hours -------------------------------------------------------------------
    def _inbox(self, store: Store, inbound: Inbound, now: datetime, robot: bool, out: Outcome) -> None:
        out.action = "inbox"
        conv = store.conversations.get(inbound.conversation_id) if inbound.conversation_id is not None else None
        team = conv["team"] if conv else None
        out.notes.append(f"in the {'shared inbox' if not team else team + ' inbox'} for staff")
        reply = self.config.hours.after_hours_reply
        if not reply or conv is None or self.business.is_open(now):
            return
        last = conv.get("after_hours_replied_at")
        window = timedelta(hours=self.config.hours.after_hours_window_hours)
        if last and parse_ts(last) > now - window:
            out.notes.append("after-hours reply already sent in this conversation recently")
            return
        if self._reply(
            store,
            inbound,
            render(reply, self._values(store, inbound, None)),
            kind=Kind.REPLY,
            purpose="after-hours",
            now=now,
            robot=robot,
            out=out,
        ):
            store.conversations.update(conv["id"], actor="rules", after_hours_replied_at=ts(now))

    # -- queuing replies -----------------------------------------------------------------------------
    def _reply(
        self,
        store: Store,
        inbound: Inbound,
        text: str,
        *,
        kind: Kind,
        purpose: str,
        now: datetime,
        robot: bool,
        out: Outcome,
        owed: bool = False,
        scope: str | None = None,
    ) -> bool:
        if robot:
            return False
        refusal = store.consent.may_send(inbound.sender, kind, scope)
        if refusal is not None:
            out.notes.append(f"no {purpose} reply: {refusal.reason}")
            return False
        comp = self.config.compliance
        since = ts(now - timedelta(minutes=comp.auto_reply_window_minutes))
        if not owed and store.outbox.auto_replies_since(inbound.sender, since) >= comp.auto_reply_limit:
            out.notes.append(
                f"no {purpose} reply: loop guard ({comp.auto_reply_limit} automatic replies per "
                f"{comp.auto_reply_window_minutes:g} minutes to {inbound.sender} already sent)"
            )
            return False
        return self._queue(
            store,
            inbound,
            inbound.sender,
            text,
            kind=kind,
            purpose=purpose,
            out=out,
            source="rules",
            same_sim=True,
            scope=scope,
        )

    def _queue(
        self,
        store: Store,
        inbound: Inbound,
        to: str,
        text: str,
        *,
        kind: Kind,
        purpose: str,
        out: Outcome,
        source: str,
        same_sim: bool,
        scope: str | None = None,
    ) -> bool:
        try:
            res = store.outbox.enqueue(
                to,
                text,
                kind=kind,
                idempotency_key=f"auto:{inbound.id}:{purpose}",
                created_by="rules",
                source=source,
                in_reply_to=inbound.id,
                required_modem_id=inbound.modem_id if same_sim else None,
                scope=scope,
                policy=SendPolicy.from_config(self.config, kind, footer=False),
            )
        except MessageRejected as exc:
            log.warning("rules: %s for inbound #%s not queued: %s", purpose, inbound.id, exc)
            out.notes.append(f"{purpose} not queued: {exc}")
            store.alerts.raise_alert(
                "rules", f"{purpose} reply to inbound #{inbound.id} refused: {exc}", level="warning"
            )
            return False
        out.replies.append(PlannedReply(purpose, to, kind.value, text, res.id))
        return True

    def _values(self, store: Store, inbound: Inbound, keyword: str | None) -> dict[str, str | None]:
        contact = store.contacts.get(inbound.sender) or {}
        return {
            "first_name": contact.get("first_name"),
            "name": contact.get("name"),
            "number": inbound.sender,
            "clinic": self.config.clinic.name,
            "contact": self.config.clinic.contact,
            "keyword": keyword,
        }


def text_excerpt(body: str | None) -> str:
    text = (body or "").replace("\r", " ").replace("\n", " ")
    return text if len(text) <= EVIDENCE_CHARS else text[: EVIDENCE_CHARS - 1] + "…"
