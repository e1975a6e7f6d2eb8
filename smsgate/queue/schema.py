"""The database schema as ordered migrations (sqlite-utils `Migrations`), applied when a store opens.

Add a new migration at the end; never edit one that has shipped. Append-only tables (consent ledger,
audit log) are enforced by triggers, so not even a careless admin with `sqlite3` can rewrite history
without first dropping the trigger.
"""

from __future__ import annotations

import re
from collections.abc import Callable

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


def _rebuild(db: Database, table: str, change: Callable[[str], str]) -> None:
    """Rebuild `table` from its own CREATE statement as `change` rewrites it: SQLite's documented way to
    drop a constraint ALTER TABLE cannot. The statement is read from the file, not written out here, so
    columns any earlier migration added survive, and so do every row, index and trigger. Foreign keys are
    off while migrations run (`Db.migrate`), so tables that reference this one keep their rows."""
    row = db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table]).fetchone()
    create = change(row[0])
    head = re.match(rf'\s*CREATE TABLE\s+"?{table}"?\s*\(', create)
    if head is None:
        raise RuntimeError(f"cannot rebuild {table}: unexpected statement {create[:80]!r}")
    columns = ", ".join(f'"{r[1]}"' for r in db.execute(f"PRAGMA table_info({table})").fetchall())
    extras = [r[0] for r in db.execute("SELECT sql FROM sqlite_master WHERE tbl_name = ? AND type IN"
                                       " ('index', 'trigger') AND sql IS NOT NULL ORDER BY type, name",
                                       [table]).fetchall()]
    db.execute(f"CREATE TABLE {table}_rebuilt (" + create[head.end():])
    db.execute(f"INSERT INTO {table}_rebuilt ({columns}) SELECT {columns} FROM {table}")
    db.execute(f"DROP TABLE {table}")
    db.execute(f"ALTER TABLE {table}_rebuilt RENAME TO {table}")
    for statement in extras:
        db.execute(statement)


def _replace_once(pattern: str, replacement: str) -> Callable[[str], str]:
    def change(sql: str) -> str:
        new, n = re.subn(pattern, replacement, sql)
        if n != 1:
            raise RuntimeError(f"expected {pattern!r} once in {sql[:80]!r}..., found it {n} times")
        return new

    return change


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
def m051_fragment_ends_in_escape(db: Database) -> None:
    """A part whose GSM-7 text ends in a lone escape remembers it, so that reassembly can finish the escape
    pair from the next part's first septet (`reassembly.join_parts`) instead of showing a space."""
    _script(db, "ALTER TABLE inbound_fragments ADD COLUMN ends_in_escape INTEGER NOT NULL DEFAULT 0")


@migrations()
def m052_fragment_groups(db: Database) -> None:
    """Each fragment belongs to one message (`group_id`, the id of that message's first fragment kept), not
    only to its (SIM, sender, reference, width, total): a second long text that reuses the reference while
    the first one's parts are still kept is a group of its own, so its parts are neither taken for the
    first message's nor deleted from the SIM unstored. Fragments kept so far form one group per key."""
    _script(
        db,
        """
ALTER TABLE inbound_fragments ADD COLUMN group_id INTEGER;
UPDATE inbound_fragments SET group_id = (SELECT MIN(f.id) FROM inbound_fragments f
    WHERE f.modem_id IS inbound_fragments.modem_id AND f.sender = inbound_fragments.sender
    AND f.ref = inbound_fragments.ref AND f.ref_bits = inbound_fragments.ref_bits
    AND f.total = inbound_fragments.total);
CREATE INDEX fragments_by_group ON inbound_fragments(group_id, seq)
""",
    )


@migrations()
def m053_decode_notes(db: Database) -> None:
    """What the codec noticed in a text that decoded anyway (a lone escape shown as a space, a header that
    was dropped, two concatenation elements), kept with the message and with each part until it is
    joined, so the admin reading an odd text can see why it looks odd."""
    _script(
        db,
        """
ALTER TABLE inbound ADD COLUMN decode_notes TEXT;
ALTER TABLE inbound_fragments ADD COLUMN decode_notes TEXT
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
def m055_idempotency_scope(db: Database) -> None:
    """An idempotency key belongs to whoever queued with it (`idempotency_scope`, the creator: an API
    token, a web user, the CLI, the rules engine), so two API clients that both use "appt-42" each get
    their own message instead of one getting the other's id (and then a 404 reading it).

    The key stops being unique on its own, which SQLite can only undo by rebuilding the table. Keys were
    unique across everyone until now, so giving each existing row its creator's scope keeps every one of
    them valid, and a client retrying the same request after the upgrade still finds its message.
    """
    _rebuild(db, "messages", _replace_once(r"\bidempotency_key\s+TEXT\s+UNIQUE\b", "idempotency_key TEXT"))
    _script(
        db,
        """
ALTER TABLE messages ADD COLUMN idempotency_scope TEXT;
UPDATE messages SET idempotency_scope = created_by WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX messages_idempotency ON messages(idempotency_scope, idempotency_key)
    WHERE idempotency_key IS NOT NULL
""",
    )


@migrations()
def m056_one_conversation_per_contact_and_sim(db: Database) -> None:
    """A message queued before a SIM was chosen used to leave a thread with no SIM ("via any SIM") beside
    the SIM's own thread once it was sent. Each such thread is merged into the contact's latest SIM thread,
    the way `Conversations.merge` does it from now on: its messages and inbound rows move, the thread kept
    fills what it lacks (assignment, team, menu) from it, unread counts add up and an unread one reopens
    it, and the audit log records each merge. A contact whose only thread has no SIM keeps it: it
    becomes that SIM's thread at the first send or reply."""
    _script(
        db,
        """
CREATE TEMP TABLE conversation_merges AS
SELECT z.id AS source, (SELECT s.id FROM conversations s WHERE s.contact_id = z.contact_id AND s.modem_id != 0
                        ORDER BY s.last_message_at IS NULL, s.last_message_at DESC, s.id DESC LIMIT 1) AS target
FROM conversations z
WHERE z.modem_id = 0 AND EXISTS (SELECT 1 FROM conversations s WHERE s.contact_id = z.contact_id AND s.modem_id != 0);
UPDATE conversations SET
    assigned_to = COALESCE(assigned_to, (SELECT z.assigned_to FROM conversation_merges m JOIN conversations z
                                         ON z.id = m.source WHERE m.target = conversations.id)),
    team = COALESCE(team, (SELECT z.team FROM conversation_merges m JOIN conversations z ON z.id = m.source
                           WHERE m.target = conversations.id)),
    menu = COALESCE(menu, (SELECT z.menu FROM conversation_merges m JOIN conversations z ON z.id = m.source
                           WHERE m.target = conversations.id)),
    after_hours_replied_at = COALESCE(after_hours_replied_at, (SELECT z.after_hours_replied_at
        FROM conversation_merges m JOIN conversations z ON z.id = m.source WHERE m.target = conversations.id)),
    last_message_at = (SELECT MAX(t) FROM (SELECT conversations.last_message_at AS t UNION ALL
        SELECT z.last_message_at FROM conversation_merges m JOIN conversations z ON z.id = m.source
        WHERE m.target = conversations.id)),
    likely_opt_out = (SELECT MAX(f) FROM (SELECT conversations.likely_opt_out AS f UNION ALL
        SELECT z.likely_opt_out FROM conversation_merges m JOIN conversations z ON z.id = m.source
        WHERE m.target = conversations.id)),
    status = CASE WHEN (SELECT z.unread FROM conversation_merges m JOIN conversations z ON z.id = m.source
                        WHERE m.target = conversations.id) > 0 THEN 'open' ELSE status END,
    unread = unread + (SELECT z.unread FROM conversation_merges m JOIN conversations z ON z.id = m.source
                       WHERE m.target = conversations.id)
WHERE id IN (SELECT target FROM conversation_merges);
UPDATE messages SET conversation_id = (SELECT target FROM conversation_merges WHERE source = messages.conversation_id)
WHERE conversation_id IN (SELECT source FROM conversation_merges);
UPDATE inbound SET conversation_id = (SELECT target FROM conversation_merges WHERE source = inbound.conversation_id)
WHERE conversation_id IN (SELECT source FROM conversation_merges);
DELETE FROM conversations WHERE id IN (SELECT source FROM conversation_merges);
INSERT INTO audit_log (at, actor, action, subject_type, subject_id, detail)
SELECT strftime('%Y-%m-%dT%H:%M:%S', 'now') || '.000000Z', 'migration', 'conversation.merged', 'conversation',
       target, '{"from": ' || source || '}'
FROM conversation_merges ORDER BY source;
DROP TABLE conversation_merges
""",
    )


@migrations()
def m080_consent_restore_event(db: Database) -> None:
    """Consent is per purpose (docs/contacts.md): an `opt_in` names the list it grants, and a
    patient's START becomes a `restore`, which lifts the STOP it answers but grants nothing that was never
    given. The ledger is rebuilt (with the same ids, so the order of events is unchanged) because SQLite
    cannot widen a CHECK constraint in place; its append-only triggers and indexes come back with it."""
    _script(
        db,
        """
CREATE TABLE consent_events_new (
    id INTEGER PRIMARY KEY,
    number TEXT NOT NULL,
    event TEXT NOT NULL CHECK (event IN ('opt_out', 'opt_in', 'restore')),
    scope TEXT NOT NULL DEFAULT 'all',
    at TEXT NOT NULL,
    source TEXT NOT NULL,
    evidence TEXT,
    actor TEXT NOT NULL,
    inbound_id INTEGER
);
INSERT INTO consent_events_new (id, number, event, scope, at, source, evidence, actor, inbound_id)
  SELECT id, number, event, scope, at, source, evidence, actor, inbound_id FROM consent_events;
DROP TABLE consent_events;
ALTER TABLE consent_events_new RENAME TO consent_events;
CREATE INDEX consent_number ON consent_events(number, scope, id);
CREATE INDEX consent_at ON consent_events(event, at)
""",
    )
    _append_only(db, "consent_events")


@migrations()
def m081_segments(db: Database) -> None:
    """Saved segments: a name and a filter (the small language of `segment_filter.py`), evaluated whenever
    the segment is used, so it always means the contacts that match now."""
    _script(
        db,
        """
CREATE TABLE segments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    filter TEXT NOT NULL,
    description TEXT,
    created_by TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
)
""",
    )


@migrations()
def m060_part_submitting_time(db: Database) -> None:
    """When each part was last handed to the modem. A part whose `+CMGS` answer was lost (a killed daemon, an
    ambiguous error) has no TP-MR; only a status report received after this moment, from that modem for that
    number, can be its network's answer (`DeliveryReports.settle_unknown`)."""
    _script(db, "ALTER TABLE message_parts ADD COLUMN submitting_at TEXT")


@migrations()
def m090_appointments(db: Database) -> None:
    """Appointments from the clinic's system, keyed by its own id; every change they go through as an
    append-only event (the history a webhook or `changed_since` reads), and the reminders planned for
    each, linking an appointment to a send time and, once queued, to its outbound message.

    A reminder row is `pending` (planned), `queued` (a message exists for it), `cancelled` (it will not
    go) or `superseded` (its message had already gone out for a time the appointment no longer has).
    At most one reminder per plan step is pending at a time. `source_status` is the status the clinic's
    system last sent, apart from `status` (which a patient's answer also changes), so that the same data
    sent again cannot undo a patient's cancellation."""
    _script(
        db,
        """
CREATE TABLE appointments (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    provider TEXT,
    location TEXT,
    appointment_type TEXT,
    start_at TEXT NOT NULL,
    timezone TEXT NOT NULL,
    all_day INTEGER NOT NULL DEFAULT 0,
    duration_minutes INTEGER,
    status TEXT NOT NULL CHECK (status IN ('booked', 'confirmed', 'cancelled', 'rescheduled', 'completed',
                                           'no-show')),
    notes TEXT,
    source TEXT NOT NULL,
    source_status TEXT NOT NULL,
    source_revision INTEGER,
    source_modified_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX appointments_start ON appointments(start_at);
CREATE INDEX appointments_contact ON appointments(contact_id);
CREATE TABLE appointment_events (
    id INTEGER PRIMARY KEY,
    appointment_id INTEGER NOT NULL REFERENCES appointments(id),
    at TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('created', 'updated', 'confirmed', 'cancelled', 'rescheduled',
                                       'reschedule_requested', 'no_show')),
    source TEXT NOT NULL,
    details TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX appointment_events_appointment ON appointment_events(appointment_id, id);
CREATE INDEX appointment_events_at ON appointment_events(at);
CREATE TABLE appointment_reminders (
    id INTEGER PRIMARY KEY,
    appointment_id INTEGER NOT NULL REFERENCES appointments(id),
    step TEXT NOT NULL,
    confirm INTEGER NOT NULL DEFAULT 0,
    send_at TEXT NOT NULL,
    for_start TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'queued', 'cancelled', 'superseded')),
    message_id INTEGER REFERENCES messages(id),
    reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX appointment_reminders_appointment ON appointment_reminders(appointment_id);
CREATE INDEX appointment_reminders_due ON appointment_reminders(send_at) WHERE state = 'pending';
CREATE UNIQUE INDEX appointment_reminders_one_pending ON appointment_reminders(appointment_id, step)
    WHERE state = 'pending'
""",
    )
    _append_only(db, "appointment_events")


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


@migrations()
def m096_waitlist(db: Database) -> None:
    """Patients waiting for an earlier slot: who (the contact), optionally for which provider, place and
    window, and the appointment of theirs a slot would replace. An entry is `waiting` until it is
    `filled` (the patient took a slot) or `removed` (by staff, the API or the patient); one waiting entry
    per patient, so a second WAITLIST text cannot queue them twice."""
    _script(
        db,
        """
CREATE TABLE waitlist (
    id INTEGER PRIMARY KEY,
    contact_id INTEGER NOT NULL REFERENCES contacts(id),
    provider TEXT,
    location TEXT,
    earliest_at TEXT,
    latest_at TEXT,
    appointment_id INTEGER REFERENCES appointments(id),
    notes TEXT,
    state TEXT NOT NULL DEFAULT 'waiting' CHECK (state IN ('waiting', 'filled', 'removed')),
    source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX waitlist_one_waiting ON waitlist(contact_id) WHERE state = 'waiting';
CREATE INDEX waitlist_state ON waitlist(state, created_at)
""",
    )


@migrations()
def m097_waitlist_offers(db: Database) -> None:
    """A slot a cancellation freed (one per `cancelled` event: its details copied from the cancelled
    appointment) and the offers of it sent to waitlisted patients, each linked to its message. A slot is
    `open` until the first YES fills it (one conditional UPDATE) or its offers expire."""
    _script(
        db,
        """
CREATE TABLE waitlist_slots (
    id INTEGER PRIMARY KEY,
    event_id INTEGER NOT NULL UNIQUE REFERENCES appointment_events(id),
    cancelled_appointment_id INTEGER NOT NULL REFERENCES appointments(id),
    provider TEXT,
    location TEXT,
    appointment_type TEXT,
    start_at TEXT NOT NULL,
    timezone TEXT NOT NULL,
    duration_minutes INTEGER,
    state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'filled', 'expired')),
    expires_at TEXT NOT NULL,
    filled_offer_id INTEGER,
    filled_appointment_id INTEGER REFERENCES appointments(id),
    filled_at TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX waitlist_slots_open ON waitlist_slots(expires_at) WHERE state = 'open';
CREATE TABLE waitlist_offers (
    id INTEGER PRIMARY KEY,
    slot_id INTEGER NOT NULL REFERENCES waitlist_slots(id),
    entry_id INTEGER NOT NULL REFERENCES waitlist(id),
    message_id INTEGER UNIQUE REFERENCES messages(id),
    state TEXT NOT NULL CHECK (state IN ('offered', 'won', 'taken', 'expired', 'refused')),
    reason TEXT,
    created_at TEXT NOT NULL,
    answered_at TEXT,
    UNIQUE (slot_id, entry_id)
);
CREATE INDEX waitlist_offers_entry ON waitlist_offers(entry_id)
"""
    )
