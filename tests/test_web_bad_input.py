"""Bad input to the pages and the API: a clear 4xx that names what is wrong, nothing stored, never a 500."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from web_helpers import PASSWORD, PATIENT, WebEnv, add_modem, bearer, make_env, page_csrf, receive


@pytest.fixture
def env(tmp_path: Path) -> Iterator[WebEnv]:
    e = make_env(tmp_path)
    e.store.accounts.add_user("ada", PASSWORD, "admin", actor="test")
    e.store.accounts.add_user("sam", PASSWORD, "staff", actor="test")
    e.store.set_status("daemon", {"running": True, "pid": 1})  # so health answers 200, not its 503
    yield e
    e.store.close()


def admin_token(env: WebEnv) -> dict[str, str]:
    _, secret = env.store.accounts.create_token("admin-client", "admin", actor="test")
    return bearer(secret)


def count(env: WebEnv, table: str) -> int:
    return int(env.store.scalar(f"SELECT COUNT(*) FROM {table}"))


# -- ids and paging ---------------------------------------------------------------------------------------

HUGE_IDS = [str(2**63), str(2**64), "9999999999999999999999999", "9" * 5000]
PAGING = ("page", "limit", "offset")


def routes_with(env: WebEnv, number: str) -> list[tuple[str, str, bool]]:
    """Every registered route as (method, url, takes_an_id), ids replaced by `number`."""
    out = []
    for rule in env.app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        url, has_id = re.subn(r"<(?:int|id):\w+>", number, rule.rule)
        assert "<int:" not in rule.rule, f"{rule.rule}: use <id:...>, the converter that knows SQLite's range"
        url = re.sub(r"<any\(([\w, ]+)\):\w+>", lambda m: m.group(1).split(",")[0].strip(), url)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((method, url, bool(has_id)))
    return out


def test_every_route_answers_an_id_beyond_64_bits_with_404(env: WebEnv) -> None:
    modem = add_modem(env.store)
    receive(env.store, modem, PATIENT, "hello")
    client, auth = env.login("ada"), admin_token(env)
    csrf = page_csrf(client)
    checked = 0
    for number in HUGE_IDS:
        for method, url, has_id in routes_with(env, number):
            if not has_id:
                continue
            response = client.open(url, method=method, headers=auth if url.startswith("/api/") else {},
                                   data={"csrf_token": csrf, "back": "/outbox"} if method == "POST" else None)
            assert response.status_code == 404, (method, url[:80], response.status_code)
            checked += 1
    assert checked >= 4 * 8, "every route with an id was tried"


# Every route that reads a page, limit or offset (the routes are filled with "1" for each parameter).
PAGING_READERS = ["/inbox?page", "/outbox?page", "/api/v1/messages?limit", "/api/v1/messages?offset",
                  "/api/v1/conversations?limit", "/api/v1/conversations?offset",
                  "/api/v1/segments/<name>/preview?limit", "/api/v1/contacts?limit", "/api/v1/contacts?offset"]


@pytest.mark.parametrize("value", [str(2**63), str(2**64), "9" * 5000, "-1", "x", "1.5", "\u0661\u0662"])
def test_every_route_answers_a_page_limit_or_offset_out_of_range_with_400_naming_it(env: WebEnv,
                                                                                      value: str) -> None:
    modem = add_modem(env.store)
    receive(env.store, modem, PATIENT, "hello")
    client, auth = env.login("ada"), admin_token(env)
    readers: list[str] = []
    for method, url, _ in routes_with(env, "1"):
        if method != "GET" or url.startswith("/logout"):
            continue
        for name in PAGING:
            response = client.get(f"{url}?{name}={value}", headers=auth if url.startswith("/api/") else {})
            assert response.status_code < 500, (url, name, value)
            if response.status_code == 400:
                readers.append(f"{url}?{name}")
                text = response.get_data(as_text=True)
                assert repr(name) in text or f"&#39;{name}&#39;" in text, (url, name, text[:300])
                if url.startswith("/api/"):
                    assert response.json["field"] == name
    assert sorted(readers) == sorted(PAGING_READERS), readers


def test_a_page_or_limit_in_range_still_works(env: WebEnv) -> None:
    client, auth = env.login("ada"), admin_token(env)
    assert client.get("/inbox?page=1000000").status_code == 200
    assert client.get("/outbox?page=").status_code == 200
    assert client.get("/api/v1/messages?limit=500&offset=1000000000", headers=auth).status_code == 200


# -- what a message body may hold ---------------------------------------------------------------------------

def post_raw(env: WebEnv, body: str | bytes) -> object:
    headers = {**admin_token(env), "Content-Type": "application/json"}
    return env.client().post("/api/v1/messages", headers=headers, data=body)


def assert_refused(env: WebEnv, response: object, status: int, field: str | None, *words: str) -> None:
    body = response.json  # type: ignore[attr-defined]  # a Flask test response
    assert response.status_code == status, body  # type: ignore[attr-defined]  # a Flask test response
    assert body.get("field") == field, body
    assert len(body["message"].split()) >= 6, body  # a sentence, not a code
    for word in words:
        assert word in body["message"], body
    assert count(env, "messages") == 0 and count(env, "contacts") == 0


def test_json_nested_deeper_than_the_parser_goes_is_a_400_not_a_500(env: WebEnv) -> None:
    response = post_raw(env, "[" * 100_000)
    assert_refused(env, response, 400, None, "nested")
    assert response.json["error"] == "bad_json"  # type: ignore[attr-defined]  # a Flask test response
    deep_field = '{"to": "' + PATIENT + '", "text": "hi", "expect": ' + "[" * 50_000 + "]" * 50_000 + "}"
    assert_refused(env, post_raw(env, deep_field), 400, None, "nested")


def test_a_body_that_is_not_utf8_is_a_400(env: WebEnv) -> None:
    assert_refused(env, post_raw(env, b'{"to": "+15555550101", "text": "caf\xe9"}'), 400, None, "UTF-8")


@pytest.mark.parametrize(("field", "escaped"), [("text", "a\\ud800b"), ("text", "\\udfff"),
                                                 ("idempotency_key", "k\\ud83d"), ("to", "\\ud800")])
def test_a_lone_utf16_surrogate_is_a_400_naming_the_field(env: WebEnv, field: str, escaped: str) -> None:
    fields = {"to": f'"{PATIENT}"', "text": '"hello"', field: f'"{escaped}"'}
    body = "{" + ", ".join(f'"{k}": {v}' for k, v in fields.items()) + "}"
    assert_refused(env, post_raw(env, body), 400, field, "surrogate")


def test_a_surrogate_inside_an_answer_map_names_that_field(env: WebEnv) -> None:
    body = '{"to": "' + PATIENT + '", "text": "hi", "expect": {"YES": "ok\\udc00"}}'
    assert_refused(env, post_raw(env, body), 400, "expect", "surrogate")


@pytest.mark.parametrize(("char", "name"), [("\x00", "NUL"), ("\t", "tab"), ("\x1b", "ESC"), ("\x7f", "DEL"),
                                            ("\x0c", "U+000C"), ("\x85", "U+0085")])
def test_a_control_character_in_the_text_is_a_400_naming_it(env: WebEnv, char: str, name: str) -> None:
    response = env.client().post("/api/v1/messages", headers=admin_token(env),
                                 json={"to": PATIENT, "text": f"Your appointment{char} is at 3 PM"})
    assert_refused(env, response, 400, "text", name, "character 17")


def test_line_breaks_are_kept_because_gsm_carries_them(env: WebEnv) -> None:
    text = "Dr Rivera\r\nTomorrow 3:15 PM\nReply YES"
    response = env.client().post("/api/v1/messages", headers=admin_token(env), json={"to": PATIENT, "text": text})
    assert response.status_code == 201, response.json
    assert env.store.outbox.get(response.json["id"]).body.startswith(text)
    assert response.json["cost"]["encoding"] == "gsm7"


def test_a_follow_up_reply_with_a_control_character_is_refused_before_it_is_queued(env: WebEnv) -> None:
    response = env.client().post("/api/v1/messages", headers=admin_token(env),
                                 json={"to": PATIENT, "text": "Reply YES", "follow_up": {"YES": "See\x00you"}})
    assert_refused(env, response, 400, "follow_up", "NUL")


# -- where a form sends the browser back to -------------------------------------------------------------

def unknown_message(env: WebEnv) -> int:
    """A message that went `unknown` (the modem stopped answering mid-send), for an admin to re-send."""
    modem = add_modem(env.store)
    msg_id = env.store.outbox.enqueue(PATIENT, "Your results are ready").id
    (claim,) = env.store.outbox.claim("worker-1", modem)
    env.store.outbox.mark_submitting(claim, 1)
    env.store.outbox.mark_unknown(claim, 1, "timeout after the PDU was written")
    return msg_id


@pytest.mark.parametrize("back", ["/outbox\r\nSet-Cookie: planted=1", "/outbox\n", "//evil.example/outbox",
                                  "https://evil.example/outbox", "/\\evil.example", "/\t/evil.example",
                                  "javascript:alert(1)", "outbox"])
def test_retry_with_a_back_path_off_this_site_goes_to_the_message_page(env: WebEnv, back: str) -> None:
    msg_id = unknown_message(env)
    client = env.login("ada")
    response = client.post(f"/outbox/{msg_id}/retry", data={"csrf_token": page_csrf(client), "back": back})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/outbox/{msg_id}"
    assert "planted" not in response.headers.get("Set-Cookie", "")
    assert env.store.outbox.get(msg_id).state.value == "queued"
    resends = [h for h in env.store.outbox.history(msg_id) if h["detail"].get("reason") == "re-sent by staff"]
    assert len(resends) == 1


def test_retry_goes_back_to_a_path_on_this_site(env: WebEnv) -> None:
    msg_id = unknown_message(env)
    client = env.login("ada")
    response = client.post(f"/outbox/{msg_id}/retry",
                           data={"csrf_token": page_csrf(client), "back": "/outbox?state=unknown"})
    assert response.status_code == 302 and response.headers["Location"] == "/outbox?state=unknown"


# -- assigning a conversation -------------------------------------------------------------------------

def conversation_for(env: WebEnv) -> int:
    inbound = receive(env.store, add_modem(env.store), PATIENT, "question about my bill")
    return int(inbound.conversation_id or 0)


def test_a_conversation_can_be_assigned_to_an_account_and_a_team_a_rule_routes_to(env: WebEnv) -> None:
    env.store.keywords.add("BILL", reply="Billing will call you.", route="billing")
    env.store.keywords.add("MENU", reply="1 nurse, 2 front desk", menu={"1": "nurses", "2": "front-desk"})
    conv = conversation_for(env)
    client = env.login("sam")
    page = client.get(f"/inbox/{conv}").get_data(as_text=True)
    for team in ("billing", "nurses", "front-desk"):
        assert f'<option value="{team}"' in page, team
    response = client.post(f"/inbox/{conv}/assign",
                           data={"assigned_to": "ada", "team": "nurses", "csrf_token": page_csrf(client)})
    assert response.status_code == 302
    row = env.store.conversations.get(conv)
    assert (row["assigned_to"], row["team"]) == ("ada", "nurses")


@pytest.mark.parametrize(("form", "words"), [
    ({"assigned_to": "mallory"}, ["no account", "mallory"]),
    ({"assigned_to": "disabled-dan"}, ["disabled", "disabled-dan"]),
    ({"assigned_to": "ada\r\nx"}, ["no account"]),
    ({"assigned_to": "ada", "team": "biling"}, ["no team", "biling", "billing"]),
])
def test_assigning_to_no_account_or_an_unknown_team_is_a_400_that_changes_nothing(
        env: WebEnv, form: dict[str, str], words: list[str]) -> None:
    env.store.accounts.add_user("disabled-dan", PASSWORD, "staff", actor="test")
    env.store.accounts.disable_user("disabled-dan", actor="test")
    env.store.keywords.add("BILL", reply="Billing will call you.", route="billing")
    conv = conversation_for(env)
    env.store.conversations.update(conv, actor="test", assigned_to="sam")
    client = env.login("sam")
    response = client.post(f"/inbox/{conv}/assign", data={**form, "csrf_token": page_csrf(client)})
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    error = re.search(r'id="assign-error">([^<]*)<', html)
    assert error, html[:500]
    for word in words:
        assert word in error.group(1), error.group(1)
    row = env.store.conversations.get(conv)
    assert (row["assigned_to"], row["team"]) == ("sam", None)


def test_without_any_team_configured_only_accounts_can_be_chosen(env: WebEnv) -> None:
    conv = conversation_for(env)
    client = env.login("sam")
    assert 'name="team"' not in client.get(f"/inbox/{conv}").get_data(as_text=True)
    response = client.post(f"/inbox/{conv}/assign",
                           data={"assigned_to": "", "team": "nurses", "csrf_token": page_csrf(client)})
    assert response.status_code == 400 and "no teams" in response.get_data(as_text=True)
    assert env.store.conversations.get(conv)["team"] is None


def test_a_reply_with_a_control_character_is_refused_on_the_page_with_the_text_kept(env: WebEnv) -> None:
    conv = conversation_for(env)
    client = env.login("sam")
    response = client.post(f"/inbox/{conv}/reply", data={"text": "See you\tat 3", "csrf_token": page_csrf(client)})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "a tab (U+0009) at character 8" in html
    assert "See you\tat 3</textarea>" in html
    assert count(env, "messages") == 0
