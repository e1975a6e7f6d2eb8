"""The records the SMS PDU codec hands out and takes in: decoded messages, their flags and data coding,
and the parts and cost previews of an encoded text.

They live apart from the codec so that code which only passes messages around (reassembly, storage, the
web API) reads their shape in one short file; `smsgate.at_commands.pdu` still exports every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

__all__ = [
    "Concat",
    "CostPreview",
    "DataCoding",
    "Deliver",
    "Encoding",
    "Flag",
    "InformationElement",
    "Outcome",
    "Segmentation",
    "StatusReport",
    "Submit",
    "SubmitPdu",
    "WaitingIndication",
]

Encoding = Literal["gsm7", "ucs2", "8bit"]
Outcome = Literal["delivered", "pending", "failed"]


@dataclass(frozen=True)
class Flag:
    """Something odd in a message that decoded anyway: `code` for programs, `message` for the admin."""

    code: str
    message: str
    octet: int | None = None


@dataclass(frozen=True)
class Concat:
    """Concatenation information element (TS 23.040 §9.2.3.24.1 / .8)."""

    ref: int
    ref_bits: Literal[8, 16]
    total: int
    seq: int


@dataclass(frozen=True)
class InformationElement:
    iei: int
    data: bytes


@dataclass(frozen=True)
class WaitingIndication:
    """Message waiting indication carried in DCS groups 1100-1110 (TS 23.038 §4)."""

    active: bool
    kind: Literal["voicemail", "fax", "email", "other"]
    store: bool


@dataclass(frozen=True)
class DataCoding:
    """TP-DCS read per TS 23.038 §4, all coding groups."""

    raw: int
    encoding: Encoding
    message_class: int | None
    compressed: bool = False
    auto_delete: bool = False
    waiting: WaitingIndication | None = None
    reserved: bool = False


@dataclass(frozen=True, kw_only=True)
class _Message:
    raw: str
    smsc: str | None
    number: str
    number_toa: int
    text: str
    encoding: Encoding
    timestamp: datetime | None
    concat: Concat | None
    message_class: int | None
    udh: tuple[InformationElement, ...]
    user_data: bytes
    pid: int | None
    dcs: DataCoding | None
    flags: tuple[Flag, ...]

    @property
    def flagged(self) -> bool:
        return bool(self.flags)

    @property
    def warnings(self) -> list[str]:
        return [f.message for f in self.flags]

    @property
    def flash(self) -> bool:
        return self.message_class == 0

    @property
    def ends_in_escape(self) -> bool:
        """The GSM-7 text ends in a lone escape, shown as a space (TS 23.038 §6.2.1.1). In a part of a long
        message it means the sender split an escape pair, and the next part holds its second half."""
        return any(f.code == "lone-escape" for f in self.flags)


@dataclass(frozen=True, kw_only=True)
class Deliver(_Message):
    """SMS-DELIVER: a message received from `number` (the originator); `timestamp` is TP-SCTS."""

    more_messages: bool
    status_report_indication: bool
    reply_path: bool


@dataclass(frozen=True, kw_only=True)
class Submit(_Message):
    """SMS-SUBMIT: a message to `number` (the recipient). `validity` is relative (timedelta), absolute
    (datetime) or None."""

    reference: int
    validity: timedelta | datetime | None
    status_report_requested: bool
    reject_duplicates: bool
    reply_path: bool


@dataclass(frozen=True, kw_only=True)
class StatusReport(_Message):
    """SMS-STATUS-REPORT for the message with TP-MR `reference`, sent to `number`.

    `timestamp` is when the SMSC took the message (TP-SCTS), `discharge` when the status was reached
    (TP-DT); `outcome` folds TP-ST into what a gateway acts on.
    """

    reference: int
    discharge: datetime | None
    status: int
    status_text: str
    outcome: Outcome


@dataclass(frozen=True)
class SubmitPdu:
    """One part ready for AT+CMGS: `hex` starts with the SMSC field, `tpdu_length` excludes it."""

    hex: str
    tpdu_length: int
    part: int
    parts: int
    text: str
    encoding: Encoding
    concat: Concat | None


@dataclass(frozen=True)
class CostPreview:
    parts: int
    encoding: Encoding
    units: int
    per_part_limit: int
    ucs2_forced_by: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Segmentation:
    encoding: Encoding
    chunks: list[str]
    units: int
    per_part_limit: int
