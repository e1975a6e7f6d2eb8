"""Store operations for the rules engine: keyword rules, expected answers, auto-reply and cap counts, and
the figures behind `smsgate report`. The SQL the engine needs lives here, so the store stays the only
module that speaks SQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import NotFound, StoreError
from .records import Message

if TYPE_CHECKING:
    from .store import Store


class KeywordExists(StoreError):
    """A keyword (or alias) is already used by another rule."""


# States in which a message has been handed to a modem (or may have been): these count against caps.
_SENT_STATES = ("claimed", "submitting", "submitted", "delivered", "undeliverable", "unknown")


class RulesMixin:
    # -- keyword rules -------------------------------------------------------------------------------
    def add_keyword(self: Store, keyword: str, *, aliases: Sequence[str] = (), reply: str | None = None,
                    tag: str | None = None, opt_in_scope: str | None = None, route: str | None = None,
                    forward_to: str | None = None, webhook: str | None = None, hours: str | None = None,
                    menu: Mapping[str, str] | None = None, priority: int = 100, actor: str = "cli",
                    replace: bool = False) -> int:
        """Store a validated rule (see `smsgate.keywords.rules.build_rule`). Words must be unique."""
        now = self._now()
        words = {keyword, *aliases}
        with self.transaction():
            for row in self._all("SELECT id, keyword, aliases FROM keywords"):
                theirs = {row["keyword"], *json.loads(row["aliases"] or "[]")}
                clash = words & theirs
                if clash and not (replace and row["keyword"] == keyword):
                    raise KeywordExists(
                        f"{sorted(clash)[0]} is already used by keyword {row['keyword']}; remove that rule first "
                        f"(smsgate keywords remove {row['keyword']}) or pick another word"
                    )
            if replace:
                self._exec("DELETE FROM keywords WHERE keyword = ?", (keyword,))
            cur = self._exec(
                "INSERT INTO keywords (keyword, aliases, reply, tag, opt_in_scope, route, forward_to, webhook,"
                " hours, menu, priority, created_by, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (keyword, json.dumps(list(aliases), ensure_ascii=False), reply, tag, opt_in_scope, route,
                 forward_to, webhook, hours, json.dumps(dict(menu), ensure_ascii=False) if menu else None,
                 priority, actor, now, now),
            )
            rule_id = int(cur.lastrowid or 0)
            self.audit(actor, "keyword.add", "keyword", rule_id,
                       {"keyword": keyword, "aliases": list(aliases), "reply": reply, "tag": tag,
                        "opt_in": opt_in_scope, "route": route, "forward_to": forward_to, "webhook": webhook,
                        "hours": hours, "menu": dict(menu or {})})
            return rule_id

    def list_keywords(self: Store, *, enabled_only: bool = False) -> list[dict[str, Any]]:
        where = " WHERE enabled = 1" if enabled_only else ""
        return self._all(f"SELECT * FROM keywords{where} ORDER BY priority, keyword")

    def remove_keyword(self: Store, keyword: str, *, actor: str = "cli") -> None:
        with self.transaction():
            row = self._one("SELECT id FROM keywords WHERE keyword = ?", (keyword,))
            if row is None:
                raise NotFound(f"no keyword {keyword!r}; `smsgate keywords list` shows the ones there are")
            self._exec("DELETE FROM keywords WHERE id = ?", (row["id"],))
            self.audit(actor, "keyword.remove", "keyword", row["id"], {"keyword": keyword})

    def count_keyword_hit(self: Store, rule_id: int) -> None:
        self._exec("UPDATE keywords SET hits = hits + 1 WHERE id = ?", (rule_id,))

    # -- expected answers ----------------------------------------------------------------------------
    def latest_expecting(self: Store, number: str, since: str) -> Message | None:
        """The newest message to `number` sent since `since` that carries expected answers.

        Messages that were cancelled or never went out are skipped: nobody can be answering them.
        """
        row = self._one(
            "SELECT * FROM messages WHERE to_number = ? AND expect IS NOT NULL"
            " AND COALESCE(submitted_at, created_at) >= ? AND state NOT IN ('cancelled', 'failed', 'queued')"
            " ORDER BY COALESCE(submitted_at, created_at) DESC, id DESC LIMIT 1",
            (number, since),
        )
        return Message.from_row(row) if row else None

    def record_outcome(self: Store, message_id: int, outcome: str, *, inbound_id: int | None,
                       actor: str = "rules") -> None:
        """Record the answer to a message's question; a later answer replaces it (both are in the audit)."""
        with self.transaction():
            cur = self._exec("UPDATE messages SET outcome = ?, outcome_at = ?, answered_by = ? WHERE id = ?",
                             (outcome, self._now(), inbound_id, message_id))
            if cur.rowcount != 1:
                raise NotFound(f"no message #{message_id}")
            self.audit(actor, "message.outcome", "message", message_id,
                       {"outcome": outcome, "inbound_id": inbound_id})

    # -- guard rails ---------------------------------------------------------------------------------
    def auto_replies_since(self: Store, number: str, since: str) -> int:
        """Automatic replies queued to `number` since `since` (the loop guard's count)."""
        row = self._one("SELECT COUNT(*) AS n FROM messages WHERE to_number = ? AND created_by = 'rules'"
                        " AND source = 'rules' AND created_at >= ?", (number, since))
        return int(row["n"]) if row else 0

    def capped_send_times(self: Store, number: str, kinds: Iterable[str], since: str,
                          exclude_id: int | None = None) -> list[str]:
        """When messages of `kinds` went (or began going) to `number` since `since`, oldest first."""
        kinds = list(kinds)
        if not kinds:
            return []
        marks = ",".join("?" * len(kinds))
        states = ",".join("?" * len(_SENT_STATES))
        rows = self._all(
            f"SELECT COALESCE(submitted_at, updated_at) AS at FROM messages WHERE to_number = ?"
            f" AND kind IN ({marks}) AND state IN ({states}) AND source != 'forward' AND id IS NOT ?"
            f" AND COALESCE(submitted_at, updated_at) > ? ORDER BY at",
            (number, *kinds, *_SENT_STATES, exclude_id, since),
        )
        return [r["at"] for r in rows]

    def has_been_texted(self: Store, number: str) -> bool:
        """True once anything has been queued for, sent to or received from `number`."""
        row = self._one(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE to_number = ? AND state != 'cancelled')"
            " OR EXISTS (SELECT 1 FROM inbound WHERE sender = ?)"
            " OR EXISTS (SELECT 1 FROM contacts WHERE number = ? AND first_texted_at IS NOT NULL) AS t",
            (number, number, number),
        )
        return bool(row and row["t"])

    def queue_webhook(self: Store, url: str, event: str, payload: Mapping[str, Any]) -> int:
        """Add a delivery to the durable webhook outbox (delivered by the web/daemon side)."""
        now = self._now()
        cur = self._exec("INSERT INTO webhook_deliveries (url, event, payload, next_attempt_at, created_at)"
                         " VALUES (?,?,?,?,?)", (url, event, json.dumps(dict(payload), ensure_ascii=False), now, now))
        return int(cur.lastrowid or 0)

    # -- reports -------------------------------------------------------------------------------------
    def answer_outcomes(self: Store, since: str | None = None) -> list[dict[str, Any]]:
        """Per outcome, how many messages with expected answers got it ('(no answer)' for none yet)."""
        return self._all(
            "SELECT COALESCE(outcome, '(no answer)') AS outcome, COUNT(*) AS n FROM messages"
            " WHERE expect IS NOT NULL AND created_at >= COALESCE(?, '') GROUP BY 1 ORDER BY n DESC, 1",
            (since,),
        )

    def keyword_hits(self: Store, since: str | None = None) -> list[dict[str, Any]]:
        """Inbound messages per keyword and action (built-in and custom)."""
        return self._all(
            "SELECT keyword, action, COUNT(*) AS n FROM inbound WHERE keyword IS NOT NULL"
            " AND received_at >= COALESCE(?, '') GROUP BY keyword, action ORDER BY n DESC, keyword",
            (since,),
        )

    def consent_counts(self: Store, since: str | None = None) -> list[dict[str, Any]]:
        return self._all(
            "SELECT event, scope, source, COUNT(*) AS n FROM consent_events WHERE at >= COALESCE(?, '')"
            " GROUP BY event, scope, source ORDER BY event, scope, source",
            (since,),
        )

    def likely_opt_outs(self: Store, since: str | None = None) -> list[dict[str, Any]]:
        return self._all(
            "SELECT id, sender, received_at, body FROM inbound WHERE likely_opt_out = 1"
            " AND received_at >= COALESCE(?, '') ORDER BY id DESC",
            (since,),
        )

    def recent_messages_to(self: Store, number: str, limit: int = 5) -> list[Message]:
        rows = self._all("SELECT * FROM messages WHERE to_number = ? ORDER BY id DESC LIMIT ?", (number, limit))
        return [Message.from_row(r) for r in rows]

    def inbound_handled_at(self: Store, inbound_id: int) -> str | None:
        row = self._one("SELECT handled_at FROM inbound WHERE id = ?", (inbound_id,))
        if row is None:
            raise NotFound(f"no inbound message #{inbound_id}")
        return row["handled_at"]
