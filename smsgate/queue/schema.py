"""The database schema as ordered migrations (sqlite-utils `Migrations`), applied when a store opens.

Add a new migration at the end; never edit one that has shipped. Append-only tables (consent ledger,
audit log) are enforced by triggers, so not even a careless admin with `sqlite3` can rewrite history
without first dropping the trigger.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("smsgate")


def _script(db: Database, sql: str) -> None:
    """Run statements one by one. Not `executescript`: sqlite3's (and so sqlite-utils') commits any open
    transaction first, and migrations must run inside the IMMEDIATE transaction that `Db.migrate` holds, so
    two processes opening a new file cannot both apply them. Statements here never contain `;` + newline."""
    for statement in sql.split(";\n"):
        if statement.strip():
            db.execute(statement)


def _append_only(db: Database, table: str) -> None:
    db.execute(
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
    )
    db.execute(
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END"
    )


@migrations()
def m001_core(db: Database) -> None:
    _script(
        db,
        """
CREATE TABLE modems (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    device TEXT,
    imei TEXT,
    imsi TEXT,
    iccid TEXT,
    msisdn TEXT,
    manufacturer TEXT,
    model TEXT,
    revision TEXT,
    personality TEXT,
    state TEXT NOT NULL DEFAULT 'unknown',
    state_detail TEXT,
    signal_dbm INTEGER,
    signal_bars INTEGER,
    registration TEXT,
    operator TEXT,
    storage_used INTEGER,
    storage_total INTEGER,
    last_error TEXT,
    last_error_at TEXT,
    last_seen_at TEXT,
    heartbeat_at TEXT,
    sent_count INTEGER NOT NULL DEFAULT 0,
    failed_count INTEGER NOT NULL DEFAULT 0,
    received_count INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX modems_imei ON modems(imei);
CREATE INDEX modems_imsi ON modems(imsi);

CREATE TABLE contacts (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL UNIQUE,
    name TEXT,
    first_name TEXT,
    timezone TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    fields TEXT NOT NULL DEFAULT '{}',
    last_modem_id INTEGER REFERENCES modems(id),
    last_inbound_at TEXT,
    first_texted_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    modem_id INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL DEFAULT 'open',
    team TEXT,
    assigned_to TEXT,
    unread INTEGER NOT NULL DEFAULT 0,
    likely_opt_out INTEGER NOT NULL DEFAULT 0,
    after_hours_replied_at TEXT,
    menu TEXT,
    last_message_at TEXT,
    created_at TEXT NOT NULL,
    UNIQUE (contact_id, modem_id)
);
CREATE INDEX conversations_recent ON conversations(last_message_at);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    to_number TEXT NOT NULL,
    body TEXT NOT NULL,
    kind TEXT NOT NULL,
    priority INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'queued',
    parts_total INTEGER NOT NULL,
    encoding TEXT NOT NULL,
    concat_ref INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL DEFAULT 5,
    not_before TEXT,
    due_at TEXT NOT NULL,
    lease_owner TEXT,
    lease_until TEXT,
    modem_id INTEGER,
    preferred_modem_id INTEGER,
    required_modem_id INTEGER,
    failover_from INTEGER,
    idempotency_key TEXT UNIQUE,
    created_by TEXT NOT NULL,
    source TEXT NOT NULL,
    in_reply_to INTEGER,
    conversation_id INTEGER,
    campaign TEXT,
    scope TEXT,
    expect TEXT,
    follow_up TEXT,
    outcome TEXT,
    outcome_at TEXT,
    answered_by INTEGER,
    last_error TEXT,
    last_error_code INTEGER,
    error_class TEXT,
    status_report INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    submitted_at TEXT,
    finished_at TEXT
);
CREATE INDEX messages_due ON messages(state, priority, due_at, id);
CREATE INDEX messages_to ON messages(to_number, created_at);
CREATE INDEX messages_lease ON messages(state, lease_until);
CREATE INDEX messages_conversation ON messages(conversation_id, created_at);
CREATE INDEX messages_reply ON messages(in_reply_to);

CREATE TABLE message_parts (
    message_id INTEGER NOT NULL REFERENCES messages(id),
    part_no INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    tp_mr INTEGER,
    modem_id INTEGER,
    recipient TEXT NOT NULL,
    submitted_at TEXT,
    status_code INTEGER,
    status_at TEXT,
    last_error TEXT,
    PRIMARY KEY (message_id, part_no)
);
CREATE INDEX parts_report ON message_parts(modem_id, tp_mr, recipient, submitted_at);

CREATE TABLE inbound (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    modem_id INTEGER,
    sender TEXT NOT NULL,
    body TEXT NOT NULL,
    encoding TEXT,
    sent_at TEXT,
    received_at TEXT NOT NULL,
    pdu TEXT,
    decode_error TEXT,
    parts_total INTEGER NOT NULL DEFAULT 1,
    missing_parts TEXT,
    contact_id INTEGER,
    conversation_id INTEGER,
    in_reply_to INTEGER,
    keyword TEXT,
    action TEXT,
    likely_opt_out INTEGER NOT NULL DEFAULT 0,
    handled_at TEXT,
    read_at TEXT
);
CREATE INDEX inbound_conversation ON inbound(conversation_id, received_at);
CREATE INDEX inbound_sender ON inbound(sender, received_at);
CREATE INDEX inbound_unhandled ON inbound(handled_at);

CREATE TABLE inbound_fragments (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    modem_id INTEGER,
    sender TEXT NOT NULL,
    ref INTEGER NOT NULL,
    ref_bits INTEGER NOT NULL,
    total INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    encoding TEXT,
    sent_at TEXT,
    pdu TEXT,
    received_at TEXT NOT NULL
);
CREATE INDEX fragments_group ON inbound_fragments(modem_id, sender, ref, ref_bits, total);

CREATE TABLE status_reports (
    id INTEGER PRIMARY KEY,
    dedupe_key TEXT NOT NULL UNIQUE,
    modem_id INTEGER,
    tp_mr INTEGER NOT NULL,
    recipient TEXT NOT NULL,
    status_code INTEGER NOT NULL,
    outcome TEXT NOT NULL,
    sc_timestamp TEXT,
    discharge_time TEXT,
    received_at TEXT NOT NULL,
    pdu TEXT,
    message_id INTEGER,
    part_no INTEGER,
    matched_at TEXT
);
CREATE INDEX reports_unmatched ON status_reports(matched_at);

CREATE TABLE consent_events (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ('opt_out', 'opt_in')),
    scope TEXT NOT NULL DEFAULT 'all',
    at TEXT NOT NULL,
    source TEXT NOT NULL,
    evidence TEXT,
    actor TEXT NOT NULL,
    inbound_id INTEGER
);
CREATE INDEX consent_number ON consent_events(number, scope, id);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject_type TEXT,
    subject_id INTEGER,
    detail TEXT
);
CREATE INDEX audit_subject ON audit_log(subject_type, subject_id, id);

CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    level TEXT NOT NULL,
    kind TEXT NOT NULL,
    modem_id INTEGER,
    message TEXT NOT NULL,
    resolved_at TEXT
);

CREATE TABLE daemon_status (
    key TEXT PRIMARY KEY,
    value TEXT,
    updated_at TEXT NOT NULL
)
""",
    )
    _append_only(db, "consent_events")
    _append_only(db, "audit_log")


@migrations()
def m002_rules_and_people(db: Database) -> None:
    _script(
        db,
        """
CREATE TABLE keywords (
    id INTEGER PRIMARY KEY,
    keyword TEXT NOT NULL UNIQUE,
    aliases TEXT NOT NULL DEFAULT '[]',
    reply TEXT,
    tag TEXT,
    opt_in_scope TEXT,
    route TEXT,
    forward_to TEXT,
    webhook TEXT,
    hours TEXT,
    priority INTEGER NOT NULL DEFAULT 100,
    builtin INTEGER NOT NULL DEFAULT 0,
    enabled INTEGER NOT NULL DEFAULT 1,
    hits INTEGER NOT NULL DEFAULT 0,
    created_by TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'staff', 'viewer')),
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    last_login_at TEXT
);

CREATE TABLE login_attempts (
    id INTEGER PRIMARY KEY,
    username TEXT,
    remote_addr TEXT,
    at TEXT NOT NULL,
    ok INTEGER NOT NULL
);
CREATE INDEX login_attempts_at ON login_attempts(at);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scope TEXT NOT NULL CHECK (scope IN ('send', 'read', 'admin')),
    created_by TEXT,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);

CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY,
    url TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT
);
CREATE INDEX webhook_due ON webhook_deliveries(state, next_attempt_at)
""",
    )


@migrations()
def m020_web_sessions_and_indexes(db: Database) -> None:
    """Server-side web sessions (so logout and disabling a user end a session at once), and the indexes
    that keep the status page and reports fast with hundreds of thousands of messages."""
    _script(
        db,
        """
CREATE TABLE web_sessions (
    id INTEGER PRIMARY KEY,
    sid_hash TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL REFERENCES users(id),
    created_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    remote_addr TEXT
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);
CREATE INDEX login_attempts_user ON login_attempts(username, at);
CREATE INDEX login_attempts_addr ON login_attempts(remote_addr, at);
CREATE INDEX messages_submitted ON messages(submitted_at, modem_id);
CREATE INDEX messages_finished ON messages(finished_at, state, modem_id);
CREATE INDEX messages_created ON messages(created_at);
CREATE INDEX messages_state_created ON messages(state, created_at);
CREATE INDEX messages_expect ON messages(created_at, outcome) WHERE expect IS NOT NULL;
CREATE INDEX messages_creator ON messages(created_by, created_at);
CREATE INDEX inbound_received ON inbound(received_at);
CREATE INDEX consent_at ON consent_events(event, at)
""",
    )


@migrations()
def m010_keywords_menu(db: Database) -> None:
    # A keyword's reply may offer a menu ("Reply 1 for Billing, 2 for Support"): answer -> team, as JSON.
    db.execute("ALTER TABLE keywords ADD COLUMN menu TEXT")


@migrations()
def m030_partial_queue_indexes(db: Database) -> None:
    """Index only the rows a lookup can want (leased, replied-to, threaded, sent, finished, reported
    messages): a 100,000-row campaign insert then maintains far fewer index entries, and the indexes
    stay small. Queries that compare these columns (`lease_owner IS NOT NULL`, `submitted_at >= ?`,
    `tp_mr = ?`) still use them."""
    _script(
        db,
        """
DROP INDEX messages_lease;
CREATE INDEX messages_lease ON messages(state, lease_until) WHERE lease_owner IS NOT NULL;
DROP INDEX messages_reply;
CREATE INDEX messages_reply ON messages(in_reply_to) WHERE in_reply_to IS NOT NULL;
DROP INDEX messages_conversation;
CREATE INDEX messages_conversation ON messages(conversation_id, created_at) WHERE conversation_id IS NOT NULL;
DROP INDEX IF EXISTS messages_submitted;
CREATE INDEX messages_submitted ON messages(submitted_at) WHERE submitted_at IS NOT NULL;
DROP INDEX IF EXISTS messages_finished;
CREATE INDEX messages_finished ON messages(finished_at) WHERE finished_at IS NOT NULL;
DROP INDEX parts_report;
CREATE INDEX parts_report ON message_parts(modem_id, tp_mr, recipient, submitted_at) WHERE tp_mr IS NOT NULL
""",
    )


@migrations()
def m040_lean_queue_writes(db: Database) -> None:
    """Fewer index entries to write per queued message and per state change (issue 2's throughput goals).

    - `messages_due` gains `created_at` and replaces `messages_state_created`: the claim orders by
      (priority, due_at, created_at, id) straight from it, and it still answers "counts by state and
      priority", "messages in state X" and "oldest queued" (a covering scan of the queued range).
    - `messages_creator` served only the API's per-token send cap; it becomes partial on API messages
      (`sends_since` says `source = 'api'`), so a campaign insert no longer maintains it.
    - `messages_lease` drops `state`: claimed -> submitting no longer moves its entry.
    - `messages_conversation` and `messages_reply` go: no query looks messages up by thread or by the
      inbound message they answer (a thread's history is found by number, through `messages_to`), yet
      every send wrote a `messages_conversation` entry.
    - `message_parts` becomes WITHOUT ROWID (its primary key is the table), one b-tree to write per part
      instead of two.
    """
    _script(
        db,
        """
DROP INDEX messages_due;
DROP INDEX messages_state_created;
CREATE INDEX messages_due ON messages(state, priority, due_at, created_at);
DROP INDEX messages_creator;
CREATE INDEX messages_api_sends ON messages(created_by, created_at) WHERE source = 'api';
DROP INDEX messages_lease;
CREATE INDEX messages_lease ON messages(lease_until) WHERE lease_owner IS NOT NULL;
DROP INDEX messages_conversation;
DROP INDEX messages_reply;
CREATE TABLE message_parts_new (
    message_id INTEGER NOT NULL REFERENCES messages(id),
    part_no INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    tp_mr INTEGER,
    modem_id INTEGER,
    recipient TEXT NOT NULL,
    submitted_at TEXT,
    status_code INTEGER,
    status_at TEXT,
    last_error TEXT,
    PRIMARY KEY (message_id, part_no)
) WITHOUT ROWID;
INSERT INTO message_parts_new (message_id, part_no, state, tp_mr, modem_id, recipient, submitted_at,
    status_code, status_at, last_error)
  SELECT message_id, part_no, state, tp_mr, modem_id, recipient, submitted_at, status_code, status_at,
    last_error FROM message_parts;
DROP TABLE message_parts;
ALTER TABLE message_parts_new RENAME TO message_parts;
CREATE INDEX parts_report ON message_parts(modem_id, tp_mr, recipient, submitted_at) WHERE tp_mr IS NOT NULL
""",
    )


@migrations()
def m050_keyword_use_from_the_inbox(db: Database) -> None:
    """Keyword use is counted from the inbox (`views.keyword_hits`, `views.keyword_rules`), the one figure
    the report, `smsgate keywords list` and the reports page share; the per-rule `hits` counter that could
    disagree with it, and the never-written `builtin` flag, go. The index answers "uses of each rule"
    without reading the whole inbox."""
    _script(
        db,
        """
CREATE INDEX inbound_keyword ON inbound(action, keyword) WHERE keyword IS NOT NULL;
ALTER TABLE keywords DROP COLUMN hits;
ALTER TABLE keywords DROP COLUMN builtin
""",
    )


@migrations()
def m070_contacts_and_lists(db: Database) -> None:
    """A contact is a person the front desk can name: last name, preferred language, notes, and the time
    an erasure request was carried out (the row stays so the consent ledger and audit trail still point
    at a number). Static lists are named sets of contacts; a list's name is also its consent scope."""
    _script(
        db,
        """
ALTER TABLE contacts ADD COLUMN last_name TEXT;
ALTER TABLE contacts ADD COLUMN language TEXT;
ALTER TABLE contacts ADD COLUMN notes TEXT;
ALTER TABLE contacts ADD COLUMN erased_at TEXT;
CREATE TABLE lists (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    keyword TEXT UNIQUE,
    description TEXT,
    created_at TEXT NOT NULL
);
CREATE TABLE list_members (
    list_id INTEGER NOT NULL REFERENCES lists(id),
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    added_at TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (list_id, contact_id)
);
CREATE INDEX list_members_contact ON list_members(contact_id)
""",
    )


@migrations()
def m071_contact_search_and_erasure(db: Database) -> None:
    """Finding a contact by any part of the name, accents and case aside ("nunez" finds "Núñez"):
    `search` holds the folded name, written with every change of a contact's name. And erasure: the
    audit log stays append-only except that an entry's `detail` may be replaced
    by one marked `erased` (same time, actor, action and subject), which is how a right-to-erasure
    request takes a patient's name out of the entries that recorded it."""
    from smsgate.names import search_text

    db.execute("ALTER TABLE contacts ADD COLUMN search TEXT NOT NULL DEFAULT ''")
    rows = db.execute("SELECT id, name, first_name, last_name FROM contacts WHERE COALESCE(name, first_name,"
                      " last_name) IS NOT NULL").fetchall()
    for contact_id, name, first, last in rows:
        db.execute("UPDATE contacts SET search = ? WHERE id = ?", (search_text(first, last, fallback=name), contact_id))
    _script(
        db,
        """
DROP TRIGGER audit_log_no_update;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NOT (NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.actor = OLD.actor AND NEW.action = OLD.action
          AND NEW.subject_type IS OLD.subject_type AND NEW.subject_id IS OLD.subject_id
          AND json_extract(NEW.detail, '$.erased') IS 1)
BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: only an erasure may replace the detail of an entry'); END
""",
    )
