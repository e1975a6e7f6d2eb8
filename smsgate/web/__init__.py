"""smsgate.web: the staff pages, the JSON API and webhooks.

`create_app(config)` builds the Flask app; `serve(app, host, port)` runs it with waitress.
"""

from .app import create_app

__all__ = ["create_app"]
