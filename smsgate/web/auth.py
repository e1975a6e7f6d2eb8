"""Who is asking: staff sessions (login, logout, idle logoff, throttling), API tokens, roles, CSRF.

A session is a random id whose hash lives in the database (`web_sessions`); the signed cookie only
carries that id and the CSRF token. Logging in issues a new id and a new CSRF token, so a session id
planted before login (session fixation) is worthless, and logging out or disabling a user ends the
session server-side at once.
"""

from __future__ import annotations

import functools
import hmac
import logging
import secrets
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Blueprint, abort, flash, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from smsgate.queue.accounts import TOKEN_PREFIX

from .context import ApiError, get_store, same_site_path, smsgate_config, wants_json

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

ROLE_RANK = {"viewer": 0, "staff": 1, "admin": 2}
# Query parameters that carry credentials in other gateways; refused outright so a token never lands
# in access logs, browser history or a Referer header.
CREDENTIAL_PARAMS = {"access_token", "token", "api_key", "apikey", "api_token", "key", "password", "bearer",
                     "authorization", "auth"}
PUBLIC_ENDPOINTS = {"auth.login", "static", "api.health", "api.openapi"}
# What each API permission accepts: `read_own` is reading a message, which a send token may do for the
# messages it queued (the view checks the owner).
TOKEN_SCOPES_FOR = {"read": ("read", "admin"), "read_own": ("read", "send", "admin"), "send": ("send", "admin"),
                    "admin": ("admin",)}
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

F = TypeVar("F", bound=Callable[..., Any])


def remote_addr() -> str | None:
    return request.remote_addr


def actor() -> str:
    """The name written to the audit log and `created_by`: `web:<user>` or `token:<id>:<name>`."""
    if g.get("user") is not None:
        return f"web:{g.user.username}"
    if g.get("token") is not None:
        return f"token:{g.token.id}:{g.token.name}"
    return "anonymous"


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def load_identity() -> None:
    """Runs before every request: refuse credentials in the URL, then find the session or token."""
    g.user = None
    g.token = None
    for name, value in request.args.items(multi=True):
        if name.lower() in CREDENTIAL_PARAMS or value.startswith(TOKEN_PREFIX):
            raise ApiError(400, "credentials_in_url",
                           "Credentials are never accepted in the URL (they end up in logs). Send the "
                           "token in the header `Authorization: Bearer <token>` and remove it from the "
                           "query string.")
    if request.endpoint == "static":
        return
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise ApiError(401, "bad_authorization", "Use `Authorization: Bearer <token>`.")
        token = get_store().accounts.token_for_secret(secret.strip())
        if token is None:
            raise ApiError(401, "invalid_token", "The token is unknown or was revoked; ask an admin for "
                                                 "a new one (`smsgate tokens create`).")
        g.token = token
        return
    sid = session.get("sid")
    if sid:
        cfg = smsgate_config().web
        web_session = get_store().accounts.get_session(sid, idle_seconds=cfg.idle_logout_minutes * 60)
        if web_session is None:
            session.pop("sid", None)
            g.session_expired = True
        else:
            g.user = web_session.user


def check_csrf() -> Response | None:
    """Runs before every request: an unsafe request made with the cookie must carry this session's token.

    Requests authenticated by a bearer token are exempt: a browser never adds that header by itself, so
    another site cannot forge one.
    """
    if request.method not in UNSAFE_METHODS or g.get("token") is not None:
        return None
    if g.get("user") is None and request.endpoint != "auth.login":
        return None  # nothing to forge: the view answers 401 or sends the visitor to the login page
    origin = request.headers.get("Origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.host:
        return _csrf_refused("the request came from another site")
    expected = session.get("csrf")
    given = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
    if not expected or not hmac.compare_digest(str(expected), given):
        return _csrf_refused("the form's security token is missing or out of date")
    return None


def _csrf_refused(why: str) -> Response:
    log.warning("refused %s %s: %s", request.method, request.path, why)
    if wants_json():
        raise ApiError(403, "csrf", f"Refused: {why}. API clients authenticate with "
                                    "`Authorization: Bearer <token>`.")
    return Response(render_template("error.html", code=403, name="Forbidden",
                                    description=f"Refused: {why}. Reload the page and try again."),
                    status=403, mimetype="text/html")


def login_required(role: str = "viewer") -> Callable[[F], F]:
    """Pages: a logged-in user of at least `role`; otherwise the login page (or 403 for a lower role)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            user = g.get("user")
            if user is None:
                if g.get("session_expired"):
                    flash("You were logged out after a period of inactivity.", "info")
                return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
            if ROLE_RANK[user.role] < ROLE_RANK[role]:
                abort(403, f"This needs the {role} role; you are {user.role}.")
            return view(*args, **kwargs)

        return wrapped  # type: ignore[return-value]  # functools.wraps keeps the view's signature, F

    return decorator


def _safe_next(target: str | None) -> str:
    return same_site_path(target, url_for("pages.status"))


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    if request.method == "GET":
        if g.get("user") is not None:
            return redirect(_safe_next(request.args.get("next")))
        csrf_token()
        return render_template("login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()[:64]
    password = request.form.get("password", "")
    cfg = smsgate_config().web
    store = get_store()
    addr = remote_addr()
    by_user, by_addr = store.accounts.failed_logins(username=username, remote_addr=addr, seconds=60)
    limit = cfg.login_attempts_per_minute
    if by_user >= limit or by_addr >= limit * 3:
        with store.transaction():
            store.accounts.record_login_attempt(username, addr, ok=False)
            store.audit.record(f"web:{username}", "login.throttled", "user", None, {"remote_addr": addr})
        log.warning("login throttled for user %r from %s", username, addr)
        response = Response(render_template("login.html", next=request.form.get("next", ""),
                                            error="Too many failed attempts. Wait a minute and try again."),
                            status=429, mimetype="text/html")
        response.headers["Retry-After"] = "60"
        return response
    user = store.accounts.check_password(username, password)
    if user is None:
        with store.transaction():
            store.accounts.record_login_attempt(username, addr, ok=False)
            store.audit.record(f"web:{username}", "login.failed", "user", None, {"remote_addr": addr})
        return Response(render_template("login.html", next=request.form.get("next", ""),
                                        error="Wrong user name or password."), status=401, mimetype="text/html")
    store.accounts.record_login_attempt(username, addr, ok=True)
    previous = session.get("sid")
    if previous:
        # Logging in over a live session (another user at the same browser) ends that one on the server.
        store.accounts.end_session(previous, actor=actor())
    sid = store.accounts.start_session(user, addr)
    # A new session: nothing from before the login (including its CSRF token) survives.
    session.clear()
    session["sid"] = sid
    session["csrf"] = secrets.token_urlsafe(32)
    g.user = user
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout() -> Any:
    sid = session.get("sid")
    if sid:
        get_store().accounts.end_session(sid, actor=actor())
    session.clear()
    flash("You are logged out.", "info")
    return redirect(url_for("auth.login"))


def api_auth(scope: str) -> Callable[[F], F]:
    """API: a token with `scope` (admin covers all), or a logged-in user (viewer reads, staff sends)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            token, user = g.get("token"), g.get("user")
            if token is not None:
                if token.scope not in TOKEN_SCOPES_FOR[scope]:
                    raise ApiError(403, "scope", f"This token has scope {token.scope!r}; this call needs "
                                                 f"{' or '.join(TOKEN_SCOPES_FOR[scope])}.")
                return view(*args, **kwargs)
            if user is not None:
                needed = {"read": "viewer", "read_own": "viewer", "send": "staff", "admin": "admin"}[scope]
                if ROLE_RANK[user.role] < ROLE_RANK[needed]:
                    raise ApiError(403, "role", f"This needs the {needed} role; you are {user.role}.")
                return view(*args, **kwargs)
            raise ApiError(401, "unauthorized", "Send `Authorization: Bearer <token>` "
                                                "(create one with `smsgate tokens create`).",
                           headers={"WWW-Authenticate": 'Bearer realm="smsgate"'})

        return wrapped  # type: ignore[return-value]  # functools.wraps keeps the view's signature, F

    return decorator
