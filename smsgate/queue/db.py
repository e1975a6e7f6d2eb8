"""`Db`: one connection to the smsgate database, the clock, transactions and the daemon's status rows.

Every repository of the store is handed one `Db` and reaches SQLite only through it. It is also the seam
where a second engine plugs in: SQLite-only statements (`BEGIN IMMEDIATE`, savepoints, `PRAGMA
data_version`, page-cache sizing, `integrity_check`) are named methods here, not spread through callers.

Each process (and each thread) opens its own; they coordinate only through the file. Writes that must not
interleave run in `BEGIN IMMEDIATE` transactions with a busy timeout, so a second writer waits for the lock
instead of failing, and a reader never blocks (WAL).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from .clock import Clock, system_clock, ts
from .errors import DatabaseCorrupt, StoreError
from .schema import migrations

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
_savepoints = itertools.count()


def connect(path: str | os.PathLike[str]) -> tuple[sqlite3.Connection, Path]:
    """A configured connection to the file at `path` (created if missing), or a `StoreError` that says why not."""
    p = Path(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(p), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
    except (OSError, sqlite3.OperationalError) as exc:
        raise StoreError(
            f"cannot open the database {p}: {exc}. Check that the folder exists and that the user running "
            "smsgate may write to it (database = ... in the configuration)."
        ) from None
    try:
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode.lower() != "wal":
            log.warning("database %s is in %s mode, not WAL; concurrent access will be slower", p, mode)
        # FULL: a commit survives power loss, not only a crash; the queue's promises depend on it.
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise _unusable(p, exc) from None
    return conn, p


def _unusable(p: Path, exc: sqlite3.DatabaseError) -> StoreError:
    if isinstance(exc, sqlite3.OperationalError):
        return StoreError(f"cannot use the database {p}: {exc}")
    return DatabaseCorrupt(
        f"{p} is not a readable smsgate database ({exc}). If it should be one, stop smsgate, restore "
        "the latest backup and keep the damaged file; otherwise fix `database = ...` in the configuration."
    )


class Db:
    """A connection with the clock every timestamp comes from and the transaction discipline of the store."""

    def __init__(self, conn: sqlite3.Connection, *, path: Path, clock: Clock = system_clock,
                 default_region: str | None = None) -> None:
        self.conn = conn
        self.path = path
        self.clock = clock
        self.default_region = default_region

    # -- lifecycle -----------------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending migrations; returns their names. Safe when several processes start at once."""
        try:
            db = Database(self.conn)
            pending = [m.name for m in migrations.pending(db)]
            if pending:
                # Foreign keys are off while migrations run (the pragma is a no-op inside a transaction,
                # so it is set before it): rebuilding a table that others reference, the only way SQLite
                # drops a constraint, would otherwise delete-check every row pointing at it. Whatever the
                # migrations did is checked before the commit instead.
                self.conn.execute("PRAGMA foreign_keys = OFF")
                try:
                    with self.transaction():
                        # Each migration runs in a savepoint inside our IMMEDIATE transaction, so two
                        # processes opening a new database cannot both create the tables.
                        if [m.name for m in migrations.pending(db)]:
                            migrations.apply(db)
                        broken = self.conn.execute("PRAGMA foreign_key_check").fetchall()
                        if broken:
                            raise StoreError(
                                f"migrating {self.path} would leave {len(broken)} rows pointing at rows that do "
                                f"not exist (first: {tuple(broken[0])}); nothing was changed. Keep the file "
                                "and report this as a bug.")
                finally:
                    self.conn.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise _unusable(self.path, exc) from None
        return pending

    def close(self) -> None:
        self.conn.close()

    # -- transactions --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (`BEGIN IMMEDIATE`), or a savepoint when one is already open.

        Nesting lets the daemon store an inbound message and run the rules on it in one commit, while
        each repository method stays safe to call on its own.
        """
        conn = self.conn
        if conn.in_transaction:
            name = f"sp_{next(_savepoints)}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield
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
                yield
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            else:
                conn.execute("COMMIT")

    @contextlib.contextmanager
    def read_snapshot(self) -> Iterator[None]:
        """Several reads that see one committed moment.

        Without it a page reading a modem's state and then its alerts can straddle a commit and show
        a modem offline with no alert, or ready with a stale one. In WAL mode this holds no lock that a
        writer waits for. Only for reads: a write inside it would have to upgrade a stale snapshot and
        could fail with "database is locked" at once; write with `transaction()` instead.
        """
        conn = self.conn
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN DEFERRED")
        try:
            yield
        finally:
            if conn.in_transaction:
                conn.execute("COMMIT")

    @contextlib.contextmanager
    def large_write(self) -> Iterator[None]:
        """A bigger page cache for one large transaction: a campaign's index updates touch far more pages
        than SQLite's default 8 MB cache holds, and would otherwise be re-read."""
        previous = self.conn.execute("PRAGMA cache_size").fetchone()[0]
        self.conn.execute("PRAGMA cache_size = -65536")
        try:
            yield
        finally:
            self.conn.execute(f"PRAGMA cache_size = {int(previous)}")

    # -- statements ----------------------------------------------------------------------------------
    def now(self) -> str:
        """The clock's time as the store writes it."""
        return ts(self.clock())

    def one(self, sql: str, params: Any = ()) -> dict[str, Any] | None:
        row = self.conn.execute(sql, params).fetchone()
        return dict(row) if row is not None else None

    def all(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        return [dict(r) for r in self.conn.execute(sql, params).fetchall()]

    def row(self, sql: str, params: Any = ()) -> dict[str, Any]:
        """The one row a statement must find (a row this transaction just wrote, an aggregate)."""
        found = self.one(sql, params)
        if found is None:
            raise StoreError(f"the database returned no row where one must be ({sql.split(' WHERE ')[0]})")
        return found

    def scalar(self, sql: str, params: Any = ()) -> Any:
        """The first column of the one row a statement must find (`SELECT COUNT(*) ...`)."""
        return next(iter(self.row(sql, params).values()))

    # A random octet the engine computes for each inserted row (a message's concatenation reference), so a
    # campaign insert binds nothing per row for it.
    RANDOM_OCTET = "(random() & 255)"

    # Conditions on the JSON text columns of contacts (tags, fields), for segment filters. Another engine
    # writes its own forms of these; callers only bind the parameters.
    @staticmethod
    def json_array_has(column: str) -> str:
        """True when the JSON array of strings in `column` holds the one parameter (ASCII case ignored)."""
        return f"EXISTS (SELECT 1 FROM json_each({column}) j WHERE LOWER(j.value) = LOWER(?))"

    @staticmethod
    def json_object_has(column: str, *, with_value: bool) -> str:
        """True when the JSON object in `column` has the key given as the first parameter (with the text
        value given as the second, when `with_value`)."""
        value = " AND CAST(j.value AS TEXT) = ?" if with_value else ""
        return f"EXISTS (SELECT 1 FROM json_each({column}) j WHERE j.key = ?{value})"

    def append_rows(self, table: str, sql: str, rows: Iterable[Any], count: int) -> range:
        """Insert `count` rows with `sql` (into `table`, inside the caller's write transaction) and return
        their ids, in order, without reading them back.

        While the write lock is held, SQLite gives each new row of an INTEGER PRIMARY KEY table (no
        AUTOINCREMENT) MAX(id) + 1, so the batch is first+1 .. last; checked, not assumed.
        """
        if not self.conn.in_transaction:
            raise StoreError("append_rows needs the caller's write transaction (ids are only in order under it)")
        first = int(self.scalar(f"SELECT COALESCE(MAX(id), 0) FROM {table}"))
        if count == 0:
            return range(first + 1, first + 1)
        self.conn.executemany(sql, rows)
        last = int(self.scalar("SELECT last_insert_rowid()"))
        if last - first != count:
            raise StoreError(f"bulk insert into {table} stored ids {first + 1}..{last} for {count} rows; "
                             "nothing was kept")
        return range(first + 1, last + 1)

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Iterable[Any]) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)

    def query(self, sql: str, params: Any = ()) -> list[dict[str, Any]]:
        """Read-only SQL for reports and pages."""
        return self.all(sql, params)

    def data_version(self) -> int:
        """Changes when another connection commits (`PRAGMA data_version`): a nearly free way for the
        daemon to notice messages the CLI or web app queued in another process."""
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    def integrity_check(self) -> list[str]:
        """Run `PRAGMA integrity_check`; returns ['ok'] or raises `DatabaseCorrupt` with the findings."""
        try:
            rows = [r[0] for r in self.conn.execute("PRAGMA integrity_check").fetchall()]
        except sqlite3.DatabaseError as exc:
            rows = [str(exc)]
        if rows != ["ok"]:
            raise DatabaseCorrupt(
                f"{self.path} is damaged: {'; '.join(rows[:5])}. Stop smsgate, restore the latest backup "
                f"(or run `sqlite3 {self.path} .recover`), and keep the damaged file for inspection."
            )
        fk = self.conn.execute("PRAGMA foreign_key_check").fetchall()
        if fk:
            raise DatabaseCorrupt(
                f"{self.path}: {len(fk)} rows point at missing rows (foreign_key_check); restore the latest "
                "backup or ask for help before smsgate writes more to it"
            )
        return rows

    # -- status rows ---------------------------------------------------------------------------------
    def set_status(self, key: str, value: Any) -> None:
        """Publish a daemon fact (heartbeat, pid, simulator socket) for the CLI and the web page."""
        self.execute(
            "INSERT INTO daemon_status(key, value, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            (key, json.dumps(value), self.now()),
        )

    def get_status(self, key: str) -> tuple[Any, str] | None:
        row = self.one("SELECT value, updated_at FROM daemon_status WHERE key = ?", (key,))
        if row is None:
            return None
        return json.loads(row["value"]), row["updated_at"]
