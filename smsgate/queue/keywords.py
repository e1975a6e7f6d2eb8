"""Keyword rules as stored: words unique across rules, every change in the audit log."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .audit import AuditLog
from .db import Db
from .errors import NotFound, StoreError


class KeywordExists(StoreError):
    """A keyword (or alias) is already used by another rule."""



class Keywords:
    """Custom keyword rules staff define (the built-in compliance words come from the configuration)."""

    def __init__(self, db: Db, *, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    # -- keyword rules -------------------------------------------------------------------------------
    def add(self, keyword: str, *, aliases: Sequence[str] = (), reply: str | None = None,
            tag: str | None = None, opt_in_scope: str | None = None, route: str | None = None,
            forward_to: str | None = None, webhook: str | None = None, hours: str | None = None,
            menu: Mapping[str, str] | None = None, priority: int = 100, actor: str = "cli",
            replace: bool = False) -> int:
        """Store a validated rule (see `smsgate.keywords.rules.build_rule`). Words must be unique."""
        now = self.db.now()
        words = {keyword, *aliases}
        with self.db.transaction():
            for row in self.db.all("SELECT id, keyword, aliases FROM keywords"):
                theirs = {row["keyword"], *json.loads(row["aliases"] or "[]")}
                clash = words & theirs
                if clash and not (replace and row["keyword"] == keyword):
                    raise KeywordExists(
                        f"{sorted(clash)[0]} is already used by keyword {row['keyword']}; remove that rule first "
                        f"(smsgate keywords remove {row['keyword']}) or pick another word"
                    )
            if replace:
                self.db.execute("DELETE FROM keywords WHERE keyword = ?", (keyword,))
            cur = self.db.execute(
                "INSERT INTO keywords (keyword, aliases, reply, tag, opt_in_scope, route, forward_to, webhook,"
                " hours, menu, priority, created_by, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (keyword, json.dumps(list(aliases), ensure_ascii=False), reply, tag, opt_in_scope, route,
                 forward_to, webhook, hours, json.dumps(dict(menu), ensure_ascii=False) if menu else None,
                 priority, actor, now, now),
            )
            rule_id = int(cur.lastrowid or 0)
            self.audit.record(actor, "keyword.add", "keyword", rule_id,
                              {"keyword": keyword, "aliases": list(aliases), "reply": reply, "tag": tag,
                               "opt_in": opt_in_scope, "route": route, "forward_to": forward_to, "webhook": webhook,
                               "hours": hours, "menu": dict(menu or {})})
            return rule_id

    def all(self, *, enabled_only: bool = False) -> list[dict[str, Any]]:
        where = " WHERE enabled = 1" if enabled_only else ""
        return self.db.all(f"SELECT * FROM keywords{where} ORDER BY priority, keyword")

    def remove(self, keyword: str, *, actor: str = "cli") -> None:
        with self.db.transaction():
            row = self.db.one("SELECT id FROM keywords WHERE keyword = ?", (keyword,))
            if row is None:
                raise NotFound(f"no keyword {keyword!r}; `smsgate keywords list` shows the ones there are")
            self.db.execute("DELETE FROM keywords WHERE id = ?", (row["id"],))
            self.audit.record(actor, "keyword.remove", "keyword", row["id"], {"keyword": keyword})
