"""Read-only figures for the staff pages, `smsgate report`, the CLI and status: the SQL behind what people
look at, each figure computed here once so the page and the report cannot disagree.

Kept in the store package with every other statement, so another backend only has to provide this
module's functions too. Every function takes the `Db` (a `Store` is one) and writes nothing. Each query
is a range scan on an indexed time column or a small table, so the status page stays fast with hundreds
of thousands of messages in the database.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .clock import parse_ts, ts
from .db import Db
from .filters import where


@dataclass
class Activity:
    sent_hour: int = 0
    sent_day: int = 0
    failed_hour: int = 0
    failed_day: int = 0
    received_hour: int = 0
    received_day: int = 0
    queue_depth: int = 0


def modem_activity(db: Db, now: datetime) -> dict[int, Activity]:
    """Per modem: messages sent, failed and received in the last hour and day, and its queue depth."""
    hour, day = ts(now - timedelta(hours=1)), ts(now - timedelta(days=1))
    out: dict[int, Activity] = {}

    def get(modem_id: int | None) -> Activity:
        return out.setdefault(modem_id or 0, Activity())

    for r in db.query(
        "SELECT modem_id, SUM(submitted_at >= ?) AS h, COUNT(*) AS d FROM messages"
        " WHERE submitted_at >= ? GROUP BY modem_id",
        (hour, day),
    ):
        a = get(r["modem_id"])
        a.sent_hour, a.sent_day = r["h"] or 0, r["d"]
    for r in db.query(
        "SELECT modem_id, SUM(finished_at >= ?) AS h, COUNT(*) AS d FROM messages"
        " WHERE finished_at >= ? AND +state IN ('failed', 'undeliverable') GROUP BY modem_id",
        (hour, day),
    ):
        a = get(r["modem_id"])
        a.failed_hour, a.failed_day = r["h"] or 0, r["d"]
    for r in db.query(
        "SELECT modem_id, SUM(received_at >= ?) AS h, COUNT(*) AS d FROM inbound"
        " WHERE received_at >= ? GROUP BY modem_id",
        (hour, day),
    ):
        a = get(r["modem_id"])
        a.received_hour, a.received_day = r["h"] or 0, r["d"]
    for r in db.query(
        "SELECT COALESCE(modem_id, required_modem_id, preferred_modem_id) AS m, COUNT(*) AS n"
        " FROM messages WHERE state IN ('queued', 'claimed', 'submitting') GROUP BY m"
    ):
        get(r["m"]).queue_depth = r["n"]
    return out


ACTIVE_STATES = ("queued", "claimed", "submitting", "submitted", "unknown")


def active_queue_counts(db: Db) -> dict[str, dict[int, int]]:
    """Messages still in the pipeline by state and priority (index range scans, unlike all-state counts)."""
    out: dict[str, dict[int, int]] = {}
    for r in db.query(
        "SELECT state, priority, COUNT(*) AS n FROM messages WHERE state IN (?,?,?,?,?) GROUP BY state, priority",
        ACTIVE_STATES,
    ):
        out.setdefault(r["state"], {})[r["priority"]] = r["n"]
    return out


def teams(db: Db) -> list[str]:
    """The teams there are: those keyword rules route conversations to (`--route`, the answers of a
    `--menu`) and those conversations already carry. Staff pick from these, so a typo cannot start a team
    nobody's inbox filter shows."""
    names = {r["team"] for r in db.query(
        "SELECT DISTINCT team FROM conversations WHERE team IS NOT NULL AND team != ''")}
    for r in db.query("SELECT route, menu FROM keywords WHERE route IS NOT NULL OR menu IS NOT NULL"):
        if r["route"]:
            names.add(r["route"])
        names.update(team for team in json.loads(r["menu"] or "{}").values() if team)
    return sorted(names)


def last_inbound_id(db: Db, conversation_id: int) -> int | None:
    rows = db.query("SELECT MAX(id) AS i FROM inbound WHERE conversation_id = ?", (conversation_id,))
    return rows[0]["i"] if rows else None


def likely_opt_out_messages(db: Db, conversation_id: int) -> list[dict[str, Any]]:
    return db.query(
        "SELECT id, body, received_at FROM inbound WHERE conversation_id = ? AND likely_opt_out = 1"
        " ORDER BY id DESC LIMIT 5",
        (conversation_id,),
    )


def outbox_page(
    db: Db, *, state: str | None, number: str | None, kind: str | None, limit: int, offset: int
) -> list[dict[str, Any]]:
    clause, params = where(("m.state = ?", state), ("m.to_number = ?", number), ("m.kind = ?", kind))
    sql = (
        "SELECT m.id, m.to_number, m.body, m.kind, m.priority, m.state, m.parts_total, m.encoding, m.attempts,"
        " m.created_at, m.finished_at, m.last_error, m.error_class, m.outcome, m.created_by, m.modem_id,"
        " k.name, k.first_name, k.last_name FROM messages m LEFT JOIN contacts k ON k.number = m.to_number"
        + clause
        + " ORDER BY m.id DESC LIMIT ? OFFSET ?"
    )
    return db.query(sql, (*params, limit, offset))


def outbox_listing(db: Db, *, states: tuple[str, ...] = (), since: str | None = None,
                   limit: int | None = 30) -> list[dict[str, Any]]:
    """Outbound messages newest first, each with its modem's name and every part (state, TP-MR, modem):
    what an admin reads to find what a crash left behind. `since` keeps messages created or changed since
    then; `limit=None` lists them all. Timestamps are as stored."""
    conditions: list[str] = []
    params: list[str | int] = []
    if states:
        conditions.append(f"m.state IN ({','.join('?' * len(states))})")
        params.extend(states)
    if since is not None:
        conditions.append("m.updated_at >= ?")
        params.append(since)
    if limit is not None:
        params.append(limit)
    sql = ("SELECT m.*, mo.name AS modem FROM messages m LEFT JOIN modems mo ON mo.id = m.modem_id"
           + (" WHERE " + " AND ".join(conditions) if conditions else "")
           + " ORDER BY m.id DESC" + (" LIMIT ?" if limit is not None else ""))
    rows = db.query(sql, params)
    parts: dict[int, list[dict[str, Any]]] = {}
    ids = [r["id"] for r in rows]
    for start in range(0, len(ids), 500):  # within any engine's limit on bound parameters
        chunk = ids[start:start + 500]
        for p in db.query(
                "SELECT p.message_id, p.part_no, p.state, p.tp_mr, p.submitted_at, p.status_code, mo.name AS modem"
                " FROM message_parts p LEFT JOIN modems mo ON mo.id = p.modem_id"
                f" WHERE p.message_id IN ({','.join('?' * len(chunk))}) ORDER BY p.message_id, p.part_no", chunk):
            parts.setdefault(p["message_id"], []).append(p)
    for r in rows:
        have = {p["part_no"]: p for p in parts.get(r["id"], [])}
        # A campaign message still queued has no part rows yet: its parts are all pending.
        r["parts"] = [{"part": n, "state": have[n]["state"] if n in have else "pending",
                       "tp_mr": have[n]["tp_mr"] if n in have else None,
                       "modem": have[n]["modem"] if n in have else None,
                       "submitted_at": have[n]["submitted_at"] if n in have else None,
                       "status_code": have[n]["status_code"] if n in have else None}
                      for n in range(1, r["parts_total"] + 1)]
    return rows


def inbound_export(db: Db, limit: int) -> list[dict[str, Any]]:
    return db.query(
        "SELECT i.id, i.sender, i.modem_id, i.received_at, i.keyword, i.body, k.name, k.first_name, k.last_name"
        " FROM inbound i LEFT JOIN contacts k ON k.number = i.sender ORDER BY i.id DESC LIMIT ?", (limit,)
    )


def hourly(db: Db, now: datetime, hours: int = 24) -> list[dict[str, Any]]:
    """Per hour for the last `hours`: messages queued, received, delivered and failed (for the chart)."""
    start = (now - timedelta(hours=hours - 1)).replace(minute=0, second=0, microsecond=0)
    since = ts(start)
    buckets: dict[str, dict[str, Any]] = {}
    for i in range(hours):
        h = start + timedelta(hours=i)
        buckets[ts(h)[:13]] = {"hour": h, "queued": 0, "received": 0, "delivered": 0, "failed": 0}
    for r in db.query(
        "SELECT substr(created_at, 1, 13) AS h, COUNT(*) AS n FROM messages WHERE created_at >= ? GROUP BY h", (since,)
    ):
        if r["h"] in buckets:
            buckets[r["h"]]["queued"] = r["n"]
    for r in db.query(
        "SELECT substr(received_at, 1, 13) AS h, COUNT(*) AS n FROM inbound WHERE received_at >= ? GROUP BY h", (since,)
    ):
        if r["h"] in buckets:
            buckets[r["h"]]["received"] = r["n"]
    for r in db.query(
        "SELECT substr(finished_at, 1, 13) AS h, SUM(state = 'delivered') AS ok,"
        " SUM(state IN ('undeliverable', 'failed')) AS bad FROM messages WHERE finished_at >= ?"
        " GROUP BY h",
        (since,),
    ):
        if r["h"] in buckets:
            buckets[r["h"]]["delivered"] = r["ok"] or 0
            buckets[r["h"]]["failed"] = r["bad"] or 0
    return list(buckets.values())


def keyword_hits(db: Db, since: str | None = None) -> dict[tuple[str, str], int]:
    """Inbound messages per (word matched, action), built-in words and custom rules alike: the one
    count of keyword use, read by the report, `smsgate keywords list` and the reports page."""
    return {
        (r["keyword"], r["action"]): r["n"]
        for r in db.query(
            "SELECT keyword, action, COUNT(*) AS n FROM inbound WHERE keyword IS NOT NULL"
            " AND received_at >= COALESCE(?, '') GROUP BY keyword, action ORDER BY n DESC, keyword",
            (since,),
        )
    }


def keyword_rules(db: Db) -> list[dict[str, Any]]:
    """The custom keyword rules with how often each was used: the inbound messages the engine handled with
    that rule (`action = 'keyword'`, stored under the rule's keyword whichever alias matched), the same
    rows `keyword_hits` counts. An answer or a menu choice that happens to be a rule's word is not a use."""
    return db.query(
        "SELECT k.keyword, k.aliases, k.enabled, k.route, k.updated_at, COUNT(i.id) AS hits FROM keywords k"
        " LEFT JOIN inbound i ON i.action = 'keyword' AND i.keyword = k.keyword AND i.keyword IS NOT NULL"
        " GROUP BY k.id ORDER BY hits DESC, k.keyword")


def _outcomes(db: Db, since: str | None) -> dict[str, int]:
    rows = db.query(
        "SELECT COALESCE(outcome, 'no answer') AS o, COUNT(*) AS n FROM messages"
        " WHERE created_at >= COALESCE(?, '') AND expect IS NOT NULL GROUP BY o ORDER BY n DESC, o", (since,))
    return {r["o"]: r["n"] for r in rows}


def _rating(outcome: str) -> int | None:
    head, _, tail = outcome.partition(":")
    return int(tail) if head == "rating" and tail.isdigit() else None


def answer_outcomes(db: Db, since: str | None = None) -> dict[str, int]:
    """Messages that expected an answer, by the answer they got ('no answer' for none yet), most first.
    A `rating:N` answer is counted by `ratings` instead; any other outcome, `rating:great` too, is here."""
    return {o: n for o, n in _outcomes(db, since).items() if _rating(o) is None}


def ratings(db: Db, since: str | None = None) -> dict[int, int]:
    """Answers of the form `rating:N`, by N (from the same figure as `answer_outcomes`)."""
    found: dict[int, int] = {}
    for o, n in _outcomes(db, since).items():
        value = _rating(o)
        if value is not None:
            found[value] = found.get(value, 0) + n
    return dict(sorted(found.items()))


def consent_counts(db: Db, since: str | None = None) -> list[dict[str, Any]]:
    return db.query(
        "SELECT event, scope, source, COUNT(*) AS n FROM consent_events WHERE at >= COALESCE(?, '')"
        " GROUP BY event, scope, source ORDER BY event, scope, source",
        (since,),
    )


def likely_opt_outs(db: Db, since: str | None = None) -> list[dict[str, Any]]:
    return db.query(
        "SELECT i.id, i.sender, i.received_at, i.body, k.name FROM inbound i LEFT JOIN contacts k"
        " ON k.number = i.sender WHERE i.likely_opt_out = 1 AND i.received_at >= COALESCE(?, '') ORDER BY i.id DESC",
        (since,),
    )


def opt_outs_by_day(db: Db, now: datetime, days: int = 30) -> list[dict[str, Any]]:
    return db.query(
        "SELECT substr(at, 1, 10) AS day, COUNT(*) AS n FROM consent_events"
        " WHERE event = 'opt_out' AND at >= ? GROUP BY day ORDER BY day",
        (ts(now - timedelta(days=days)),),
    )


def totals(db: Db) -> dict[str, int]:
    """Lifetime counters for /metrics (from the modems table, so they are cheap)."""
    row = db.query(
        "SELECT COALESCE(SUM(sent_count), 0) AS sent, COALESCE(SUM(failed_count), 0) AS failed,"
        " COALESCE(SUM(received_count), 0) AS received FROM modems"
    )[0]
    return {k: int(v) for k, v in row.items()}


def oldest_queued_age(db: Db, now: datetime) -> float | None:
    """Seconds the oldest queued message has waited, or None when nothing waits."""
    row = db.query("SELECT MIN(created_at) AS t FROM messages WHERE state = 'queued'")[0]["t"]
    return (now - parse_ts(row)).total_seconds() if row else None


def contact_messages(db: Db, number: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """One number's messages both ways, newest first (a contact's history on its page and in `contacts show`)."""
    return db.query(
        "SELECT * FROM (SELECT 'in' AS direction, id, body, received_at AS at, NULL AS state, NULL AS kind,"
        " keyword, NULL AS outcome FROM inbound WHERE sender = :n"
        " UNION ALL SELECT 'out', id, body, created_at, state, kind, NULL, outcome FROM messages"
        " WHERE to_number = :n) ORDER BY at DESC, direction LIMIT :limit",
        {"n": number, "limit": limit},
    )


def contact_answers(db: Db, number: str, *, limit: int = 100) -> list[dict[str, Any]]:
    """The answers one number gave to messages that expected one, newest first."""
    return db.query(
        "SELECT id, body, outcome, outcome_at, answered_by FROM messages WHERE to_number = ? AND outcome IS NOT NULL"
        " ORDER BY outcome_at DESC, id DESC LIMIT ?", (number, limit))


def list_names_of(db: Db, contact_ids: list[int]) -> dict[int, set[str]]:
    """The lists each of `contact_ids` is on (an import compares them with what the file says)."""
    out: dict[int, set[str]] = {}
    for start in range(0, len(contact_ids), 500):
        chunk = contact_ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for r in db.query(f"SELECT m.contact_id, l.name FROM list_members m JOIN lists l ON l.id = m.list_id"
                          f" WHERE m.contact_id IN ({marks})", chunk):
            out.setdefault(r["contact_id"], set()).add(r["name"])
    return out
