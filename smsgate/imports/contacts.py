"""Contacts from a practice system's CSV export: the rules that make a row a contact.

`CsvTable` (table.py) reads the file; this module decides, row by row, what it means: the number in the
clinic's region, the name (split when the file has one name column), language, time zone, tags, notes,
the clinic's own fields, the lists a row puts the contact on and any consent evidence it carries. Then it
writes in batches, each batch one transaction (contacts, memberships, consent events and one audit entry
together), so a killed import leaves no half-written contact and a rerun completes the rest.

Re-importing a file changes nothing the second time: a value equal to the stored one is no change, a
blank cell never clears a stored value, and consent evidence already on the ledger is not recorded again.
A number repeated in one file is one contact: the first row's values stand and later rows only fill what
it left blank (reported as merged). Consent is never assumed: a row without evidence leaves the contact
with transactional consent only, and evidence is only recorded for a list (the consent's purpose), never
over an opt-out the patient sent after the date the file gives.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, Literal, TextIO

from smsgate.numbers import InvalidNumber, normalize
from smsgate.queue import Store, views
from smsgate.queue.clock import parse_ts
from smsgate.queue.contacts import Contact, ContactError, ContactValues, clean_tag, merge
from smsgate.queue.lists import ListError, list_name

from .table import DELIMITERS, CsvTable, ErrorSheet, FileError, Layout, RowError, SourceRow, Target

__all__ = ["FIELD_PREFIX", "TARGETS", "ContactImport", "ImportReport", "RowChange", "parse_mapping"]

FIELD_PREFIX = "field."
BATCH_ROWS = 500
KEEP = 1000  # row errors and row changes kept in the report (all are counted; all errors go to the sheet)

TARGETS = (
    Target("number", ("number", "mobile", "mobile phone", "mobile number", "cell", "cell phone", "cellphone",
                      "cell number", "sms", "sms number", "phone", "phone number", "telephone", "tel",
                      "contact number"), required=True),
    Target("first_name", ("first name", "first", "firstname", "given name", "forename", "patient first name",
                          "fname")),
    Target("last_name", ("last name", "last", "lastname", "surname", "family name", "patient last name", "lname")),
    Target("name", ("name", "full name", "patient name", "patient", "contact name")),
    Target("language", ("language", "preferred language", "lang", "spoken language")),
    Target("timezone", ("timezone", "time zone", "tz")),
    Target("tags", ("tags", "tag", "labels")),
    Target("notes", ("notes", "note", "comments", "comment", "remarks")),
    Target("list", ("list", "lists", "list name")),
    Target("opted_in_at", ("opted in at", "opted in", "opt in date", "opt in at", "consent date",
                           "sms consent date", "consented at")),
    Target("consent_source", ("consent source", "consent method", "source of consent", "how consented")),
)
_SCIENTIFIC = re.compile(r"^\d(?:[.,]\d+)?[eE][+]?\d+$")
_SPLIT = re.compile(r"[,;|]")
_SLASH_DATE = re.compile(r"^(\d{1,4})[/.-](\d{1,2})[/.-](\d{1,4})$")
_MONTH_FIRST = frozenset({"US", "PH", "FM", "MH", "PW", "GU", "AS", "VI", "PR", "MP"})
Mode = Literal["update", "skip"]


def field_target(header: str) -> str:
    """The mapping that keeps a column as one of the clinic's own fields: "Date of Birth Year" ->
    "field.date_of_birth_year" (the name a field may have: lower-case ASCII letters, digits and '_')."""
    folded = unicodedata.normalize("NFKD", header.casefold())
    slug = re.sub(r"[^a-z0-9]+", "_", "".join(c for c in folded if not unicodedata.combining(c))).strip("_")
    if not slug or not slug[0].isalpha():
        slug = "f_" + slug
    return FIELD_PREFIX + slug[:40].rstrip("_")


class _RowProblem(Exception):
    """Why one row cannot be imported, as the second half of "row 17: ..."."""


def parse_mapping(text: str | None) -> dict[str, str]:
    """`--map "Mobile=number,First=first_name,MRN=field.mrn,Fax=-"` as header -> target."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        column, sep, target = part.partition("=")
        if not sep or not column.strip() or not target.strip():
            raise FileError(f"the mapping {part.strip()!r} is not COLUMN=WHAT (e.g. Mobile=number); "
                            "separate pairs with commas")
        out[column.strip()] = target.strip()
    return out


@dataclass(frozen=True)
class _Evidence:
    raw_at: str
    at: datetime | None
    source: str

    def core(self) -> str:
        return "; ".join(p for p in (self.raw_at and f"opted_in_at={self.raw_at}",
                                     self.source and f"consent_source={self.source}") if p)


@dataclass(frozen=True)
class _Planned:
    row: int
    cells: tuple[str, ...]
    number: str
    values: ContactValues
    lists: tuple[str, ...]
    evidence: _Evidence | None


@dataclass(frozen=True)
class RowChange:
    row: int
    number: str
    action: str  # created, updated, unchanged, skipped, merged
    changed: tuple[str, ...] = ()
    first_row: int | None = None  # for a merged row, the row it repeats

    def line(self) -> str:
        what = f" ({', '.join(self.changed)})" if self.changed else ""
        same = f", same number as row {self.first_row}" if self.first_row else ""
        return f"row {self.row}: {self.number} {self.action}{what}{same}"


@dataclass
class ImportReport:
    """What an import did (or, dry, would do), with the rows that failed and why."""

    source: str
    encoding: str
    delimiter: str
    columns: dict[str, str]
    ignored_columns: tuple[str, ...]
    dry_run: bool
    mode: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    merged: int = 0
    error_count: int = 0
    consent_recorded: int = 0
    errors: list[RowError] = field(default_factory=list)
    changes: list[RowChange] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lists_created: list[str] = field(default_factory=list)

    def lines(self, *, rows: bool = False) -> list[str]:
        would = "would be " if self.dry_run else ""
        out = [f"{self.source}: {self.encoding}, {DELIMITERS.get(self.delimiter, self.delimiter)}-separated,"
               f" {self.rows} rows" + (" (dry run: nothing was changed)" if self.dry_run else "")]
        out.append("columns: " + ", ".join(f"{h} -> {t}" for h, t in self.columns.items()))
        if self.ignored_columns:
            out.append(f"ignored columns: {', '.join(self.ignored_columns)}"
                       " (keep one with --map \"COLUMN=field.NAME\")")
        out.append(f"{self.created} {would}created, {self.updated} {would}updated, {self.unchanged} unchanged, "
                   f"{self.skipped} {would}skipped (already there), {self.merged} {would}merged (repeated numbers), "
                   f"{self.error_count} with errors")
        if self.consent_recorded:
            out.append(f"{self.consent_recorded} opt-ins {would}recorded on the consent ledger from the file's"
                       " evidence")
        if self.lists_created:
            out.append(f"lists {would}created: {', '.join(self.lists_created)}")
        if rows:
            out.extend("  " + c.line() for c in self.changes)
            if self.rows - self.error_count > len(self.changes):
                out.append(f"  ... and {self.rows - self.error_count - len(self.changes)} more rows")
        else:
            out.extend(c.line() for c in self.changes if c.action == "merged")
        out.extend(self.notes)
        out.extend(e.line() for e in self.errors)
        if self.error_count > len(self.errors):
            out.append(f"... and {self.error_count - len(self.errors)} more rows with errors"
                       " (write them all with --errors)")
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source, "encoding": self.encoding, "delimiter": self.delimiter, "columns": self.columns,
            "ignored_columns": list(self.ignored_columns), "dry_run": self.dry_run, "mode": self.mode,
            "rows": self.rows, "created": self.created, "updated": self.updated, "unchanged": self.unchanged,
            "skipped": self.skipped, "merged": self.merged, "errors": self.error_count,
            "consent_recorded": self.consent_recorded, "lists_created": self.lists_created, "notes": self.notes,
            "row_errors": [{"row": e.row, "reason": e.reason} for e in self.errors],
            "changes": [{"row": c.row, "number": c.number, "action": c.action, "changed": list(c.changed),
                         "first_row": c.first_row} for c in self.changes],
        }


@dataclass
class _State:
    """A number's contact as this import has left it so far: `contact` updated by `pending` columns (kept
    as written, made a `Contact` only when the number comes up again, which is rare)."""

    contact: Contact | None
    lists: set[str]
    pending: dict[str, Any] | None = None

    def current(self, number: str) -> Contact | None:
        if self.pending is not None:
            self.contact = _provisional(self.contact, number, self.pending)
            self.pending = None
        return self.contact


def open_table(source: BinaryIO, mapping: Mapping[str, str] | None = None) -> CsvTable:
    """The file as contact rows (its layout found out); `FileError` says why it cannot be read."""
    return CsvTable(source, TARGETS, mapping=mapping, dynamic_prefixes=(FIELD_PREFIX,))


class ContactImport:
    """One import of one file into `store`, with the options of `smsgate contacts import`."""

    def __init__(self, store: Store, *, actor: str, source_name: str, region: str | None = None,
                 tags: Iterable[str] = (), to_list: str | None = None, mode: Mode = "update",
                 dry_run: bool = False, errors_out: TextIO | None = None, batch_rows: int = BATCH_ROWS,
                 on_progress: Callable[[int, int, int | None], None] | None = None,
                 now: datetime | None = None) -> None:
        self.store = store
        self.actor = actor
        self.source_name = source_name
        self.region = region if region is not None else store.default_region
        try:
            self.tags = tuple(dict.fromkeys(clean_tag(t) for t in tags))
            self.list = list_name(to_list) if to_list else None
        except (ContactError, ListError) as exc:
            raise FileError(str(exc)) from None
        if mode not in ("update", "skip"):
            raise ValueError(f"mode must be update or skip, not {mode!r}")
        self.mode: Mode = mode
        self.dry_run = dry_run
        self.errors_out = errors_out
        self.batch_rows = batch_rows
        self.on_progress = on_progress
        self.now = now or store.clock()
        self._seen: dict[str, int] = {}
        self._created: set[str] = set()
        self._overlay: dict[str, _State] = {}
        self._lists_known: set[str] = set()
        self._consented: set[tuple[str, str, str]] = set()

    # -- running ----------------------------------------------------------------------------------------
    def run(self, table: CsvTable) -> ImportReport:
        layout = table.layout
        report = _new_report(self, layout)
        sheet = ErrorSheet(layout.header, self.errors_out, layout.delimiter)
        batch: list[_Planned] = []
        if self.list:
            self._ensure_list(self.list, report)
        for item in table.rows():
            report.rows += 1
            planned = item if isinstance(item, RowError) else self._plan(item)
            if isinstance(planned, RowError):
                self._error(report, sheet, planned)
                continue
            batch.append(planned)
            if len(batch) >= self.batch_rows:
                self._flush(batch, report, sheet)
                batch = []
                if self.on_progress:
                    self.on_progress(report.rows, table.position, table.size)
        if batch:
            self._flush(batch, report, sheet)
        if self.on_progress:
            self.on_progress(report.rows, table.size or table.position, table.size)
        return report

    def _error(self, report: ImportReport, sheet: ErrorSheet, error: RowError) -> None:
        report.error_count += 1
        if len(report.errors) < KEEP:
            report.errors.append(error)
        sheet.add(error)

    # -- one row ------------------------------------------------------------------------------------------
    def _plan(self, src: SourceRow) -> _Planned | RowError:
        try:
            return self._read(src)
        except _RowProblem as exc:
            return RowError(src.row, str(exc), src.cells)

    def _read(self, src: SourceRow) -> _Planned:
        v = src.values
        number = self._number(v.get("number", ""))
        first, last = v.get("first_name") or None, v.get("last_name") or None
        if not first and not last and v.get("name"):
            first, last = split_name(v["name"])
        fields = {k[len(FIELD_PREFIX):]: value for k, value in v.items() if k.startswith(FIELD_PREFIX) and value}
        tags = [*self.tags, *(t for t in _SPLIT.split(v.get("tags", "")) if t.strip())]
        try:
            values = ContactValues(first_name=first, last_name=last, language=v.get("language") or None,
                                   timezone=v.get("timezone") or None, notes=v.get("notes") or None,
                                   fields=fields, add_tags=tuple(tags))
            lists = tuple(dict.fromkeys([*([self.list] if self.list else []),
                                         *(list_name(n) for n in _SPLIT.split(v.get("list", "")) if n.strip())]))
        except (ContactError, ListError) as exc:
            raise _RowProblem(str(exc)) from None
        evidence = self._evidence(v.get("opted_in_at", ""), v.get("consent_source", ""))
        if evidence is not None and not lists:
            raise _RowProblem(f"it carries consent evidence ({evidence.core()}) but no list to consent to: consent "
                              "is for a purpose, so give --list or fill the list column")
        return _Planned(src.row, src.cells, number, values, lists, evidence)

    def _number(self, raw: str) -> str:
        text = raw.strip()
        if not text:
            raise _RowProblem("the number is empty")
        if _SCIENTIFIC.match(text):
            raise _RowProblem(f"{raw!r} is a number a spreadsheet shortened (scientific notation), so digits are "
                              "lost; format the column as text and export the file again")
        try:
            return normalize(text, default_region=self.region or None)
        except InvalidNumber as exc:
            if text.startswith("00"):
                try:
                    return normalize("+" + text[2:], default_region=self.region or None)
                except InvalidNumber:
                    pass
            where = f" in {self.region}" if self.region else ""
            hint = "" if self.region or text.startswith("+") else (
                "; write it with + and the country code, or set clinic.region to import national numbers")
            raise _RowProblem(f"{raw!r} is not a phone number{where} ({exc.reason}){hint}") from None

    def _evidence(self, raw_at: str, source: str) -> _Evidence | None:
        if not raw_at and not source:
            return None
        at = None
        if raw_at:
            at = parse_consent_time(raw_at, self.region)
            if at is None:
                raise _RowProblem(f"opted_in_at {raw_at!r} is not a date; write it as 2025-03-01 (or 2025-03-01 14:30)")
            if at > self.now + timedelta(days=1):
                raise _RowProblem(f"opted_in_at {raw_at!r} is in the future")
        return _Evidence(raw_at, at, source)

    # -- one batch ----------------------------------------------------------------------------------------
    def _ensure_list(self, name: str, report: ImportReport) -> None:
        if name in self._lists_known:
            return
        if self.store.lists.get(name) is None:
            report.lists_created.append(name)
            if not self.dry_run:
                self.store.lists.ensure(name, actor=self.actor)
        self._lists_known.add(name)

    def _flush(self, batch: list[_Planned], report: ImportReport, sheet: ErrorSheet) -> None:
        if self.dry_run:
            self._apply(batch, report, sheet)
            return
        with self.store.transaction(), self.store.large_write():
            self._apply(batch, report, sheet)
        self._overlay.clear()

    def _states(self, numbers: Iterable[str]) -> None:
        missing = [n for n in dict.fromkeys(numbers) if n not in self._overlay]
        known = self.store.contacts.find_many(missing)
        memberships = views.list_names_of(self.store, [c.id for c in known.values()])
        for number in missing:
            contact = known.get(number)
            self._overlay[number] = _State(contact, set(memberships.get(contact.id, ())) if contact else set())

    def _apply(self, batch: list[_Planned], report: ImportReport, sheet: ErrorSheet) -> None:
        self._states(p.number for p in batch)
        new: dict[str, dict[str, Any]] = {}
        changed_rows: dict[int, dict[str, Any]] = {}
        joins: dict[str, list[str]] = {}
        consents: list[tuple[str, str, str]] = []
        counts = {"created": 0, "updated": 0}
        for p in batch:
            state = self._overlay[p.number]
            contact = state.current(p.number)
            first_row = self._seen.get(p.number)
            if first_row is None:
                self._seen[p.number] = p.row
            existed_before = contact is not None and p.number not in self._created
            if existed_before and self.mode == "skip":
                report.skipped += 1
                self._change(report, RowChange(p.row, p.number, "skipped", first_row=first_row))
                continue
            try:
                columns, changed = merge(contact, p.values, fill_only=first_row is not None)
            except ContactError as exc:
                self._error(report, sheet, RowError(p.row, str(exc), p.cells))
                continue
            for name in p.lists:
                self._ensure_list(name, report)
            added_lists = [n for n in p.lists if n not in state.lists]
            recorded = [scope for scope in p.lists if p.evidence and self._consent(p, scope, report, consents)]
            what = tuple([*changed, *(f"list {n}" for n in added_lists), *(f"opt-in {n}" for n in recorded)])
            if contact is None:
                action = "created"
                new[p.number] = columns
                self._created.add(p.number)
            elif not what:
                action = "merged" if first_row is not None else "unchanged"
            else:
                action = "merged" if first_row is not None else "updated"
                if changed:
                    if p.number in new:
                        new[p.number] = columns
                    else:
                        changed_rows[contact.id] = columns
            if contact is None or changed:
                state.pending = columns
            state.lists.update(added_lists)
            for name in added_lists:
                joins.setdefault(name, []).append(p.number)
            if first_row is not None:
                report.merged += 1
                self._change(report, RowChange(p.row, p.number, "merged", what, first_row))
            else:
                setattr(report, action, getattr(report, action) + 1)
                if action in counts:
                    counts[action] += 1
                self._change(report, RowChange(p.row, p.number, action, what))
        if self.dry_run:
            return
        ids = self.store.contacts.insert_many(list(new.items()))
        self.store.contacts.update_many(list(changed_rows.items()))
        for name, numbers in joins.items():
            self.store.lists.add_members(name, [ids.get(n) or self._id_of(n) for n in numbers], actor=self.actor,
                                         source="import")
        for number, scope, evidence in consents:
            self.store.consent.record(number, "opt_in", scope=scope, source="import", evidence=evidence,
                                      actor=self.actor)
        if new or changed_rows or joins or consents:
            self.store.audit.record(self.actor, "contact.import", "import", None, {
                "file": self.source_name, "rows": [batch[0].row, batch[-1].row], "created": counts["created"],
                "updated": counts["updated"], "consent_recorded": len(consents)})

    def _id_of(self, number: str) -> int:
        contact = self._overlay[number].current(number)
        if contact is None or not contact.id:
            raise ContactError(f"{number} has no contact id after its batch was written")
        return contact.id

    def _consent(self, p: _Planned, scope: str, report: ImportReport, consents: list[tuple[str, str, str]]) -> bool:
        """Whether the row's evidence becomes an opt-in to `scope` now (False: already there, or refused)."""
        assert p.evidence is not None
        core = p.evidence.core()
        key = (p.number, scope, core)
        if key in self._consented:
            return False
        self._consented.add(key)
        events = [e for e in self.store.consent.history(p.number) if e["scope"] in (scope, "all")]
        if any(e["event"] == "opt_in" and e["source"] == "import" and e["scope"] == scope
               and (e["evidence"] or "").startswith(core + " (") for e in events):
            return False
        opt_outs = [e for e in events if e["event"] == "opt_out"]
        if opt_outs:
            last = opt_outs[-1]
            if p.evidence.at is None or p.evidence.at <= parse_ts(last["at"]):
                report.notes.append(
                    f"row {p.row}: {p.number} not opted in to {scope!r}: the consent ledger has an opt-out from "
                    f"{last['at'][:10]} ({last['source']}) that is newer than the file's evidence; only the patient "
                    "can opt back in")
                return False
        consents.append((p.number, scope, f"{core} ({self.source_name} row {p.row})"))
        report.consent_recorded += 1
        return True

    def _change(self, report: ImportReport, change: RowChange) -> None:
        if len(report.changes) < KEEP:
            report.changes.append(change)


def _new_report(job: ContactImport, layout: Layout) -> ImportReport:
    return ImportReport(job.source_name, layout.encoding, layout.delimiter, layout.columns, layout.ignored,
                        job.dry_run, job.mode)


def _provisional(base: Contact | None, number: str, columns: Mapping[str, Any]) -> Contact:
    """The contact as it is after a row (written at the end of the batch, or never in a dry run); a new one
    has id 0 until it is written."""
    return Contact(
        id=base.id if base else 0, number=number,
        first_name=columns["first_name"], last_name=columns["last_name"], name=columns["name"],
        language=columns["language"], timezone=columns["timezone"], fields=json.loads(columns["fields"]),
        tags=tuple(json.loads(columns["tags"])), notes=columns["notes"],
        created_at=base.created_at if base else "", updated_at=base.updated_at if base else "",
        erased_at=base.erased_at if base else None, first_texted_at=base.first_texted_at if base else None,
        last_inbound_at=base.last_inbound_at if base else None)


def split_name(full: str) -> tuple[str | None, str | None]:
    """One name column as (first, last): "Núñez, Zoë" is last-comma-first, "Zoë Núñez" first then last."""
    text = " ".join(full.split())
    if "," in text:
        last, _, first = text.partition(",")
        return first.strip() or None, last.strip() or None
    head, _, tail = text.rpartition(" ")
    return (head, tail) if head else (tail or None, None)


def parse_consent_time(raw: str, region: str | None) -> datetime | None:
    """A consent date as files write it: ISO 8601 (`2025-03-01`, `2025-03-01 14:30`, `...Z`), or with
    slashes in the order of the clinic's region (month first in the US)."""
    text = raw.strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        parsed = None
    if parsed is None:
        m = _SLASH_DATE.match(text)
        if m is None:
            return None
        a, b, c = (int(x) for x in m.groups())
        if len(m.group(1)) == 4:
            year, month, day = a, b, c
        elif (region or "").upper() in _MONTH_FIRST:
            month, day, year = a, b, c
        else:
            day, month, year = a, b, c
        if year < 100:
            year += 2000
        try:
            parsed = datetime(year, month, day)
        except ValueError:
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
