"""The contacts API (`/api/v1/contacts`): idempotent create by number, search, one contact with its
history, partial changes, erasure; every refusal a JSON error naming the field, as openapi.json says."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from web_helpers import PATIENT, WebEnv, bearer, make_env, receive

from smsgate.queue.contacts import ContactValues

ZOE = {"number": "(202) 555-0123", "first_name": "Zoë", "last_name": "Núñez", "language": "Spanish",
       "fields": {"mrn": "A-1042", "date_of_birth_year": 1980}, "tags": ["vip"]}
NUMBER = "+12025550123"


@pytest.fixture
def env(tmp_path: Path) -> Iterator[WebEnv]:
    e = make_env(tmp_path)
    yield e
    e.store.close()


def headers(env: WebEnv, scope: str = "admin") -> dict[str, str]:
    _, secret = env.store.accounts.create_token(f"t-{scope}", scope, actor="test")
    return bearer(secret)


def schema(name: str) -> dict[str, Any]:
    spec = json.loads(resources.files("smsgate.web").joinpath("openapi.json").read_text("utf-8"))
    found: dict[str, Any] = spec["components"]["schemas"][name]
    return found


def properties(name: str) -> set[str]:
    found = schema(name)
    if "allOf" in found:
        return {p for part in found["allOf"] for p in (properties(part["$ref"].rsplit("/", 1)[1])
                                                       if "$ref" in part else part["properties"])}
    return set(found["properties"])


def test_creating_a_contact_twice_creates_it_once(env: WebEnv) -> None:
    client, h = env.client(), headers(env, "send")
    first = client.post("/api/v1/contacts", json=ZOE, headers=h)
    assert first.status_code == 201 and first.headers["Location"] == f"/api/v1/contacts/{NUMBER}"
    body = first.get_json()
    assert (body["number"], body["display"], body["language"], body["created"]) == (
        NUMBER, "Zoë Núñez (+1 202-555-0123)", "es", True)
    again = client.post("/api/v1/contacts", json=ZOE, headers=h)
    assert again.status_code == 200 and again.get_json()["created"] is False and again.get_json()["changed"] == []
    assert env.store.contacts.count() == 1
    changed = client.post("/api/v1/contacts", json={**ZOE, "notes": "prefers mornings"}, headers=h)
    assert changed.status_code == 200 and changed.get_json()["changed"] == ["notes"]


def test_what_the_api_returns_has_exactly_the_documented_fields(env: WebEnv) -> None:
    client, h = env.client(), headers(env)
    created = client.post("/api/v1/contacts", json=ZOE, headers=h).get_json()
    assert set(created) == properties("ContactSaved")
    assert set(client.get("/api/v1/contacts", headers=h).get_json()["contacts"][0]) == properties("Contact")
    one = client.get(f"/api/v1/contacts/{NUMBER}", headers=h).get_json()
    assert set(one) == properties("ContactDetail")
    assert set(one["history"]) == {"messages", "consent", "answers"}
    assert set(client.patch(f"/api/v1/contacts/{NUMBER}", json={"notes": "x"}, headers=h).get_json()) == \
        properties("ContactSaved")
    assert set(client.delete(f"/api/v1/contacts/{NUMBER}", headers=h).get_json()) == properties("Erasure")


@pytest.mark.parametrize("path", ["/api/v1/contacts/%2B12025550123", "/api/v1/contacts/+12025550123",
                                  "/api/v1/contacts/2025550123"])
def test_a_contact_is_found_by_its_number_in_any_form(env: WebEnv, path: str) -> None:
    h = headers(env)
    env.client().post("/api/v1/contacts", json=ZOE, headers=h)
    response = env.client().get(path, headers=h)
    assert response.status_code == 200 and response.get_json()["number"] == NUMBER


def test_one_contact_comes_with_its_history_both_ways_consent_and_answers(env: WebEnv) -> None:
    h = headers(env)
    env.client().post("/api/v1/contacts", json=ZOE, headers=h)
    sent = env.store.outbox.enqueue(NUMBER, "Reply YES to confirm", expect={"YES": "confirmed"}).id
    answer = receive(env.store, None, NUMBER, "yes")
    env.store.outbox.record_outcome(sent, "confirmed", inbound_id=answer.id)
    env.store.consent.record(NUMBER, "opt_in", scope="newsletter", source="web", actor="test", evidence="form")
    history = env.client().get(f"/api/v1/contacts/{NUMBER}", headers=h).get_json()["history"]
    assert [(m["direction"], m["body"]) for m in history["messages"]] == [
        ("in", "yes"), ("out", "Reply YES to confirm")]
    assert [(e["event"], e["scope"], e["evidence"]) for e in history["consent"]] == [("opt_in", "newsletter", "form")]
    assert [(a["id"], a["outcome"]) for a in history["answers"]] == [(sent, "confirmed")]


def test_the_list_searches_by_name_or_number_tag_and_list_with_a_total(env: WebEnv) -> None:
    client, h = env.client(), headers(env)
    client.post("/api/v1/contacts", json=ZOE, headers=h)
    client.post("/api/v1/contacts", json={"number": "+12025550199", "first_name": "Nuno", "tags": ["flu"]}, headers=h)
    env.store.lists.create("recall", actor="t")
    env.store.lists.add_members("recall", [env.store.contacts.require(NUMBER).id], actor="t", source="api")

    def numbers(**query: str) -> list[str]:
        body = client.get("/api/v1/contacts", query_string=query, headers=h).get_json()
        return [c["number"] for c in body["contacts"]]

    assert numbers(q="nunez") == [NUMBER]
    assert numbers(q="555-0199") == ["+12025550199"]
    assert numbers(tag="flu") == ["+12025550199"]
    assert numbers(list="recall") == [NUMBER]
    assert numbers(list="no-such-list") == []
    page = client.get("/api/v1/contacts", query_string={"limit": 1, "offset": 1}, headers=h).get_json()
    assert (page["total"], page["limit"], page["offset"], len(page["contacts"])) == (2, 1, 1, 1)


def test_a_patch_changes_only_what_it_sends(env: WebEnv) -> None:
    client, h = env.client(), headers(env)
    client.post("/api/v1/contacts", json={**ZOE, "tags": ["vip", "flu"], "notes": "knee"}, headers=h)
    body = client.patch(f"/api/v1/contacts/{NUMBER}", headers=h,
                        json={"notes": None, "fields": {"mrn": None, "insurer": "Acme"}, "tags": ["flu"]}).get_json()
    assert body["changed"] == ["notes", "fields", "tags"]
    assert (body["first_name"], body["notes"], body["fields"], body["tags"]) == (
        "Zoë", None, {"date_of_birth_year": 1980, "insurer": "Acme"}, ["flu"])


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), [
    ("post", "/api/v1/contacts", {"first_name": "Zoë"}, 400, "number"),
    ("post", "/api/v1/contacts", {**ZOE, "phone": "x"}, 400, "phone"),
    ("post", "/api/v1/contacts", {**ZOE, "first_name": 7}, 400, "first_name"),
    ("post", "/api/v1/contacts", {**ZOE, "tags": "vip"}, 400, "tags"),
    ("post", "/api/v1/contacts", {**ZOE, "fields": ["mrn"]}, 400, "fields"),
    ("post", "/api/v1/contacts", {**ZOE, "fields": 0}, 400, "fields"),
    ("post", "/api/v1/contacts", {**ZOE, "number": "555-12"}, 422, "number"),
    ("post", "/api/v1/contacts", {**ZOE, "first_name": "x" * 101}, 422, "first_name"),
    ("post", "/api/v1/contacts", {**ZOE, "timezone": "Mars/Base"}, 422, "timezone"),
    ("post", "/api/v1/contacts", {**ZOE, "tags": ["two words"]}, 422, "tags"),
    ("patch", f"/api/v1/contacts/{NUMBER}", {"number": "+12025550100"}, 400, "number"),
    ("patch", f"/api/v1/contacts/{NUMBER}", {"language": "Klingon!"}, 422, "language"),
])
def test_a_bad_request_is_a_json_error_naming_the_field_and_stores_nothing(
        env: WebEnv, method: str, path: str, body: dict[str, Any], status: int, field: str) -> None:
    env.store.contacts.save(NUMBER, ContactValues(first_name="Zoe"), actor="test")
    before = env.store.query("SELECT * FROM contacts")
    response = getattr(env.client(), method)(path, json=body, headers=headers(env))
    assert response.status_code == status, response.get_json()
    assert response.get_json()["field"] == field and response.get_json()["message"]
    assert env.store.query("SELECT * FROM contacts") == before


def test_the_unknown_field_refusal_lists_the_documented_fields(env: WebEnv) -> None:
    for method, path, name in (("post", "/api/v1/contacts", "NewContact"),
                               ("patch", f"/api/v1/contacts/{NUMBER}", "ContactPatch")):
        env.store.contacts.save(NUMBER, ContactValues(first_name="Zoe"), actor="test")
        response = getattr(env.client(), method)(path, json={**ZOE, "phne": 1}, headers=headers(env))
        message = response.get_json()["message"]
        known = set(message.split("known fields: ")[1].split(", "))
        assert known == set(schema(name)["properties"]), method


def test_a_body_that_is_not_json_is_refused(env: WebEnv) -> None:
    response = env.client().post("/api/v1/contacts", data="number=+12025550123", headers=headers(env))
    assert response.status_code == 415


def test_a_missing_contact_is_a_404(env: WebEnv) -> None:
    h = headers(env)
    for method in ("get", "patch", "delete"):
        response = getattr(env.client(), method)(f"/api/v1/contacts/{NUMBER}", json={"notes": "x"}, headers=h)
        assert response.status_code == 404 and response.get_json()["error"] == "not_found", method


def test_reading_needs_read_writing_needs_send_and_erasing_needs_admin(env: WebEnv) -> None:
    client = env.client()
    read, send = headers(env, "read"), headers(env, "send")
    assert client.post("/api/v1/contacts", json=ZOE, headers=read).status_code == 403
    assert client.post("/api/v1/contacts", json=ZOE, headers=send).status_code == 201
    assert client.get("/api/v1/contacts", headers=read).status_code == 200
    assert client.get("/api/v1/contacts", headers=send).status_code == 403
    assert client.delete(f"/api/v1/contacts/{NUMBER}", headers=send).status_code == 403
    assert client.get("/api/v1/contacts").status_code == 401
    assert env.store.contacts.require(NUMBER).first_name == "Zoë"


def test_delete_erases_the_contact_and_keeps_its_consent_events(env: WebEnv) -> None:
    h = headers(env)
    env.client().post("/api/v1/contacts", json=ZOE, headers=h)
    receive(env.store, None, NUMBER, "my knee hurts")
    env.store.consent.record(NUMBER, "opt_in", scope="newsletter", source="web", actor="test")
    body = env.client().delete(f"/api/v1/contacts/{NUMBER}", headers=h).get_json()
    assert (body["number"], body["received_erased"]) == (NUMBER, 1)
    after = env.client().get(f"/api/v1/contacts/{NUMBER}", headers=h).get_json()
    assert (after["name"], after["fields"], after["tags"], after["erased_at"]) == (None, {}, [], body["erased_at"])
    assert after["history"]["messages"][0]["body"] == "[erased]"
    assert [e["event"] for e in after["history"]["consent"]] == ["opt_in"]


def test_hostile_text_comes_back_as_given(env: WebEnv) -> None:
    hostile = {"number": PATIENT, "first_name": "<script>alert(1)</script>", "last_name": "=cmd|' /C calc'!A0",
               "notes": "\u202eevil\x1b[31m"}
    body = env.client().post("/api/v1/contacts", json=hostile, headers=headers(env)).get_json()
    assert (body["first_name"], body["last_name"], body["notes"]) == (
        hostile["first_name"], hostile["last_name"], hostile["notes"])
