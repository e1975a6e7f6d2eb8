"""The `smsgate` command: a thin click layer over the library.

Each command opens what it needs, makes one library call, and turns library errors into sentences an
admin can act on (exit status 1). Logging handlers are configured here and nowhere else.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from smsgate.config import Config, ConfigError, find_config_path, load_config, render_default_config
from smsgate.queue import MessageRejected, NotFound, Store, StoreError

log = logging.getLogger("smsgate")


@dataclass
class Context:
    config_path: str | None
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

    def store(self) -> Store:
        cfg = self.config
        try:
            store = Store.open(cfg.database_path, default_region=cfg.clinic.region or None)
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
    obj = Context(config_path)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_default_config(database, demo=demo), encoding="utf-8")
    cfg = ctx.config
    store = ctx.store()
    click.echo(f"wrote {path}")
    click.echo(f"database ready at {store.path}")
    if cfg.uses_simulator:
        click.echo("no modem configured: `smsgate serve` will start simulated modems")


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

def _parse_expect(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    if value.strip() in ("1-5", "rating"):
        return {str(i): f"rating:{i}" for i in range(1, 6)}
    out: dict[str, str] = {}
    for item in value.split(","):
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: write answers as WORD=outcome, e.g. YES=confirmed,NO=cancelled")
        word, outcome = item.split("=", 1)
        out[word.strip().upper()] = outcome.strip()
    return out


def _parse_follow_up(values: tuple[str, ...]) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for item in values:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: write follow-ups as WORD=\"text\"")
        word, text = item.split("=", 1)
        out[word.strip().upper()] = text
    return out or None


@cli.command()
@click.argument("number")
@click.argument("text")
@click.option("--kind", type=click.Choice(["transactional", "reply", "bulk", "marketing"]),
              default="transactional", show_default=True, help="Decides priority and the consent rule.")
@click.option("--at", "not_before", type=click.DateTime(formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]),
              help="Send no earlier than this local time.")
@click.option("--expect", help="Expected answers: YES=confirmed,NO=cancelled,1=reschedule or 1-5 for a rating.")
@click.option("--follow-up", multiple=True, help='Reply to an answer: YES="See you then!" (repeatable).')
@click.option("--key", "idempotency_key", help="Idempotency key: the same key twice queues one message.")
@pass_ctx
def send(ctx: Context, number: str, text: str, kind: str, not_before: datetime | None, expect: str | None,
         follow_up: tuple[str, ...], idempotency_key: str | None) -> None:
    """Queue TEXT for NUMBER (international form, e.g. +15551234567).

    \b
    Example:
        smsgate send +15551234567 "Reminder: Dr Rivera 3:15 PM tomorrow. Reply YES to confirm" \\
            --expect YES=confirmed,NO=cancelled --follow-up YES="See you then!"
    """
    cfg = ctx.config
    nb = not_before.astimezone(UTC) if not_before else None
    try:
        result = ctx.store().enqueue(
            number, text, kind=kind, not_before=nb, expect=_parse_expect(expect),
            follow_up=_parse_follow_up(follow_up), idempotency_key=idempotency_key, created_by="cli",
            source="cli", max_parts=cfg.sending.max_parts, max_attempts=cfg.sending.max_attempts,
        )
    except MessageRejected as exc:
        raise _fail(exc) from None
    verb = "queued" if result.created else "already queued"
    click.echo(f"{verb} #{result.id} ({result.parts} part{'s' if result.parts != 1 else ''}, {result.encoding})")


def _print_rows(rows: list[dict[str, Any]], columns: list[str], as_json: bool) -> None:
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
    text = "" if value is None else str(value)
    text = text.replace("\n", " ").replace("\r", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


@cli.command()
@click.option("--state", help="Only messages in this state (queued, submitted, failed, unknown, ...).")
@click.option("--limit", default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def outbox(ctx: Context, state: str | None, limit: int, as_json: bool) -> None:
    """List outbound messages, newest first, with the reason for each failure."""
    msgs = ctx.store().list_messages(state=state, limit=limit)
    rows = [
        {"id": m.id, "to": m.to_number, "state": m.state.value, "kind": m.kind.value, "parts": m.parts_total,
         "created": m.created_at[:19], "outcome": m.outcome, "error": m.last_error, "text": m.body}
        for m in msgs
    ]
    _print_rows(rows, ["id", "to", "state", "kind", "parts", "created", "outcome", "error", "text"], as_json)


@cli.command()
@click.option("--limit", default=30, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def inbox(ctx: Context, limit: int, as_json: bool) -> None:
    """List received messages, newest first."""
    rows = ctx.store().list_inbound(limit=limit)
    out = [
        {"id": r["id"], "from": r["sender"], "received": r["received_at"][:19], "keyword": r["keyword"],
         "flag": "undecodable" if r["decode_error"] else ("gap" if r["missing_parts"] else ""), "text": r["body"]}
        for r in rows
    ]
    _print_rows(out, ["id", "from", "received", "keyword", "flag", "text"], as_json)


@cli.command()
@click.argument("message_id", type=int)
@pass_ctx
def cancel(ctx: Context, message_id: int) -> None:
    """Cancel a queued (or unknown) message."""
    try:
        ctx.store().cancel(message_id, actor="cli")
    except (NotFound, StoreError) as exc:
        raise _fail(exc) from None
    click.echo(f"cancelled #{message_id}")


@cli.command()
@click.argument("message_id", type=int)
@pass_ctx
def resend(ctx: Context, message_id: int) -> None:
    """Send an `unknown` or `failed` message again (a person has checked it did not arrive)."""
    try:
        ctx.store().resend(message_id, actor="cli")
    except (NotFound, StoreError) as exc:
        raise _fail(exc) from None
    click.echo(f"re-queued #{message_id}")


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def status(ctx: Context, as_json: bool) -> None:
    """Show the daemon, every modem's state, the queues and open alerts."""
    from smsgate.status import gather_status

    report = gather_status(ctx.store(), now=datetime.now(UTC))
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
        return
    click.echo(report["daemon"]["summary"])
    _print_rows(report["modems"], ["name", "state", "signal", "registration", "operator", "storage",
                                   "sent", "failed", "received", "last_error"], False)
    click.echo("")
    click.echo("queue: " + ", ".join(f"{k} {v}" for k, v in report["queue"].items()) or "queue: empty")
    if report["oldest_queued_age_s"] is not None:
        click.echo(f"oldest queued message: {int(report['oldest_queued_age_s'])} s old")
    for alert in report["alerts"]:
        click.echo(f"ALERT [{alert['level']}] {alert['message']}")


def _echo_path(p: Path) -> None:
    click.echo(str(p))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
