"""Security of the pages and the API: login everywhere, CSRF, inert SMS text, tokens, throttling, sessions."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from web_helpers import (
    HOSTILE_BODIES,
    PASSWORD,
    PATIENT,
    WebEnv,
    add_modem,
    bearer,
    csrf_from,
    login,
    make_config,
    make_env,
    page_csrf,
    receive,
)

from smsgate.queue import Store
from smsgate.web import create_app
from smsgate.web.auth import PUBLIC_ENDPOINTS


@pytest.fixture
def env(tmp_path: Path) -> Iterator[WebEnv]:
    e = make_env(tmp_path)
    for name, role in (("ada", "admin"), ("sam", "staff"), ("vic", "viewer")):
        e.store.accounts.add_user(name, PASSWORD, role, actor="test")
    yield e
    e.store.close()


def seed(store: Store) -> int:
    """A modem, a conversation and a message, so every route with an id has something to show."""
    modem = add_modem(store)
    inbound = receive(store, modem, PATIENT, "hello")
    store.outbox.enqueue(PATIENT, "hi")
    return int(inbound.conversation_id or 0)


def concrete_urls(env: WebEnv) -> list[tuple[str, str, str]]:
    out = []
    for rule in env.app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        url = re.sub(r"<(?:int|id):\w+>", "1", rule.rule)
        url = re.sub(r"<any\(([\w, ]+)\):\w+>", lambda m: m.group(1).split(",")[0].strip(), url)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            out.append((rule.endpoint, method, url))
    return out


def test_every_route_without_login_answers_401_or_the_login_page(env: WebEnv) -> None:
    seed(env.store)
    urls = concrete_urls(env)
    assert len(urls) >= 20
    for endpoint, method, url in urls:
        response = env.client().open(url, method=method)
        if url.startswith("/api/") or url == "/metrics":
            assert response.status_code == 401, (method, url)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        else:
            assert response.status_code == 302, (endpoint, method, url, response.status_code)
            assert response.headers["Location"].startswith("/login"), (method, url)
        assert PATIENT not in response.get_data(as_text=True)


def test_public_routes_are_only_login_static_health_and_the_api_description() -> None:
    assert PUBLIC_ENDPOINTS == {"auth.login", "static", "api.health", "api.openapi"}


def test_cross_site_post_without_the_csrf_token_is_rejected(env: WebEnv) -> None:
    conv = seed(env.store)
    client = env.login("sam")
    before = env.store.query("SELECT COUNT(*) AS n FROM messages")[0]["n"]
    no_token = client.post(f"/inbox/{conv}/reply", data={"text": "forged"})
    wrong_token = client.post(f"/inbox/{conv}/reply", data={"text": "forged", "csrf_token": "x" * 43})
    good = page_csrf(client)
    other_site = client.post(f"/inbox/{conv}/reply", data={"text": "forged", "csrf_token": good},
                             headers={"Origin": "https://evil.example"})
    assert [r.status_code for r in (no_token, wrong_token, other_site)] == [403, 403, 403]
    assert env.store.query("SELECT COUNT(*) AS n FROM messages")[0]["n"] == before
    ok = client.post(f"/inbox/{conv}/reply", data={"text": "genuine", "csrf_token": good},
                     headers={"Origin": "http://localhost"})
    assert ok.status_code == 302
    assert env.store.outbox.recent(limit=1)[0].body == "genuine"


def test_login_form_itself_needs_the_csrf_token(env: WebEnv) -> None:
    response = env.client().post("/login", data={"username": "ada", "password": PASSWORD})
    assert response.status_code == 403


@pytest.mark.parametrize("body", HOSTILE_BODIES)
def test_hostile_sms_text_stays_inert_on_every_page(env: WebEnv, body: str) -> None:
    modem = add_modem(env.store)
    inbound = receive(env.store, modem, PATIENT, body)
    env.store.conversations.update(inbound.conversation_id, actor="test", likely_opt_out=1)
    env.store.inbox.mark_handled(inbound.id, likely_opt_out=True)
    msg = env.store.outbox.enqueue(PATIENT, body, created_by="cli").id
    env.store.outbox.cancel(msg, actor="test", reason=body)
    client = env.login("ada")
    escaped = body.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&#34;")
    for path in (f"/inbox/{inbound.conversation_id}", "/outbox", f"/outbox/{msg}", "/inbox", "/audit"):
        html = client.get(path).get_data(as_text=True)
        assert "<script>alert" not in html, path
        if path not in ("/inbox", "/audit"):  # the audit page shows the text JSON-quoted
            assert escaped in html, path
    page = client.get(f"/inbox/{inbound.conversation_id}").get_data(as_text=True)
    if body == "{{7*7}}":
        assert "{{7*7}}" in page and ">49<" not in page
    assert "uid=" not in page


@pytest.mark.parametrize("body", HOSTILE_BODIES)
def test_hostile_sms_text_stays_inert_in_csv_exports(env: WebEnv, body: str) -> None:
    receive(env.store, add_modem(env.store), PATIENT, body)
    env.store.outbox.enqueue(PATIENT, body)
    client = env.login("sam")
    for what in ("outbox", "inbound"):
        response = client.get(f"/export/{what}.csv")
        assert response.mimetype == "text/csv" and response.headers["X-Content-Type-Options"] == "nosniff"
        rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
        cell = rows[0]["body"]
        if body.startswith("="):
            assert cell == "'" + body, "a formula must be turned into text"
        else:
            assert cell == body
        number = rows[0]["to_number" if what == "outbox" else "sender"]
        assert number == "'" + PATIENT, "a bare +1... would be read as a number and lose its +"


def test_token_in_the_query_string_is_refused_even_when_valid(env: WebEnv) -> None:
    _, secret = env.store.accounts.create_token("crm", "admin", actor="test")
    client = env.client()
    assert client.get("/api/v1/modems", headers=bearer(secret)).status_code == 200
    for url in (f"/api/v1/modems?access_token={secret}", f"/api/v1/modems?token={secret}",
                f"/metrics?api_key={secret}", f"/api/v1/conversations?q={secret}", f"/status?token={secret}"):
        response = client.get(url)
        assert response.status_code == 400, url
        assert response.json["error"] == "credentials_in_url"
        assert "Authorization: Bearer" in response.json["message"]


def test_the_eleventh_wrong_password_in_a_minute_is_throttled_across_processes(env: WebEnv) -> None:
    codes = [login(env.client(), "ada", f"wrong-{i}").status_code for i in range(10)]
    assert codes == [401] * 10
    # Another app on the same database (another process, in production) sees the same count.
    second_app = create_app(env.config)
    eleventh = login(second_app.test_client(), "ada", PASSWORD)
    assert eleventh.status_code == 429 and eleventh.headers["Retry-After"] == "60"
    assert "Too many failed attempts" in eleventh.get_data(as_text=True)
    actions = [e["action"] for e in env.store.audit.entries(action_prefix="login")]
    assert actions.count("login.failed") == 10 and "login.throttled" in actions and "login" not in actions


def test_throttling_ends_after_a_minute(tmp_path: Path) -> None:
    now = [datetime(2026, 11, 22, 18, 0, tzinfo=UTC)]
    config = make_config(tmp_path)
    app = create_app(config, store_factory=lambda cfg: Store.open(cfg.database_path, clock=lambda: now[0],
                                                                   migrate=False))
    with Store.open(config.database_path) as store:
        store.accounts.add_user("ada", PASSWORD, "admin", actor="test")
    for i in range(10):
        login(app.test_client(), "ada", f"wrong-{i}")
    assert login(app.test_client(), "ada", PASSWORD).status_code == 429
    now[0] += timedelta(seconds=61)
    assert login(app.test_client(), "ada", PASSWORD).status_code == 302


def cookie_value(client: object) -> str | None:
    cookie = client.get_cookie("smsgate_session")  # type: ignore[attr-defined]
    return cookie.value if cookie else None


def test_session_id_changes_at_login_and_the_old_cookie_is_not_logged_in(env: WebEnv) -> None:
    client = env.client()
    page = client.get("/login")
    before = cookie_value(client)
    assert before
    response = client.post("/login", data={"username": "ada", "password": PASSWORD,
                                           "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.status_code == 302
    after = cookie_value(client)
    assert after and after != before
    assert client.get("/status").status_code == 200
    planted = env.client()
    planted.set_cookie("smsgate_session", before)
    assert planted.get("/status").status_code == 302


def test_logout_ends_the_session_on_the_server(env: WebEnv) -> None:
    client = env.login("ada")
    stolen = cookie_value(client)
    client.post("/logout", data={"csrf_token": page_csrf(client)})
    replay = env.client()
    replay.set_cookie("smsgate_session", stolen or "")
    assert replay.get("/status").status_code == 302


def test_disabling_a_user_ends_their_session_at_once(env: WebEnv) -> None:
    client = env.login("sam")
    env.store.accounts.disable_user("sam", actor="test")
    assert client.get("/status").status_code == 302
    assert login(env.client(), "sam", PASSWORD).status_code == 401


def test_idle_session_is_logged_out(tmp_path: Path) -> None:
    now = [datetime(2026, 11, 22, 18, 0, tzinfo=UTC)]
    config = make_config(tmp_path, idle_logout_minutes=30.0)
    app = create_app(config, store_factory=lambda cfg: Store.open(cfg.database_path, clock=lambda: now[0],
                                                                   migrate=False))
    with Store.open(config.database_path) as store:
        store.accounts.add_user("ada", PASSWORD, "admin", actor="test")
    client = app.test_client()
    assert login(client, "ada", PASSWORD).status_code == 302
    now[0] += timedelta(minutes=20)
    assert client.get("/status").status_code == 200  # activity keeps the session alive
    now[0] += timedelta(minutes=29)
    assert client.get("/status").status_code == 200
    now[0] += timedelta(minutes=31)
    response = client.get("/status")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert "logged out after a period of inactivity" in client.get("/login").get_data(as_text=True)


def test_session_cookie_is_httponly_samesite_and_secure_when_configured(tmp_path: Path) -> None:
    env = make_env(tmp_path, secure_cookies=True)
    response = env.client().get("/login")
    header = response.headers["Set-Cookie"]
    assert "HttpOnly" in header and "SameSite=Lax" in header and "Secure" in header
    env.store.close()


def test_pages_send_security_headers(env: WebEnv) -> None:
    client = env.login("ada")
    for path in ("/status", "/login", "/api/v1/health"):
        headers = client.get(path).headers
        assert "default-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
    assert client.get("/status").headers["Cache-Control"] == "no-store"


def test_roles_limit_what_each_user_may_do(env: WebEnv) -> None:
    conv = seed(env.store)
    msg = env.store.outbox.recent(limit=1)[0].id
    viewer, staff, admin = env.login("vic"), env.login("sam"), env.login("ada")
    assert viewer.get(f"/inbox/{conv}").status_code == 200
    assert viewer.post(f"/inbox/{conv}/reply", data={"text": "x", "csrf_token": page_csrf(viewer)}).status_code == 403
    assert viewer.get("/export/outbox.csv").status_code == 403
    assert staff.post(f"/outbox/{msg}/cancel", data={"csrf_token": page_csrf(staff)}).status_code == 403
    assert staff.get("/audit").status_code == 403
    assert admin.post(f"/outbox/{msg}/cancel", data={"csrf_token": page_csrf(admin)}).status_code == 302
    assert env.store.outbox.get(msg).state.value == "cancelled"


@pytest.mark.parametrize("target", ["//evil.example/x", "/\\evil.example/x", "/\t/evil.example/x",
                                    "/\n/evil.example/x", "/\r\n/evil.example/x", "https://evil.example/x"])
def test_login_never_redirects_to_another_site(env: WebEnv, target: str) -> None:
    client = env.client()
    page = client.get("/login")
    response = client.post("/login", data={"username": "ada", "password": PASSWORD, "next": target,
                                           "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.status_code == 302
    assert response.headers["Location"] == "/status"


def test_login_keeps_a_next_path_on_this_site(env: WebEnv) -> None:
    client = env.client()
    page = client.get("/login")
    response = client.post("/login", data={"username": "ada", "password": PASSWORD, "next": "/outbox?state=failed",
                                           "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert response.headers["Location"] == "/outbox?state=failed"


def test_logging_in_as_someone_else_ends_the_previous_users_session(env: WebEnv) -> None:
    client = env.login("ada")
    adas_cookie = cookie_value(client)
    relogin = client.post("/login", data={"username": "sam", "password": PASSWORD,
                                          "csrf_token": page_csrf(client)})
    assert relogin.status_code == 302
    assert client.get("/audit").status_code == 403  # the browser is sam's now
    replay = env.client()
    replay.set_cookie("smsgate_session", adas_cookie or "")
    assert replay.get("/audit").status_code == 302
    assert ("web:ada", "logout") in {(e["actor"], e["action"]) for e in env.store.audit.entries(limit=50)}


def test_privileged_actions_write_the_audit_log(env: WebEnv) -> None:
    conv = seed(env.store)
    env.store.conversations.update(conv, actor="test", likely_opt_out=1)
    token, _ = env.store.accounts.create_token("crm", "send", actor="cli")
    env.store.accounts.revoke_token(token.id, actor="cli")
    login(env.client(), "ada", "wrong password!")
    admin = env.login("ada")
    csrf = page_csrf(admin)
    admin.post(f"/inbox/{conv}/reply", data={"text": "see you", "csrf_token": csrf})
    sent = env.store.outbox.recent(limit=1)[0].id
    admin.post(f"/outbox/{sent}/cancel", data={"csrf_token": csrf})
    admin.get("/export/outbox.csv")
    admin.post(f"/inbox/{conv}/opt-out", data={"decision": "confirm", "csrf_token": csrf})
    admin.post("/logout", data={"csrf_token": csrf})
    entries = {(e["actor"], e["action"]) for e in env.store.audit.entries(limit=500)}
    for expected in [("test", "user.add"), ("cli", "token.create"), ("cli", "token.revoke"),
                     ("web:ada", "login.failed"), ("ada", "login"), ("web:ada", "message.queued"),
                     ("web:ada", "message.cancelled"), ("web:ada", "export"), ("web:ada", "consent.opt_out"),
                     ("web:ada", "logout")]:
        assert expected in entries, expected
    assert "audit" in admin.get("/audit").get_data(as_text=True).lower()
    consent = env.store.consent.history(PATIENT)[-1]
    assert (consent["event"], consent["source"], consent["actor"]) == ("opt_out", "web", "web:ada")
