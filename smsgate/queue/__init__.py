"""smsgate.queue: the store that the daemon, CLI and web app share.

`Store.open(path)` (or `Store.for_config(config)`) is the one entry point. A `Store` is a `Db` (connection,
clock, transactions, status rows; `db.py`) with one repository per table group, each in its own module
and handed its collaborators by name: `store.outbox`, `store.inbox`, `store.reports`, `store.consent`,
`store.contacts`, `store.conversations`, `store.lists`, `store.segments`, `store.modems`, `store.keywords`,
`store.accounts`, `store.audit`, `store.alerts`, `store.webhooks`, `store.erasure`, `store.appointments`.
Read-only figures for pages and reports are in `views.py`. Every SQL statement of smsgate lives in this package.

May import: `smsgate.numbers`, `smsgate.names`, `smsgate.config` (types), `smsgate.at_commands.pdu`
(segmentation), `smsgate.at_commands.reassembly` (which kept fragment a new one goes with), the standard
library and sqlite-utils. Never the top layer (cli, web, modemd, gateway) or the rules engine.
"""

from .consent import Refusal
from .db import Db
from .errors import (
    ConsentRefused,
    DatabaseCorrupt,
    IdempotencyConflict,
    IllegalTransition,
    LeaseLost,
    MessageRejected,
    NotFound,
    OptedOut,
    StoreError,
)
from .inbox import inbound_key
from .outbox import ClaimGate, Defer, Refuse
from .records import (
    DEFAULT_POLICY,
    Claim,
    ConsentStatus,
    EnqueueResult,
    Inbound,
    Kind,
    Message,
    Part,
    PartState,
    Priority,
    SendPolicy,
    State,
)
from .store import Gate, Store

__all__ = [
    "DEFAULT_POLICY",
    "Claim",
    "ClaimGate",
    "ConsentRefused",
    "ConsentStatus",
    "DatabaseCorrupt",
    "Db",
    "Defer",
    "EnqueueResult",
    "Gate",
    "IdempotencyConflict",
    "IllegalTransition",
    "Inbound",
    "Kind",
    "LeaseLost",
    "Message",
    "MessageRejected",
    "NotFound",
    "OptedOut",
    "Part",
    "PartState",
    "Priority",
    "Refusal",
    "Refuse",
    "SendPolicy",
    "State",
    "Store",
    "StoreError",
    "inbound_key",
]
