"""Virtual GSM modems on real pseudo-terminals, a virtual network, and fault injection.

Independent of ``smsgate.at_commands`` on purpose: it is the yardstick for that code, so it has its own AT
parser and PDU code and may import nothing of smsgate but itself (the standard library only)."""

from .control import ControlError, ControlServer, SimulatorClient
from .core import (
    FaultHandle,
    HandsetHandle,
    ModemHandle,
    SimModemSpec,
    Simulator,
    SimulatorError,
    SpawnedSimulator,
    StoredSms,
    WaitTimeout,
)
from .modem import ModemCounters
from .network import BadOutcome, HandsetMessage, UnknownNumber
from .personality import PERSONALITIES, UnknownPersonality

__all__ = [
    "PERSONALITIES",
    "BadOutcome",
    "ControlError",
    "ControlServer",
    "FaultHandle",
    "HandsetHandle",
    "HandsetMessage",
    "ModemCounters",
    "ModemHandle",
    "SimModemSpec",
    "Simulator",
    "SimulatorClient",
    "SimulatorError",
    "SpawnedSimulator",
    "StoredSms",
    "UnknownNumber",
    "UnknownPersonality",
    "WaitTimeout",
]
