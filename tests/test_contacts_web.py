"""The contacts pages and the import from the browser: upload, preview of the first rows with the column
mapping, a dry run, the import, and the error report to download (Flask test client, no JavaScript)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from web_helpers import PASSWORD, WebEnv, make_env, page_csrf, receive

from smsgate.queue.contacts import ContactValues

DATA = Path(__file__).resolve().parent / "data" / "contacts"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[WebEnv]:
    e = make_env(tmp_path)
    for name, role in (("ada", "admin"), ("sam", "staff"), ("vic", "viewer")):
        e.store.accounts.add_user(name, PASSWORD, role, actor="test")
    yield e
    e.store.close()


def upload(client: FlaskClient, name: str, data: bytes | None = None, **form: str) -> tuple[int, str]:
    body = data if data is not None else (DATA / name).read_bytes()
    response = client.post("/contacts/import", content_type="multipart/form-data", data={
        "csrf_token": page_csrf(client, "/contacts/import"), "file": (io.BytesIO(body), name), **form})
    return response.status_code, response.get_data(as_text=True)


def token_of(html: str) -> str:
    match = re.search(r'action="/contacts/import/([\w-]+)"', html)
    assert match, "no import form on the page"
    return match.group(1)


def selected(html: str) -> dict[str, str]:
    """select name -> the option selected in it."""
    out = {}
    for select in re.finditer(r'<select name="(map-\d+)".*?</select>', html, re.S):
        chosen = re.search(r'<option value="([^"]*)" selected>', select.group(0))
        out[select.group(1)] = chosen.group(1) if chosen else ""
    return out


def test_the_contacts_page_lists_and_searches_contacts(env: WebEnv) -> None:
    env.store.contacts.save("+12025550123", ContactValues(first_name="Zoë", last_name="Núñez", add_tags=("vip",)),
                            actor="test")
    env.store.contacts.save("+12025550199", ContactValues(first_name="Nuno"), actor="test")
    client = env.login("vic")
    page = client.get("/contacts").get_data(as_text=True)
    assert "<bdi>Zoë Núñez (+1 202-555-0123)</bdi>" in page and "<bdi>Nuno (+1 202-555-0199)</bdi>" in page
    assert 'id="import-link"' not in page  # importing is for admins
    found = client.get("/contacts?q=nunez").get_data(as_text=True)
    assert "Zoë Núñez" in found and "Nuno (" not in found
    assert "Nuno (" in client.get("/contacts?q=555-0199").get_data(as_text=True)
    assert "Zoë Núñez" not in client.get("/contacts?tag=flu").get_data(as_text=True)


def test_a_contact_page_shows_its_values_and_history(env: WebEnv) -> None:
    env.store.contacts.save("+12025550123", ContactValues(first_name="Zoë", last_name="Núñez", language="es",
                                                          fields={"mrn": "A-1042"}), actor="test")
    receive(env.store, None, "+12025550123", "my knee hurts")
    env.store.consent.record("+12025550123", "opt_in", scope="newsletter", source="web", actor="t", evidence="form")
    page = env.login("vic").get("/contacts/+12025550123").get_data(as_text=True)
    for fact in ("<dt>mrn</dt><dd><bdi>A-1042</bdi></dd>", "my knee hurts", "<strong>newsletter</strong>",
                 "America/New_York", "(from the number)"):
        assert fact in page, fact
    assert env.login("vic").get("/contacts/+12025550100").status_code == 404


def test_uploading_shows_the_first_rows_and_how_each_column_will_be_read(env: WebEnv) -> None:
    status, html = upload(env.login("ada"), "excel-cp1252-semicolon.csv")
    assert status == 200
    assert "Read as <strong>Windows-1252</strong>, <strong>semicolon</strong>-separated" in html
    assert selected(html) == {"map-0": "name", "map-1": "number", "map-2": "tags"}
    assert "<bdi>Núñez, Zoë</bdi>" in html and "<bdi>(202) 555-0112</bdi>" in html
    assert env.store.contacts.count() == 0  # nothing stored by a preview


def test_a_check_changes_nothing_and_the_import_then_stores_every_good_row(env: WebEnv) -> None:
    client = env.login("ada")
    _, html = upload(client, "practice-export-utf8-bom.csv", list="recall")
    token = token_of(html)
    mapping = {**selected(html), "map-4": "field.mrn"}  # keep the MRN column the file names
    check = client.post(f"/contacts/import/{token}", data={
        "csrf_token": page_csrf(client, "/contacts"), "action": "check", **mapping}).get_data(as_text=True)
    assert 'id="count-created">5<' in check and 'id="count-errors">2<' in check and "row 8:" in check
    assert env.store.contacts.count() == 0 and env.store.lists.all() == []
    done = client.post(f"/contacts/import/{token}", data={
        "csrf_token": page_csrf(client, "/contacts"), "action": "import", **mapping}).get_data(as_text=True)
    assert 'id="count-created">5<' in done
    ana = env.store.contacts.require("+12025550101")
    assert (ana.first_name, ana.fields) == ("Ana", {"mrn": "A-1001"})
    assert env.store.lists.count("recall") == 5
    errors = client.get(f"/contacts/import/{token}/errors.csv")
    text = errors.get_data(as_text=True)
    errors.close()
    assert errors.status_code == 200 and errors.mimetype == "text/csv"
    assert 'filename=practice-export-utf8-bom-errors.csv' in errors.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert rows[0][-1] == "reason" and [r[-1][:6] for r in rows[1:]] == ["row 8:", "row 10"]
    assert not any(p.suffix == ".csv" and not p.name.endswith(".errors.csv")
                   for p in (env.config.database_path.parent / "imports").iterdir())  # the upload is gone
    again = client.post(f"/contacts/import/{token}", data={"csrf_token": page_csrf(client, "/contacts"),
                                                           "action": "import", **mapping})
    assert again.status_code == 404 and "imported already" in again.get_data(as_text=True)


def test_the_mapping_chosen_on_the_page_is_the_one_used(env: WebEnv) -> None:
    client = env.login("ada")
    _, html = upload(client, "utf8-tabs.csv")
    token = token_of(html)
    client.post(f"/contacts/import/{token}", data={"csrf_token": page_csrf(client, "/contacts"), "action": "import",
                                                   **selected(html), "map-3": "-", "map-1": "field.family"})
    zoe = env.store.contacts.require("+12025550121")
    assert (zoe.last_name, zoe.timezone, zoe.fields) == (None, None, {"family": "Núñez"})


def test_a_file_that_is_not_csv_is_refused_with_what_to_do(env: WebEnv) -> None:
    status, html = upload(env.login("ada"), "patients.xlsx", b"PK\x03\x04 workbook")
    assert status == 422 and "Excel workbook" in html and "CSV UTF-8" in html


def test_a_file_larger_than_other_requests_may_be_can_be_uploaded(env: WebEnv) -> None:
    rows = "".join(f"+1202555{i:04d},Name{i},a note long enough to make the file big\n" for i in range(100, 5100))
    data = ("number,first_name,notes\n" + rows).encode()
    assert len(data) > env.app.config["MAX_CONTENT_LENGTH"]
    status, html = upload(env.login("ada"), "big.csv", data)
    assert status == 200 and "Read as <strong>UTF-8</strong>" in html


def test_only_admins_import_and_only_the_uploader_sees_an_upload(env: WebEnv) -> None:
    staff = env.login("sam")
    assert staff.get("/contacts/import").status_code == 403
    _, html = upload(env.login("ada"), "utf8-tabs.csv")
    token = token_of(html)
    env.store.accounts.add_user("eve", PASSWORD, "admin", actor="test")
    other = env.login("eve")
    response = other.post(f"/contacts/import/{token}", data={"csrf_token": page_csrf(other, "/contacts"),
                                                             "action": "import"})
    assert response.status_code == 404 and env.store.contacts.count() == 0
    assert env.login("ada").post("/contacts/import/..%2F..%2Fsmsgate", data={}).status_code in (403, 404)


def test_hostile_cells_are_escaped_on_the_preview_and_the_report(env: WebEnv) -> None:
    client = env.login("ada")
    _, html = upload(client, "hostile.csv")
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "\u202e" not in html and "\x1b" not in html
    done = client.post(f"/contacts/import/{token_of(html)}", data={
        "csrf_token": page_csrf(client, "/contacts"), "action": "import", **selected(html)}).get_data(as_text=True)
    assert "<script>alert" not in done and 'id="count-created">5<' in done


def test_an_upload_never_imported_is_deleted_after_a_day(env: WebEnv) -> None:
    import os
    import time

    client = env.login("ada")
    upload(client, "utf8-tabs.csv")
    folder = env.config.database_path.parent / "imports"
    day_old = time.time() - 25 * 3600
    for path in folder.iterdir():
        os.utime(path, (day_old, day_old))
    assert client.get("/contacts/import").status_code == 200
    assert list(folder.iterdir()) == []
