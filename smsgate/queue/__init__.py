"""smsgate.queue: the SQLite store that the daemon, CLI and web app share.

`Store.open(path)` is the one entry point; every SQL statement of smsgate lives in this package, so
another backend (PostgreSQL for several boxes sharing one queue) can be added behind the same methods.
"""

from .errors import DatabaseCorrupt, IllegalTransition, LeaseLost, MessageRejected, NotFound, StoreError
from .inbound import inbound_key
from .outbox import Defer, Gate, Refuse
from .records import Claim, ConsentStatus, EnqueueResult, Inbound, Kind, Message, Part, PartState, Priority, State
from .store import Store

__all__ = [
    "Claim",
    "ConsentStatus",
    "DatabaseCorrupt",
    "Defer",
    "EnqueueResult",
    "Gate",
    "IllegalTransition",
    "Inbound",
    "Kind",
    "LeaseLost",
    "Message",
    "MessageRejected",
    "NotFound",
    "Part",
    "PartState",
    "Priority",
    "Refuse",
    "State",
    "Store",
    "StoreError",
    "inbound_key",
]
