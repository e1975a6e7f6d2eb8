"""smsgate.web: the staff pages and the JSON API (HTTP only; webhooks are library code in `smsgate.webhooks`).

`create_app(config)` builds the Flask app; `serve(app, host, port)` runs it with waitress. Request helpers
are in `context.py`, which the blueprints (`auth`, `pages`, `api`) import; `app.py` only assembles them.

May import: the libraries (`queue`, `keywords`, `config`, `numbers`, `spreadsheet`, `at_commands.pdu` for
cost previews) and `status`. Never `modemd`, `gateway`, `cli` or the simulator."""

from .app import create_app

__all__ = ["create_app"]
