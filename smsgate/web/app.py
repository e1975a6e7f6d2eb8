"""The Flask application factory: configuration in, app out, no module-level state.

Each request opens its own `Store` (`context.get_store`, closed at teardown): the database file is the
only thing the web app shares with the daemon and the CLI. This module only builds the app; what request
handlers use lives in `context.py`, so the blueprints never import this module back.
"""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta
from pathlib import Path

from flask import Flask, render_template, request
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from smsgate.config import Config, ConfigError
from smsgate.queue import Store

from . import api, auth, contacts, context, lists_api, lists_pages, pages, snapshot
from .context import StoreFactory, json_error, wants_json

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def default_store_factory(config: Config) -> Store:
    return Store.for_config(config, migrate=False)


def create_app(config: Config, *, store_factory: StoreFactory | None = None) -> Flask:
    """Build the web app for `config`. `store_factory` opens one `Store` per request (tests may pass theirs)."""
    app = Flask(__name__)
    # Migrate once at start-up, so requests can open the database without checking migrations.
    Store.for_config(config).close()
    app.config.update(
        SECRET_KEY=_secret_key(config),
        SESSION_COOKIE_NAME="smsgate_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.web.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=config.web.idle_logout_minutes),
        MAX_CONTENT_LENGTH=256 * 1024,
        JSON_SORT_KEYS=False,
    )
    context.init_app(app, config, store_factory or default_store_factory)
    app.jinja_env.autoescape = True
    snapshot.init_app(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(lists_api.bp)
    app.register_blueprint(lists_pages.bp)
    app.register_blueprint(contacts.bp)
    app.before_request(contacts.allow_large_upload)
    app.before_request(auth.load_identity)
    app.before_request(auth.check_csrf)
    app.after_request(_security_headers)
    app.register_error_handler(HTTPException, _http_error)
    pages.register_filters(app)
    return app


def _secret_key(config: Config) -> bytes:
    """The cookie-signing key: from `web.secret_key_file` (created on first use), else random per process.

    Sessions themselves live in the database, so a random key only means people log in again after a
    restart.
    """
    name = config.web.secret_key_file
    if not name:
        return secrets.token_bytes(32)
    path = Path(name).expanduser()
    if not path.is_absolute() and config.path is not None:
        path = config.path.parent / path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        log.info("created the web secret key file %s", path)
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        raise ConfigError(f"{path} (web.secret_key_file) holds fewer than 32 characters; put a long random key")
    return key.encode()


def _security_headers(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.path.startswith("/static/"):
        # Pages and API answers carry phone numbers and message text: keep them out of caches.
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _http_error(exc: HTTPException) -> Response:
    if wants_json():
        return json_error(exc.code or 500, (exc.name or "error").lower().replace(" ", "_"),
                          exc.description or exc.name or "error")
    body = render_template("error.html", code=exc.code, name=exc.name, description=exc.description)
    return Response(body, status=exc.code or 500, mimetype="text/html")
