"""smsgate.web: the staff pages and the JSON API (HTTP only; webhooks are library code in `smsgate.webhooks`).

`create_app(config)` builds the Flask app; `serve(app, host, port)` runs it with waitress.
"""

from .app import create_app

__all__ = ["create_app"]
