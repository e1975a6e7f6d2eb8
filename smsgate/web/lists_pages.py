"""The Lists page (admins): every list with its member count, one list's members with whether marketing
to the list may reach each of them now, and forms to create a list and to add or remove numbers."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from smsgate.keywords import Vocabulary
from smsgate.queue import Kind, NotFound
from smsgate.queue.lists import ContactList, ListError

from .auth import actor, login_required
from .context import get_store, smsgate_config

bp = Blueprint("lists_pages", __name__)

PAGE_SIZE = 50
# One number per line, or several separated by commas: "+1 555 555 0102" keeps its spaces.
_SEPARATORS = re.compile(r"[\r\n,;]+")


def _list_or_404(name: str) -> ContactList:
    try:
        return get_store().lists.require(name)
    except NotFound:
        abort(404, f"There is no list named {name!r}.")


@bp.route("/lists")
@login_required("admin")
def lists() -> Any:
    store = get_store()
    counts = store.lists.counts()
    return render_template("lists.html", lists=store.lists.all(), counts=counts)


@bp.route("/lists", methods=["POST"])
@login_required("admin")
def create_list() -> Any:
    name = request.form.get("name", "").strip()
    keyword = request.form.get("keyword", "").strip() or None
    description = request.form.get("description", "").strip()[:200] or None
    conflict = Vocabulary(smsgate_config().compliance).list_keyword_conflict(keyword) if keyword else None
    if conflict:
        flash(conflict, "error")
        return redirect(url_for("lists_pages.lists"))
    try:
        made = get_store().lists.create(name, actor=actor(), keyword=keyword, description=description)
    except ListError as exc:
        flash(str(exc), "error")
        return redirect(url_for("lists_pages.lists"))
    flash(f"List {made.name} created.", "ok")
    return redirect(url_for("lists_pages.members", name=made.name))


@bp.route("/lists/<name>")
@login_required("admin")
def members(name: str) -> Any:
    store = get_store()
    found = _list_or_404(name)
    try:
        page = min(max(int(request.args.get("page", "1")), 1), 10**6)
    except ValueError:
        page = 1
    rows = store.lists.members(found.name, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    more = len(rows) > PAGE_SIZE
    rows = rows[:PAGE_SIZE]
    for r in rows:
        r["marketing"] = store.consent.may_send(r["number"], Kind.MARKETING, found.name) is None
    return render_template("list.html", found=found, members=rows, count=store.lists.count(found.name), page=page,
                           more=more)


@bp.route("/lists/<name>/members", methods=["POST"])
@login_required("admin")
def change_members(name: str) -> Any:
    found = _list_or_404(name)
    numbers = [n.strip() for n in _SEPARATORS.split(request.form.get("numbers", "")) if n.strip()]
    remove = request.form.get("action") == "remove"
    store = get_store()
    try:
        if remove:
            removed, missing = store.lists.remove_numbers(found.name, numbers, actor=actor())
            flash(f"Removed {removed} from {found.name}." + (f" Not on it: {', '.join(missing)}." if missing else ""),
                  "ok")
        else:
            added, already = store.lists.add_numbers(found.name, numbers, actor=actor(), source="web")
            flash(f"Added {added} to {found.name}." + (f" {already} were on it already." if already else "")
                  + " Being on a list is not consent: marketing also needs an opt-in for the list.", "ok")
    except ListError as exc:
        flash(str(exc), "error")
    return redirect(url_for("lists_pages.members", name=found.name))
