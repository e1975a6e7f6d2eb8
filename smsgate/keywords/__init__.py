"""smsgate.keywords: the rules engine (compliance keywords, custom keywords, after-hours, routing,
expected answers) and the outbound guard rails (quiet hours, frequency caps).

The daemon builds `RulesEngine(config)` once and calls `engine.process(store, inbound)` inside the
transaction that stored each inbound message; its drain loop binds `make_gate(config)` to its store and
passes it to `store.outbox.claim(..., gate=...)`.

May import: `queue`, `config`, `numbers`, `spreadsheet`, `webhook_events`. Never the top layer (cli, web,
modemd, gateway, webhooks, status) or the simulator."""

from smsgate.templates import TemplateError, render

from .answers import WordMapError, match_answer, parse_expect, parse_word_map
from .compliance import Intent, Vocabulary
from .engine import Outcome, PlannedReply, RulesEngine
from .guard import Guard, make_gate, recipient_zones
from .hours import BusinessHours, HoursError, QuietHours
from .normalize import canonical
from .reports import ConsentExplanation, Report, build_report, consent_csv, explain_consent
from .rules import Rule, RuleError, build_rule, parse_menu

__all__ = [
    "BusinessHours",
    "ConsentExplanation",
    "Guard",
    "HoursError",
    "Intent",
    "Outcome",
    "PlannedReply",
    "QuietHours",
    "Report",
    "Rule",
    "RuleError",
    "RulesEngine",
    "TemplateError",
    "Vocabulary",
    "WordMapError",
    "build_report",
    "build_rule",
    "canonical",
    "consent_csv",
    "explain_consent",
    "make_gate",
    "match_answer",
    "parse_expect",
    "parse_menu",
    "parse_word_map",
    "recipient_zones",
    "render",
]
