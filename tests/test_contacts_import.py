"""The contacts import against real messy files (tests/data/contacts/): what is stored, row by row."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeClock

from smsgate.imports import ContactImport, FileError, ImportReport, open_table, parse_mapping
from smsgate.imports.table import CsvTable, Target
from smsgate.queue import Store
from smsgate.queue.contacts import Contact, ContactValues

DATA = Path(__file__).resolve().parent / "data" / "contacts"


@pytest.fixture
def us(db_path: Path, clock: FakeClock) -> Iterator[Store]:
    s = Store.open(db_path, clock=clock, default_region="US")
    yield s
    s.close()


def run(store: Store, name: str | bytes, *, mapping: str | None = None, errors: io.StringIO | None = None,
        **options: Any) -> ImportReport:
    data = (DATA / name).read_bytes() if isinstance(name, str) else name
    table = open_table(io.BytesIO(data), parse_mapping(mapping))
    source = name if isinstance(name, str) else "inline.csv"
    return ContactImport(store, actor="test", source_name=source, errors_out=errors, **options).run(table)


def stored(store: Store, number: str) -> Contact:
    return store.contacts.require(number)


def names(store: Store) -> dict[str, tuple[str | None, str | None]]:
    return {c.number: (c.first_name, c.last_name) for c in store.contacts.search(limit=500)}


# --- the practice system's export: UTF-8 with BOM, its own header, national numbers ------------------------

def test_a_practice_export_with_a_bom_and_its_own_header_is_read_row_by_row(us: Store) -> None:
    report = run(us, "practice-export-utf8-bom.csv", mapping="MRN=field.mrn")
    assert (report.encoding, report.delimiter) == ("UTF-8 with BOM", ",")
    assert report.columns == {"Mobile Phone": "number", "LAST NAME": "last_name", "First Name": "first_name",
                              "Preferred Language": "language", "MRN": "field.mrn", "Notes": "notes"}
    assert (report.rows, report.created, report.merged, report.error_count) == (8, 5, 1, 2)
    ana = stored(us, "+12025550101")
    assert (ana.first_name, ana.last_name, ana.language, ana.fields, ana.notes) == (
        "Ana", "Rivera", "es", {"mrn": "A-1001"}, "prefers mornings")
    chidi = stored(us, "+12025550102")
    assert (chidi.first_name, chidi.last_name, chidi.language, chidi.notes) == ("Chidi", "Okafor", "en", None)
    thao = stored(us, "+12025550103")
    assert (thao.first_name, thao.last_name, thao.language, thao.notes) == (
        "Thảo", "Nguyễn", "vi", "needs interpreter, bring forms")
    jorg = stored(us, "+12025550104")
    assert (jorg.first_name, jorg.last_name, jorg.language) == ("Jörg", "Müller", "de")
    harriet = stored(us, "+442079460000")  # written "0044 20 7946 0000": 00 is the international prefix
    assert (harriet.first_name, harriet.language) == ("Harriet", "en-GB")
    assert us.contacts.count() == 5


def test_national_numbers_are_resolved_in_the_clinics_region_and_a_bad_one_says_so(us: Store) -> None:
    report = run(us, "practice-export-utf8-bom.csv")
    assert [e.line() for e in report.errors] == [
        "row 8: '555-12' is not a phone number in US (it has the wrong number of digits for its country)",
        "row 10: the number is empty",
    ]


def test_a_number_repeated_in_the_file_is_one_contact_with_the_first_rows_values(us: Store) -> None:
    report = run(us, "practice-export-utf8-bom.csv")
    [merged] = [c for c in report.changes if c.action == "merged"]
    assert (merged.row, merged.first_row, merged.number) == (9, 2, "+12025550101")
    assert "row 9: +12025550101 merged, same number as row 2" in report.lines()
    ana = stored(us, "+12025550101")
    assert (ana.first_name, ana.notes) == ("Ana", "prefers mornings")


def test_a_repeated_row_fills_what_the_first_left_blank(us: Store) -> None:
    data = b"number,first_name,last_name,tags\n2025550101,Ana,,vip\n" + b"x,,,\n" * 3 + \
        b"(202) 555-0101,Anna,Rivera,flu\n"
    report = run(us, data, batch_rows=2)  # the repeat lands in a later batch than the row it repeats
    ana = stored(us, "+12025550101")
    assert (ana.first_name, ana.last_name, ana.tags) == ("Ana", "Rivera", ("flu", "vip"))
    assert (report.created, report.merged) == (1, 1)
    assert run(us, data, batch_rows=2).to_json()["changes"] == [
        {"row": 2, "number": "+12025550101", "action": "unchanged", "changed": [], "first_row": None},
        {"row": 6, "number": "+12025550101", "action": "merged", "changed": [], "first_row": 2}]


def test_a_column_the_import_does_not_know_is_ignored_and_named(us: Store) -> None:
    report = run(us, "practice-export-utf8-bom.csv")
    assert report.ignored_columns == ("MRN",)
    assert stored(us, "+12025550101").fields == {}
    assert any("ignored columns: MRN" in line for line in report.lines())


# --- Excel's Windows-1252 with semicolons ----------------------------------------------------------------------

def test_a_windows_1252_file_with_semicolons_keeps_its_accents(us: Store) -> None:
    report = run(us, "excel-cp1252-semicolon.csv")
    assert (report.encoding, report.delimiter, report.created, report.error_count) == ("Windows-1252", ";", 4, 0)
    assert names(us) == {
        "+12025550111": ("Zoë", "Núñez"),  # "Núñez, Zoë": last name, comma, first name
        "+12025550112": ("Anaïs", "Brontë"),
        "+12025550113": ("Søren", "Ørsted"),  # no comma: first name first
        "+12025550114": ("Siobhán", "O'Brien"),
    }
    assert stored(us, "+12025550111").display == "Zoë Núñez (+1 202-555-0111)"
    assert stored(us, "+12025550112").tags == ("flu-2026", "vip")


def test_a_utf8_file_without_bom_separated_by_tabs_with_header_aliases(us: Store) -> None:
    report = run(us, "utf8-tabs.csv")
    assert (report.encoding, report.delimiter) == ("UTF-8", "\t")
    assert report.columns == {"Given name": "first_name", "Surname": "last_name", "Cell": "number",
                              "Time zone": "timezone"}
    zoe = stored(us, "+12025550121")
    assert (zoe.first_name, zoe.last_name, zoe.timezone) == ("Zoë", "Núñez", "America/Chicago")
    assert stored(us, "+12025550122").timezone is None


def test_the_same_names_in_utf8_and_in_windows_1252_are_stored_alike(us: Store) -> None:
    text = "first_name;last_name;mobile\nZoë;Núñez;2025550161\n"
    run(us, text.encode("utf-8"))
    run(us, text.replace("0161", "0162").encode("cp1252"))
    assert names(us) == {"+12025550161": ("Zoë", "Núñez"), "+12025550162": ("Zoë", "Núñez")}


# --- broken rows -------------------------------------------------------------------------------------------------

def test_every_bad_row_gets_a_reason_and_the_good_rows_still_import(us: Store) -> None:
    report = run(us, "broken-rows.csv")
    assert [e.line() for e in report.errors] == [
        "row 3: the row has 7 cells but the header has 5 columns: a value that contains commas must be in "
        "double quotes",
        "row 4: '2.02555E+09' is a number a spreadsheet shortened (scientific notation), so digits are lost; "
        "format the column as text and export the file again",
        "row 5: first_name has 101 characters; the limit is 100",
        "row 6: 'Klingon!' is not a language; write a code such as en, es or pt-BR",
        "row 7: 'Mars/Olympus_Mons' is not a time zone; use an IANA name such as America/New_York",
        "row 9: '12345' is not a phone number in US (it has the wrong number of digits for its country)",
    ]
    assert names(us) == {"+12025550141": ("Good", "One"), "+12025550146": ("Good", "Two"),
                         "+12025550147": ("Fine", "Three")}


def test_the_error_report_is_a_csv_of_the_failed_rows_with_a_reason_to_fix_and_import_again(us: Store) -> None:
    out = io.StringIO()
    run(us, "broken-rows.csv", errors=out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0] == ["number", "first_name", "last_name", "language", "timezone", "reason"]
    assert [r[-1][:6] for r in rows[1:]] == ["row 3:", "row 4:", "row 5:", "row 6:", "row 7:", "row 9:"]
    assert rows[3][:3] == ["'+12025550143", "A" * 101, "Long"]  # the cell rule of every export
    fixed = out.getvalue().replace("A" * 101, "Alexandra").replace("Klingon!", "tlh").replace(
        "Mars/Olympus_Mons", "UTC")
    again = run(us, fixed.encode("utf-8"))
    assert again.ignored_columns == ("reason",)
    assert stored(us, "+12025550143").first_name == "Alexandra"
    assert stored(us, "+12025550145").timezone == "UTC"
    assert again.error_count == 3  # the row with seven cells, Excel's shortened number and the short code


def test_a_row_with_an_unreadable_cell_is_an_error_and_the_rest_imports(us: Store) -> None:
    huge = "x" * 200_000
    report = run(us, f'number,notes\n+12025550171,"{huge}"\n+12025550172,fine\n'.encode())
    assert report.error_count == 1 and report.errors[0].row == 2
    assert "cannot be read as CSV" in report.errors[0].reason
    assert stored(us, "+12025550172").notes == "fine"


@pytest.mark.parametrize(("data", "message"), [
    (b"", "the file is empty"),
    (b"\n\n\n", "the file is empty"),
    (b"first_name,last_name\nAna,Rivera\n", "no column holds the number"),
    (b"PK\x03\x04\x14\x00\x06\x00", "Excel workbook"),
    (b"number,name\n+12025550101,\x81\x8d\x8f\x90\x9d\n", "neither UTF-8 nor Windows-1252"),
    (b"Mobile,Cell\n1,2\n", None),
])
def test_a_file_that_cannot_be_imported_says_why(us: Store, data: bytes, message: str | None) -> None:
    if message is None:  # two columns that both mean the number: the first alias wins, the other is named
        table = open_table(io.BytesIO(data))
        assert table.layout.columns == {"Mobile": "number"} and table.layout.ignored == ("Cell",)
        return
    with pytest.raises(FileError, match=message):
        open_table(io.BytesIO(data))
    assert us.contacts.count() == 0


def test_a_mapping_must_name_columns_the_file_has_and_meanings_the_import_knows(us: Store) -> None:
    data = (DATA / "utf8-tabs.csv").read_bytes()
    with pytest.raises(FileError, match="names the column 'Mobil', which the file does not have"):
        open_table(io.BytesIO(data), parse_mapping("Mobil=number"))
    with pytest.raises(FileError, match="the meaning 'phone', which this import does not know"):
        open_table(io.BytesIO(data), parse_mapping("Cell=phone"))
    with pytest.raises(FileError, match="both 'Surname' and 'Cell' would be read as number"):
        open_table(io.BytesIO(data), parse_mapping("Surname=number,Cell=number"))
    explicit = open_table(io.BytesIO(data), parse_mapping("Surname=number"))  # the mapping wins over an alias
    assert explicit.layout.columns["Surname"] == "number" and "Cell" in explicit.layout.ignored
    with pytest.raises(FileError, match="is not COLUMN=WHAT"):
        parse_mapping("Cell")


def test_a_mapping_can_ignore_a_column_and_keep_another_as_a_field(us: Store) -> None:
    report = run(us, "utf8-tabs.csv", mapping="Time zone=-,Surname=field.family")
    assert report.ignored_columns == ("Time zone",)
    zoe = stored(us, "+12025550121")
    assert (zoe.last_name, zoe.timezone, zoe.fields) == (None, None, {"family": "Núñez"})


# --- the same file twice, dry runs, existing contacts --------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.csv")))
def test_importing_the_same_file_again_changes_nothing(us: Store, name: str) -> None:
    run(us, name, to_list="recall")
    before = us.query("SELECT * FROM contacts ORDER BY id")
    ledger = us.consent.history()
    members = us.query("SELECT * FROM list_members ORDER BY list_id, contact_id")
    again = run(us, name, to_list="recall")
    assert again.created == again.updated == 0 and again.consent_recorded == 0
    assert us.query("SELECT * FROM contacts ORDER BY id") == before
    assert us.consent.history() == ledger
    assert us.query("SELECT * FROM list_members ORDER BY list_id, contact_id") == members


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.csv")))
def test_a_dry_run_reports_exactly_what_the_import_then_does_and_changes_nothing(us: Store, name: str) -> None:
    zoe = "+12025550111"
    us.contacts.save(zoe, ContactValues(first_name="Zoe"), actor="test")  # one contact already there
    before = us.query("SELECT * FROM contacts")
    audit = len(us.audit.entries(limit=10_000))
    dry = run(us, name, dry_run=True, to_list="recall")
    assert us.query("SELECT * FROM contacts") == before
    assert len(us.audit.entries(limit=10_000)) == audit and us.lists.all() == [] and us.consent.history() == []
    real = run(us, name, to_list="recall")
    assert dry.to_json() == {**real.to_json(), "dry_run": True}


def test_existing_contacts_are_updated_by_default_and_left_alone_with_skip_existing(us: Store) -> None:
    us.contacts.save("+12025550111", ContactValues(first_name="Zoe", notes="staff note"), actor="test")
    us.contacts.save("+12025550112", ContactValues(first_name="Ana"), actor="test")
    skipped = run(us, "excel-cp1252-semicolon.csv", mode="skip", tags=("imported",))
    assert (skipped.created, skipped.skipped) == (2, 2)
    assert (stored(us, "+12025550111").first_name, stored(us, "+12025550111").tags) == ("Zoe", ())
    assert stored(us, "+12025550113").tags == ("imported",)
    updated = run(us, "excel-cp1252-semicolon.csv")
    assert (updated.updated, updated.unchanged) == (2, 2)
    zoe = stored(us, "+12025550111")
    assert (zoe.first_name, zoe.last_name, zoe.notes) == ("Zoë", "Núñez", "staff note")  # blank cells clear nothing


def test_tag_and_list_options_apply_to_every_imported_contact(us: Store) -> None:
    report = run(us, "utf8-tabs.csv", tags=("Imported", "flu-2026"), to_list="Recall")
    assert report.lists_created == ["recall"]
    assert stored(us, "+12025550121").tags == ("flu-2026", "imported")
    assert [m["number"] for m in us.lists.members("recall")] == ["+12025550121", "+12025550122"]


def test_a_bad_tag_or_list_option_stops_the_import_before_a_row_is_read(us: Store) -> None:
    with pytest.raises(FileError, match="cannot be a tag"):
        run(us, "utf8-tabs.csv", tags=("two words",))
    with pytest.raises(FileError, match="cannot be a list name"):
        run(us, "utf8-tabs.csv", to_list="all")
    assert us.contacts.count() == 0


# --- consent evidence ----------------------------------------------------------------------------------------------

def test_consent_evidence_is_written_to_the_ledger_as_the_file_states_it(us: Store) -> None:
    report = run(us, "consent-evidence.csv")
    ledger = [(e["number"], e["event"], e["scope"], e["source"], e["evidence"]) for e in us.consent.history()]
    assert ledger == [
        ("+12025550131", "opt_in", "newsletter", "import",
         "opted_in_at=2025-03-01; consent_source=paper form at the front desk (consent-evidence.csv row 2)"),
        ("+12025550133", "opt_in", "flu-2026", "import", "opted_in_at=03/04/2025 (consent-evidence.csv row 4)"),
        ("+12025550136", "opt_in", "flu-2026", "import",
         "opted_in_at=2025-03-06 14:30; consent_source=verbal at visit (consent-evidence.csv row 7)"),
        ("+12025550136", "opt_in", "newsletter", "import",
         "opted_in_at=2025-03-06 14:30; consent_source=verbal at visit (consent-evidence.csv row 7)"),
    ]
    assert report.consent_recorded == 4


def test_without_evidence_an_imported_contact_has_no_opt_in(us: Store) -> None:
    run(us, "consent-evidence.csv")
    dev = stored(us, "+12025550134")  # on the newsletter list, but the file says nothing about consent
    assert us.lists.lists_of(dev.id) == ["newsletter"]
    assert us.consent.history("+12025550134") == []
    run(us, "practice-export-utf8-bom.csv", to_list="newsletter")
    assert us.consent.history("+12025550101") == []


def test_evidence_without_a_list_is_a_row_error_that_says_so(us: Store) -> None:
    report = run(us, "consent-evidence.csv")
    by_row = {e.row: e.reason for e in report.errors}
    assert by_row[3].startswith("it carries consent evidence (opted_in_at=2025-03-02; consent_source=website form)"
                                " but no list to consent to")
    assert by_row[6] == "opted_in_at '31/31/2025' is not a date; write it as 2025-03-01 (or 2025-03-01 14:30)"
    assert us.contacts.find("+12025550132") is None


def test_evidence_older_than_the_patients_opt_out_is_not_recorded(us: Store, clock: FakeClock) -> None:
    us.consent.record("+12025550131", "opt_out", scope="newsletter", source="keyword", actor="rules")
    report = run(us, "consent-evidence.csv")
    assert [e["event"] for e in us.consent.history("+12025550131")] == ["opt_out"]
    assert any("+12025550131 not opted in to 'newsletter'" in n and "only the patient can opt back in" in n
               for n in report.notes)


def test_evidence_dated_after_an_opt_out_is_a_new_consent(us: Store, clock: FakeClock) -> None:
    clock.now = clock.now.replace(year=2024)
    us.consent.record("+12025550131", "opt_out", source="keyword", actor="rules")  # every purpose, in 2024
    clock.now = clock.now.replace(year=2026)
    run(us, "consent-evidence.csv")
    assert [e["event"] for e in us.consent.history("+12025550131")] == ["opt_out", "opt_in"]


def test_evidence_dated_in_the_future_is_refused(us: Store) -> None:
    report = run(us, b"number,list,opted_in_at\n+12025550181,news,2099-01-01\n")
    assert report.errors[0].reason == "opted_in_at '2099-01-01' is in the future"


# --- hostile text ---------------------------------------------------------------------------------------------------

def test_hostile_names_and_notes_are_stored_as_given(us: Store) -> None:
    run(us, "hostile.csv")
    assert names(us)["+12025550151"] == ("<script>alert(1)</script>", "<img src=x onerror=alert(2)>")
    assert names(us)["+12025550152"] == ("=cmd|' /C calc'!A0", "@SUM(1+1)")
    assert stored(us, "+12025550152").notes == '=HYPERLINK("http://evil.example/""x"")'
    assert stored(us, "+12025550153").first_name == "\u202eevil\u202c"
    assert names(us)["+12025550154"] == ("Tab\there", "Bell\x07")
    assert stored(us, "+12025550154").notes == "\x1b[31mred\x1b[0m"
    assert stored(us, "+12025550155").notes == "x" * 2000


# --- the reader on its own (reused by the appointments import) ---------------------------------------------------

def test_the_reader_maps_a_header_in_any_order_and_case_for_any_targets() -> None:
    targets = [Target("when", ("date", "appointment date"), required=True), Target("who", ("patient",))]
    table = CsvTable(io.BytesIO(b"PATIENT;Appointment_Date\nAna;2026-12-01\n\n;\nBen;2026-12-02\n"), targets)
    rows = list(table.rows())
    assert table.layout.columns == {"PATIENT": "who", "Appointment_Date": "when"}
    assert [(r.row, r.values) for r in rows] == [(2, {"who": "Ana", "when": "2026-12-01"}),  # type: ignore[union-attr]
                                                 (5, {"who": "Ben", "when": "2026-12-02"})]


def test_a_cell_quoted_by_our_own_exports_is_read_back_as_it_was(us: Store) -> None:
    run(us, b"number,first_name\n'+12025550191,'=Ana\n")
    assert stored(us, "+12025550191").first_name == "=Ana"


def test_a_utf16_file_with_its_byte_order_mark_is_read(us: Store) -> None:
    report = run(us, "Mobile\tName\n2025550192\tZoë Núñez\n".encode("utf-16"))
    assert (report.encoding, report.delimiter) == ("UTF-16", "\t")
    assert names(us) == {"+12025550192": ("Zoë", "Núñez")}
