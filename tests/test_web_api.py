"""The JSON API against a real database file: every endpoint, idempotent retries, and bad input."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from web_helpers import PATIENT, WebEnv, add_modem, bearer, make_env, receive

from smsgate.queue import Store
from smsgate.web.api import MESSAGE_FIELDS


@pytest.fixture
def env(tmp_path: Path) -> Iterator[WebEnv]:
    e = make_env(tmp_path, api_sends_per_minute=5)
    yield e
    e.store.close()


def token(store: Store, scope: str) -> dict[str, str]:
    _, secret = store.accounts.create_token(f"{scope}-client", scope, actor="test")
    return bearer(secret)


def count_messages(store: Store) -> int:
    return store.query("SELECT COUNT(*) AS n FROM messages")[0]["n"]


def test_post_message_queues_it_and_returns_id_and_cost_preview(env: WebEnv) -> None:
    response = env.client().post("/api/v1/messages", headers=token(env.store, "send"),
                                 json={"to": PATIENT, "text": "Reminder: Dr Rivera at 3:15 PM €"})
    assert response.status_code == 201, response.json
    body = response.json
    assert body["created"] is True and body["state"] == "queued" and body["to"] == PATIENT
    assert body["cost"] == {"parts": 1, "encoding": "gsm7", "units": 33, "per_part_limit": 160, "ucs2_forced_by": []}
    assert response.headers["Location"] == f"/api/v1/messages/{body['id']}"
    msg = env.store.outbox.get(body["id"])
    assert msg.created_by.startswith("token:") and msg.source == "api"


def test_cost_preview_names_the_characters_that_force_ucs2(env: WebEnv) -> None:
    response = env.client().post("/api/v1/messages", headers=token(env.store, "send"),
                                 json={"to": PATIENT, "text": "Bonjour ☺ à demain"})
    assert response.json["cost"]["encoding"] == "ucs2"
    assert response.json["cost"]["ucs2_forced_by"] == ["☺"]


def test_same_idempotency_key_twice_returns_the_first_message(env: WebEnv) -> None:
    client, auth = env.client(), token(env.store, "send")
    payload = {"to": PATIENT, "text": "Your results are ready", "idempotency_key": "appt-42"}
    first = client.post("/api/v1/messages", headers=auth, json=payload)
    second = client.post("/api/v1/messages", headers=auth, json=payload)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json["id"] == second.json["id"] and second.json["created"] is False
    assert count_messages(env.store) == 1


def test_idempotency_key_header_is_honoured(env: WebEnv) -> None:
    client, auth = env.client(), {**token(env.store, "send"), "Idempotency-Key": "crm-7"}
    ids = {client.post("/api/v1/messages", headers=auth, json={"to": PATIENT, "text": "hi"}).json["id"]
           for _ in range(3)}
    assert len(ids) == 1 and count_messages(env.store) == 1
    assert env.store.outbox.get(ids.pop()).idempotency_key == "crm-7"


def test_two_tokens_using_the_same_idempotency_key_each_get_their_own_message(env: WebEnv) -> None:
    client, crm, lab = env.client(), token(env.store, "send"), token(env.store, "send")
    payload = {"to": PATIENT, "text": "Your results are ready", "idempotency_key": "appt-42"}
    first, second = (client.post("/api/v1/messages", headers=auth, json=payload) for auth in (crm, lab))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json["id"] != second.json["id"] and count_messages(env.store) == 2
    assert client.get(second.json["links"]["self"], headers=lab).status_code == 200
    assert client.get(first.json["links"]["self"], headers=lab).status_code == 404
    assert client.post("/api/v1/messages", headers=lab, json=payload).json["id"] == second.json["id"]


def test_an_idempotency_key_replayed_with_another_kind_is_a_409(env: WebEnv) -> None:
    client, auth = env.client(), token(env.store, "send")
    payload = {"to": PATIENT, "text": "Flu shots this week", "idempotency_key": "flu-1"}
    assert client.post("/api/v1/messages", headers=auth, json=payload).status_code == 201
    response = client.post("/api/v1/messages", headers=auth, json={**payload, "kind": "bulk"})
    assert response.status_code == 409 and response.json["error"] == "idempotency_conflict"
    assert response.json["field"] == "idempotency_key" and "different kind" in response.json["message"]
    assert count_messages(env.store) == 1


def test_sending_to_an_opted_out_number_is_a_422_with_the_reason(env: WebEnv) -> None:
    env.store.consent.record(PATIENT, "opt_out", source="sms", actor="rules", evidence="STOP")
    response = env.client().post("/api/v1/messages", headers=token(env.store, "send"),
                                 json={"to": "+1 555-555-0101", "text": "Reminder: Dr Rivera tomorrow"})
    assert response.status_code == 422, response.json
    assert response.json["error"] == "opted_out" and response.json["field"] == "to"
    assert f"{PATIENT} opted out of all messages (sms, " in response.json["message"]
    assert count_messages(env.store) == 0


def test_reused_idempotency_key_with_other_text_is_a_conflict(env: WebEnv) -> None:
    client, auth = env.client(), token(env.store, "send")
    client.post("/api/v1/messages", headers=auth, json={"to": PATIENT, "text": "one", "idempotency_key": "k"})
    response = client.post("/api/v1/messages", headers=auth, json={"to": PATIENT, "text": "two",
                                                                   "idempotency_key": "k"})
    assert response.status_code == 409 and response.json["error"] == "idempotency_conflict"
    assert count_messages(env.store) == 1


@pytest.mark.parametrize(("payload", "status", "needle"), [
    ({"to": "12345", "text": "hi"}, 422, "not a valid phone number"),
    ({"to": PATIENT, "text": "   "}, 422, "empty"),
    ({"to": PATIENT, "text": "x" * 160 * 7}, 422, "SMS parts"),
    ({"to": PATIENT, "text": "hi", "not_befor": "2030-01-01T00:00:00Z"}, 400, "unknown field 'not_befor'"),
    ({"to": PATIENT}, 400, "'text' is required"),
    ({"to": PATIENT, "text": 5}, 400, "must be a string"),
    ({"to": PATIENT, "text": "hi", "kind": "compliance"}, 400, "'kind' must be one of"),
    ({"to": PATIENT, "text": "hi", "not_before": "2030-01-01T09:00"}, 400, "UTC offset"),
    ({"to": PATIENT, "text": "hi", "expect": ["YES"]}, 400, "'expect' must be an object"),
    ({"to": PATIENT, "text": "hi", "priority": "urgent"}, 400, "'priority' must be"),
    ({"to": PATIENT, "text": "hi", "expect": {"": "confirmed"}}, 422, "both the answer word and its outcome"),
    ({"to": PATIENT, "text": "hi", "expect": {"YES": " "}}, 422, "both the answer word and its outcome"),
    ({"to": PATIENT, "text": "hi", "expect": {"YES": "ok"}, "follow_up": {"YES": ""}}, 422,
     "both the answer word and its reply"),
    ({"to": PATIENT, "text": "hi", "expect": {"yes": "confirmed", "YES!": "cancelled"}}, 422, "give each answer once"),
    ({"to": PATIENT, "text": "hi", "expect": {"!!": "confirmed"}}, 422, "no letters or digits"),
    (["to", PATIENT], 400, "JSON object"),
])
def test_bad_input_gets_a_clear_json_error_and_stores_nothing(env: WebEnv, payload: object, status: int,
                                                               needle: str) -> None:
    response = env.client().post("/api/v1/messages", headers=token(env.store, "send"), json=payload)
    assert response.status_code == status, response.json
    assert needle in response.json["message"]
    assert count_messages(env.store) == 0


def test_body_that_is_not_json_is_refused(env: WebEnv) -> None:
    auth = token(env.store, "send")
    assert env.client().post("/api/v1/messages", headers=auth, data="to=x").status_code == 415
    broken = env.client().post("/api/v1/messages", headers=auth, data="{", content_type="application/json")
    assert broken.status_code == 400 and broken.json["error"] == "bad_json"
    assert count_messages(env.store) == 0


def test_not_before_expect_and_kind_reach_the_queue(env: WebEnv) -> None:
    response = env.client().post("/api/v1/messages", headers=token(env.store, "send"), json={
        "to": PATIENT, "text": "Reply YES to confirm", "not_before": "2030-01-02T09:30:00-05:00",
        "expect": {"yes": "confirmed", "NO": "cancelled"}, "priority": "bulk"})
    msg = env.store.outbox.get(response.json["id"])
    assert msg.due_at == "2030-01-02T14:30:00.000000Z"
    assert msg.expect == {"YES": "confirmed", "NO": "cancelled"} and msg.kind.value == "bulk"


def test_get_message_returns_state_and_history(env: WebEnv) -> None:
    client, auth = env.client(), token(env.store, "send")
    msg_id = client.post("/api/v1/messages", headers=auth, json={"to": PATIENT, "text": "hi"}).json["id"]
    env.store.outbox.cancel(msg_id, actor="test")
    body = client.get(f"/api/v1/messages/{msg_id}", headers=auth).json
    # the first message to a number carries the opt-out footer
    assert body["state"] == "cancelled" and body["text"] == "hi\nReply STOP to opt out."
    assert [(h["from"], h["state"]) for h in body["history"]] == [(None, "queued"), ("queued", "cancelled")]
    missing = client.get("/api/v1/messages/999", headers=auth)
    assert missing.status_code == 404 and "#999" in missing.json["message"]


def test_send_token_cannot_read_other_peoples_messages(env: WebEnv) -> None:
    other = env.store.outbox.enqueue(PATIENT, "private", created_by="cli").id
    response = env.client().get(f"/api/v1/messages/{other}", headers=token(env.store, "send"))
    assert response.status_code == 404
    assert env.client().get(f"/api/v1/messages/{other}", headers=token(env.store, "read")).status_code == 200


def test_read_token_cannot_send(env: WebEnv) -> None:
    response = env.client().post("/api/v1/messages", headers=token(env.store, "read"),
                                 json={"to": PATIENT, "text": "hi"})
    assert response.status_code == 403 and response.json["error"] == "scope"
    assert count_messages(env.store) == 0


def test_revoked_token_is_refused(env: WebEnv) -> None:
    tok, secret = env.store.accounts.create_token("crm", "admin", actor="test")
    env.store.accounts.revoke_token(tok.id, actor="test")
    response = env.client().get("/api/v1/modems", headers=bearer(secret))
    assert response.status_code == 401 and response.json["error"] == "invalid_token"


def test_send_cap_per_token_answers_429(env: WebEnv) -> None:
    client, auth = env.client(), token(env.store, "send")
    codes = [client.post("/api/v1/messages", headers=auth, json={"to": PATIENT, "text": f"m{i}"}).status_code
             for i in range(6)]
    assert codes == [201] * 5 + [429]
    assert count_messages(env.store) == 5


def test_list_messages_filters_by_state(env: WebEnv) -> None:
    a = env.store.outbox.enqueue(PATIENT, "a").id
    env.store.outbox.enqueue(PATIENT, "b")
    env.store.outbox.cancel(a, actor="test")
    body = env.client().get("/api/v1/messages?state=cancelled", headers=token(env.store, "read")).json
    assert [m["id"] for m in body["messages"]] == [a]
    assert env.client().get("/api/v1/messages?limit=0", headers=token(env.store, "read")).status_code == 400
    unknown = env.client().get("/api/v1/messages?state=sent", headers=token(env.store, "read"))
    assert unknown.status_code == 400 and "queued" in unknown.json["message"]


@pytest.mark.parametrize("query", ["messages?offset=-1", "messages?limit=501", "conversations?limit=x",
                                   "conversations?offset=1.5"])
def test_list_paging_out_of_range_is_a_400_naming_the_argument(env: WebEnv, query: str) -> None:
    response = env.client().get(f"/api/v1/{query}", headers=token(env.store, "read"))
    name = query.split("?")[1].split("=")[0]
    assert response.status_code == 400 and repr(name) in response.json["message"]


def test_conversations_lists_threads_with_unread_filter(env: WebEnv) -> None:
    modem = add_modem(env.store)
    receive(env.store, modem, PATIENT, "Can I move my appointment?")
    env.store.outbox.enqueue("+15555550102", "outbound only")
    auth = token(env.store, "read")
    unread = env.client().get("/api/v1/conversations?unread=1", headers=auth).json["conversations"]
    assert [(c["number"], c["unread"], c["modem_name"]) for c in unread] == [(PATIENT, 1, "front-desk")]
    everything = env.client().get("/api/v1/conversations", headers=auth).json["conversations"]
    assert len(everything) == 2
    assert env.client().get("/api/v1/conversations?status=maybe", headers=auth).status_code == 400


def test_modems_report_signal_and_activity(env: WebEnv) -> None:
    modem = add_modem(env.store)
    receive(env.store, modem, PATIENT, "hello")
    body = env.client().get("/api/v1/modems", headers=token(env.store, "read")).json
    (m,) = body["modems"]
    assert (m["name"], m["signal_dbm"], m["signal_bars"], m["msisdn"]) == ("front-desk", -71, 4, "+15555550100")
    assert m["last_hour"]["received"] == 1 and m["last_day"]["received"] == 1


def test_health_needs_no_login_and_shows_no_numbers_or_text(env: WebEnv) -> None:
    add_modem(env.store)
    receive(env.store, 1, PATIENT, "secret body")
    env.store.outbox.enqueue(PATIENT, "another secret")
    env.store.set_status("daemon", {"running": True, "pid": 1})
    response = env.client().get("/api/v1/health")
    assert response.status_code == 200
    assert response.json["status"] == "ok" and response.json["queue"]["queued"] == 1
    text = response.get_data(as_text=True)
    for leak in ("555", "secret", "front-desk", "pid"):
        assert leak not in text


def test_health_is_503_when_the_daemon_is_not_running(env: WebEnv) -> None:
    response = env.client().get("/api/v1/health")
    assert response.status_code == 503 and response.json["status"] == "down"


def test_metrics_are_prometheus_text(env: WebEnv) -> None:
    add_modem(env.store, name='odd"name')
    env.store.outbox.enqueue(PATIENT, "a")
    response = env.client().get("/metrics", headers=token(env.store, "read"))
    assert response.status_code == 200 and response.mimetype == "text/plain"
    text = response.get_data(as_text=True)
    assert 'smsgate_messages{state="queued",priority="1"} 1' in text
    assert 'smsgate_modem_signal_dbm{modem="odd\\"name"} -71' in text
    assert "# TYPE smsgate_modem_sent_total counter" in text
    assert env.client().get("/metrics").status_code == 401


def test_openapi_document_lists_every_api_route(env: WebEnv) -> None:
    spec = env.client().get("/api/v1/openapi.json").json
    assert spec["openapi"].startswith("3.")
    routes = {re.sub(r"<(?:\w+:)?(\w+)>", lambda m: "{id}" if m.group(1) == "message_id" else f"{{{m.group(1)}}}",
                     r.rule) for r in env.app.url_map.iter_rules()
              if r.rule.startswith("/api/v1/") and r.rule != "/api/v1/openapi.json"} | {"/metrics"}
    assert routes == set(spec["paths"])


def test_staff_session_can_use_the_api_but_must_send_the_csrf_header(env: WebEnv) -> None:
    from web_helpers import page_csrf

    env.store.accounts.add_user("maria", "correct horse battery", "staff", actor="test")
    client = env.login("maria")
    refused = client.post("/api/v1/messages", json={"to": PATIENT, "text": "hi"})
    assert refused.status_code == 403 and refused.json["error"] == "csrf"
    ok = client.post("/api/v1/messages", json={"to": PATIENT, "text": "hi"},
                     headers={"X-CSRF-Token": page_csrf(client)})
    assert ok.status_code == 201
    assert env.store.outbox.get(ok.json["id"]).created_by == "web:maria"


def test_parallel_requests_cannot_slip_past_the_token_send_limit(env: WebEnv) -> None:
    import threading

    auth = token(env.store, "send")  # the env allows 5 sends a minute
    statuses: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def post(i: int) -> None:
        client = env.client()
        start.wait()
        response = client.post("/api/v1/messages", headers=auth, json={"to": f"+1202555{i:04d}", "text": "hi"})
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(statuses) == [201] * 5 + [429] * 3
    assert count_messages(env.store) == 5


# -- the error shape ------------------------------------------------------------------------------

def _error_schema() -> dict[str, Any]:
    text = resources.files("smsgate.web").joinpath("openapi.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)["components"]["schemas"]["Error"]
    return schema


def assert_error_shape(response: Any, status: int, error: str, field: str | None = None) -> None:
    schema = _error_schema()
    body = response.json
    assert response.status_code == status, body
    assert response.mimetype == "application/json"
    assert set(schema["required"]) <= set(body) <= set(schema["properties"]), body
    assert all(isinstance(v, str) and v for v in body.values()), body
    assert body["error"] == error and body.get("field") == field


@pytest.mark.parametrize(("method", "path", "scope", "payload", "status", "error", "field"), [
    ("post", "/api/v1/messages", "send", {"to": PATIENT}, 400, "bad_request", "text"),
    ("post", "/api/v1/messages", "send", {"to": PATIENT, "text": "hi", "kind": "x"}, 400, "bad_request", "kind"),
    ("post", "/api/v1/messages", "send", {"to": "12345", "text": "hi"}, 422, "rejected", None),
    ("post", "/api/v1/messages", "read", {"to": PATIENT, "text": "hi"}, 403, "scope", None),
    ("post", "/api/v1/messages", None, {"to": PATIENT, "text": "hi"}, 401, "unauthorized", None),
    ("get", "/api/v1/messages?state=sent", "read", None, 400, "bad_request", "state"),
    ("get", "/api/v1/messages?limit=0", "read", None, 400, "bad_request", "limit"),
    ("get", "/api/v1/conversations?offset=x", "read", None, 400, "bad_request", "offset"),
    ("get", "/api/v1/conversations?status=closed", "read", None, 400, "bad_request", "status"),
    ("get", "/api/v1/messages/999", "read", None, 404, "not_found", None),
    ("get", f"/api/v1/messages/{2**63}", "read", None, 404, "not_found", None),
    ("get", "/api/v1/nowhere", "read", None, 404, "not_found", None),
])
def test_every_api_error_has_the_documented_shape(env: WebEnv, method: str, path: str, scope: str | None,
                                                   payload: object, status: int, error: str,
                                                   field: str | None) -> None:
    headers = token(env.store, scope) if scope else {}
    response = getattr(env.client(), method)(path, headers=headers, json=payload)
    assert_error_shape(response, status, error, field)


def test_an_unknown_or_malformed_token_gets_the_error_shape(env: WebEnv) -> None:
    client = env.client()
    assert_error_shape(client.get("/api/v1/messages", headers={"Authorization": "Basic x"}), 401,
                       "bad_authorization")
    assert_error_shape(client.get("/api/v1/messages", headers=bearer("sg_nope")), 401, "invalid_token")
    assert_error_shape(client.get("/api/v1/messages?token=abc"), 400, "credentials_in_url")


def test_an_error_keeps_its_headers(env: WebEnv) -> None:
    response = env.client().get("/api/v1/messages")
    assert_error_shape(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="smsgate"'
    assert response.headers["Cache-Control"] == "no-store"  # the app's own headers still apply


_ODD_VALUES: list[object] = [None, 0, 1.5, True, "", " ", "x" * 300, [], ["YES"], {}, {"YES": 1}, {"": ""},
                             {"!!": "x"}, {"yes": "a", "YES": "b"}, "rating", "1-5"]


@pytest.mark.parametrize("name", sorted(MESSAGE_FIELDS))
def test_no_value_of_any_field_makes_the_api_answer_500(env: WebEnv, name: str) -> None:
    client, auth = env.client(), token(env.store, "send")
    for value in _ODD_VALUES:
        payload = {"to": PATIENT, "text": "hi", name: value}
        response = client.post("/api/v1/messages", headers=auth, json=payload)
        assert response.status_code < 500, (payload, response.json)
        if response.status_code >= 400:
            assert_error_shape(response, response.status_code, response.json["error"], response.json.get("field"))
