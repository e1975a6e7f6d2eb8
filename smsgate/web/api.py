"""The JSON API (`/api/v1/...`, described in `openapi.json`) and `/metrics` for Prometheus.

Input is checked strictly before anything is stored: an unknown field is an error (a typo such as
`not_befor` must not silently send now), and every error is JSON with a message a developer can act on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

from flask import Blueprint, Response, g, jsonify, request, url_for

from smsgate.at_commands.pdu import preview
from smsgate.keywords.answers import WordMapError, parse_expect, parse_word_map
from smsgate.queue import (
    ConsentRefused,
    IdempotencyConflict,
    MessageRejected,
    NotFound,
    OptedOut,
    SendPolicy,
    State,
    views,
)
from smsgate.queue.enqueue import text_problem

from .auth import actor, api_auth
from .context import ApiError, bad_request, get_store, page_args, smsgate_config
from .snapshot import status_snapshot

bp = Blueprint("api", __name__)

MESSAGE_FIELDS = {"to", "text", "kind", "priority", "not_before", "expect", "follow_up", "idempotency_key", "list"}
API_KINDS = ("transactional", "bulk", "marketing")
PRIORITY_KINDS = {"transactional": "transactional", "normal": "transactional", "bulk": "bulk", "low": "bulk",
                  1: "transactional", 2: "bulk"}
MAX_KEY_LENGTH = 200
MAX_TEXT_CHARS = 5000


_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_body() -> Any:
    """The request body as JSON, or a 400 that says why not.

    Parsed here rather than by `request.get_json`, which answers every failure with one vague message
    and lets a body of 100,000 `[` escape as a RecursionError (a 500). JSON's `\\ud800` escape can spell a
    lone surrogate, which is no character at all and cannot be stored; it is refused here, naming the
    field it came in.
    """
    try:
        text = request.get_data(cache=True).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "bad_json", f"The body is not UTF-8 (byte {exc.start + 1} is not valid); JSON "
                                        "must be sent as UTF-8.") from None
    try:
        body = json.loads(text)
    except RecursionError:
        raise ApiError(400, "bad_json", "The JSON is nested too deeply to read; a message is one object "
                                        "of plain fields.") from None
    except ValueError as exc:
        where = (f" ({exc.msg} at line {exc.lineno}, column {exc.colno})"
                 if isinstance(exc, json.JSONDecodeError) else "")
        raise ApiError(400, "bad_json", f"The body is not valid JSON{where}.") from None
    if isinstance(body, dict):
        for name, value in body.items():
            if _holds_surrogate(name) or _holds_surrogate(value):
                raise bad_request(f"{name!r} holds a lone UTF-16 surrogate (an escape such as \\ud800 with no pair), "
                           "which is not valid Unicode; send the text as valid UTF-8", name)
    elif _holds_surrogate(body):
        raise bad_request("the body holds a lone UTF-16 surrogate, which is not valid Unicode")
    return body


def _holds_surrogate(value: Any) -> bool:
    """Any string in `value`, walked without recursion (the parser allows more nesting than Python's stack)."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            todo.extend(item.keys())
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return False


def _parse_message(body: Any, header_key: str | None) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object such as {\"to\": \"+12025550123\", \"text\": \"...\"}")
    unknown = sorted(set(body) - MESSAGE_FIELDS)
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r}; known fields: {', '.join(sorted(MESSAGE_FIELDS))}",
                   unknown[0])
    for name in ("to", "text"):
        if name not in body:
            raise bad_request(f"{name!r} is required", name)
        if not isinstance(body[name], str):
            raise bad_request(f"{name!r} must be a string", name)
    if len(body["text"]) > MAX_TEXT_CHARS:
        raise bad_request(f"'text' has {len(body['text'])} characters; the limit is {MAX_TEXT_CHARS}", "text")
    problem = text_problem(body["text"])
    if problem is not None:
        raise bad_request(f"'text' cannot be sent: {problem}", "text")
    kind = body.get("kind")
    if kind is not None and kind not in API_KINDS:
        raise bad_request(f"'kind' must be one of {', '.join(API_KINDS)}", "kind")
    priority = body.get("priority")
    if priority is not None:
        if isinstance(priority, bool) or not isinstance(priority, str | int) or priority not in PRIORITY_KINDS:
            raise bad_request("'priority' must be 'transactional' (or 1) or 'bulk' (or 2)", "priority")
        if kind is not None and kind != PRIORITY_KINDS[priority] and kind != "marketing":
            raise bad_request(f"'priority' {priority!r} contradicts 'kind' {kind!r}; send one of them", "priority")
        kind = kind or PRIORITY_KINDS[priority]
    not_before = None
    if body.get("not_before") is not None:
        raw = body["not_before"]
        try:
            not_before = datetime.fromisoformat(raw) if isinstance(raw, str) else None
        except ValueError:
            not_before = None
        if not_before is None or not_before.tzinfo is None:
            raise bad_request("'not_before' must be an ISO-8601 time with a UTC offset, e.g. "
                       "2026-11-22T09:30:00-05:00", "not_before")
        not_before = not_before.astimezone(UTC)
    expect = _answers(body, "expect", parse_expect)
    follow_up = _answers(body, "follow_up", _parse_follow_up)
    key = body.get("idempotency_key")
    if key is not None and not isinstance(key, str):
        raise bad_request("'idempotency_key' must be a string", "idempotency_key")
    if key is not None and header_key is not None and key != header_key:
        raise bad_request("the Idempotency-Key header and the idempotency_key field differ; send one",
                   "idempotency_key")
    key = key or header_key
    list_name = body.get("list")
    if list_name is not None and not isinstance(list_name, str):
        raise bad_request("'list' must be the name of a list, e.g. \"newsletter\"", "list")
    if key is not None and not (0 < len(key) <= MAX_KEY_LENGTH):
        raise bad_request(f"the idempotency key must have 1-{MAX_KEY_LENGTH} characters", "idempotency_key")
    if key is not None and (text_problem(key) or "\n" in key or "\r" in key):
        raise bad_request("the idempotency key may not hold control characters or line breaks", "idempotency_key")
    return {"to": body["to"], "text": body["text"], "kind": kind or "transactional", "not_before": not_before,
            "expect": expect, "follow_up": follow_up, "idempotency_key": key, "list": list_name}


def _answers(body: dict[str, Any], name: str,
             parse: Callable[[str | dict[str, str]], dict[str, str] | None]) -> dict[str, str] | None:
    """`expect` or `follow_up`: a wrong type is a 400, a map that cannot be stored (an empty or repeated
    word, an empty value) a 422, like any other message the queue refuses."""
    value = body.get(name)
    if value is None:
        return None
    rating = name == "expect" and value == "rating"
    if not rating and (not isinstance(value, dict)
                       or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
        raise bad_request(f"{name!r} must be an object of word -> text, e.g. {{\"YES\": \"confirmed\"}}"
                   + (" or \"rating\"" if name == "expect" else ""), name)
    try:
        parsed = parse(value)
    except WordMapError as exc:
        raise ApiError(422, "rejected", f"{name!r}: {exc}", name) from None
    for word, meaning in (parsed or {}).items():
        problem = text_problem(word) or text_problem(meaning)
        if problem is not None:
            raise bad_request(f"{name!r} {word!r} cannot be stored: {problem}", name)
    return parsed


def _parse_follow_up(value: str | dict[str, str]) -> dict[str, str] | None:
    return parse_word_map(value, what="reply", example='{"YES": "See you then!"}') or None


@bp.route("/api/v1/messages", methods=["POST"])
@api_auth("send")
def send_message() -> Any:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Send the message as JSON with "
                                                      "`Content-Type: application/json`.")
    body = _json_body()
    fields = _parse_message(body, request.headers.get("Idempotency-Key"))
    cfg = smsgate_config()
    store = get_store()
    who = actor()
    limited = g.get("token") is not None and cfg.web.api_sends_per_minute > 0
    try:
        # The count and the insert share one write transaction, so parallel requests cannot all pass
        # the limit before any of them is stored.
        with store.transaction():
            if limited and store.outbox.sends_since(who, 60) >= cfg.web.api_sends_per_minute:
                raise ApiError(429, "rate_limited", f"This token may queue {cfg.web.api_sends_per_minute} "
                               "messages a minute (web.api_sends_per_minute); retry later.",
                               headers={"Retry-After": "60"})
            result = store.outbox.enqueue(
                fields["to"], fields["text"], kind=fields["kind"], not_before=fields["not_before"],
                idempotency_key=fields["idempotency_key"], expect=fields["expect"], follow_up=fields["follow_up"],
                created_by=who, source="api", scope=fields["list"],
                policy=SendPolicy.from_config(cfg, fields["kind"]))
    except OptedOut as exc:
        raise ApiError(422, "opted_out", str(exc), "to") from None
    except ConsentRefused as exc:
        field = "list" if exc.code in ("no_list", "unknown_list") else "to"
        raise ApiError(422, exc.code, str(exc), field) from None
    except IdempotencyConflict as exc:
        raise ApiError(409, "idempotency_conflict", str(exc), "idempotency_key") from None
    except MessageRejected as exc:
        raise ApiError(422, "rejected", str(exc)) from None
    cost = preview(fields["text"])
    msg = store.outbox.get(result.id)
    payload = {
        "id": result.id,
        "created": result.created,
        "state": msg.state.value,
        "to": msg.to_number,
        "cost": {"parts": cost.parts, "encoding": str(cost.encoding), "units": cost.units,
                 "per_part_limit": cost.per_part_limit, "ucs2_forced_by": cost.ucs2_forced_by},
        "links": {"self": url_for("api.get_message", message_id=result.id)},
    }
    response = jsonify(payload)
    response.status_code = 201 if result.created else 200
    response.headers["Location"] = payload["links"]["self"]
    return response


def _message_json(msg: Any, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out = {
        "id": msg.id, "to": msg.to_number, "text": msg.body, "kind": msg.kind.value, "state": msg.state.value,
        "priority": int(msg.priority), "parts": msg.parts_total, "encoding": msg.encoding,
        "attempts": msg.attempts, "created_at": msg.created_at, "due_at": msg.due_at,
        "idempotency_key": msg.idempotency_key, "expect": msg.expect, "outcome": msg.outcome,
        "last_error": msg.last_error, "error_class": msg.error_class, "modem_id": msg.modem_id,
        "conversation_id": msg.conversation_id, "list": msg.scope,
    }
    if history is not None:
        out["history"] = [
            {"at": h["at"], "state": h["action"].removeprefix("message."), "from": h["detail"].get("from"),
             "actor": h["actor"], "detail": {k: v for k, v in h["detail"].items() if k != "from"}}
            for h in history if h["action"].startswith("message.")
        ]
    return out


@bp.route("/api/v1/messages/<id:message_id>")
@api_auth("read_own")
def get_message(message_id: int) -> Any:
    store = get_store()
    with store.read_snapshot():
        try:
            msg = store.outbox.get(message_id)
        except NotFound:
            raise ApiError(404, "not_found", f"There is no message #{message_id}.") from None
        history = store.outbox.history(message_id)
    token = g.get("token")
    if token is not None and token.scope == "send" and msg.created_by != actor():
        # A send-only token may follow its own messages, not read everyone's.
        raise ApiError(404, "not_found", f"There is no message #{message_id} queued with this token.")
    return jsonify(_message_json(msg, history))


@bp.route("/api/v1/messages")
@api_auth("read")
def list_messages() -> Any:
    state = request.args.get("state") or None
    if state is not None and state not in {s.value for s in State}:
        raise bad_request(f"unknown state {state!r}; use one of {', '.join(s.value for s in State)}", "state")
    limit, offset = page_args()
    msgs = get_store().outbox.recent(state=state, limit=limit, offset=offset)
    return jsonify({"messages": [_message_json(m) for m in msgs], "limit": limit, "offset": offset})


@bp.route("/api/v1/conversations")
@api_auth("read")
def conversations() -> Any:
    limit, offset = page_args()
    status = request.args.get("status") or None
    if status not in (None, "open", "done"):
        raise bad_request("'status' must be open or done", "status")
    rows = get_store().conversations.threads(status=status, team=request.args.get("team") or None,
                                             unread_only=request.args.get("unread") in ("1", "true"),
                                             limit=limit, offset=offset)
    keep = ("id", "number", "name", "modem_id", "modem_name", "status", "team", "assigned_to", "unread",
            "likely_opt_out", "last_message_at", "created_at")
    return jsonify({"conversations": [{k: r.get(k) for k in keep} for r in rows], "limit": limit,
                    "offset": offset})


@bp.route("/api/v1/modems")
@api_auth("read")
def modems() -> Any:
    snap = status_snapshot()
    out = []
    for m in snap.report["modems"]:
        a = snap.activity.get(m["id"], views.Activity())
        out.append({**{k: m[k] for k in ("id", "name", "state", "signal_dbm", "signal_bars", "registration",
                                         "operator", "msisdn", "storage", "last_error", "last_error_at",
                                         "heartbeat_at")},
                    "sent_total": m["sent"], "failed_total": m["failed"], "received_total": m["received"],
                    "last_hour": {"sent": a.sent_hour, "failed": a.failed_hour, "received": a.received_hour},
                    "last_day": {"sent": a.sent_day, "failed": a.failed_day, "received": a.received_day},
                    "queue_depth": a.queue_depth})
    return jsonify({"modems": out})


@bp.route("/api/v1/health")
def health() -> Any:
    """For monitoring, without login: states and counts only, never a number, a text or a secret."""
    report = status_snapshot().report
    ready = sum(1 for m in report["modems"] if m["state"].startswith("ready"))
    running = report["daemon"]["running"]
    status = "ok" if running and ready else ("degraded" if running else "down")
    body = {
        "status": status,
        "daemon_running": running,
        "modems": {"total": len(report["modems"]), "ready": ready},
        "queue": {k: report["queue"].get(k, 0) for k in ("queued", "unknown", "failed")},
        "oldest_queued_age_s": report["oldest_queued_age_s"],
        "open_alerts": len(report["alerts"]),
    }
    response = jsonify(body)
    response.status_code = 200 if status != "down" else 503
    return response


def _label(value: Any) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


@bp.route("/metrics")
@api_auth("read")
def metrics() -> Any:
    """Prometheus text exposition format (version 0.0.4)."""
    store = get_store()
    report = status_snapshot().report
    lines: list[str] = []

    def metric(name: str, kind: str, help_text: str, samples: list[tuple[dict[str, Any], float]]) -> None:
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            lines.append(f"{name}{{{lab}}} {value}" if lab else f"{name} {value}")

    metric("smsgate_daemon_up", "gauge", "1 if the daemon heartbeat is fresh.",
           [({}, 1 if report["daemon"]["running"] else 0)])
    counts = store.outbox.queue_counts()  # every state, finished ones too: counters for rate() over time
    metric("smsgate_messages", "gauge", "Outbound messages by state and priority.",
           [({"state": s, "priority": p}, n) for s, by in sorted(counts.items()) for p, n in sorted(by.items())])
    metric("smsgate_oldest_queued_seconds", "gauge", "Age of the oldest queued message.",
           [({}, round(report["oldest_queued_age_s"] or 0.0, 3))])
    mods = report["modems"]
    metric("smsgate_modem_up", "gauge", "1 if the modem is ready.",
           [({"modem": m["name"]}, 1 if m["state"].startswith("ready") else 0) for m in mods])
    metric("smsgate_modem_signal_dbm", "gauge", "Signal strength in dBm.",
           [({"modem": m["name"]}, m["signal_dbm"]) for m in mods if m["signal_dbm"] is not None])
    for key, help_text in (("sent", "Messages sent"), ("failed", "Messages failed"),
                           ("received", "Messages received")):
        metric(f"smsgate_modem_{key}_total", "counter", f"{help_text} by this modem since it was first seen.",
               [({"modem": m["name"]}, m[key]) for m in mods])
    metric("smsgate_alerts_open", "gauge", "Open operator alerts.", [({}, len(report["alerts"]))])
    metric("smsgate_webhook_deliveries", "gauge", "Webhook deliveries by state.",
           [({"state": s}, n) for s, n in sorted(store.webhooks.counts().items())])
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4; charset=utf-8")


@bp.route("/api/v1/openapi.json")
def openapi() -> Any:
    text = resources.files("smsgate.web").joinpath("openapi.json").read_text(encoding="utf-8")
    return Response(json.dumps(json.loads(text)), mimetype="application/json")
