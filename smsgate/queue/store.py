"""`Store`: the one door to the SQLite database that the daemon, CLI and web app share.

Each process (and each thread) opens its own `Store`; they coordinate only through the file. Writes that
must not interleave run in `BEGIN IMMEDIATE` transactions with a busy timeout, so a second writer waits
for the lock instead of failing, and a reader never blocks (WAL).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from .accounts import AccountsMixin
from .audit import AuditMixin
from .clock import Clock, system_clock, ts
from .consent import ConsentMixin
from .errors import DatabaseCorrupt, StoreError
from .inbound import InboundMixin
from .modems import ModemsMixin
from .outbox import OutboxMixin
from .people import PeopleMixin
from .reports import ReportsMixin
from .rules import RulesMixin
from .schema import migrations
from .webhooks import WebhooksMixin

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
_savepoints = itertools.count()


class Store(
    OutboxMixin,
    InboundMixin,
    ReportsMixin,
    PeopleMixin,
    ConsentMixin,
    ModemsMixin,
    AuditMixin,
    RulesMixin,
    AccountsMixin,
    WebhooksMixin,
):
    """A connection to the smsgate database with the operations every part needs."""

    def __init__(self, conn: sqlite3.Connection, *, path: Path, clock: Clock = system_clock) -> None:
        self._conn = conn
        self.path = path
        self.clock = clock
        self.default_region: str | None = None

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        clock: Clock = system_clock,
        migrate: bool = True,
        default_region: str | None = None,
    ) -> Store:
        """Open (creating if needed) and migrate the database at `path`."""
        p = Path(path)
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                str(p), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
        except (OSError, sqlite3.OperationalError) as exc:
            raise StoreError(
                f"cannot open the database {p}: {exc}. Check that the folder exists and that the user running "
                "smsgate may write to it (database = ... in the configuration)."
            ) from None
        try:
            return cls._setup(conn, p, clock=clock, migrate=migrate, default_region=default_region)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if isinstance(exc, sqlite3.OperationalError):
                raise StoreError(f"cannot use the database {p}: {exc}") from None
            raise DatabaseCorrupt(
                f"{p} is not a readable smsgate database ({exc}). If it should be one, stop smsgate, restore "
                "the latest backup and keep the damaged file; otherwise fix `database = ...` in the "
                "configuration."
            ) from None

    @classmethod
    def _setup(cls, conn: sqlite3.Connection, p: Path, *, clock: Clock, migrate: bool,
               default_region: str | None) -> Store:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            log.warning("database %s is in %s mode, not WAL; concurrent access will be slower", p, mode)
        # FULL: a commit survives power loss, not only a crash; the queue's promises depend on it.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        store = cls(conn, path=p, clock=clock)
        store.default_region = default_region
        if migrate:
            store.migrate()
        return store

    def migrate(self) -> list[str]:
        """Apply pending migrations; returns their names. Safe when several processes start at once."""
        db = Database(self._conn)
        pending = [m.name for m in migrations.pending(db)]
        if pending:
            with self.transaction():
                still = [m.name for m in migrations.pending(db)]
                if still:
                    # Each migration runs in a savepoint inside our IMMEDIATE transaction, so two
                    # processes opening a new database cannot both create the tables.
                    migrations.apply(db)
            return pending
        return []

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Store]:
        """A write transaction (`BEGIN IMMEDIATE`), or a savepoint when one is already open.

        Nesting lets the daemon store an inbound message and run the rules on it in one commit, while
        each store method stays safe to call on its own.
        """
        conn = self._conn
        if conn.in_transaction:
            name = f"sp_{next(_savepoints)}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield self
            except BaseException:
                if conn.in_transaction:
                    conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                    conn.execute(f"RELEASE SAVEPOINT {name}")
                raise
            else:
                conn.execute(f"RELEASE SAVEPOINT {name}")
        else:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield self
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    @contextlib.contextmanager
    def read_snapshot(self) -> Iterator[Store]:
        """Several reads that see one committed moment.

        Without it a page reading a modem's state and then its alerts can straddle a commit and show
        a modem offline with no alert, or ready with a stale one. In WAL mode this holds no lock that a
        writer waits for. Only for reads: a write inside it would have to upgrade a stale snapshot and
        could fail with "database is locked" at once; write with `transaction()` instead.
        """
        conn = self._conn
        if conn.in_transaction:
            yield self
            return
        conn.execute("BEGIN DEFERRED")
        try:
            yield self
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    # Small query helpers shared by the mixins.
    def _now(self) -> str:
        return ts(self.clock())

    def _one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        row = self._conn.execute(sql, params).fetchone()
        return dict(row) if row is not None else None

    def _all(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self._conn.execute(sql, params).fetchall()]

    def _exec(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, params)

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        """Read-only SQL for reports and pages."""
        return self._all(sql, params)

    def data_version(self) -> int:
        """Changes when another connection commits (`PRAGMA data_version`): a nearly free way for the
        daemon to notice messages the CLI or web app queued in another process."""
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def integrity_check(self) -> list[str]:
        """Run `PRAGMA integrity_check`; returns ['ok'] or raises `DatabaseCorrupt` with the findings."""
        try:
            rows = [r[0] for r in self._conn.execute("PRAGMA integrity_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            rows = [str(exc)]
        if rows != ["ok"]:
            raise DatabaseCorrupt(
                f"{self.path} is damaged: {'; '.join(rows[:5])}. Stop smsgate, restore the latest backup "
                f"(or run `sqlite3 {self.path} .recover`), and keep the damaged file for inspection."
            )
        fk = self._conn.execute("PRAGMA foreign_key_check").fetchall()
        if fk:
            raise DatabaseCorrupt(
                f"{self.path}: {len(fk)} rows point at missing rows (foreign_key_check); restore the latest "
                "backup or ask for help before smsgate writes more to it"
            )
        return rows

    def set_status(self, key: str, value: Any) -> None:
        """Publish a daemon fact (heartbeat, pid, simulator socket) for the CLI and the web page."""
        self._exec(
            "INSERT INTO daemon_status(key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, json.dumps(value), self._now()),
        )

    def get_status(self, key: str) -> tuple[Any, str] | None:
        row = self._one("SELECT value, updated_at FROM daemon_status WHERE key = ?", (key,))
        if row is None:
            return None
        return json.loads(row["value"]), row["updated_at"]
