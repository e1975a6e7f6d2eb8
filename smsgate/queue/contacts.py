"""Contacts (one row per E.164 number) and conversations (one thread per contact and SIM).

A contact is what the front desk knows about a number: name, preferred language, time zone, the clinic's
own fields, tags and notes. Every value is checked here, whoever writes it (CLI, API, import, rules), so
a limit or a refusal reads the same everywhere; text is stored as given within the limits and made safe
where it is shown (`smsgate.names`).
"""

from __future__ import annotations

import functools
import json
import re
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from smsgate.names import full_name, label, search_terms, search_text
from smsgate.numbers import InvalidNumber, normalize, timezones_for

from .audit import AuditLog
from .db import Db
from .errors import NotFound, StoreError
from .filters import where

NAME_MAX = 100
NOTES_MAX = 2000
FIELD_VALUE_MAX = 500
FIELDS_MAX = 30
TAGS_MAX = 30
TAG_MAX = 40

_TAG = re.compile(r"^[^\W_][\w-]*$")
_FIELD_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_LANGUAGE = re.compile(r"^[a-z]{2,3}(?:-[a-z0-9]{2,8})*$")
# What practice systems write in a "language" column, in English and in the language itself.
LANGUAGE_NAMES = {
    "english": "en", "spanish": "es", "español": "es", "espanol": "es", "french": "fr", "français": "fr",
    "portuguese": "pt", "português": "pt", "chinese": "zh", "mandarin": "zh", "cantonese": "yue",
    "vietnamese": "vi", "tiếng việt": "vi", "arabic": "ar", "russian": "ru", "русский": "ru", "german": "de",
    "deutsch": "de", "italian": "it", "italiano": "it", "korean": "ko", "tagalog": "tl", "filipino": "fil",
    "haitian creole": "ht", "kreyòl": "ht", "polish": "pl", "polski": "pl", "japanese": "ja", "hindi": "hi",
    "urdu": "ur", "bengali": "bn", "persian": "fa", "farsi": "fa", "somali": "so", "amharic": "am",
    "ukrainian": "uk", "greek": "el", "hebrew": "he", "turkish": "tr", "dutch": "nl",
}
TEXT_COLUMNS = ("first_name", "last_name", "language", "timezone", "notes")


class ContactError(StoreError):
    """A value a contact cannot hold; the message names the value, what is wrong and what would do."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _text(value: str | None, what: str, limit: int) -> str | None:
    """None: leave the stored value; "" (or only spaces): clear it; else the text, trimmed, within `limit`."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ContactError(f"{what} must be text", what)
    value = value.strip(" \t\r\n")
    if len(value) > limit:
        raise ContactError(f"{what} has {len(value)} characters; the limit is {limit}", what)
    return value


def clean_tag(tag: str) -> str:
    """A tag as stored: lower case, 1-40 letters, digits, '-' or '_'."""
    if not isinstance(tag, str):
        raise ContactError("a tag must be text", "tags")
    cleaned = tag.strip().lower()
    if not cleaned or len(cleaned) > TAG_MAX or not _TAG.match(cleaned):
        raise ContactError(f"{tag!r} cannot be a tag: use 1-{TAG_MAX} letters, digits, '-' or '_', starting with "
                           "a letter or digit", "tags")
    return cleaned


def clean_language(value: str | None) -> str | None:
    """A language as a BCP 47 tag (`es`, `pt-BR`); the common names practice systems export (`Spanish`) are
    read as their code."""
    text = _text(value, "language", 35)
    if not text:
        return text
    named = LANGUAGE_NAMES.get(text.casefold())
    if named:
        return named
    candidate = text.replace("_", "-").lower()
    if not _LANGUAGE.match(candidate):
        raise ContactError(f"{value!r} is not a language; write a code such as en, es or pt-BR", "language")
    head, *rest = candidate.split("-")
    parts = [head] + [p.upper() if len(p) == 2 else p.title() if len(p) == 4 else p for p in rest]
    return "-".join(parts)


@functools.cache
def _zones_by_lower() -> dict[str, str]:
    return {z.lower(): z for z in zoneinfo.available_timezones()}


def clean_timezone(value: str | None) -> str | None:
    text = _text(value, "timezone", 64)
    if not text:
        return text
    found = _zones_by_lower().get(text.lower())
    if found is None:
        raise ContactError(f"{value!r} is not a time zone; use an IANA name such as America/New_York", "timezone")
    return found


def clean_fields(fields: Mapping[str, Any] | None) -> dict[str, Any]:
    """The clinic's own fields: lower-case keys, text (at most 500 characters), numbers or true/false;
    None removes a field."""
    if fields is None:
        return {}
    if not isinstance(fields, Mapping):
        raise ContactError('fields must be an object of name -> value, e.g. {"mrn": "A-1042"}', "fields")
    out: dict[str, Any] = {}
    for key, value in fields.items():
        name = key.strip().lower() if isinstance(key, str) else ""
        if not _FIELD_KEY.match(name):
            raise ContactError(f"{key!r} cannot be a field name: use 1-40 lower-case letters, digits or '_', "
                               "starting with a letter (e.g. date_of_birth_year)", "fields")
        if isinstance(value, str):
            value = value.strip()
            if len(value) > FIELD_VALUE_MAX:
                raise ContactError(f"field {name!r} has {len(value)} characters; the limit is {FIELD_VALUE_MAX}",
                                   "fields")
            out[name] = value or None
        elif value is None or isinstance(value, bool | int | float):
            out[name] = value
        else:
            raise ContactError(f"field {name!r} must be text, a number, true or false (or null to remove it)",
                               "fields")
    return out


@dataclass
class ContactValues:
    """What a write says about a contact. For the text values None leaves what is stored and "" clears it;
    `fields` are merged (a None value removes that field); tags are added and removed.

    Constructing one checks and normalises every value, raising `ContactError`."""

    first_name: str | None = None
    last_name: str | None = None
    language: str | None = None
    timezone: str | None = None
    notes: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.first_name = _text(self.first_name, "first_name", NAME_MAX)
        self.last_name = _text(self.last_name, "last_name", NAME_MAX)
        self.language = clean_language(self.language)
        self.timezone = clean_timezone(self.timezone)
        self.notes = _text(self.notes, "notes", NOTES_MAX)
        self.fields = clean_fields(self.fields)
        self.add_tags = tuple(dict.fromkeys(clean_tag(t) for t in self.add_tags))
        self.remove_tags = tuple(dict.fromkeys(clean_tag(t) for t in self.remove_tags))

    def is_empty(self) -> bool:
        return (all(getattr(self, c) is None for c in TEXT_COLUMNS) and not self.fields and not self.add_tags
                and not self.remove_tags)


@dataclass(frozen=True)
class Contact:
    id: int
    number: str
    first_name: str | None
    last_name: str | None
    name: str | None  # first and last name together (or a name stored whole before names were split)
    language: str | None
    timezone: str | None
    fields: dict[str, Any]
    tags: tuple[str, ...]
    notes: str | None
    created_at: str
    updated_at: str
    erased_at: str | None
    first_texted_at: str | None
    last_inbound_at: str | None

    @property
    def display(self) -> str:
        return label(self.name, self.number)

    def timezones(self) -> list[str]:
        """The zones quiet hours respect for this contact: the one set on it, else those of its number."""
        return [self.timezone] if self.timezone else timezones_for(self.number)

    def to_json(self, lists: Sequence[str] = ()) -> dict[str, Any]:
        return {
            "number": self.number, "first_name": self.first_name, "last_name": self.last_name, "name": self.name,
            "display": self.display, "language": self.language, "timezone": self.timezone,
            "timezones": self.timezones(), "fields": self.fields, "tags": list(self.tags), "notes": self.notes,
            "lists": list(lists), "created_at": self.created_at, "updated_at": self.updated_at,
            "erased_at": self.erased_at,
        }


@dataclass(frozen=True)
class Saved:
    contact: Contact
    created: bool
    changed: tuple[str, ...]  # the values that changed ("first_name", "fields", "tags", ...)


def contact_from_row(row: Mapping[str, Any]) -> Contact:
    return Contact(
        id=row["id"], number=row["number"], first_name=row["first_name"], last_name=row["last_name"],
        name=row["name"], language=row["language"], timezone=row["timezone"], fields=json.loads(row["fields"]),
        tags=tuple(json.loads(row["tags"])), notes=row["notes"], created_at=row["created_at"],
        updated_at=row["updated_at"], erased_at=row["erased_at"], first_texted_at=row["first_texted_at"],
        last_inbound_at=row["last_inbound_at"])


def merge(current: Contact | None, values: ContactValues, *, fill_only: bool = False
          ) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The stored columns of a contact that is `current` now (None: a new one) after `values`, and the names
    of the values that change. With `fill_only` a value only fills one that is empty (an import's repeated
    row: the first row's values stand) and nothing is removed."""
    old: dict[str, Any] = {c: getattr(current, c) if current else None for c in TEXT_COLUMNS}
    new = dict(old)
    for column in TEXT_COLUMNS:
        value = getattr(values, column)
        if value is None or (fill_only and old[column]):
            continue
        new[column] = value or None
    old_fields = dict(current.fields) if current else {}
    fields = dict(old_fields)
    for key, value in values.fields.items():
        if value is None:
            if not fill_only:
                fields.pop(key, None)
        elif not (fill_only and key in fields):
            fields[key] = value
    if len(fields) > FIELDS_MAX:
        raise ContactError(f"a contact holds at most {FIELDS_MAX} fields; this would make {len(fields)}", "fields")
    old_tags = tuple(current.tags) if current else ()
    remove = () if fill_only else values.remove_tags
    tags = tuple(sorted((set(old_tags) | set(values.add_tags)) - set(remove)))
    if len(tags) > TAGS_MAX:
        raise ContactError(f"a contact holds at most {TAGS_MAX} tags; this would make {len(tags)}", "tags")
    changed = [c for c in TEXT_COLUMNS if new[c] != old[c]]
    if fields != old_fields:
        changed.append("fields")
    if tags != tuple(sorted(old_tags)):
        changed.append("tags")
    name = current.name if current else None
    if "first_name" in changed or "last_name" in changed:
        name = full_name(new["first_name"], new["last_name"])
    columns = {**new, "name": name,
               "fields": json.dumps(fields, ensure_ascii=False, sort_keys=True) if fields else "{}",
               "tags": json.dumps(list(tags), ensure_ascii=False) if tags else "[]",
               "search": search_text(new["first_name"], new["last_name"], fallback=name)}
    return columns, tuple(changed)


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


class Contacts:
    """The people the clinic texts, one row per number; every message both ways points at one."""

    def __init__(self, db: Db, *, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    def canonical(self, sender: str) -> str:
        """E.164 where the sender is a phone number; alphanumeric ids and short codes are kept as given."""
        try:
            return normalize(sender, default_region=self.db.default_region)
        except InvalidNumber:
            return sender.strip()

    def phone_number(self, number: str) -> str:
        """`number` in E.164, or a `ContactError` saying why it is not one (a new contact needs a number)."""
        try:
            return normalize(number, default_region=self.db.default_region)
        except InvalidNumber as exc:
            raise ContactError(str(exc), "number") from None

    def ensure(self, number: str) -> int:
        row = self.db.one("SELECT id FROM contacts WHERE number = ?", (number,))
        if row is not None:
            return int(row["id"])
        now = self.db.now()
        cur = self.db.execute(
            "INSERT INTO contacts (number, created_at, updated_at) VALUES (?,?,?)", (number, now, now),
        )
        return int(cur.lastrowid or 0)

    def get(self, number: str) -> dict[str, Any] | None:
        """The stored row (tags and fields decoded), for callers that read one column of it."""
        row = self.db.one("SELECT * FROM contacts WHERE number = ?", (number,))
        if row is not None:
            row["tags"] = json.loads(row["tags"])
            row["fields"] = json.loads(row["fields"])
        return row

    def find(self, number: str) -> Contact | None:
        row = self.db.one("SELECT * FROM contacts WHERE number = ?", (self.canonical(number),))
        return contact_from_row(row) if row is not None else None

    def require(self, number: str) -> Contact:
        found = self.find(number)
        if found is None:
            raise NotFound(f"there is no contact {self.canonical(number)}; add it with `smsgate contacts add`")
        return found

    def by_id(self, contact_id: int) -> Contact:
        row = self.db.one("SELECT * FROM contacts WHERE id = ?", (contact_id,))
        if row is None:
            raise NotFound(f"there is no contact #{contact_id}")
        return contact_from_row(row)

    def find_many(self, numbers: Iterable[str]) -> dict[str, Contact]:
        """The contacts of `numbers` (E.164, as stored) that exist, by number."""
        unique = list(dict.fromkeys(numbers))
        out: dict[str, Contact] = {}
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self.db.all(f"SELECT * FROM contacts WHERE number IN ({marks})", chunk):
                out[row["number"]] = contact_from_row(row)
        return out

    def save(self, number: str, values: ContactValues, *, actor: str, create: bool = True) -> Saved:
        """Write `values` to the contact of `number`, creating it when `create` (the same call twice changes
        nothing the second time: an idempotent create by number). Without `create` a missing contact is
        `NotFound`."""
        with self.db.transaction():
            current = self.find(number)
            if current is None and not create:
                raise NotFound(f"there is no contact {self.canonical(number)}; add it with `smsgate contacts add`")
            number = current.number if current else self.phone_number(number)
            columns, changed = merge(current, values)
            now = self.db.now()
            if current is None:
                names = ", ".join(columns)
                cur = self.db.execute(
                    f"INSERT INTO contacts (number, {names}, created_at, updated_at)"
                    f" VALUES (?, {', '.join('?' * len(columns))}, ?, ?)", (number, *columns.values(), now, now))
                contact_id = int(cur.lastrowid or 0)
                self.audit.record(actor, "contact.add", "contact", contact_id,
                                  {"number": number, "changes": _changes(columns, changed)})
            elif changed:
                contact_id = current.id
                sets = ", ".join(f"{k} = ?" for k in columns)
                self.db.execute(f"UPDATE contacts SET {sets}, updated_at = ? WHERE id = ?",
                                (*columns.values(), now, contact_id))
                self.audit.record(actor, "contact.edit", "contact", contact_id,
                                  {"number": number, "changes": _changes(columns, changed)})
            else:
                contact_id = current.id
            return Saved(self.by_id(contact_id), current is None, changed)

    def update(self, number: str, *, first_name: str | None = None, timezone: str | None = None,
               tags: list[str] | None = None, fields: dict[str, Any] | None = None, actor: str = "cli") -> int:
        """Set values on the contact of `number` (created if new); `tags` and `fields` replace the stored ones."""
        current = self.find(number)
        old_tags = set(current.tags) if current else set()
        old_fields = set(current.fields) if current else set()
        new_tags = {clean_tag(t) for t in tags} if tags is not None else old_tags
        merged_fields: dict[str, Any] = {}
        if fields is not None:
            merged_fields = {**dict.fromkeys(old_fields), **fields}
        values = ContactValues(first_name=first_name, timezone=timezone, fields=merged_fields,
                               add_tags=tuple(new_tags - old_tags), remove_tags=tuple(old_tags - new_tags))
        return self.save(number, values, actor=actor).contact.id

    def add_tag(self, number: str, tag: str) -> None:
        self.save(number, ContactValues(add_tags=(tag,)), actor="rules")

    def search(self, *, q: str | None = None, tag: str | None = None, list_name: str | None = None,
               limit: int = 50, offset: int = 0) -> list[Contact]:
        """Contacts whose name or number contains every word of `q` (case and accents aside), with `tag`, on
        the list `list_name`; named ones first, by name, then by number."""
        sql, params = self._search_sql("k.*", q, tag, list_name)
        rows = self.db.all(sql + " ORDER BY k.name IS NULL, k.search, k.number LIMIT ? OFFSET ?",
                           (*params, limit, offset))
        return [contact_from_row(r) for r in rows]

    def count(self, *, q: str | None = None, tag: str | None = None, list_name: str | None = None) -> int:
        sql, params = self._search_sql("COUNT(*)", q, tag, list_name)
        return int(self.db.scalar(sql, params))

    def _search_sql(self, what: str, q: str | None, tag: str | None, list_name: str | None
                    ) -> tuple[str, list[Any]]:
        digits, words = search_terms(q or "")
        conditions: list[tuple[str, Any]] = [("k.search LIKE ? ESCAPE '\\'", _like(w)) for w in words]
        if digits:
            conditions.append(("k.number LIKE ?", f"%{digits}%"))
        if tag:
            conditions.append(("k.tags LIKE ? ESCAPE '\\'", _like(json.dumps(tag.strip().lower(),
                                                                              ensure_ascii=False))))
        join = ""
        if list_name:
            join = (" JOIN list_members m ON m.contact_id = k.id JOIN lists l ON l.id = m.list_id")
            conditions.append(("l.name = ?", list_name.strip().lower()))
        clause, params = where(*conditions)
        return f"SELECT {what} FROM contacts k{join}{clause}", params

    # -- bulk writes (the CSV import) -----------------------------------------------------------------
    def insert_many(self, rows: Sequence[tuple[str, Mapping[str, Any]]]) -> dict[str, int]:
        """New contacts `(number, columns from merge())` in the caller's transaction; their ids by number."""
        if not rows:
            return {}
        now = self.db.now()
        names = list(rows[0][1])
        ids = self.db.append_rows(
            "contacts",
            f"INSERT INTO contacts (number, {', '.join(names)}, created_at, updated_at)"
            f" VALUES (?, {', '.join('?' * len(names))}, ?, ?)",
            ((number, *(columns[n] for n in names), now, now) for number, columns in rows), len(rows))
        return {number: contact_id for (number, _), contact_id in zip(rows, ids, strict=True)}

    def update_many(self, rows: Sequence[tuple[int, Mapping[str, Any]]]) -> None:
        """Changed contacts `(id, columns from merge())` in the caller's transaction."""
        if not rows:
            return
        now = self.db.now()
        names = list(rows[0][1])
        sets = ", ".join(f"{n} = ?" for n in names)
        self.db.executemany(f"UPDATE contacts SET {sets}, updated_at = ? WHERE id = ?",
                            ((*(columns[n] for n in names), now, contact_id) for contact_id, columns in rows))

    def blank(self, contact_id: int) -> None:
        """Erasure: no name, language, time zone, fields, tags or notes; the row (and its number) stays for the
        consent ledger and the audit trail, with the time of the erasure."""
        row = self.db.one("SELECT number FROM contacts WHERE id = ?", (contact_id,))
        if row is None:
            raise NotFound(f"there is no contact #{contact_id}")
        now = self.db.now()
        self.db.execute(
            "UPDATE contacts SET name = NULL, first_name = NULL, last_name = NULL, language = NULL, timezone = NULL,"
            " notes = NULL, fields = '{}', tags = '[]', search = '', erased_at = ?, updated_at = ? WHERE id = ?",
            (now, now, contact_id))

    def has_been_texted(self, number: str) -> bool:
        """True once anything has been queued for, sent to or received from `number` (the first-message
        footer depends on it)."""
        row = self.db.one(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE to_number = ? AND state != 'cancelled')"
            " OR EXISTS (SELECT 1 FROM inbound WHERE sender = ?)"
            " OR EXISTS (SELECT 1 FROM contacts WHERE number = ? AND first_texted_at IS NOT NULL) AS t",
            (number, number, number),
        )
        return bool(row and row["t"])

    def last_modem_id(self, contact_id: int) -> int | None:
        """The SIM this contact last texted in on: replies and reminders go out through it (sticky sender)."""
        row = self.db.one("SELECT last_modem_id FROM contacts WHERE id = ?", (contact_id,))
        return row["last_modem_id"] if row else None

    def mark_texted(self, number: str, at: str) -> int:
        """The contact's id, created if new, with `first_texted_at` set on its first send (the footer rule
        reads it); one statement for new and first-texted contacts, a read for everyone else."""
        rows = self.db.execute(
            "INSERT INTO contacts (number, created_at, updated_at, first_texted_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (number) DO UPDATE SET first_texted_at = excluded.first_texted_at"
            " WHERE contacts.first_texted_at IS NULL RETURNING id",
            (number, at, at, at),
        ).fetchall()
        if not rows:
            rows = self.db.execute("SELECT id FROM contacts WHERE number = ?", (number,)).fetchall()
        return int(rows[0][0])

    def note_inbound(self, contact_id: int, modem_id: int, at: str) -> None:
        self.db.execute(
            "UPDATE contacts SET last_modem_id = ?, last_inbound_at = ? WHERE id = ?", (modem_id, at, contact_id)
        )


def _changes(columns: Mapping[str, Any], changed: Sequence[str]) -> dict[str, Any]:
    """What the audit entry records of a write: the new value of each changed one (erasure scrubs them)."""
    return {c: (json.loads(columns[c]) if c in ("fields", "tags") else columns[c]) for c in changed}


# What a thread carries besides its messages, and how two threads' values combine when one is merged into
# the other (the thread kept wins; the merged one fills what it lacks).
_MERGED_FIELDS = ("assigned_to", "team", "menu", "after_hours_replied_at", "last_message_at", "likely_opt_out",
                  "unread", "status")


class Conversations:
    """Threads: one per contact and SIM, which is what staff read and answer in the inbox.

    A message can be queued before anyone knows which SIM will send it. It then waits in the contact's
    thread if there is one, or in a thread with no SIM yet (`modem_id` 0) that becomes the SIM's thread
    when a SIM is known (the first send, or the patient writing in), keeping its id, assignment and unread
    count. A thread left empty when its message goes out through another SIM is merged into that SIM's
    thread. So staff see one thread per contact and SIM, whatever the order of events.
    """

    def __init__(self, db: Db, *, audit: AuditLog) -> None:
        self.db = db
        self.audit = audit

    def for_contact(self, contact_id: int, modem_id: int) -> int:
        """The thread for `contact_id` on SIM `modem_id`, created if new. With no SIM (0): the contact's
        latest thread, whichever SIM it is on, so a queued message does not start a second one."""
        if modem_id:
            return self._on_sim(contact_id, modem_id, None)
        row = self.db.one("SELECT id FROM conversations WHERE contact_id = ?"
                          " ORDER BY modem_id = 0, last_message_at DESC NULLS LAST, id DESC LIMIT 1", (contact_id,))
        if row is not None:
            return int(row["id"])
        cur = self.db.execute("INSERT INTO conversations (contact_id, modem_id, created_at) VALUES (?, 0, ?)",
                              (contact_id, self.db.now()))
        return int(cur.lastrowid or 0)

    def _on_sim(self, contact_id: int, modem_id: int, at: str | None) -> int:
        """The thread on `modem_id` (its last message at `at`, when given): the existing one, else the
        contact's thread waiting for a SIM, which becomes this SIM's, else a new one."""
        stamp = "last_message_at = COALESCE(?, last_message_at)"
        for sql, params in (
            (f"UPDATE conversations SET {stamp} WHERE contact_id = ? AND modem_id = ? RETURNING id",
             (at, contact_id, modem_id)),
            (f"UPDATE conversations SET modem_id = ?, {stamp} WHERE contact_id = ? AND modem_id = 0 RETURNING id",
             (modem_id, at, contact_id)),
            ("INSERT INTO conversations (contact_id, modem_id, created_at, last_message_at) VALUES (?, ?, ?, ?)"
             " RETURNING id", (contact_id, modem_id, self.db.now(), at)),
        ):
            rows = self.db.execute(sql, params).fetchall()
            if rows:
                return int(rows[0][0])
        raise NotFound(f"no conversation for contact #{contact_id} on modem #{modem_id}")  # unreachable: INSERT

    def after_send(self, contact_id: int, modem_id: int, current: int | None, message_id: int, at: str) -> int:
        """The thread a message sent through `modem_id` at `at` belongs to, its last message stamped.

        `current` is the thread it was queued in. When that is already this SIM's, one statement (this
        runs in every send's commit). Otherwise the message moves, and a thread it leaves empty becomes
        this SIM's (when the SIM has none yet) or is merged into it, so no empty thread stays behind.
        """
        if current is None:
            return self._on_sim(contact_id, modem_id, at)
        if self.db.execute("UPDATE conversations SET last_message_at = ? WHERE id = ? AND modem_id = ? RETURNING id",
                           (at, current, modem_id)).fetchall():
            return current
        left_empty = not self.db.scalar(
            "SELECT EXISTS (SELECT 1 FROM messages WHERE conversation_id = ? AND id != ?)"
            " OR EXISTS (SELECT 1 FROM inbound WHERE conversation_id = ?)", (current, message_id, current))
        target = self.db.one("SELECT id FROM conversations WHERE contact_id = ? AND modem_id = ?",
                             (contact_id, modem_id))
        if target is None and left_empty:
            self.db.execute("UPDATE conversations SET modem_id = ?, last_message_at = ? WHERE id = ?",
                            (modem_id, at, current))
            return current
        kept = self._on_sim(contact_id, modem_id, at)
        if left_empty:
            self.merge(current, into=kept, actor="outbox")
        return kept

    def merge(self, source: int, *, into: int, actor: str) -> None:
        """Fold thread `source` into `into`: its messages move, what `into` lacks (assignment, team, menu)
        comes from `source`, unread counts add up, an unread `source` reopens `into`; then `source` goes."""
        with self.db.transaction():
            rows = {r["id"]: r for r in self.db.all(
                f"SELECT id, {', '.join(_MERGED_FIELDS)} FROM conversations WHERE id IN (?, ?)", (source, into))}
            if source == into or len(rows) != 2:
                raise NotFound(f"cannot merge conversation #{source} into #{into}: both must exist")
            old, new = rows[source], rows[into]
            merged = {k: new[k] if new[k] is not None else old[k]
                      for k in ("assigned_to", "team", "menu", "after_hours_replied_at")}
            merged["last_message_at"] = max(filter(None, (new["last_message_at"], old["last_message_at"])),
                                            default=None)
            merged["likely_opt_out"] = max(new["likely_opt_out"], old["likely_opt_out"])
            merged["unread"] = new["unread"] + old["unread"]
            merged["status"] = "open" if old["unread"] else new["status"]
            self.db.execute("UPDATE messages SET conversation_id = ? WHERE conversation_id = ?", (into, source))
            self.db.execute("UPDATE inbound SET conversation_id = ? WHERE conversation_id = ?", (into, source))
            self.db.execute("DELETE FROM conversations WHERE id = ?", (source,))
            sets = ", ".join(f"{k} = ?" for k in merged)
            self.db.execute(f"UPDATE conversations SET {sets} WHERE id = ?", (*merged.values(), into))
            self.audit.record(actor, "conversation.merged", "conversation", into, {"from": source})

    def get(self, conversation_id: int) -> dict[str, Any]:
        row = self.db.one(
            "SELECT c.*, k.number, k.name, k.first_name, m.name AS modem_name, m.msisdn AS modem_msisdn"
            " FROM conversations c JOIN contacts k ON k.id = c.contact_id"
            " LEFT JOIN modems m ON m.id = c.modem_id WHERE c.id = ?",
            (conversation_id,),
        )
        if row is None:
            raise NotFound(f"no conversation #{conversation_id}")
        return row

    def threads(
        self,
        *,
        status: str | None = None,
        team: str | None = None,
        unread_only: bool = False,
        limit: int = 50,
        offset: int = 0,
    ) -> list[dict[str, Any]]:
        clause, params = where(("c.status = ?", status), ("c.team = ?", team), ("c.unread > 0", unread_only))
        sql = (
            "SELECT c.*, k.number, k.name, m.name AS modem_name FROM conversations c"
            " JOIN contacts k ON k.id = c.contact_id LEFT JOIN modems m ON m.id = c.modem_id"
            + clause
            + " ORDER BY c.last_message_at DESC NULLS LAST, c.id DESC LIMIT ? OFFSET ?"
        )
        return self.db.all(sql, (*params, limit, offset))

    def history(self, conversation_id: int) -> list[dict[str, Any]]:
        """Both directions of one thread, oldest first; a received text carries `notes`, what the codec
        noticed in it (or why it could not be read), for staff to see beside it."""
        conv = self.get(conversation_id)
        rows = self.db.all(
            "SELECT 'in' AS direction, id, body, received_at AS at, NULL AS state, keyword, NULL AS outcome,"
            " decode_error, decode_notes FROM inbound WHERE conversation_id = :c"
            " UNION ALL SELECT 'out', id, body, created_at, state, NULL, outcome, NULL, NULL FROM messages"
            " WHERE to_number = :n AND (conversation_id = :c OR (conversation_id IS NULL))"
            " ORDER BY at, direction",
            {"c": conversation_id, "n": conv["number"]},
        )
        for row in rows:
            notes = json.loads(row.pop("decode_notes") or "[]")
            error = row.pop("decode_error")
            row["notes"] = [error, *notes] if error else notes
        return rows

    def update(self, conversation_id: int, *, actor: str, **fields: Any) -> None:
        allowed = {"status", "team", "assigned_to", "unread", "likely_opt_out", "after_hours_replied_at", "menu"}
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"unknown conversation fields: {sorted(bad)}")
        if not fields:
            return
        with self.db.transaction():
            sets = ", ".join(f"{k} = ?" for k in fields)
            self.db.execute(f"UPDATE conversations SET {sets} WHERE id = ?", (*fields.values(), conversation_id))
            self.audit.record(actor, "conversation.update", "conversation", conversation_id, fields)

    def note_inbound(self, conversation_id: int, at: str) -> None:
        """A message came in on this thread: one more unread, and it is open again."""
        self.db.execute(
            "UPDATE conversations SET unread = unread + 1, last_message_at = ?, status = 'open' WHERE id = ?",
            (at, conversation_id),
        )

    def touch(self, conversation_id: int, at: str) -> None:
        self.db.execute("UPDATE conversations SET last_message_at = ? WHERE id = ?", (at, conversation_id))
