"""smsgate: an on-premise SMS server for small clinics.

The package is in layers; each package's docstring says what it holds and what it may import.
Libraries: `numbers`, `config`, `retry`, `spreadsheet` (leaves), `at_commands`, `queue`, `keywords`,
`webhook_events`. Top layer: `gateway` (the one composition root, what `smsgate serve` runs), `cli`,
`modemd`, `web`, `webhooks`, `status`, `simulated`, `testing`. `simulator` stands apart. The arrows are
checked by tests/test_layering.py; docs/architecture.md draws them.
"""

__version__ = "0.1.0"
