"""What a request handler needs from the app it runs in: the configuration, this request's `Store`, and
the one way an API error becomes a response.

Blueprints import these from here, never from `app.py`, so `app.py` can import the blueprints without a
cycle (flaskr keeps `get_db` in `db.py` for the same reason).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from flask import Flask, abort, current_app, g, jsonify, request
from werkzeug.routing import IntegerConverter, Map
from werkzeug.wrappers import Response

from smsgate.config import Config
from smsgate.queue import Store

__all__ = [
    "ApiError",
    "RowId",
    "StoreFactory",
    "api_error_response",
    "get_store",
    "init_app",
    "int_arg",
    "json_error",
    "same_site_path",
    "smsgate_config",
    "wants_json",
]

StoreFactory = Callable[[Config], Store]


class ApiError(Exception):
    """An answer to an API request that did not succeed: raise it anywhere in a request, and the one handler
    (`api_error_response`) turns it into `{"error": ..., "message": ..., "field": ...}` with `status`.

    `error` is a stable code a client may branch on; `message` is a sentence a developer can act on;
    `field` names the request field at fault, when there is one.
    """

    def __init__(self, status: int, error: str, message: str, field: str | None = None, *,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.field = status, error, message, field
        self.headers = dict(headers or {})


class RowId(IntegerConverter):
    """`<id:name>` in a route: a database row id. A number larger than SQLite's INTEGER is no row, so it
    answers 404 like any other missing id instead of overflowing in the query (a 500). With `int_arg`
    below, the one place a number from a URL is read."""

    def __init__(self, url_map: Map) -> None:
        super().__init__(url_map, max=2**63 - 1)


def init_app(app: Flask, config: Config, store_factory: StoreFactory) -> None:
    app.extensions["smsgate"] = {"config": config, "store_factory": store_factory}
    app.url_map.converters["id"] = RowId
    app.teardown_appcontext(_close_store)
    app.register_error_handler(ApiError, api_error_response)


def smsgate_config() -> Config:
    return current_app.extensions["smsgate"]["config"]  # type: ignore[no-any-return]  # extensions is dict[str, Any]


def get_store() -> Store:
    """This request's `Store`, opened on first use and closed when the request ends."""
    if "store" not in g:
        g.store = current_app.extensions["smsgate"]["store_factory"](smsgate_config())
    return g.store  # type: ignore[no-any-return]  # flask.g is untyped


def _close_store(_exc: BaseException | None) -> None:
    store = g.pop("store", None)
    if store is not None:
        store.close()


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/metrics"


def same_site_path(target: str | None, default: str) -> str:
    """`target` when it is a path on this site, else `default`: where a form (`next=`, `back=`) may send the
    browser afterwards.

    Browsers drop tabs and newlines from a URL and read a backslash as a slash, so "/<tab>/evil.org" would
    leave the site; a CR or LF would also break the Location header (a 500 after the action was done).
    """
    if (target and target.startswith("/") and not target.startswith("//")
            and not any(c == "\\" or c.isspace() or not c.isprintable() for c in target)):
        return target
    return default


def int_arg(name: str, default: int, low: int, high: int) -> int:
    """The one reader of a whole-number query argument (`page`, `limit`, `offset`): absent or empty is
    `default`; anything else outside `low`..`high` is a 400 that names the argument (JSON on the API, the
    error page elsewhere), never a number too large for SQLite to bind (an OverflowError, a 500).

    Only ASCII digits count: `int()` also takes "١٢" and "1_000", and refuses a 5,000-digit string with a
    ValueError; neither should decide what a request means.
    """
    raw = request.args.get(name, "")
    if raw == "":
        return default
    if raw.isascii() and raw.isdigit() and len(raw) <= len(str(high)) and low <= int(raw) <= high:
        return int(raw)
    message = f"{name!r} must be a whole number from {low} to {high}"
    if wants_json():
        raise ApiError(400, "bad_request", message, name)
    abort(400, f"The query argument {message}.")


def json_error(status: int, error: str, message: str, field: str | None = None) -> Response:
    """The error body of the API (`Error` in openapi.json)."""
    body = {"error": error, "message": message}
    if field is not None:
        body["field"] = field
    response = jsonify(body)
    response.status_code = status
    return response


def api_error_response(exc: ApiError) -> Response:
    response = json_error(exc.status, exc.error, exc.message, exc.field)
    response.headers.update(exc.headers)
    return response


def bad_request(message: str, field: str | None = None) -> ApiError:
    """A 400 on the API naming the request field at fault."""
    return ApiError(400, "bad_request", message, field)


def page_args() -> tuple[int, int]:
    """`limit` and `offset` of an API list endpoint; a 400 names the one that is wrong."""
    return int_arg("limit", 50, 1, 500), int_arg("offset", 0, 0, 10**9)
