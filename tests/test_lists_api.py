"""The lists and segments API, and the `list` of a message, against the real app and a real database file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web_helpers import OTHER_PATIENT, PATIENT, WebEnv, bearer, make_env

from smsgate.queue import Store


@pytest.fixture
def env(tmp_path: Path) -> Iterator[WebEnv]:
    e = make_env(tmp_path, api_sends_per_minute=0)
    e.store.lists.create("newsletter", actor="test", keyword="NEWS")
    yield e
    e.store.close()


def token(store: Store, scope: str) -> dict[str, str]:
    _, secret = store.accounts.create_token(f"{scope}-client", scope, actor="test")
    return bearer(secret)


def test_a_marketing_message_without_a_list_is_refused_with_a_sentence_saying_to_name_one(env: WebEnv) -> None:
    response = env.client().post("/api/v1/messages", headers=token(env.store, "send"),
                                 json={"to": PATIENT, "text": "Spring offer", "kind": "marketing"})
    assert response.status_code == 422
    assert 'must name its list (`--list NAME`, or "list" in the API)' in response.json["message"]


def test_a_marketing_message_for_a_list_goes_only_with_an_opt_in_for_that_list(env: WebEnv) -> None:
    client, auth = env.client(), token(env.store, "send")
    body = {"to": PATIENT, "text": "Spring offer", "kind": "marketing", "list": "newsletter"}
    refused = client.post("/api/v1/messages", headers=auth, json=body)
    assert refused.status_code == 422 and "has not opted in to 'newsletter'" in refused.json["message"]
    env.store.consent.record(PATIENT, "opt_in", scope="newsletter", source="web form", actor="staff",
                             evidence="form 3")
    queued = client.post("/api/v1/messages", headers=auth, json=body)
    assert queued.status_code == 201, queued.json
    shown = client.get(f"/api/v1/messages/{queued.json['id']}", headers=auth).json
    assert (shown["kind"], shown["list"]) == ("marketing", "newsletter")


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"list": 7}, 400, "list"),
    ({"list": "nope", "kind": "marketing"}, 422, "list"),
])
def test_a_bad_list_on_a_message_is_refused(env: WebEnv, body: dict[str, object], status: int,
                                            field: str | None) -> None:
    response = env.client().post("/api/v1/messages", headers=token(env.store, "send"),
                                 json={"to": PATIENT, "text": "Hello", **body})
    assert response.status_code == status and response.json.get("field") == field, response.json
    assert env.store.scalar("SELECT COUNT(*) FROM messages") == 0


def test_an_admin_token_creates_lists_and_a_read_token_only_reads_them(env: WebEnv) -> None:
    client = env.client()
    made = client.post("/api/v1/lists", headers=token(env.store, "admin"),
                       json={"name": "Flu", "keyword": "flu", "description": "Flu shot reminders"})
    assert made.status_code == 201 and made.json["name"] == "flu" and made.json["keyword"] == "FLU"
    read = token(env.store, "read")
    assert client.post("/api/v1/lists", headers=read, json={"name": "other"}).status_code == 403
    names = [li["name"] for li in client.get("/api/v1/lists", headers=read).json["lists"]]
    assert names == ["flu", "newsletter"]


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"name": "newsletter"}, 409, "name"),
    ({"name": "other", "keyword": "NEWS"}, 409, "keyword"),
    ({"name": "all"}, 422, "name"),
    ({"name": "other", "keyword": "STOP"}, 422, "keyword"),
    ({"name": "other", "keyword": "two words"}, 422, "keyword"),
    ({"keyword": "X"}, 400, "name"),
    ({"name": 3}, 400, "name"),
    ({"name": "x", "colour": "red"}, 400, "colour"),
])
def test_a_list_that_cannot_be_made_is_refused_with_its_field(env: WebEnv, body: dict[str, object], status: int,
                                                              field: str) -> None:
    response = env.client().post("/api/v1/lists", headers=token(env.store, "admin"), json=body)
    assert (response.status_code, response.json["field"]) == (status, field), response.json
    assert len(env.store.lists.all()) == 1


def test_members_are_added_read_and_removed_by_number(env: WebEnv) -> None:
    client, admin = env.client(), token(env.store, "admin")
    path = "/api/v1/lists/newsletter/members"
    added = client.post(path, headers=admin, json={"numbers": [PATIENT, "+1 (555) 555-0102", PATIENT]})
    assert added.status_code == 200 and (added.json["added"], added.json["already"]) == (2, 0)
    env.store.consent.record(PATIENT, "opt_in", scope="newsletter", source="web form", actor="staff",
                             evidence="form 9")
    members = client.get(path, headers=token(env.store, "read"), query_string={"limit": 1}).json
    assert members["count"] == 2 and len(members["members"]) == 1
    assert members["members"][0]["number"] == PATIENT and members["members"][0]["marketing"] is True
    removed = client.delete(path, headers=admin, json={"numbers": [OTHER_PATIENT, "+15555550199"]})
    assert removed.json == {"list": "newsletter", "removed": 1, "not_members": ["+15555550199"]}
    assert env.store.lists.count("newsletter") == 1


@pytest.mark.parametrize(("method", "body", "status", "field"), [
    ("post", {"numbers": [PATIENT, "12"]}, 422, "numbers"),
    ("post", {"numbers": []}, 400, "numbers"),
    ("post", {"numbers": PATIENT}, 400, "numbers"),
    ("post", {"numbers": [5]}, 400, "numbers"),
    ("delete", {"number": PATIENT}, 400, "number"),
    ("post", {"numbers": ["+15555550101"] * 1001}, 400, "numbers"),
])
def test_bad_member_changes_change_nothing(env: WebEnv, method: str, body: dict[str, object], status: int,
                                          field: str) -> None:
    response = getattr(env.client(), method)("/api/v1/lists/newsletter/members", headers=token(env.store, "admin"),
                                             json=body)
    assert (response.status_code, response.json["field"]) == (status, field), response.json
    assert env.store.lists.count("newsletter") == 0


def test_members_of_a_missing_list_are_a_404(env: WebEnv) -> None:
    client, admin = env.client(), token(env.store, "admin")
    assert client.get("/api/v1/lists/nope/members", headers=admin).status_code == 404
    missing = client.post("/api/v1/lists/nope/members", headers=admin, json={"numbers": [PATIENT]})
    assert missing.status_code == 404 and "smsgate lists list" in missing.json["message"]


def test_segments_are_saved_replaced_and_previewed(env: WebEnv) -> None:
    client, admin = env.client(), token(env.store, "admin")
    env.store.contacts.update(PATIENT, tags=["diabetes"], first_name="Ana")
    env.store.contacts.update(OTHER_PATIENT, tags=["asthma"])
    body = {"name": "diabetes-quiet", "where": "tag:diabetes AND NOT replied:30d", "description": "recall"}
    assert client.post("/api/v1/segments", headers=admin, json=body).status_code == 201
    again = client.post("/api/v1/segments", headers=admin, json=body)
    assert again.status_code == 409 and again.json["field"] == "name"
    replaced = client.post("/api/v1/segments", headers=admin, json={**body, "where": "tag:asthma", "replace": True})
    assert replaced.status_code == 200 and replaced.json["where"] == "tag:asthma"
    preview = client.get("/api/v1/segments/diabetes-quiet/preview", headers=token(env.store, "read")).json
    assert preview["count"] == 1 and preview["rows"][0]["number"] == OTHER_PATIENT
    assert preview["rows"][0]["tags"] == ["asthma"]
    listed = client.get("/api/v1/segments", headers=admin).json["segments"]
    assert [(s["name"], s["where"]) for s in listed] == [("diabetes-quiet", "tag:asthma")]


@pytest.mark.parametrize(("body", "status", "field", "message"), [
    ({"name": "s", "where": "tag:diabetes AND NOT"}, 422, "where", "expected a term after NOT at column 21"),
    ({"name": "s", "where": "list:nope"}, 422, "where", "no list named 'nope'"),
    ({"name": "two words", "where": "tag:x"}, 422, "name", "cannot be a segment name"),
    ({"name": "s"}, 400, "where", "'where' is required"),
    ({"name": "s", "where": "tag:x", "replace": "yes"}, 400, "replace", "true or false"),
])
def test_a_segment_that_cannot_be_saved_is_refused_with_its_field(env: WebEnv, body: dict[str, object],
                                                                  status: int, field: str, message: str) -> None:
    response = env.client().post("/api/v1/segments", headers=token(env.store, "admin"), json=body)
    assert (response.status_code, response.json["field"]) == (status, field), response.json
    assert message in response.json["message"]
    assert env.store.segments.all() == []


def test_previewing_a_missing_segment_or_with_a_bad_limit_is_refused(env: WebEnv) -> None:
    client, read = env.client(), token(env.store, "read")
    assert client.get("/api/v1/segments/nope/preview", headers=read).status_code == 404
    env.store.segments.create("s", "tag:x", actor="test")
    bad = client.get("/api/v1/segments/s/preview", headers=read, query_string={"limit": 0})
    assert bad.status_code == 400 and bad.json["field"] == "limit"
