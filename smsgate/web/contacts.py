"""Contacts over HTTP: the JSON API (`/api/v1/contacts`, in openapi.json) and the staff pages, with the
CSV import an admin runs from the browser (upload, preview with the column mapping, dry run, import).

Both are thin over the store (`store.contacts`, `store.erasure`) and `smsgate.imports`; every value is
checked there. Names are attacker-controlled text like SMS bodies: autoescaped in pages, shown through
the one display rule (`person` filter) inside `<bdi>`, so a direction override cannot spill onto the page.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, abort, g, jsonify, render_template, request, send_file, url_for
from werkzeug.wrappers import Response

from smsgate.imports import ContactImport, FileError, ImportReport, open_table
from smsgate.imports.contacts import TARGETS, field_target
from smsgate.names import safe_text
from smsgate.queue import NotFound, Store, views
from smsgate.queue.contacts import Contact, ContactError, ContactValues

from .auth import actor, api_auth, login_required
from .context import ApiError, bad_request, get_store, page_args, smsgate_config

bp = Blueprint("contacts", __name__)

TEXT_FIELDS = ("first_name", "last_name", "language", "timezone", "notes")
NEW_FIELDS = {"number", *TEXT_FIELDS, "fields", "tags"}
PATCH_FIELDS = {*TEXT_FIELDS, "fields", "tags"}
PAGE_SIZE = 50
HISTORY = 50
UPLOAD_MAX_BYTES = 32 * 1024 * 1024
UPLOAD_KEEP_SECONDS = 24 * 3600
PREVIEW_ROWS = 10
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{22}$")


# --- the API ------------------------------------------------------------------------------------------------

def _json_body() -> dict[str, Any]:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Send the contact as JSON with "
                                                      "`Content-Type: application/json`.")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "bad_json", "The body is not valid JSON.")
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object such as "
                          "{\"number\": \"+12025550123\", \"first_name\": \"Zoë\"}")
    return body


def _values(body: dict[str, Any], known: set[str], *, patch: bool, current: Contact | None = None) -> ContactValues:
    """The request's values; in a PATCH null clears a value (and `tags` replaces the tags), in a POST null
    is the same as leaving the field out (and `tags` are added)."""
    unknown = sorted(set(body) - known)
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r}; known fields: {', '.join(sorted(known))}", unknown[0])
    text: dict[str, str | None] = {}
    for name in TEXT_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            raise bad_request(f"{name!r} must be a string or null", name)
        text[name] = "" if patch and name in body and value is None else value
    fields = body.get("fields")
    fields = {} if fields is None else fields
    if not isinstance(fields, dict):
        raise bad_request("'fields' must be an object of name -> value, e.g. {\"mrn\": \"A-1042\"}", "fields")
    tags = body.get("tags")
    if tags is not None and (not isinstance(tags, list) or not all(isinstance(t, str) for t in tags)):
        raise bad_request("'tags' must be a list of strings", "tags")
    try:
        add = tuple(tags or ())
        remove: tuple[str, ...] = ()
        if patch and tags is not None and current is not None:
            wanted = set(ContactValues(add_tags=add).add_tags)
            remove = tuple(t for t in current.tags if t not in wanted)
        return ContactValues(first_name=text["first_name"], last_name=text["last_name"], language=text["language"],
                             timezone=text["timezone"], notes=text["notes"], fields=fields, add_tags=add,
                             remove_tags=remove)
    except ContactError as exc:
        raise ApiError(422, "rejected", str(exc), exc.field) from None


def _detail(store: Store, contact: Contact, *, history: bool) -> dict[str, Any]:
    out = contact.to_json(store.lists.lists_of(contact.id))
    if history:
        out["history"] = {
            "messages": views.contact_messages(store, contact.number, limit=HISTORY),
            "consent": [{k: e[k] for k in ("at", "event", "scope", "source", "evidence", "actor")}
                        for e in store.consent.history(contact.number)],
            "answers": views.contact_answers(store, contact.number, limit=HISTORY),
        }
    return out


@bp.route("/api/v1/contacts")
@api_auth("read")
def api_list() -> Any:
    limit, offset = page_args()
    q, tag, list_name = (request.args.get(k) or None for k in ("q", "tag", "list"))
    store = get_store()
    with store.read_snapshot():
        found = store.contacts.search(q=q, tag=tag, list_name=list_name, limit=limit, offset=offset)
        total = store.contacts.count(q=q, tag=tag, list_name=list_name)
        contacts = [_detail(store, c, history=False) for c in found]
    return jsonify({"contacts": contacts, "total": total, "limit": limit, "offset": offset})


@bp.route("/api/v1/contacts", methods=["POST"])
@api_auth("send")
def api_create() -> Any:
    body = _json_body()
    number = body.get("number")
    if not isinstance(number, str):
        raise bad_request("'number' is required, as a string such as \"+12025550123\"", "number")
    values = _values(body, NEW_FIELDS, patch=False)
    store = get_store()
    try:
        saved = store.contacts.save(number, values, actor=actor())
    except ContactError as exc:
        raise ApiError(422, "rejected", str(exc), exc.field) from None
    response = jsonify({**_detail(store, saved.contact, history=False), "created": saved.created,
                        "changed": list(saved.changed)})
    response.status_code = 201 if saved.created else 200
    response.headers["Location"] = url_for("contacts.api_get", number=saved.contact.number)
    return response


def _contact_or_404(store: Store, number: str) -> Contact:
    try:
        return store.contacts.require(number)
    except NotFound:
        raise ApiError(404, "not_found", f"There is no contact {store.contacts.canonical(number)}.") from None


@bp.route("/api/v1/contacts/<number>")
@api_auth("read")
def api_get(number: str) -> Any:
    store = get_store()
    with store.read_snapshot():
        return jsonify(_detail(store, _contact_or_404(store, number), history=True))


@bp.route("/api/v1/contacts/<number>", methods=["PATCH"])
@api_auth("send")
def api_patch(number: str) -> Any:
    body = _json_body()
    store = get_store()
    with store.transaction():
        current = _contact_or_404(store, number)
        values = _values(body, PATCH_FIELDS, patch=True, current=current)
        try:
            saved = store.contacts.save(current.number, values, actor=actor(), create=False)
        except ContactError as exc:
            raise ApiError(422, "rejected", str(exc), exc.field) from None
    return jsonify({**_detail(store, saved.contact, history=False), "created": False,
                    "changed": list(saved.changed)})


@bp.route("/api/v1/contacts/<number>", methods=["DELETE"])
@api_auth("admin")
def api_delete(number: str) -> Any:
    store = get_store()
    contact = _contact_or_404(store, number)
    result = store.erasure.erase(contact.number, actor=actor())
    return jsonify({"number": result.number, "erased_at": result.erased_at, "cancelled": result.cancelled,
                    "sent_erased": result.sent_erased, "received_erased": result.received_erased,
                    "lists_left": list(result.lists_left), "audit_entries_scrubbed": result.audit_entries_scrubbed})


# --- the pages ------------------------------------------------------------------------------------------------

def _page_number() -> int:
    try:
        return min(max(int(request.args.get("page", "1")), 1), 10**6)
    except ValueError:
        return 1


@bp.route("/contacts")
@login_required()
def index() -> Any:
    store = get_store()
    q, tag, list_name = (request.args.get(k, "").strip() for k in ("q", "tag", "list"))
    page = _page_number()
    found = store.contacts.search(q=q or None, tag=tag or None, list_name=list_name or None,
                                  limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    more = len(found) > PAGE_SIZE
    rows = [{"contact": c, "lists": store.lists.lists_of(c.id)} for c in found[:PAGE_SIZE]]
    return render_template("contacts.html", rows=rows, q=q, tag=tag, list_name=list_name, page=page, more=more,
                           lists=[x.name for x in store.lists.all()])


@bp.route("/contacts/<number>")
@login_required()
def show(number: str) -> Any:
    store = get_store()
    try:
        contact = store.contacts.require(number)
    except NotFound:
        abort(404, f"There is no contact {store.contacts.canonical(number)}.")
    return render_template("contact.html", contact=contact, detail=_detail(store, contact, history=True))


# --- the import from the browser ---------------------------------------------------------------------------

def _uploads() -> Path:
    folder = smsgate_config().database_path.parent / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _forget_old_uploads(folder: Path) -> None:
    cutoff = time.time() - UPLOAD_KEEP_SECONDS
    for path in folder.iterdir():
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:
            continue


def _upload(token: str, *, file: bool = True) -> tuple[Path, dict[str, Any]]:
    """The uploaded file of `token` and what was said with it, for the admin who uploaded it only. The file
    itself is deleted once imported (its rows with errors stay, for the download, until a day has passed)."""
    if not _TOKEN.match(token):
        abort(404, "There is no such upload.")
    folder = _uploads()
    meta_path = folder / f"{token}.json"
    if not meta_path.exists():
        abort(404, "This upload is gone (uploads are kept for a day); upload the file again.")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("user") != g.user.username:
        abort(404, "There is no such upload.")
    path = folder / f"{token}.csv"
    if file and not path.exists():
        abort(404, "This file has been imported already; upload it again to import it again.")
    return path, meta


def _choices() -> list[tuple[str, str]]:
    words = {"number": "number (required)", "first_name": "first name", "last_name": "last name",
             "name": "full name (split)", "language": "language", "timezone": "time zone", "tags": "tags",
             "notes": "notes", "list": "list(s)", "opted_in_at": "opted in at (consent evidence)",
             "consent_source": "consent source (consent evidence)"}
    return [("-", "(ignore)"), *((t.name, words.get(t.name, t.name)) for t in TARGETS)]


def _import_form(error: str | None = None, status: int = 200) -> Response:
    lists = [x.name for x in get_store().lists.all()]
    return Response(render_template("contacts_import.html", error=error, lists=lists,
                                    max_mb=UPLOAD_MAX_BYTES // 2**20), status=status, mimetype="text/html")


def allow_large_upload() -> None:
    """Before the CSRF check reads the form: the import upload may be larger than other requests."""
    if request.endpoint == "contacts.import_upload" and request.method == "POST":
        request.max_content_length = UPLOAD_MAX_BYTES


@bp.route("/contacts/import", methods=["GET"])
@login_required("admin")
def import_form() -> Any:
    _forget_old_uploads(_uploads())
    return _import_form()


@bp.route("/contacts/import", methods=["POST"])
@login_required("admin")
def import_upload() -> Any:
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        return _import_form("Choose the CSV file to import.", 400)
    folder = _uploads()
    _forget_old_uploads(folder)
    token = secrets.token_urlsafe(16)
    path = folder / f"{token}.csv"
    upload.save(path)
    name = safe_text(os.path.basename(upload.filename.replace("\\", "/")))[:100] or "upload.csv"
    options = {"user": g.user.username, "filename": name, "tags": request.form.get("tags", ""),
               "list": request.form.get("list", "").strip(),
               "mode": "skip" if request.form.get("mode") == "skip" else "update"}
    try:
        with open(path, "rb") as source:
            table = open_table(source)
            preview = table.preview(PREVIEW_ROWS)
            layout = table.layout
    except FileError as exc:
        path.unlink(missing_ok=True)
        return _import_form(f"{name}: {exc}", 422)
    (folder / f"{token}.json").write_text(json.dumps(options), encoding="utf-8")
    return _preview_page(token, options, layout.header, layout.columns, layout.encoding, layout.delimiter_name,
                         preview)


def _preview_page(token: str, options: dict[str, Any], header: tuple[str, ...], columns: dict[str, str],
                  encoding: str, delimiter: str, preview: list[Any], error: str | None = None,
                  status: int = 200) -> Response:
    choices = _choices()
    mapping = []
    for i, column in enumerate(header):
        chosen = columns.get(column, "-")
        keep = field_target(column)
        options_here = [*choices, (keep, f"keep as field {keep.removeprefix('field.')}")]
        if chosen not in {v for v, _ in options_here}:
            options_here.append((chosen, chosen))
        mapping.append({"index": i, "column": column, "chosen": chosen, "choices": options_here})
    rows = [{"row": r.row, "cells": list(r.cells), "error": getattr(r, "reason", None)} for r in preview]
    body = render_template("contacts_import_preview.html", token=token, options=options, mapping=mapping,
                           encoding=encoding, delimiter=delimiter, rows=rows, error=error)
    return Response(body, status=status, mimetype="text/html")


def _mapping_from_form(header: tuple[str, ...]) -> dict[str, str]:
    return {column: (request.form.get(f"map-{i}") or "-").strip() for i, column in enumerate(header)}


@bp.route("/contacts/import/<token>", methods=["POST"])
@login_required("admin")
def import_run(token: str) -> Any:
    path, options = _upload(token)
    dry_run = request.form.get("action") != "import"
    store = get_store()
    errors_path = path.with_suffix(".errors.csv")
    try:
        with open(path, "rb") as source:
            header = open_table(source).layout.header
        mapping = _mapping_from_form(header)
        with open(path, "rb") as source:
            table = open_table(source, mapping)
            with open(errors_path, "w", encoding="utf-8-sig", newline="") as errors_out:
                job = ContactImport(store, actor=actor(), source_name=options["filename"],
                                    region=smsgate_config().clinic.region, tags=_split(options["tags"]),
                                    to_list=options["list"] or None, mode=options["mode"], dry_run=dry_run,
                                    errors_out=errors_out)
                report = job.run(table)
        if not dry_run:
            path.unlink()
    except FileError as exc:
        with open(path, "rb") as source:
            table = open_table(source)
            layout, preview = table.layout, table.preview(PREVIEW_ROWS)
        return _preview_page(token, options, layout.header, _mapping_from_form(layout.header), layout.encoding,
                             layout.delimiter_name, preview, error=str(exc), status=422)
    return _report_page(token, options, mapping, report)


def _split(text: str) -> list[str]:
    return [t for t in re.split(r"[,;\s]+", text) if t]


def _report_page(token: str, options: dict[str, Any], mapping: dict[str, str], report: ImportReport) -> Response:
    body = render_template("contacts_import_done.html", token=token, options=options, report=report,
                           mapping=list(mapping.values()), lines=report.lines(rows=report.dry_run))
    return Response(body, mimetype="text/html")


@bp.route("/contacts/import/<token>/errors.csv")
@login_required("admin")
def import_errors(token: str) -> Any:
    path, options = _upload(token, file=False)
    errors = path.with_suffix(".errors.csv")
    if not errors.exists() or errors.stat().st_size == 0:
        abort(404, "This import had no rows with errors.")
    stem = re.sub(r"[^\w.-]+", "_", options["filename"].rsplit(".", 1)[0])[:60] or "import"
    return send_file(errors, mimetype="text/csv", as_attachment=True, download_name=f"{stem}-errors.csv")
