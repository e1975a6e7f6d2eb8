"""smsgate.at_commands: how smsgate speaks to a GSM modem.

Line framing and classification, the `AtChannel` that keeps one command in flight with absolute deadlines,
typed `Modem` helpers, error classes an admin can act on, and the SMS PDU codec (TS 23.040/23.038).

May import: the standard library and pyserial. Nothing else of smsgate (not even config), so the codec
and the engine can be tested, and reused, on their own."""

from .channel import AtChannel
from .classify import Urc, classify, pending_for
from .errors import (
    AtTimeout,
    ChannelDesynced,
    CmeError,
    CmsError,
    CommandFailed,
    ErrorClass,
    ModemError,
    PortGone,
    SimLocked,
    classify_error,
)
from .modem import (
    CnmiSupport,
    Identity,
    MemoryUse,
    Modem,
    Operator,
    Registration,
    Signal,
    Smsc,
    StorageOptions,
    StoredPdu,
)
from .pdu import (
    Concat,
    CostPreview,
    Deliver,
    EncodeError,
    Flag,
    PduError,
    StatusReport,
    Submit,
    SubmitPdu,
    decode,
    encode_submit,
    preview,
)
from .reassembly import AssembledText, Fragment, Reassembler, assemble

__all__ = [
    "AssembledText", "AtChannel", "AtTimeout", "ChannelDesynced", "CmeError", "CmsError", "CnmiSupport",
    "CommandFailed", "Concat", "CostPreview", "Deliver", "EncodeError", "ErrorClass", "Flag", "Fragment",
    "Identity", "MemoryUse", "Modem", "ModemError", "Operator", "PduError", "PortGone", "Reassembler",
    "Registration", "Signal", "SimLocked", "Smsc", "StatusReport", "StorageOptions", "StoredPdu", "Submit",
    "SubmitPdu", "Urc", "assemble", "classify", "classify_error", "decode", "encode_submit", "pending_for",
    "preview",
]
