"""The `smsgate` command: a thin click layer over the library.

Each command opens what it needs, makes one library call, and turns library errors into sentences an
admin can act on (exit status 1). Logging handlers are configured here and nowhere else.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from smsgate.clinic_time import ClinicClock, ClinicTimeError
from smsgate.config import Config, ConfigError, find_config_path, load_config, render_default_config
from smsgate.names import label
from smsgate.queue import MessageRejected, NotFound, SendPolicy, State, Store, StoreError, views
from smsgate.queue.clock import ts
from smsgate.queue.inbox import notes_of

log = logging.getLogger("smsgate")


@dataclass
class Context:
    config_path: str | None
    verbose: int = 0
    _config: Config | None = None
    _stores: list[Store] = field(default_factory=list)

    @property
    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.config_path)
            except ConfigError as exc:
                raise click.ClickException(str(exc)) from None
        return self._config

    @property
    def clinic_clock(self) -> ClinicClock:
        """Reads the times people type and writes the times they read, in `clinic.timezone`."""
        return ClinicClock.for_config(self.config)

    def store(self) -> Store:
        cfg = self.config
        try:
            store = Store.for_config(cfg)
        except StoreError as exc:
            raise click.ClickException(str(exc)) from None
        self._stores.append(store)
        return store

    def close(self) -> None:
        for s in self._stores:
            s.close()


pass_ctx = click.make_pass_decorator(Context)


@click.group()
@click.option("--config", "config_path", envvar="SMSGATE_CONFIG", type=click.Path(dir_okay=False),
              help="Configuration file (default: $SMSGATE_CONFIG, else /etc/smsgate/smsgate.toml).")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.version_option(package_name="smsgate")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: int) -> None:
    """smsgate: an on-premise SMS server for clinics (GSM modems, SQLite, rules, staff page, API)."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    obj = Context(config_path, verbose)
    ctx.obj = obj
    ctx.call_on_close(obj.close)


def main() -> None:
    cli(prog_name="smsgate")


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


# --- set-up and the database -------------------------------------------------------------------------

@cli.command()
@click.option("--database", default="smsgate.db", show_default=True,
              help="Database file, relative to the configuration file's folder.")
@click.option("--demo", is_flag=True, help="Name the clinic 'Demo Clinic' (for the simulator demo).")
@click.option("--force", is_flag=True, help="Overwrite an existing configuration file.")
@pass_ctx
def init(ctx: Context, database: str, demo: bool, force: bool) -> None:
    """Create the configuration file and the database.

    \b
    Example:
        smsgate --config /etc/smsgate/smsgate.toml init
    """
    path = find_config_path(ctx.config_path)
    if path.exists() and not force:
        raise click.ClickException(f"{path} already exists; use --force to overwrite it.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_default_config(database, demo=demo), encoding="utf-8")
    except OSError as exc:
        raise click.ClickException(f"cannot write {path} ({exc.strerror or exc}); choose another --config "
                                   "path or run as a user who may write there.") from None
    cfg = ctx.config
    store = ctx.store()
    click.echo(f"wrote {path}")
    click.echo(f"database ready at {store.path}")
    if cfg.uses_simulator:
        click.echo("no modem configured: `smsgate serve` will start simulated modems")
    if demo and not store.accounts.list_users():
        import secrets

        password = secrets.token_urlsafe(12)
        store.accounts.add_user("admin", password, "admin", actor="init")
        click.echo(f"status page login: admin / {password}  (shown once; change it with `smsgate users`)")
    elif not store.accounts.list_users():
        click.echo("next: create a staff login with `smsgate users add NAME --role admin`")


@cli.group()
def db() -> None:
    """Database maintenance."""


@db.command("check")
@pass_ctx
def db_check(ctx: Context) -> None:
    """Run SQLite's integrity check on the database."""
    try:
        ctx.store().integrity_check()
    except StoreError as exc:
        raise _fail(exc) from None
    click.echo("ok")


@db.command("migrate")
@pass_ctx
def db_migrate(ctx: Context) -> None:
    """Apply pending schema migrations (also done whenever smsgate opens the database)."""
    ctx.store()
    click.echo("database is up to date")


# --- messages ----------------------------------------------------------------------------------------

@cli.command()
@click.argument("number")
@click.argument("text")
@click.option("--kind", type=click.Choice(["transactional", "reply", "bulk", "marketing"]),
              default="transactional", show_default=True, help="Decides priority and the consent rule.")
@click.option("--at", "not_before",
              help='Send no earlier than this clinic time: "09:00" (the next one), "tomorrow 09:00", '
                   '"2026-12-01 09:00", or ISO with an offset.')
@click.option("--expect", help="Expected answers: YES=confirmed,NO=cancelled,1=reschedule or 1-5 for a rating.")
@click.option("--follow-up", multiple=True, help='Reply to an answer: YES="See you then!" (repeatable).')
@click.option("--key", "idempotency_key", help="Idempotency key: the same key twice queues one message.")
@click.option("--list", "list_name", help="The list the message is for; marketing needs one and an opt-in for it.")
@pass_ctx
def send(ctx: Context, number: str, text: str, kind: str, not_before: str | None, expect: str | None,
         follow_up: tuple[str, ...], idempotency_key: str | None, list_name: str | None) -> None:
    """Queue TEXT for NUMBER (international form, e.g. +12025550123).

    \b
    Example:
        smsgate send +12025550123 "Reminder: Dr Rivera 3:15 PM tomorrow. Reply YES to confirm" \\
            --expect YES=confirmed,NO=cancelled --follow-up YES="See you then!"
        smsgate send +12025550123 "Flu shots are here" --kind marketing --list newsletter
    """
    from smsgate.keywords.answers import WordMapError, parse_expect, parse_word_map

    try:
        answers = parse_expect(expect)
    except WordMapError as exc:
        raise click.BadParameter(str(exc), param_hint="--expect") from None
    try:
        replies = parse_word_map(follow_up, what="reply", example='YES="See you then!"') or None
    except WordMapError as exc:
        raise click.BadParameter(str(exc), param_hint="--follow-up") from None
    cfg = ctx.config
    try:
        nb = ctx.clinic_clock.parse(not_before) if not_before else None
    except ClinicTimeError as exc:
        raise click.BadParameter(str(exc), param_hint="--at") from None
    store = ctx.store()
    try:
        result = store.outbox.enqueue(
            number, text, kind=kind, not_before=nb, expect=answers, follow_up=replies,
            idempotency_key=idempotency_key, created_by="cli", scope=list_name,
            source="cli", policy=SendPolicy.from_config(cfg, kind),
        )
    except MessageRejected as exc:
        raise _fail(exc) from None
    verb = "queued" if result.created else "already queued"
    when = f", not before {ctx.clinic_clock.show(nb)}" if nb else ""
    click.echo(f"{verb} #{result.id} ({result.parts} part{'s' if result.parts != 1 else ''}, {result.encoding}{when})")


def _print_rows(rows: list[dict[str, Any]], columns: list[str], as_json: bool, *,
                clock: ClinicClock | None = None, times: tuple[str, ...] = ()) -> None:
    """A table for people, or JSON with `--json`; the `times` columns (stored UTC) are shown in the clinic's
    zone, and in JSON as ISO-8601 with the clinic's offset."""
    if clock is not None and times:
        rows = [{**r, **{c: clock.iso(r.get(c)) if as_json else clock.show(r.get(c)) for c in times}} for r in rows]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str, ensure_ascii=False))
        return
    if not rows:
        click.echo("(none)")
        return
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in columns}
    click.echo("  ".join(c.ljust(widths[c]) for c in columns))
    for r in rows:
        click.echo("  ".join(_cell(r.get(c)).ljust(widths[c]) for c in columns))


def _cell(value: Any, width: int = 48) -> str:
    from smsgate.names import safe_text

    text = "" if value is None else str(value)
    text = safe_text(text.replace("\n", " ").replace("\r", " "))
    return text if len(text) <= width else text[: width - 1] + "…"


_DURATION = re.compile(r"(\d+)(m|h|d|w)")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _since(ctx: Context, text: str | None) -> datetime | None:
    """A moment a person gave as a duration back from now (90m, 2h, 3d, 1w) or as a clinic time."""
    if text is None:
        return None
    duration = _DURATION.fullmatch(text.strip().lower())
    if duration:
        return datetime.now(UTC) - timedelta(**{_UNITS[duration[2]]: int(duration[1])})
    try:
        return ctx.clinic_clock.parse(text)
    except ClinicTimeError as exc:
        raise click.BadParameter(f"{exc}, or a duration back from now (90m, 2h, 3d, 1w)",
                                 param_hint="--since") from None


@cli.command()
@click.option("--state", "states", multiple=True, type=click.Choice([s.value for s in State]),
              help="Only messages in this state (repeatable: --state unknown --state failed).")
@click.option("--since",
              help="Only messages created or changed since then: 2026-11-22, \"2026-11-22 18:00\" (clinic time "
                   "unless an offset such as +02:00 is given), or a duration back from now: 90m, 2h, 3d, 1w.")
@click.option("--limit", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--all", "show_all", is_flag=True, help="All matching messages, not only the newest --limit.")
@click.option("--json", "as_json", is_flag=True,
              help="Print JSON with every field: idempotency key, attempts, modem, each part's state and TP-MR.")
@pass_ctx
def outbox(ctx: Context, states: tuple[str, ...], since: str | None, limit: int, show_all: bool,
           as_json: bool) -> None:
    """List outbound messages, newest first, with the reason for each failure and the state of every part."""
    moment = _since(ctx, since)
    store = ctx.store()
    found = views.outbox_listing(store, states=states, since=ts(moment) if moment else None,
                                 limit=None if show_all else limit)
    names = _names(store, [r["to_number"] for r in found])
    if as_json:
        keep = ("id", "to_number", "state", "kind", "priority", "parts_total", "encoding", "attempts",
                "max_attempts", "idempotency_key", "modem", "modem_id", "preferred_modem_id", "failover_from",
                "created_at", "updated_at", "due_at", "submitted_at", "finished_at", "created_by", "source",
                "campaign", "outcome", "last_error", "error_class", "body", "parts")
        renamed = {"to_number": "to", "parts_total": "parts_count", "last_error": "error", "body": "text"}
        _print_rows([{**{renamed.get(k, k): r[k] for k in keep}, "name": names.get(r["to_number"])} for r in found],
                    [], True, clock=ctx.clinic_clock,
                    times=("created_at", "updated_at", "due_at", "submitted_at", "finished_at"))
        return
    rows = [
        {"id": r["id"], "to": label(names.get(r["to_number"]), r["to_number"]), "state": r["state"], "kind": r["kind"],
         "parts": ",".join(p["state"] for p in r["parts"]), "attempts": r["attempts"], "modem": r["modem"],
         "key": r["idempotency_key"], "created": r["created_at"], "outcome": r["outcome"],
         "error": r["last_error"], "text": r["body"]}
        for r in found
    ]
    _print_rows(rows, ["id", "to", "state", "kind", "parts", "attempts", "modem", "key", "created", "outcome",
                       "error", "text"], as_json,
                clock=ctx.clinic_clock, times=("created",))


def _names(store: Store, numbers: list[str]) -> dict[str, str | None]:
    """Each number's contact name (the CLI shows people by the one display rule, `smsgate.names.label`)."""
    return {number: contact.name for number, contact in store.contacts.find_many(numbers).items()}


@cli.command()
@click.option("--limit", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def inbox(ctx: Context, limit: int, as_json: bool) -> None:
    """List received messages, newest first."""
    store = ctx.store()
    rows = store.inbox.recent(limit=limit)
    names = _names(store, [r["sender"] for r in rows])
    out = []
    for r in rows:
        notes = [r["decode_error"], *notes_of(r)] if r["decode_error"] else list(notes_of(r))
        flag = "undecodable" if r["decode_error"] else "gap" if r["missing_parts"] else "noted" if notes else ""
        out.append({"id": r["id"], "from": r["sender"] if as_json else label(names.get(r["sender"]), r["sender"]),
                    "name": names.get(r["sender"]), "received": r["received_at"], "keyword": r["keyword"],
                    "flag": flag, "text": r["body"], **({"notes": notes} if as_json else {})})
    _print_rows(out, ["id", "from", "received", "keyword", "flag", "text"], as_json, clock=ctx.clinic_clock,
                times=("received",))


@cli.command()
@click.argument("message_id", type=int)
@pass_ctx
def cancel(ctx: Context, message_id: int) -> None:
    """Cancel a queued (or unknown) message."""
    try:
        ctx.store().outbox.cancel(message_id, actor="cli")
    except (NotFound, StoreError) as exc:
        raise _fail(exc) from None
    click.echo(f"cancelled #{message_id}")


@cli.command()
@click.argument("message_id", type=int)
@pass_ctx
def resend(ctx: Context, message_id: int) -> None:
    """Send an `unknown` or `failed` message again (a person has checked it did not arrive)."""
    try:
        ctx.store().outbox.resend(message_id, actor="cli")
    except (NotFound, StoreError) as exc:
        raise _fail(exc) from None
    click.echo(f"re-queued #{message_id}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def status(ctx: Context, as_json: bool) -> None:
    """Show the daemon, every modem's state, the queues and open alerts."""
    from smsgate.status import gather_status

    report = gather_status(ctx.store(), now=datetime.now(UTC), clock=ctx.clinic_clock)
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    click.echo(report["daemon"]["summary"])
    _print_rows(report["modems"], ["name", "state", "signal", "registration", "operator", "storage",
                                   "sent", "failed", "received", "last_error"], False)
    click.echo("")
    click.echo("queue: " + (", ".join(f"{k} {v}" for k, v in report["queue"].items()) or "empty"))
    if report["oldest_queued_age_s"] is not None:
        click.echo(f"oldest queued message: {int(report['oldest_queued_age_s'])} s old")
    for alert in report["alerts"]:
        click.echo(f"ALERT [{alert['level']}] {alert['message']}")


# --- keywords, consent and reports -------------------------------------------------------------------

def _engine(ctx: Context) -> Any:
    from smsgate.keywords import RulesEngine

    try:
        return RulesEngine(ctx.config)
    except ConfigError as exc:
        raise _fail(exc) from None


@cli.group()
def keywords() -> None:
    """Keyword rules: what an inbound text such as JOIN or HOURS triggers (STOP/START/HELP are built in)."""


@keywords.command("add")
@click.argument("keyword")
@click.option("--reply", help="Text sent back; may use {first_name}, {name}, {clinic}, {contact}, {number}.")
@click.option("--alias", "aliases", multiple=True, help="Another word with the same effect (repeatable).")
@click.option("--tag", help="Tag added to the contact, e.g. newsletter.")
@click.option("--opt-in", "opt_in", help="Record an opt-in to this list on the consent ledger and put the number "
                                         "on the list, e.g. newsletter.")
@click.option("--route", help="Team the conversation is routed to, e.g. billing.")
@click.option("--menu", help="Menu offered by --reply: ANSWER=team pairs, e.g. 1=billing,2=support.")
@click.option("--forward", "forward_to", help="Also forward the text to this number (e.g. a staff phone).")
@click.option("--webhook", help="Also POST the text to this http(s) URL.")
@click.option("--hours", help='Only active in these hours (clinic time), e.g. "Mon-Fri 08:00-18:00".')
@click.option("--priority", default=100, show_default=True, help="Lower is checked first.")
@click.option("--replace", is_flag=True, help="Replace an existing rule for KEYWORD.")
@pass_ctx
def keywords_add(ctx: Context, keyword: str, reply: str | None, aliases: tuple[str, ...], tag: str | None,
                 opt_in: str | None, route: str | None, menu: str | None, forward_to: str | None,
                 webhook: str | None, hours: str | None, priority: int, replace: bool) -> None:
    """Add a keyword rule.

    \b
    Example:
        smsgate keywords add JOIN --reply "Hi {first_name}, you joined our news." --tag newsletter \\
            --opt-in marketing
    """
    from smsgate.keywords import RuleError, Vocabulary, build_rule, parse_menu
    from smsgate.queue.keywords import KeywordExists

    cfg = ctx.config
    try:
        rule = build_rule(keyword, vocabulary=Vocabulary(cfg.compliance), aliases=aliases, reply=reply, tag=tag,
                          opt_in_scope=opt_in, route=route, forward_to=forward_to, webhook=webhook, hours=hours,
                          menu=parse_menu(menu), priority=priority, default_region=cfg.clinic.region or None)
        ctx.store().keywords.add(rule.keyword, aliases=rule.aliases, reply=rule.reply, tag=rule.tag,
                                 opt_in_scope=rule.opt_in_scope, route=rule.route, forward_to=rule.forward_to,
                                 webhook=rule.webhook, hours=rule.hours, menu=rule.menu, priority=rule.priority,
                                 actor="cli", replace=replace)
    except (RuleError, KeywordExists, ValueError) as exc:
        raise _fail(exc) from None
    click.echo(f"keyword {rule.keyword}: {'; '.join(rule.actions())}")


@keywords.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def keywords_list(ctx: Context, as_json: bool) -> None:
    """List keyword rules, the built-in compliance words first."""
    from smsgate.keywords import Rule, Vocabulary

    vocab = Vocabulary(ctx.config.compliance)
    store = ctx.store()
    hits = views.keyword_hits(store)
    rows: list[dict[str, Any]] = []
    for action, words in (("opt_out", vocab.opt_out), ("opt_in", vocab.opt_in), ("help", vocab.help)):
        rows.append({"keyword": words[0], "aliases": ", ".join(words[1:]), "does": f"built-in {action}",
                     "hours": "", "hits": sum(hits.get((w, action), 0) for w in words)})
    uses = {r["keyword"]: r["hits"] for r in views.keyword_rules(store)}
    for row in store.keywords.all():
        rule = Rule.from_row(row)
        rows.append({"keyword": rule.keyword, "aliases": ", ".join(rule.aliases), "does": "; ".join(rule.actions()),
                     "hours": rule.hours or "", "hits": uses.get(rule.keyword, 0)})
    _print_rows(rows, ["keyword", "aliases", "does", "hours", "hits"], as_json)


@keywords.command("remove")
@click.argument("keyword")
@pass_ctx
def keywords_remove(ctx: Context, keyword: str) -> None:
    """Remove a keyword rule."""
    from smsgate.keywords import canonical

    try:
        ctx.store().keywords.remove(canonical(keyword), actor="cli")
    except NotFound as exc:
        raise _fail(exc) from None
    click.echo(f"removed {canonical(keyword)}")


@keywords.command("test")
@click.argument("text")
@click.option("--from", "sender", required=True, help="The sender's number, e.g. +12025550123.")
@pass_ctx
def keywords_test(ctx: Context, text: str, sender: str) -> None:
    """Show what an inbound TEXT from a number would trigger (dry run: nothing is stored or sent)."""
    outcome = _engine(ctx).dry_run(ctx.store(), sender, text)
    for line in outcome.describe():
        click.echo(line)


@cli.group()
def consent() -> None:
    """The consent ledger: opt-ins and opt-outs, append-only."""


@consent.command("export")
@click.option("--output", type=click.Path(dir_okay=False, writable=True), help="CSV file (default: stdout).")
@pass_ctx
def consent_export(ctx: Context, output: str | None) -> None:
    """Write the ledger as CSV (number, event, scope, time, source, evidence, ...) for an auditor."""
    from smsgate.keywords import consent_csv

    store = ctx.store()
    if output:
        try:
            fh = open(output, "w", newline="", encoding="utf-8")
        except OSError as exc:
            raise click.ClickException(f"cannot write {output} ({exc.strerror or exc}); check that its folder "
                                       "exists and is writable.") from None
        with fh:
            n = consent_csv(store, fh, clock=ctx.clinic_clock)
        click.echo(f"wrote {n} consent events to {output}", err=True)
    else:
        consent_csv(store, sys.stdout, clock=ctx.clinic_clock)


@consent.command("show")
@click.argument("number")
@pass_ctx
def consent_show(ctx: Context, number: str) -> None:
    """Explain whether NUMBER can be texted now, and why."""
    from smsgate.keywords import explain_consent

    for line in explain_consent(ctx.store(), ctx.config, number).lines(ctx.clinic_clock):
        click.echo(line)


def _number(ctx: Context, number: str) -> str:
    from smsgate.numbers import InvalidNumber, normalize

    try:
        return normalize(number, default_region=ctx.config.clinic.region or None)
    except InvalidNumber as exc:
        raise click.BadParameter(str(exc), param_hint="NUMBER") from None


@consent.command("optout")
@click.argument("number")
@click.option("--reason", required=True, help='What the patient said and how, e.g. "asked at the desk".')
@click.option("--list", "list_name", help="Only this list (default: every purpose, as a STOP does).")
@click.option("--transactional", is_flag=True, help="Only transactional messages (reminders, replies).")
@pass_ctx
def consent_optout(ctx: Context, number: str, reason: str, list_name: str | None, transactional: bool) -> None:
    """Record an opt-out staff were told about (phone call, front desk, letter).

    \b
    Example:
        smsgate consent optout +12025550123 --reason "asked at the front desk 2026-12-01"
    """
    if list_name and transactional:
        raise click.UsageError("give --list or --transactional, not both")
    if not reason.strip():
        raise click.BadParameter("say what the patient asked for, e.g. \"asked at the desk\"", param_hint="--reason")
    store = ctx.store()
    scope = "transactional" if transactional else "all"
    if list_name:
        try:
            scope = store.lists.require(list_name).name
        except NotFound as exc:
            raise _fail(exc) from None
    who = _number(ctx, number)
    store.consent.record(who, "opt_out", scope=scope, source="staff", actor="cli", evidence=reason.strip())
    what = {"all": "messages of any kind", "transactional": "transactional messages"}.get(
        scope, f"messages for the list {scope}")
    click.echo(f"opt-out recorded: {who} gets no more {what}")


@consent.command("optin")
@click.argument("number")
@click.option("--list", "list_name", required=True, help="The list the patient agreed to receive.")
@click.option("--evidence", required=True, help='How consent was given, e.g. "signed form 2026-11-30".')
@pass_ctx
def consent_optin(ctx: Context, number: str, list_name: str, evidence: str) -> None:
    """Record an opt-in to a list that staff obtained (a signed form, a web form); adds NUMBER to the list.

    \b
    Example:
        smsgate consent optin +12025550123 --list newsletter --evidence "signed form 2026-11-30"
    """
    if not evidence.strip():
        raise click.BadParameter("say how consent was given, e.g. \"signed form 2026-11-30\"",
                                 param_hint="--evidence")
    store = ctx.store()
    try:
        found = store.lists.require(list_name)
    except NotFound as exc:
        raise _fail(exc) from None
    who = _number(ctx, number)
    with store.transaction():
        store.consent.record(who, "opt_in", scope=found.name, source="staff", actor="cli", evidence=evidence.strip())
        store.lists.add_numbers(found.name, [who], actor="cli", source="consent")
    refusal = store.consent.may_send(who, "marketing", found.name)
    click.echo(f"opt-in to {found.name} recorded for {who}"
               + (f"; note: {refusal.reason}" if refusal is not None else ""))


# --- lists and segments ------------------------------------------------------------------------------

def _person(row: dict[str, Any]) -> str:
    full = " ".join(p for p in (row.get("first_name"), row.get("last_name")) if p)
    return full or row.get("name") or ""


@cli.group("lists")
def lists_group() -> None:
    """Static lists of contacts; a list's name is the consent scope of marketing sent to it."""


@lists_group.command("create")
@click.argument("name")
@click.option("--keyword", help="The word patients send after STOP or START for this list only, e.g. NEWS.")
@click.option("--description", help="What the list is for.")
@pass_ctx
def lists_create(ctx: Context, name: str, keyword: str | None, description: str | None) -> None:
    """Create the list NAME (lower-case letters, digits, - and _).

    \b
    Example:
        smsgate lists create newsletter --keyword NEWS --description "Monthly clinic news"
    """
    from smsgate.keywords import Vocabulary
    from smsgate.queue.lists import ListError

    if keyword is not None:
        conflict = Vocabulary(ctx.config.compliance).list_keyword_conflict(keyword)
        if conflict:
            raise click.BadParameter(conflict, param_hint="--keyword")
    try:
        made = ctx.store().lists.create(name, actor="cli", keyword=keyword, description=description)
    except ListError as exc:
        raise _fail(exc) from None
    click.echo(f"list {made.name} created" + (f" (patients leave it with STOP {made.keyword})" if made.keyword
                                               else ""))


@lists_group.command("add")
@click.argument("name")
@click.argument("numbers", nargs=-1, required=True)
@pass_ctx
def lists_add(ctx: Context, name: str, numbers: tuple[str, ...]) -> None:
    """Add NUMBERS to the list NAME. Being on a list is not consent: marketing also needs an opt-in.

    \b
    Example:
        smsgate lists add newsletter +12025550123 +12025550124
    """
    from smsgate.queue.lists import ListError

    try:
        added, already = ctx.store().lists.add_numbers(name, numbers, actor="cli", source="cli")
    except (ListError, NotFound) as exc:
        raise _fail(exc) from None
    click.echo(f"added {added} to {name.strip().lower()}" + (f" ({already} already on it)" if already else ""))


@lists_group.command("remove")
@click.argument("name")
@click.argument("numbers", nargs=-1, required=True)
@pass_ctx
def lists_remove(ctx: Context, name: str, numbers: tuple[str, ...]) -> None:
    """Take NUMBERS off the list NAME (their consent events stay on the ledger)."""
    from smsgate.queue.lists import ListError

    try:
        removed, missing = ctx.store().lists.remove_numbers(name, numbers, actor="cli")
    except (ListError, NotFound) as exc:
        raise _fail(exc) from None
    click.echo(f"removed {removed} from {name.strip().lower()}"
               + (f"; not on it: {', '.join(missing)}" if missing else ""))


@lists_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def lists_list(ctx: Context, as_json: bool) -> None:
    """Show every list with its keyword and number of members."""
    store = ctx.store()
    counts = store.lists.counts()
    rows = [{"name": li.name, "keyword": li.keyword or "", "members": counts.get(li.name, 0),
             "description": li.description or ""} for li in store.lists.all()]
    _print_rows(rows, ["name", "keyword", "members", "description"], as_json)


@lists_group.command("show")
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def lists_show(ctx: Context, name: str, limit: int, as_json: bool) -> None:
    """Show the list NAME: its members and whether marketing to the list may reach each one now."""
    store = ctx.store()
    try:
        found = store.lists.require(name)
        members = store.lists.members(found.name, limit=limit)
    except NotFound as exc:
        raise _fail(exc) from None
    rows = [{"number": m["number"], "name": _person(m), "added": m["added_at"][:19], "source": m["source"],
             "marketing": "yes" if store.consent.may_send(m["number"], "marketing", found.name) is None else "no"}
            for m in members]
    if as_json:
        click.echo(json.dumps({"name": found.name, "keyword": found.keyword, "description": found.description,
                               "members": store.lists.count(found.name), "rows": rows}, indent=2,
                              ensure_ascii=False))
        return
    click.echo(f"{found.name}: {store.lists.count(found.name)} members"
               + (f", keyword {found.keyword}" if found.keyword else "")
               + (f" - {found.description}" if found.description else ""))
    _print_rows(rows, ["number", "name", "added", "source", "marketing"], False)


@cli.group()
def segments() -> None:
    """Saved filters over contacts (tags, fields, language, zone, lists, consent, replies, answers)."""


@segments.command("create")
@click.argument("name")
@click.option("--where", "where", required=True,
              help='The filter, e.g. "tag:diabetes AND NOT replied:30d" (docs/contacts.md).')
@click.option("--description", help="What the segment is for.")
@click.option("--replace", is_flag=True, help="Replace the filter of an existing segment.")
@pass_ctx
def segments_create(ctx: Context, name: str, where: str, description: str | None, replace: bool) -> None:
    """Save the segment NAME; it is evaluated each time it is used.

    \b
    Example:
        smsgate segments create diabetes-quiet --where "tag:diabetes AND NOT replied:30d"
    """
    store = ctx.store()
    try:
        made = store.segments.create(name, where, actor="cli", description=description, replace=replace)
    except StoreError as exc:
        raise _fail(exc) from None
    click.echo(f"segment {made.name} saved: {made.filter} ({store.segments.preview(made.name).count} contacts now)")


@segments.command("preview")
@click.argument("name")
@click.option("--limit", type=click.IntRange(min=1, max=500), default=10, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def segments_preview(ctx: Context, name: str, limit: int, as_json: bool) -> None:
    """How many contacts the segment NAME selects now, and the first of them."""
    try:
        preview = ctx.store().segments.preview(name, limit=limit)
    except StoreError as exc:
        raise _fail(exc) from None
    rows = [{"number": r["number"], "name": _person(r), "language": r["language"] or "",
             "timezone": r["timezone"] or "", "tags": ", ".join(json.loads(r["tags"]))} for r in preview.rows]
    if as_json:
        click.echo(json.dumps({"segment": preview.segment, "filter": preview.filter, "count": preview.count,
                               "rows": rows}, indent=2, ensure_ascii=False))
        return
    click.echo(f"{preview.segment} ({preview.filter}): {preview.count} contacts")
    _print_rows(rows, ["number", "name", "language", "timezone", "tags"], False)


@segments.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def segments_list(ctx: Context, as_json: bool) -> None:
    """Show the saved segments and their filters."""
    rows = [{"name": sg.name, "filter": sg.filter, "description": sg.description or "",
             "updated": sg.updated_at[:19]} for sg in ctx.store().segments.all()]
    _print_rows(rows, ["name", "filter", "description", "updated"], as_json)


@segments.command("show")
@click.argument("name")
@pass_ctx
def segments_show(ctx: Context, name: str) -> None:
    """Show the segment NAME: its filter, who saved it, and how many contacts it selects now."""
    store = ctx.store()
    try:
        found = store.segments.require(name)
        preview = store.segments.preview(found.name, limit=0)
    except StoreError as exc:
        raise _fail(exc) from None
    click.echo(f"{found.name}: {found.filter}")
    if found.description:
        click.echo(f"  {found.description}")
    click.echo(f"  saved by {found.created_by} on {found.created_at[:19]}, changed {found.updated_at[:19]}")
    click.echo(f"  selects {preview.count} contacts now")


@segments.command("delete")
@click.argument("name")
@pass_ctx
def segments_delete(ctx: Context, name: str) -> None:
    """Delete the segment NAME (contacts and lists are not touched)."""
    try:
        ctx.store().segments.delete(name, actor="cli")
    except NotFound as exc:
        raise _fail(exc) from None
    click.echo(f"deleted segment {name.strip().lower()}")


@cli.command()
@click.option("--since", help='Only since this clinic day or time, e.g. "2026-12-01" (midnight at the clinic).')
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def report(ctx: Context, since: str | None, as_json: bool) -> None:
    """Answers to reminders, ratings, keyword hits, opt-outs and likely opt-outs."""
    from dataclasses import asdict

    from smsgate.keywords import build_report
    from smsgate.queue.clock import ts

    try:
        start = ctx.clinic_clock.parse(since) if since else None
    except ClinicTimeError as exc:
        raise click.BadParameter(str(exc), param_hint="--since") from None
    rep = build_report(ctx.store(), since=ts(start) if start else None)
    if as_json:
        click.echo(json.dumps({**asdict(rep), "rating_average": rep.rating_average}, indent=2, default=str))
        return
    for line in rep.lines(ctx.clinic_clock):
        click.echo(line)


# --- appointments ------------------------------------------------------------------------------------

def _appointment_service(ctx: Context) -> Any:
    from smsgate.appointments.service import AppointmentService
    from smsgate.keywords import HoursError

    try:
        return AppointmentService(ctx.config)
    except HoursError as exc:
        raise _fail(exc) from None


@cli.group()
def appointments() -> None:
    """Appointments from the clinic's calendar or EHR, and the reminders planned for them."""


@appointments.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Show what would change; store nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def appointments_import(ctx: Context, file: str, dry_run: bool, as_json: bool) -> None:
    """Import appointments from FILE: an iCalendar file (.ics) or FHIR R4 JSON (.json, an Appointment or a
    Bundle). Importing the same file again changes nothing; items that cannot be read are listed one by
    one (exit status 1) and the others are still imported.

    \b
    Example:
        smsgate appointments import export.ics --dry-run
    """
    from pathlib import Path

    service = _appointment_service(ctx)
    report = service.import_file(ctx.store(), Path(file), dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
    else:
        for line in report.lines():
            click.echo(line)
    if report.errors:
        sys.exit(1)


@appointments.command("list")
@click.option("--date", "day", default="today", show_default=True,
              help="today, tomorrow or a date (YYYY-MM-DD), in the clinic's time zone.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def appointments_list(ctx: Context, day: str, as_json: bool) -> None:
    """List the appointments of one day, times in the clinic's time zone (clinic.timezone)."""
    from datetime import date, timedelta

    service = _appointment_service(ctx)
    store = ctx.store()
    today = service.today(store)
    words = {"today": today, "tomorrow": today + timedelta(days=1)}
    if day.strip().lower() in words:
        chosen = words[day.strip().lower()]
    else:
        try:
            chosen = date.fromisoformat(day.strip())
        except ValueError:
            raise click.BadParameter(f"{day!r} is not a day; write today, tomorrow or a date such as 2026-11-24",
                                     param_hint="--date") from None
    rows = []
    for a in service.on_day(store, chosen):
        local = a.start.astimezone(service.clinic_zone)
        pending = store.appointments.reminders(a.id, states=("pending",))
        rows.append({
            "id": a.external_id, "time": "all day" if a.all_day else f"{local:%H:%M}",
            "start": local.isoformat(), "minutes": a.duration_minutes, "status": a.status,
            "patient": a.patient_name, "number": a.number, "provider": a.provider, "location": a.location,
            "type": a.appointment_type,
            "next_reminder": (f"{pending[0].send_at.astimezone(service.clinic_zone):%Y-%m-%d %H:%M}"
                              if pending else None),
        })
    if not as_json:
        click.echo(f"{chosen:%A %Y-%m-%d} ({service.clinic_zone})")
    _print_rows(rows, ["time", "minutes", "status", "patient", "number", "provider", "location", "type",
                       "next_reminder", "id"], as_json)


# --- the waitlist ----------------------------------------------------------------------------------------

@cli.group()
def waitlist() -> None:
    """Patients waiting for an earlier slot: a cancellation's slot is offered to them by text."""


@waitlist.command("add")
@click.argument("number")
@click.option("--provider", help="Only slots with this provider (as the calendar names them).")
@click.option("--location", help="Only slots at this location.")
@click.option("--from", "earliest", help="Only slots from this time on (clinic time, e.g. 2026-12-01 08:00).")
@click.option("--until", "latest", help="Only slots up to this time (clinic time).")
@click.option("--appointment", help="The patient's appointment (its id in the clinic's system) to move into a slot.")
@click.option("--notes", help="Free text for staff.")
@pass_ctx
def waitlist_add(ctx: Context, number: str, provider: str | None, location: str | None, earliest: str | None,
                 latest: str | None, appointment: str | None, notes: str | None) -> None:
    """Put the patient at NUMBER on the waitlist.

    \b
    Example:
        smsgate waitlist add +12125550161 --provider "Dr. Rivera" --until "2026-12-04 17:00"
    """
    from smsgate.clinic_time import ClinicTimeError
    from smsgate.queue.waitlist import WaitlistError

    store = ctx.store()
    try:
        window = [ctx.clinic_clock.parse(t, now=store.clock()) if t else None for t in (earliest, latest)]
    except ClinicTimeError as exc:
        raise _fail(exc) from None
    appointment_id = None
    if appointment:
        found = store.appointments.by_external_id(appointment)
        if found is None:
            raise click.ClickException(f"no appointment {appointment!r}; `smsgate appointments list` shows their ids")
        appointment_id = found.id
    try:
        entry = store.waitlist.add(number, source="staff", actor="cli", provider=provider, location=location,
                                   earliest=window[0], latest=window[1], appointment_id=appointment_id, notes=notes)
    except WaitlistError as exc:
        raise _fail(exc) from None
    click.echo(f"waitlist entry #{entry.id}: {entry.number} is waiting")


@waitlist.command("list")
@click.option("--all", "show_all", is_flag=True, help="Also entries that were filled or removed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def waitlist_list(ctx: Context, show_all: bool, as_json: bool) -> None:
    """The waitlist, first come first (the order offers go out in)."""
    from smsgate.queue.waitlist import ENTRY_STATES

    store = ctx.store()
    rows = [e.as_dict() for e in store.waitlist.entries(states=ENTRY_STATES if show_all else ("waiting",))]
    _print_rows(rows, ["id", "number", "name", "provider", "location", "earliest", "latest", "state", "source",
                       "created_at", "notes"], as_json, clock=ctx.clinic_clock,
                times=("earliest", "latest", "created_at"))


@waitlist.command("remove")
@click.argument("entry_id", type=int)
@pass_ctx
def waitlist_remove(ctx: Context, entry_id: int) -> None:
    """Take entry ENTRY_ID (from `smsgate waitlist list`) off the waitlist."""
    from smsgate.queue.waitlist import WaitlistError

    try:
        entry = ctx.store().waitlist.remove(entry_id, actor="cli")
    except (WaitlistError, NotFound) as exc:
        raise _fail(exc) from None
    click.echo(f"waitlist entry #{entry.id} ({entry.number}) removed")


# --- contacts --------------------------------------------------------------------------------------------

def _safe(value: Any) -> str:
    from smsgate.names import safe_text

    return safe_text("" if value is None else str(value))


def _contact_options(command: Any) -> Any:
    for option in reversed([
        click.option("--first-name", help="First name (\"\" clears it)."),
        click.option("--last-name", help="Last name (\"\" clears it)."),
        click.option("--language", help="Preferred language: en, es, pt-BR, ... or a name such as Spanish."),
        click.option("--timezone", help="IANA time zone, e.g. America/Chicago (default: from the number)."),
        click.option("--notes", help="Free text for staff (\"\" clears it)."),
        click.option("--field", "fields", multiple=True,
                     help="A field of the clinic's own: KEY=VALUE, e.g. mrn=A-1042 (repeatable; KEY= removes it)."),
    ]):
        command = option(command)
    return command


def _contact_values(first_name: str | None, last_name: str | None, language: str | None, timezone: str | None,
                    notes: str | None, fields: tuple[str, ...], tags: tuple[str, ...] = ()) -> Any:
    from smsgate.queue.contacts import ContactError, ContactValues

    parsed: dict[str, str | None] = {}
    for item in fields:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE (e.g. mrn=A-1042)", param_hint="--field")
        parsed[key.strip()] = value if value.strip() else None
    try:
        return ContactValues(first_name=first_name, last_name=last_name, language=language, timezone=timezone,
                             notes=notes, fields=parsed, add_tags=tags)
    except ContactError as exc:
        raise _fail(exc) from None


def _saved_line(saved: Any, verb: str) -> str:
    who = saved.contact.display
    if saved.created:
        return f"{verb} {who}"
    if saved.changed:
        return f"{who}: changed {', '.join(saved.changed)}"
    return f"{who}: nothing changed"


@cli.group()
def contacts() -> None:
    """Contacts: the people behind the numbers (names, language, time zone, fields, tags, notes, history)."""


@contacts.command("add")
@click.argument("number")
@_contact_options
@click.option("--tag", "tags", multiple=True, help="A tag, e.g. vip (repeatable).")
@pass_ctx
def contacts_add(ctx: Context, number: str, first_name: str | None, last_name: str | None, language: str | None,
                 timezone: str | None, notes: str | None, fields: tuple[str, ...], tags: tuple[str, ...]) -> None:
    """Add the contact NUMBER (national numbers are read in clinic.region). Adding a number that exists
    already sets the values given on it, so running the same command twice changes nothing.

    \b
    Example:
        smsgate contacts add "(202) 555-0123" --first-name Zoë --last-name Núñez --language es \\
            --field mrn=A-1042 --tag vip
    """
    from smsgate.queue.contacts import ContactError

    values = _contact_values(first_name, last_name, language, timezone, notes, fields, tags)
    try:
        saved = ctx.store().contacts.save(number, values, actor="cli")
    except ContactError as exc:
        raise _fail(exc) from None
    click.echo(_safe(_saved_line(saved, "added")))


@contacts.command("edit")
@click.argument("number")
@_contact_options
@pass_ctx
def contacts_edit(ctx: Context, number: str, first_name: str | None, last_name: str | None, language: str | None,
                  timezone: str | None, notes: str | None, fields: tuple[str, ...]) -> None:
    """Change values of the contact NUMBER; what is not given stays as it is.

    \b
    Example:
        smsgate contacts edit +12025550123 --timezone America/Chicago --field mrn=
    """
    from smsgate.queue.contacts import ContactError

    values = _contact_values(first_name, last_name, language, timezone, notes, fields)
    if values.is_empty():
        raise click.UsageError("say what to change, e.g. --first-name Zoë or --field mrn=A-1042")
    try:
        saved = ctx.store().contacts.save(number, values, actor="cli", create=False)
    except (ContactError, NotFound) as exc:
        raise _fail(exc) from None
    click.echo(_safe(_saved_line(saved, "added")))


def _contact_detail(store: Store, contact: Any, messages: int) -> dict[str, Any]:
    return {**contact.to_json(store.lists.lists_of(contact.id)),
            "consent": store.consent.history(contact.number),
            "answers": views.contact_answers(store, contact.number, limit=messages),
            "messages": views.contact_messages(store, contact.number, limit=messages)}


@contacts.command("show")
@click.argument("number")
@click.option("--messages", type=click.IntRange(min=0), default=20, show_default=True,
              help="How many of the latest messages (both ways) to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def contacts_show(ctx: Context, number: str, messages: int, as_json: bool) -> None:
    """Show the contact NUMBER: its values, lists, consent events, answers and latest messages."""
    store = ctx.store()
    try:
        contact = store.contacts.require(number)
    except NotFound as exc:
        raise _fail(exc) from None
    detail = _contact_detail(store, contact, messages)
    if as_json:
        click.echo(json.dumps(detail, indent=2, default=str, ensure_ascii=False))
        return
    zones = ", ".join(detail["timezones"]) or "unknown"
    facts = [
        ("first name", detail["first_name"]), ("last name", detail["last_name"]), ("language", detail["language"]),
        ("time zone", detail["timezone"] or f"{zones} (from the number)"),
        ("tags", ", ".join(detail["tags"])), ("lists", ", ".join(detail["lists"])),
        ("fields", ", ".join(f"{k}={v}" for k, v in sorted(detail["fields"].items()))),
        ("notes", detail["notes"]), ("created", detail["created_at"][:19]), ("updated", detail["updated_at"][:19]),
        ("erased", (detail["erased_at"] or "")[:19]),
    ]
    click.echo(_safe(contact.display))
    for name, value in facts:
        if value:
            click.echo(f"  {name:<11} {_safe(value)}")
    click.echo("consent:")
    for e in detail["consent"]:
        click.echo(_safe(f"  {e['at'][:19]}  {e['event']:<7} scope={e['scope']} source={e['source']}"
                         f" evidence={e['evidence'] or ''}"))
    if not detail["consent"]:
        click.echo("  no consent events: transactional messages only; marketing needs an opt-in")
    if detail["answers"]:
        click.echo("answers:")
        for a in detail["answers"]:
            click.echo(_safe(f"  #{a['id']} {_cell(a['body'], 40)} -> {a['outcome']} ({(a['outcome_at'] or '')[:19]})"))
    click.echo(f"messages (latest {messages}, newest first):")
    for m in detail["messages"]:
        what = "in " if m["direction"] == "in" else f"out {m['state']}"
        click.echo(f"  {m['at'][:19]}  {what:<14} {_cell(m['body'], 70)}")
    if not detail["messages"]:
        click.echo("  (none)")


@contacts.command("list")
@click.option("--search", "query", help="Part of a name or number (case and accents aside).")
@click.option("--tag", help="Only contacts with this tag.")
@click.option("--list", "list_name", help="Only contacts on this list.")
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def contacts_list(ctx: Context, query: str | None, tag: str | None, list_name: str | None, limit: int, offset: int,
                  as_json: bool) -> None:
    """List contacts, by name, named ones first."""
    store = ctx.store()
    found = store.contacts.search(q=query, tag=tag, list_name=list_name, limit=limit, offset=offset)
    if as_json:
        click.echo(json.dumps([c.to_json(store.lists.lists_of(c.id)) for c in found], indent=2, default=str,
                              ensure_ascii=False))
        return
    rows = [{"number": c.number, "name": c.name, "language": c.language, "tags": ", ".join(c.tags),
             "lists": ", ".join(store.lists.lists_of(c.id)), "erased": (c.erased_at or "")[:10]} for c in found]
    _print_rows(rows, ["number", "name", "language", "tags", "lists", "erased"], False)
    total = store.contacts.count(q=query, tag=tag, list_name=list_name)
    if total > offset + len(found):
        click.echo(f"({offset + len(found)} of {total}; see more with --offset {offset + len(found)})")


def _tagging(ctx: Context, number: str, tags: tuple[str, ...], add: bool) -> None:
    from smsgate.queue.contacts import ContactError, ContactValues

    try:
        values = ContactValues(add_tags=tags) if add else ContactValues(remove_tags=tags)
        saved = ctx.store().contacts.save(number, values, actor="cli", create=False)
    except (ContactError, NotFound) as exc:
        raise _fail(exc) from None
    click.echo(_safe(f"{saved.contact.display}: tags {', '.join(saved.contact.tags) or '(none)'}"))


@contacts.command("tag")
@click.argument("number")
@click.argument("tags", nargs=-1, required=True)
@pass_ctx
def contacts_tag(ctx: Context, number: str, tags: tuple[str, ...]) -> None:
    """Add TAGS to the contact NUMBER, e.g. `smsgate contacts tag +12025550123 vip flu-2026`."""
    _tagging(ctx, number, tags, add=True)


@contacts.command("untag")
@click.argument("number")
@click.argument("tags", nargs=-1, required=True)
@pass_ctx
def contacts_untag(ctx: Context, number: str, tags: tuple[str, ...]) -> None:
    """Remove TAGS from the contact NUMBER."""
    _tagging(ctx, number, tags, add=False)


@contacts.command("delete")
@click.argument("number")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def contacts_delete(ctx: Context, number: str, yes: bool) -> None:
    """Erase the contact NUMBER (a patient's right-to-erasure request). Removes the name, language, time
    zone, fields, tags, notes, list memberships and the text of every message both ways; keeps the number,
    the consent ledger and the audit trail (who did what when), which the law requires. Cannot be undone.
    """
    store = ctx.store()
    try:
        contact = store.contacts.require(number)
    except NotFound as exc:
        raise _fail(exc) from None
    if not yes:
        click.confirm(_safe(f"Erase {contact.display}? Their name, fields, notes, tags, lists and the text of "
                            "every message go for good; the number, consent events and audit trail stay"),
                      abort=True)
    result = store.erasure.erase(contact.number, actor="cli")
    for line in result.lines():
        click.echo(line)


@contacts.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Show exactly what would happen; change nothing.")
@click.option("--map", "mapping", help='Columns by meaning: "Mobile=number,First=first_name,MRN=field.mrn,Fax=-".')
@click.option("--tag", "tags", multiple=True, help="Tag every imported contact (repeatable).")
@click.option("--list", "list_name", help="Put every imported contact on this list (created if new).")
@click.option("--update/--skip-existing", "update", default=True, show_default=True,
              help="For numbers already there: set the file's values, or leave those contacts alone.")
@click.option("--errors", "errors_path", type=click.Path(dir_okay=False, writable=True),
              help="Write the rows that failed, with a reason column, to this CSV (fix it and import it again).")
@click.option("--rows", "show_rows", is_flag=True, help="List what happens to each row (the first 1000).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_ctx
def contacts_import(ctx: Context, file: str, dry_run: bool, mapping: str | None, tags: tuple[str, ...],
                    list_name: str | None, update: bool, errors_path: str | None, show_rows: bool,
                    as_json: bool) -> None:
    """Import contacts from a CSV export (a practice system's, or Excel's). docs/contacts.md has the rules.

    Exit status: 0 when every row imported, 3 when some rows had errors (the others imported), 1 when the
    file could not be read.

    \b
    Example:
        smsgate contacts import patients.csv --dry-run --map "Mobile=number,MRN=field.mrn" --list recall
    """
    import os

    from smsgate.imports import ContactImport, FileError, open_table, parse_mapping

    store = ctx.store()
    errors_out = None
    try:
        with open(file, "rb") as source:
            table = open_table(source, parse_mapping(mapping))
            if errors_path:
                errors_out = open(errors_path, "w", encoding="utf-8-sig", newline="")
            progress = _ImportProgress(table.size)
            job = ContactImport(store, actor="cli", source_name=os.path.basename(file), region=ctx.config.clinic.region,
                                tags=tags, to_list=list_name, mode="update" if update else "skip",
                                dry_run=dry_run, errors_out=errors_out, on_progress=progress.update)
            with progress:
                report = job.run(table)
    except FileError as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    except OSError as exc:
        raise click.ClickException(f"cannot read {file} or write {errors_path} ({exc.strerror or exc})") from None
    finally:
        if errors_out is not None:
            errors_out.close()
    if errors_path and report.error_count == 0:
        os.remove(errors_path)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    else:
        for line in report.lines(rows=show_rows or dry_run):
            click.echo(_safe(line))
        if errors_path and report.error_count:
            click.echo(f"wrote the {report.error_count} rows with errors to {errors_path}")
    if report.error_count:
        raise SystemExit(3)


class _ImportProgress:
    """A progress bar on a terminal, a line every 10,000 rows otherwise (both on stderr)."""

    def __init__(self, size: int | None) -> None:
        self.size = size
        self.bar: Any = None
        self.done = 0
        self.next_line = 10_000

    def __enter__(self) -> _ImportProgress:
        if sys.stderr.isatty() and self.size:
            self.bar = click.progressbar(length=self.size, label="importing", file=sys.stderr)
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.__exit__(*exc)

    def update(self, rows: int, position: int, size: int | None) -> None:
        if self.bar is not None:
            self.bar.update(max(0, position - self.done))
            self.done = max(self.done, position)
        elif rows >= self.next_line:
            click.echo(f"... {rows} rows read", err=True)
            self.next_line = (rows // 10_000 + 1) * 10_000


# --- web, users and tokens ---------------------------------------------------------------------------

@cli.group()
def users() -> None:
    """Staff accounts for the web pages (roles: admin, staff, viewer)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "staff", "viewer"]), required=True,
              help="admin: everything; staff: reply, assign, export; viewer: read only.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@pass_ctx
def users_add(ctx: Context, name: str, role: str, password_stdin: bool) -> None:
    """Create the account NAME; the password is asked twice (or read with --password-stdin).

    \b
    Example:
        smsgate users add maria --role staff
    """
    from smsgate.queue.accounts import AccountError

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = ctx.store().accounts.add_user(name, password, role, actor="cli")
    except AccountError as exc:
        raise _fail(exc) from None
    click.echo(f"added {user.username} ({user.role})")


@users.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def users_list(ctx: Context, as_json: bool) -> None:
    """List accounts with their role and last login."""
    rows = [{"name": u.username, "role": u.role, "disabled": "yes" if u.disabled else "",
             "created": u.created_at, "last_login": u.last_login_at}
            for u in ctx.store().accounts.list_users()]
    _print_rows(rows, ["name", "role", "disabled", "created", "last_login"], as_json, clock=ctx.clinic_clock,
                times=("created", "last_login"))


@users.command("disable")
@click.argument("name")
@pass_ctx
def users_disable(ctx: Context, name: str) -> None:
    """Disable the account NAME and end its open sessions."""
    try:
        ctx.store().accounts.disable_user(name, actor="cli")
    except NotFound as exc:
        raise _fail(exc) from None
    click.echo(f"disabled {name}")


@cli.group()
def tokens() -> None:
    """API tokens for other systems (sent as `Authorization: Bearer <token>`)."""


@tokens.command("create")
@click.argument("name")
@click.option("--scope", type=click.Choice(["send", "read", "admin"]), required=True,
              help="send: queue messages and follow them; read: read everything; admin: both.")
@pass_ctx
def tokens_create(ctx: Context, name: str, scope: str) -> None:
    """Create a token for NAME (who uses it); it is printed once and cannot be shown again.

    \b
    Example:
        smsgate tokens create scheduling-system --scope send
    """
    from smsgate.queue.accounts import AccountError

    try:
        token, secret = ctx.store().accounts.create_token(name, scope, actor="cli")
    except AccountError as exc:
        raise _fail(exc) from None
    click.echo(secret)
    click.echo(f"token #{token.id} ({token.scope}) for {token.name}: store it now, it is not shown again",
               err=True)


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def tokens_list(ctx: Context, as_json: bool) -> None:
    """List tokens (prefix only, never the secret)."""
    rows = [{"id": t.id, "name": t.name, "prefix": t.prefix + "...", "scope": t.scope,
             "created": t.created_at, "last_used": t.last_used_at,
             "revoked": t.revoked_at} for t in ctx.store().accounts.list_tokens()]
    _print_rows(rows, ["id", "name", "prefix", "scope", "created", "last_used", "revoked"], as_json,
                clock=ctx.clinic_clock, times=("created", "last_used", "revoked"))


@tokens.command("revoke")
@click.argument("token_id", type=int)
@pass_ctx
def tokens_revoke(ctx: Context, token_id: int) -> None:
    """Revoke token TOKEN_ID at once (see `smsgate tokens list`)."""
    try:
        ctx.store().accounts.revoke_token(token_id, actor="cli")
    except NotFound as exc:
        raise _fail(exc) from None
    click.echo(f"revoked token #{token_id}")


@cli.command()
@click.option("--bind", help="Address to listen on (default: web.bind, 127.0.0.1).")
@click.option("--port", type=int, help="Port (default: web.port).")
@pass_ctx
def web(ctx: Context, bind: str | None, port: int | None) -> None:
    """Run the staff pages and the API alone (without the daemon), with waitress."""
    from smsgate.web import create_app
    from smsgate.web.serve import serve

    cfg = ctx.config
    try:
        app = create_app(cfg)
    except (StoreError, ConfigError) as exc:
        raise _fail(exc) from None
    host, listen_port = bind or cfg.web.bind, port or cfg.web.port
    click.echo(f"smsgate web on http://{host}:{listen_port} (Ctrl-C stops)", err=True)
    serve(app, host, listen_port)


# --- daemon and simulator ----------------------------------------------------------------------------

@cli.command()
@click.option("--no-web", is_flag=True, help="Do not start the status page and API (daemon only).")
@pass_ctx
def serve(ctx: Context, no_web: bool) -> None:
    """Run the daemon: drive the modems, store what arrives, send what is queued (until SIGTERM).

    With no [[modems]] in the configuration it starts simulated modems ([simulator] section), so a fresh
    install shows a working system. Under systemd it reports READY/WATCHDOG (see udev/smsgate.service).
    """
    from smsgate.gateway import Gateway, StartupError

    cfg = ctx.config
    if not ctx.verbose:
        # The daemon logs at the configured level (INFO by default, for the journal); -v overrides it.
        logging.getLogger().setLevel(cfg.log_level.upper())
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    try:
        code = Gateway(cfg, web=not no_web, announce=click.echo).run()
    except StartupError as exc:
        raise _fail(exc) from None
    if code:
        raise SystemExit(code)


@cli.group()
def sim() -> None:
    """Simulated modems: run them, text from a simulated phone, read a phone's inbox, inject faults."""


def _sim_client(ctx: Context, socket_path: str | None) -> Any:
    from smsgate.simulated import control_socket
    from smsgate.simulator import SimulatorClient

    if socket_path:
        return SimulatorClient(socket_path)
    cfg = ctx.config
    if not cfg.simulator.control_socket:
        status = ctx.store().get_status("daemon")
        if status and status[0].get("simulator_socket"):
            return SimulatorClient(status[0]["simulator_socket"])
    return SimulatorClient(control_socket(cfg))


_socket_option = click.option("--socket", "socket_path", type=click.Path(dir_okay=False),
                              help="Control socket of the simulator (default: the one `smsgate serve` started).")


@sim.command("start")
@click.option("--modems", type=int, help="Number of simulated modems (default: simulator.modems).")
@click.option("--latency", help='Send latency in seconds, e.g. "0" or "0.5-1.5" (default: simulator.latency).')
@pass_ctx
def sim_start(ctx: Context, modems: int | None, latency: str | None) -> None:
    """Run simulated modems in the foreground (until Ctrl-C), for a daemon configured to use their paths."""
    import dataclasses
    import signal
    import threading

    from smsgate.simulated import control_socket, start_simulator

    cfg = ctx.config
    sc = dataclasses.replace(cfg.simulator, **{k: v for k, v in (("modems", modems), ("latency", latency))
                                                 if v is not None})
    try:
        simulator, _ = start_simulator(dataclasses.replace(cfg, simulator=sc))
    except ConfigError as exc:
        raise _fail(exc) from None
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for m in simulator.modems:
            click.echo(f"{m.name}\t{m.msisdn}\t{m.path}\timei={m.imei}")
        click.echo(f"control socket: {control_socket(cfg)}")
        stop.wait()
    finally:
        simulator.close()
        for s, handler in previous.items():
            signal.signal(s, handler)


@sim.command("text")
@click.argument("words", nargs=-1, required=True, metavar="[SENDER] TO TEXT")
@click.option("--from", "from_number", help="The simulated phone that texts (instead of SENDER).")
@click.option("--concat-ref", type=click.IntRange(0, 255),
              help="Concatenation reference (0-255) of a long text's parts (default: random).")
@click.option("--shuffle", is_flag=True, help="Deliver a long text's parts out of order.")
@_socket_option
@pass_ctx
def sim_text(ctx: Context, words: tuple[str, ...], from_number: str | None, concat_ref: int | None, shuffle: bool,
             socket_path: str | None) -> None:
    """Text TO (a simulated modem's number) from the simulated phone SENDER (or --from).

    \b
    Example:
        smsgate sim text --from +12025550123 --concat-ref 42 +15550001001 "a long text..."
    """
    from smsgate.simulator import ControlError

    if from_number is not None:
        if len(words) != 2:
            raise click.UsageError("with --from, give TO and TEXT: smsgate sim text --from NUMBER TO TEXT")
        sender, to, text = from_number, *words
    elif len(words) == 3:
        sender, to, text = words
    else:
        raise click.UsageError("give SENDER TO TEXT, or --from SENDER TO TEXT")
    try:
        parts = _sim_client(ctx, socket_path).text(sender, to, text, shuffle=shuffle, concat_ref=concat_ref)
    except ControlError as exc:
        raise _fail(exc) from None
    click.echo(f"sent {parts} part{'s' if parts != 1 else ''} from {sender} to {to}")


@sim.command("inbox")
@click.argument("number")
@_socket_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def sim_inbox(ctx: Context, number: str, socket_path: str | None, as_json: bool) -> None:
    """What the simulated phone NUMBER has received."""
    from smsgate.simulator import ControlError

    try:
        answer = _sim_client(ctx, socket_path).inbox(number)
    except ControlError as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps(answer, indent=2, ensure_ascii=False))
        return
    for text in answer["texts"] or ["(nothing received)"]:
        click.echo(text)


class _FaultCommand(click.Command):
    """`sim fault`, whose help lists the faults from the simulator's own table when it is shown."""

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from smsgate.simulator.fault_table import usage_lines

        self.help = (
            "Inject a fault into simulated MODEM. KIND and its ARGS (in this order, or any as NAME=VALUE, e.g. "
            "cms_error 38 after=1; on|off for flags):\n\n\b\n" + "\n".join(usage_lines())
            + "\n\ndocs/simulator.md says what each does."
        )
        super().format_help_text(ctx, formatter)


@sim.command("fault", cls=_FaultCommand)
@click.argument("modem")
@click.argument("kind")
@click.argument("args", nargs=-1)
@_socket_option
@pass_ctx
def sim_fault(ctx: Context, modem: str, kind: str, args: tuple[str, ...], socket_path: str | None) -> None:
    """Inject a fault into simulated MODEM (unplug, hang, cms_error, ...; --help lists them all)."""
    from smsgate.simulator import ControlError

    try:
        _sim_client(ctx, socket_path).fault(modem, kind, *args)
    except ControlError as exc:
        raise _fail(exc) from None
    click.echo(f"{modem}: {kind} {' '.join(args)}".rstrip())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
