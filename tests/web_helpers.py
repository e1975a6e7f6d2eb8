"""Shared set-up for the web tests: a real database file, a real app, logged-in test clients."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from smsgate.config import Config, config_from_dict
from smsgate.queue import Store
from smsgate.queue.inbox import inbound_key

PASSWORD = "correct horse battery"
PATIENT = "+15555550101"
OTHER_PATIENT = "+15555550102"
HOSTILE_BODIES = ['<script>alert(1)</script>', "{{7*7}}", "$(id)", '=HYPERLINK("http://x")']


def make_config(tmp_path: Path, **web: Any) -> Config:
    raw: dict[str, Any] = {"database": str(tmp_path / "smsgate.db"),
                           "clinic": {"region": "US", "timezone": "America/New_York"},
                           # Tests change the database between requests: no status cache unless asked.
                           "web": {"status_cache_seconds": 0.0, **web}}
    return config_from_dict(raw, tmp_path / "smsgate.toml")


@dataclass
class WebEnv:
    config: Config
    app: Flask
    store: Store

    def client(self) -> FlaskClient:
        return self.app.test_client()

    def login(self, username: str, password: str = PASSWORD) -> FlaskClient:
        client = self.client()
        response = login(client, username, password)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client: FlaskClient, username: str, password: str) -> Any:
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/login", data={"username": username, "password": password, "csrf_token": token})


def page_csrf(client: FlaskClient, path: str = "/status") -> str:
    return csrf_from(client.get(path).get_data(as_text=True))


def add_modem(store: Store, name: str = "front-desk", **fields: Any) -> int:
    defaults = {"state": "ready", "signal_dbm": -71, "signal_bars": 4, "registration": "home",
                "operator": "Simnet", "msisdn": "+15555550100", "storage_used": 3, "storage_total": 30}
    return store.modems.upsert(name, **{**defaults, **fields})


def receive(store: Store, modem_id: int | None, sender: str, body: str) -> Any:
    inbound, _ = store.inbox.store(modem_id=modem_id, sender=sender, body=body,
                                   dedupe_key=inbound_key(f"modem{modem_id}", f"{sender}{body}"))
    return inbound


def make_env(tmp_path: Path, **web: Any) -> WebEnv:
    from smsgate.web import create_app

    config = make_config(tmp_path, **web)
    app = create_app(config)
    store = Store.open(config.database_path, default_region="US")
    return WebEnv(config, app, store)


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
