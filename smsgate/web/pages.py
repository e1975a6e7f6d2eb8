"""The staff pages: status, shared inbox, outbox, reports, exports and the audit log.

SMS text is attacker input: it only ever reaches a template as a variable (autoescaped), and CSV cells
go through `smsgate.spreadsheet`; nothing here marks text safe or renders text as a template.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Flask, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from smsgate.clinic_time import ClinicClock
from smsgate.names import label, safe_text
from smsgate.numbers import InvalidNumber, normalize
from smsgate.queue import IllegalTransition, MessageRejected, NotFound, SendPolicy, views
from smsgate.queue.clock import ts
from smsgate.queue.records import PRIORITY_NAMES
from smsgate.spreadsheet import write_csv

from .auth import actor, csrf_token, login_required
from .chart import hourly_chart
from .context import get_store, int_arg, same_site_path, smsgate_config
from .snapshot import status_snapshot
from .words import STATE_WORDS, age, duration, failure_in_words

bp = Blueprint("pages", __name__)

PAGE_SIZE = 50
EXPORT_MAX_ROWS = 50_000
STATES = list(STATE_WORDS)


def register_filters(app: Flask) -> None:
    app.jinja_env.filters["age"] = lambda v: age(v, datetime.now(UTC))
    app.jinja_env.filters["clinic_time"] = lambda v: ClinicClock.for_config(smsgate_config()).show(v)
    app.jinja_env.filters["duration"] = duration
    app.jinja_env.filters["state_words"] = lambda s: STATE_WORDS.get(s, s)
    app.jinja_env.filters["tojson_pretty"] = lambda v: json.dumps(v, ensure_ascii=False, default=str)
    # The one display rule for a person, "Zoë Núñez (+1 202-555-0123)": {{ number|person(name) }}.
    app.jinja_env.filters["person"] = lambda number, name=None: label(name, number or "")
    app.jinja_env.filters["plain"] = lambda text: safe_text(str(text))
    app.jinja_env.globals["csrf_token"] = csrf_token

    @app.context_processor
    def _inject() -> dict[str, Any]:
        return {"current_user": g.get("user"), "clinic_name": smsgate_config().clinic.name}


MAX_PAGE = 10**6  # keeps (page - 1) * PAGE_SIZE inside what SQLite takes as an OFFSET


def _page() -> int:
    return int_arg("page", 1, 1, MAX_PAGE)


def _now() -> datetime:
    return datetime.now(UTC)


@bp.route("/")
@login_required()
def index() -> Any:
    return redirect(url_for("pages.status"))


@bp.route("/status")
@login_required()
def status() -> Any:
    snap = status_snapshot()
    report = snap.report
    modems = [{**m, "activity": snap.activity.get(m["id"], views.Activity())} for m in report["modems"]]
    # The pipeline by priority; finished states (which grow forever) as totals only.
    matrix = [
        {"state": state, "words": STATE_WORDS.get(state, state),
         "by_priority": [snap.active[state].get(p, 0) for p in PRIORITY_NAMES] if state in snap.active else None,
         "total": total}
        for state, total in sorted(report["queue"].items(), key=lambda kv: STATES.index(kv[0])
                                   if kv[0] in STATES else 99)
    ]
    return render_template("status.html", report=report, modems=modems, matrix=matrix,
                           priorities=list(PRIORITY_NAMES.values()),
                           refresh=smsgate_config().web.status_refresh_seconds)


# -- inbox ------------------------------------------------------------------------------------------------

@bp.route("/inbox")
@login_required()
def inbox() -> Any:
    store = get_store()
    show = request.args.get("show", "open")
    team = request.args.get("team") or None
    page = _page()
    rows = store.conversations.threads(
        status=None if show in ("all", "unread") else ("done" if show == "done" else "open"),
        team=team, unread_only=show == "unread", limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    for r in rows:
        r["opted_out"] = store.consent.status(r["number"]).opted_out
    return render_template("inbox.html", conversations=rows, show=show, team=team or "", teams=views.teams(store),
                           page=page, more=more)


def _conversation_or_404(conversation_id: int) -> dict[str, Any]:
    try:
        return get_store().conversations.get(conversation_id)
    except NotFound:
        abort(404, f"There is no conversation #{conversation_id}.")


@bp.route("/inbox/<id:conversation_id>")
@login_required()
def conversation(conversation_id: int, *, reply_text: str = "", error: str | None = None,
                 assign_error: str | None = None, status: int = 200) -> Any:
    store = get_store()
    conv = _conversation_or_404(conversation_id)
    if conv["unread"] and g.user.role != "viewer":
        store.conversations.update(conversation_id, actor=actor(), unread=0)
    history = store.conversations.history(conversation_id)
    consent = store.consent.status(conv["number"])
    flagged = views.likely_opt_out_messages(store, conversation_id) if conv["likely_opt_out"] else []
    users = [u.username for u in store.accounts.list_users() if not u.disabled]
    body = render_template("conversation.html", conv=conv, history=history, consent=consent, flagged=flagged,
                           users=users, teams=views.teams(store), reply_text=reply_text, error=error,
                           assign_error=assign_error,
                           max_parts=smsgate_config().sending.max_parts)
    return Response(body, status=status, mimetype="text/html")


@bp.route("/inbox/<id:conversation_id>/reply", methods=["POST"])
@login_required("staff")
def reply(conversation_id: int) -> Any:
    store = get_store()
    conv = _conversation_or_404(conversation_id)
    text = request.form.get("text", "")
    if store.consent.status(conv["number"]).opted_out:
        return conversation(conversation_id, reply_text=text, status=409,
                            error="This number has opted out; nothing was sent. Only the patient can opt back "
                                  "in (by texting START).")
    try:
        result = store.outbox.enqueue(
            conv["number"], text, kind="reply", required_modem_id=conv["modem_id"] or None,
            in_reply_to=views.last_inbound_id(store, conversation_id), created_by=actor(), source="web",
            policy=SendPolicy.from_config(smsgate_config(), "reply"))
    except MessageRejected as exc:
        return conversation(conversation_id, reply_text=text, status=422, error=f"Not sent: {exc}")
    flash(f"Reply queued as message #{result.id} ({result.parts} part{'s' if result.parts != 1 else ''}).", "ok")
    return redirect(url_for("pages.conversation", conversation_id=conversation_id))


@bp.route("/inbox/<id:conversation_id>/assign", methods=["POST"])
@login_required("staff")
def assign(conversation_id: int) -> Any:
    """Assign to an enabled account and/or one of the teams there are (`views.teams`); a name that is
    neither is refused with nothing changed, so a conversation never waits in the queue of nobody."""
    store = get_store()
    _conversation_or_404(conversation_id)
    assigned_to = request.form.get("assigned_to", "").strip() or None
    team = request.form.get("team", "").strip() or None
    problem = None
    if assigned_to is not None:
        user = store.accounts.get_user(assigned_to)
        if user is None:
            problem = (f"There is no account {assigned_to!r}; choose a colleague from the list "
                       "(an admin adds accounts with `smsgate users add`).")
        elif user.disabled:
            problem = f"The account {assigned_to!r} is disabled; choose another colleague."
    if problem is None and team is not None:
        known = views.teams(store)
        match = next((t for t in known if t.lower() == team.lower()), None)
        if match is None:
            problem = (f"There is no team {team!r}; the teams are {', '.join(known)}." if known else
                       "There are no teams: a team comes from a keyword rule that routes to it "
                       "(`smsgate keywords add WORD --route TEAM`); assign to a colleague instead.")
        team = match
    if problem is not None:
        return conversation(conversation_id, assign_error=problem, status=400)
    store.conversations.update(conversation_id, actor=actor(), assigned_to=assigned_to, team=team)
    flash("Assignment saved.", "ok")
    return redirect(url_for("pages.conversation", conversation_id=conversation_id))


@bp.route("/inbox/<id:conversation_id>/done", methods=["POST"])
@login_required("staff")
def mark_done(conversation_id: int) -> Any:
    _conversation_or_404(conversation_id)
    reopen = request.form.get("reopen") == "1"
    get_store().conversations.update(conversation_id, actor=actor(), status="open" if reopen else "done",
                                     **({} if reopen else {"unread": 0}))
    flash("Conversation reopened." if reopen else "Conversation marked done.", "ok")
    if reopen:
        return redirect(url_for("pages.conversation", conversation_id=conversation_id))
    return redirect(url_for("pages.inbox"))


@bp.route("/inbox/<id:conversation_id>/opt-out", methods=["POST"])
@login_required("staff")
def likely_opt_out(conversation_id: int) -> Any:
    """Confirm (write an opt-out to the consent ledger) or dismiss a "likely opt-out" flag."""
    store = get_store()
    conv = _conversation_or_404(conversation_id)
    decision = request.form.get("decision")
    if decision == "confirm":
        flagged = views.likely_opt_out_messages(store, conversation_id)
        with store.transaction():
            store.consent.record(conv["number"], "opt_out", source="web", actor=actor(),
                                 evidence=f"staff confirmed a likely opt-out in conversation #{conversation_id}",
                                 inbound_id=flagged[0]["id"] if flagged else None)
            store.conversations.update(conversation_id, actor=actor(), likely_opt_out=0)
        flash("Opt-out recorded: no more messages will be sent to this number.", "ok")
    elif decision == "dismiss":
        with store.transaction():
            store.conversations.update(conversation_id, actor=actor(), likely_opt_out=0)
            store.audit.record(actor(), "consent.likely_opt_out_dismissed", "conversation", conversation_id,
                               {"number": conv["number"]})
        flash("Flag dismissed: the number stays subscribed.", "ok")
    else:
        abort(400, "Choose confirm or dismiss.")
    return redirect(url_for("pages.conversation", conversation_id=conversation_id))


# -- outbox -----------------------------------------------------------------------------------------------

def _outbox_filters() -> tuple[str | None, str | None, str | None]:
    state = request.args.get("state") or None
    if state is not None and state not in STATE_WORDS:
        abort(400, f"Unknown state {state!r}; use one of {', '.join(STATE_WORDS)}.")
    kind = request.args.get("kind") or None
    raw = request.args.get("number", "").strip()
    number = None
    if raw:
        try:
            number = normalize(raw, default_region=smsgate_config().clinic.region or None)
        except InvalidNumber as exc:
            flash(str(exc), "error")
    return state, number, kind


@bp.route("/outbox")
@login_required()
def outbox() -> Any:
    store = get_store()
    state, number, kind = _outbox_filters()
    page = _page()
    rows = views.outbox_page(store, state=state, number=number, kind=kind, limit=PAGE_SIZE + 1,
                               offset=(page - 1) * PAGE_SIZE)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    for r in rows:
        if r["state"] in ("failed", "undeliverable", "unknown", "cancelled"):
            r["reason"] = failure_in_words(r["state"], r["last_error"], r["error_class"])
    unknown = [] if state else views.outbox_page(store, state="unknown", number=None, kind=None, limit=20,
                                                   offset=0)
    return render_template("outbox.html", messages=rows, unknown=unknown, state=state or "",
                           number=request.args.get("number", ""), kind=kind or "", states=STATE_WORDS,
                           page=page, more=more)


@bp.route("/outbox/<id:message_id>")
@login_required()
def message(message_id: int) -> Any:
    store = get_store()
    try:
        msg = store.outbox.get(message_id)
    except NotFound:
        abort(404, f"There is no message #{message_id}.")
    reason = failure_in_words(msg.state.value, msg.last_error, msg.error_class) if msg.state.value in (
        "failed", "undeliverable", "unknown", "cancelled") else None
    contact = store.contacts.find(msg.to_number)
    return render_template("message.html", msg=msg, history=store.outbox.history(message_id), reason=reason,
                           name=contact.name if contact else None)


@bp.route("/outbox/<id:message_id>/<any(cancel, retry):action>", methods=["POST"])
@login_required("admin")
def message_action(message_id: int, action: str) -> Any:
    # Where to go afterwards is settled before anything is done, so a bad `back` cannot fail the request
    # after the message was already cancelled or queued again.
    back = same_site_path(request.form.get("back"), url_for("pages.message", message_id=message_id))
    store = get_store()
    try:
        if action == "cancel":
            store.outbox.cancel(message_id, actor=actor(), reason=f"cancelled by {g.user.username}")
            flash(f"Message #{message_id} cancelled.", "ok")
        else:
            store.outbox.resend(message_id, actor=actor())
            flash(f"Message #{message_id} is queued again.", "ok")
    except NotFound:
        abort(404, f"There is no message #{message_id}.")
    except IllegalTransition as exc:
        flash(f"Not possible: {exc}.", "error")
    return redirect(back)


# -- exports ----------------------------------------------------------------------------------------------

@bp.route("/export/<any(outbox, inbound):what>.csv")
@login_required("staff")
def export(what: str) -> Response:
    store = get_store()
    if what == "outbox":
        state, number, kind = _outbox_filters()
        rows = views.outbox_page(store, state=state, number=number, kind=kind, limit=EXPORT_MAX_ROWS, offset=0)
        columns = ["id", "to_number", "first_name", "last_name", "state", "kind", "parts_total", "created_at",
                   "finished_at", "outcome", "last_error", "body"]
    else:
        rows = views.inbound_export(store, EXPORT_MAX_ROWS)
        columns = ["id", "sender", "first_name", "last_name", "modem_id", "received_at", "keyword", "body"]
    clock = ClinicClock.for_config(smsgate_config())
    out = io.StringIO()
    write_csv(out, columns, ([clock.iso(r[c]) if c.endswith("_at") else r[c] for c in columns] for r in rows))
    with store.transaction():
        store.audit.record(actor(), "export", "export", None, {"what": what, "rows": len(rows),
                           "filters": dict(request.args)})
    stamp = _now().astimezone(clock.zone).strftime("%Y%m%d-%H%M")
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="smsgate-{what}-{stamp}.csv"'})


# -- reports and audit ------------------------------------------------------------------------------------

@bp.route("/reports")
@login_required()
def reports() -> Any:
    store = get_store()
    now = _now()
    hours = views.hourly(store, now)
    month = ts(now - timedelta(days=30))
    finished = sum(h["delivered"] + h["failed"] for h in hours)
    delivered = sum(h["delivered"] for h in hours)
    return render_template(
        "reports.html", keywords=views.keyword_rules(store), outcomes=views.answer_outcomes(store, month),
        ratings=views.ratings(store, month), opt_outs=views.opt_outs_by_day(store, now),
        chart=hourly_chart(hours, ClinicClock.for_config(smsgate_config())),
        delivery_rate=(delivered / finished) if finished else None,
        sent_day=sum(h["queued"] for h in hours), received_day=sum(h["received"] for h in hours))


@bp.route("/audit")
@login_required("admin")
def audit() -> Any:
    store = get_store()
    prefix = request.args.get("action", "").strip() or None
    entries = store.audit.entries(limit=300, action_prefix=prefix)
    return render_template("audit.html", entries=entries, action=prefix or "", users=store.accounts.list_users(),
                           tokens=store.accounts.list_tokens())
