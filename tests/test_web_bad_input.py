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


@pytest.mark.parametrize("value", [str(2**63), str(2**64), "9" * 5000, "-1", "x", "1.5", "\u0661\u0662"])
def test_every_route_answers_a_page_limit_or_offset_out_of_range_with_400_naming_it(env: WebEnv,
                                                                                      value: str) -> None:
    modem = add_modem(env.store)
    receive(env.store, modem, PATIENT, "hello")
    client, auth = env.login("ada"), admin_token(env)
    readers = 0
    for method, url, _ in routes_with(env, "1"):
        if method != "GET" or url.startswith("/logout"):
            continue
        for name in PAGING:
            response = client.get(f"{url}?{name}={value}", headers=auth if url.startswith("/api/") else {})
            assert response.status_code < 500, (url, name, value)
            if response.status_code == 400:
                readers += 1
                text = response.get_data(as_text=True)
                assert repr(name) in text or f"&#39;{name}&#39;" in text, (url, name, text[:300])
                if url.startswith("/api/"):
                    assert response.json["field"] == name
    # /inbox and /outbox read `page`; /api/v1/messages and /api/v1/conversations read `limit` and `offset`.
    assert readers == 6, readers


def test_a_page_or_limit_in_range_still_works(env: WebEnv) -> None:
    client, auth = env.login("ada"), admin_token(env)
    assert client.get("/inbox?page=1000000").status_code == 200
    assert client.get("/outbox?page=").status_code == 200
    assert client.get("/api/v1/messages?limit=500&offset=1000000000", headers=auth).status_code == 200
