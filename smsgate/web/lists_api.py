"""The JSON API of lists and segments (`/api/v1/lists...`, `/api/v1/segments...`, in `openapi.json`).

Reading needs the read scope; creating lists and segments and changing members needs admin, as on the
Lists page. Input is checked strictly, like the messages API: unknown fields and wrong types are a 400.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, jsonify, request

from smsgate.keywords import Vocabulary
from smsgate.queue import Kind, NotFound, Store
from smsgate.queue.lists import ContactList, ListError, ListExists
from smsgate.queue.segment_filter import SegmentError
from smsgate.queue.segments import Segment, SegmentExists

from .auth import actor, api_auth
from .context import ApiError, bad_request, get_store, int_arg, page_args, smsgate_config

bp = Blueprint("lists_api", __name__)

MAX_NUMBERS = 1000


def _body(strings: set[str], required: set[str], others: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The request's JSON object: only the fields named, the `strings` among them as strings."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Send JSON with `Content-Type: application/json`.")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    allowed = strings | others
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r}; known fields: {', '.join(sorted(allowed))}", unknown[0])
    for name in sorted(required):
        if name not in body:
            raise bad_request(f"{name!r} is required", name)
    for name in sorted(strings & set(body)):
        if not isinstance(body[name], str):
            raise bad_request(f"{name!r} must be a string", name)
    return body


def _numbers(body: dict[str, Any]) -> list[str]:
    numbers = body["numbers"]
    if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers) or not numbers:
        raise bad_request("'numbers' must be a non-empty array of phone numbers as strings", "numbers")
    if len(numbers) > MAX_NUMBERS:
        raise bad_request(f"at most {MAX_NUMBERS} numbers per request; send the rest in another", "numbers")
    return numbers


def _list_json(found: ContactList, members: int) -> dict[str, Any]:
    return {"name": found.name, "keyword": found.keyword, "description": found.description, "members": members,
            "created_at": found.created_at}


def _require_list(store: Store, name: str) -> ContactList:
    try:
        return store.lists.require(name)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None


@bp.route("/api/v1/lists")
@api_auth("read")
def lists() -> Any:
    store = get_store()
    counts = store.lists.counts()
    return jsonify({"lists": [_list_json(found, counts.get(found.name, 0)) for found in store.lists.all()]})


@bp.route("/api/v1/lists", methods=["POST"])
@api_auth("admin")
def create_list() -> Any:
    body = _body({"name", "keyword", "description"}, {"name"})
    keyword = body.get("keyword")
    if keyword is not None:
        conflict = Vocabulary(smsgate_config().compliance).list_keyword_conflict(keyword)
        if conflict:
            raise ApiError(422, "rejected", conflict, "keyword")
    try:
        made = get_store().lists.create(body["name"], actor=actor(), keyword=keyword,
                                        description=body.get("description"))
    except ListExists as exc:
        raise ApiError(409, "exists", str(exc), exc.field) from None
    except ListError as exc:
        raise ApiError(422, "rejected", str(exc), exc.field) from None
    response = jsonify(_list_json(made, 0))
    response.status_code = 201
    return response


@bp.route("/api/v1/lists/<name>/members")
@api_auth("read")
def list_members(name: str) -> Any:
    store = get_store()
    found = _require_list(store, name)
    limit, offset = page_args()
    rows = store.lists.members(found.name, limit=limit, offset=offset)
    members = [{"number": r["number"], "first_name": r["first_name"], "last_name": r["last_name"],
                "added_at": r["added_at"], "source": r["source"],
                "marketing": store.consent.may_send(r["number"], Kind.MARKETING, found.name) is None}
               for r in rows]
    return jsonify({"list": found.name, "count": store.lists.count(found.name), "members": members,
                    "limit": limit, "offset": offset})


@bp.route("/api/v1/lists/<name>/members", methods=["POST"])
@api_auth("admin")
def add_members(name: str) -> Any:
    store = get_store()
    found = _require_list(store, name)
    numbers = _numbers(_body(set(), {"numbers"}, frozenset({"numbers"})))
    try:
        added, already = store.lists.add_numbers(found.name, numbers, actor=actor(), source="api")
    except ListError as exc:
        raise ApiError(422, "rejected", str(exc), "numbers") from None
    return jsonify({"list": found.name, "added": added, "already": already})


@bp.route("/api/v1/lists/<name>/members", methods=["DELETE"])
@api_auth("admin")
def remove_members(name: str) -> Any:
    store = get_store()
    found = _require_list(store, name)
    numbers = _numbers(_body(set(), {"numbers"}, frozenset({"numbers"})))
    try:
        removed, missing = store.lists.remove_numbers(found.name, numbers, actor=actor())
    except ListError as exc:
        raise ApiError(422, "rejected", str(exc), "numbers") from None
    return jsonify({"list": found.name, "removed": removed, "not_members": missing})


def _segment_json(found: Segment) -> dict[str, Any]:
    return {"name": found.name, "where": found.filter, "description": found.description,
            "created_by": found.created_by, "created_at": found.created_at, "updated_at": found.updated_at}


@bp.route("/api/v1/segments")
@api_auth("read")
def segments() -> Any:
    return jsonify({"segments": [_segment_json(found) for found in get_store().segments.all()]})


@bp.route("/api/v1/segments", methods=["POST"])
@api_auth("admin")
def create_segment() -> Any:
    body = _body({"name", "where", "description"}, {"name", "where"}, frozenset({"replace"}))
    replace = body.get("replace", False)
    if not isinstance(replace, bool):
        raise bad_request("'replace' must be true or false", "replace")
    store = get_store()
    existed = store.segments.get(body["name"]) is not None
    try:
        made = store.segments.create(body["name"], body["where"], actor=actor(), description=body.get("description"),
                                     replace=replace)
    except SegmentExists as exc:
        raise ApiError(409, "exists", str(exc), "name") from None
    except SegmentError as exc:
        raise ApiError(422, "rejected", str(exc), exc.field) from None
    response = jsonify(_segment_json(made))
    response.status_code = 200 if existed else 201
    return response


@bp.route("/api/v1/segments/<name>/preview")
@api_auth("read")
def preview_segment(name: str) -> Any:
    limit = int_arg("limit", 10, 1, 500)
    try:
        found = get_store().segments.preview(name, limit=limit)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except SegmentError as exc:
        raise ApiError(422, "rejected", f"the saved filter no longer works: {exc}", "where") from None
    rows = [{"number": r["number"], "first_name": r["first_name"], "last_name": r["last_name"],
             "language": r["language"], "timezone": r["timezone"], "tags": json.loads(r["tags"])} for r in found.rows]
    return jsonify({"segment": found.segment, "where": found.filter, "count": found.count, "rows": rows,
                    "limit": limit})
