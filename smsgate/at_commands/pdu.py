"""SMS PDU codec (3GPP TS 23.040 / TS 23.038): decode SMS-DELIVER, SMS-SUBMIT and SMS-STATUS-REPORT,
encode SMS-SUBMIT with segmentation, and preview what a text will cost.

Decoding is strict about structure and tolerant about content: a PDU whose lengths do not add up raises
`PduError` naming the octet, because guessing would produce a wrong message; a field whose content is odd
(a timestamp with a non-BCD digit, an unknown escape, a reserved DCS) decodes with a `Flag` on the
message, because the rest of the message is still right and must not be lost.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Literal

from smsgate.at_commands import gsm7
from smsgate.at_commands.pdu_errors import EncodeError, PduError

__all__ = [
    "Concat",
    "CostPreview",
    "DataCoding",
    "Deliver",
    "EncodeError",
    "Encoding",
    "Flag",
    "InformationElement",
    "PduError",
    "Segmentation",
    "StatusReport",
    "Submit",
    "SubmitPdu",
    "WaitingIndication",
    "decode",
    "encode_relative_validity",
    "encode_submit",
    "parse_dcs",
    "preview",
    "relative_validity",
    "segment",
    "status_meaning",
]

Encoding = Literal["gsm7", "ucs2", "8bit"]
Outcome = Literal["delivered", "pending", "failed"]

IEI_CONCAT_8 = 0x00
IEI_CONCAT_16 = 0x08

SINGLE_GSM7 = 160
SINGLE_UCS2 = 70
MAX_UD_OCTETS = 140


# --------------------------------------------------------------------------------------------- records


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


# --------------------------------------------------------------------------------------------- reading


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def octet(self, what: str) -> int:
        if self.pos >= len(self.data):
            raise PduError(f"PDU ends at octet {self.pos}, where {what} was expected", octet=self.pos)
        value = self.data[self.pos]
        self.pos += 1
        return value

    def take(self, n: int, what: str) -> bytes:
        if n > self.remaining:
            raise PduError(
                f"PDU truncated: {what} needs {n} octet(s) at octet {self.pos}, only {self.remaining} remain",
                octet=self.pos,
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk


def _parse_hex(pdu_hex: str) -> bytes:
    text = "".join(pdu_hex.split())
    for index, ch in enumerate(text):
        if ch not in "0123456789abcdefABCDEF":
            raise PduError(f"non-hex character {ch!r} at position {index} (octet {index // 2})", octet=index // 2)
    if len(text) % 2:
        raise PduError(f"odd number of hex digits ({len(text)}): the last octet is incomplete", octet=len(text) // 2)
    if not text:
        raise PduError("empty PDU", octet=0)
    return bytes.fromhex(text)


_BCD_ADDRESS_DIGITS = "0123456789*#abc"


def _bcd_digits(body: bytes, count: int, what: str, start: int, flags: list[Flag]) -> str:
    digits: list[str] = []
    for i in range(count):
        octet = body[i // 2]
        nibble = octet & 0x0F if i % 2 == 0 else octet >> 4
        if nibble == 0x0F:
            flags.append(Flag("address-filler", f"{what}: filler digit F inside the number at octet {start + i // 2}",
                              start + i // 2))
            continue
        digits.append(_BCD_ADDRESS_DIGITS[nibble])
    return "".join(digits)


def _read_address(r: _Reader, what: str, flags: list[Flag]) -> tuple[str, int]:
    """TP-OA / TP-DA / TP-RA (TS 23.040 §9.1.2.5): the length counts semi-octets, then the type octet."""
    start = r.pos
    length = r.octet(f"{what} length")
    toa = r.octet(f"{what} type of address")
    if length > 20:
        raise PduError(f"{what} at octet {start} claims {length} digits; the maximum is 20", octet=start)
    body = r.take((length + 1) // 2, what)
    ton = (toa >> 4) & 0x07
    if ton == 0b101:
        septet_count = length * 4 // 7
        try:
            text, _unknown = gsm7.decode_septets(gsm7.unpack_septets(body, septet_count))
        except gsm7.Gsm7DecodeError as e:
            raise PduError(f"{what} at octet {start}: alphanumeric address ends in a lone escape",
                           octet=start) from e
        return text, toa
    digits = _bcd_digits(body, length, what, start + 2, flags)
    if ton == 0b001 and digits:
        digits = "+" + digits
    return digits, toa


def _read_smsc(r: _Reader, flags: list[Flag]) -> str | None:
    """The SMSC field of AT+CMGR output (TS 24.011 RP address): the length counts octets incl. the type."""
    length = r.octet("SMSC length")
    if length == 0:
        return None
    if length > 11:
        raise PduError(f"SMSC field at octet 0 claims {length} octets; the maximum is 11", octet=0)
    toa = r.octet("SMSC type of address")
    body = r.take(length - 1, "SMSC number")
    count = 2 * len(body)
    if body and body[-1] >> 4 == 0x0F:
        count -= 1
    digits = _bcd_digits(body, count, "SMSC", 2, flags)
    if not digits:
        return None
    return "+" + digits if (toa >> 4) & 0x07 == 0b001 else digits


def _read_timestamp(r: _Reader, what: str, flags: list[Flag]) -> datetime | None:
    """TP-SCTS / TP-DT / absolute TP-VP (TS 23.040 §9.2.3.11): swapped BCD with a quarter-hour offset.

    A non-BCD digit or an impossible date is flagged and gives None: the rest of the message is fine.
    """
    start = r.pos
    raw = r.take(7, what)
    values = []
    for octet in raw[:6]:
        lo, hi = octet & 0x0F, octet >> 4
        if lo > 9 or hi > 9:
            values = None
            break
        values.append(lo * 10 + hi)
    tz_lo, tz_hi = raw[6] & 0x0F, raw[6] >> 4
    if values is None or tz_hi > 9:
        flags.append(Flag("invalid-timestamp", f"{what} at octet {start} ({raw.hex().upper()}) is not valid BCD",
                          start))
        return None
    quarters = (tz_lo & 0x07) * 10 + tz_hi
    offset = timedelta(minutes=15 * quarters)
    if tz_lo & 0x08:
        offset = -offset
    yy, month, day, hour, minute, second = values
    # GSM SMS did not exist before 1992, so 90-99 are the 1990s.
    year = 1900 + yy if yy >= 90 else 2000 + yy
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=timezone(offset))
    except ValueError as e:
        flags.append(Flag("invalid-timestamp", f"{what} at octet {start} ({raw.hex().upper()}): {e}", start))
        return None


def parse_dcs(dcs: int) -> DataCoding:
    """TP-DCS per TS 23.038 §4; reserved codings are read as GSM-7, as the specification asks."""
    group = dcs >> 4
    if group <= 0x7:
        alphabet = (dcs >> 2) & 0x03
        encoding: Encoding = ("gsm7", "8bit", "ucs2", "gsm7")[alphabet]
        return DataCoding(
            raw=dcs,
            encoding=encoding,
            message_class=dcs & 0x03 if dcs & 0x10 else None,
            compressed=bool(dcs & 0x20),
            auto_delete=bool(dcs & 0x40),
            reserved=alphabet == 0x03,
        )
    if group <= 0xB:
        return DataCoding(raw=dcs, encoding="gsm7", message_class=None, reserved=True)
    if group <= 0xE:
        kinds: tuple[Literal["voicemail", "fax", "email", "other"], ...] = ("voicemail", "fax", "email", "other")
        waiting = WaitingIndication(active=bool(dcs & 0x08), kind=kinds[dcs & 0x03], store=group != 0xC)
        return DataCoding(raw=dcs, encoding="ucs2" if group == 0xE else "gsm7", message_class=None,
                          waiting=waiting)
    return DataCoding(raw=dcs, encoding="8bit" if dcs & 0x04 else "gsm7", message_class=dcs & 0x03)


@dataclass
class _UserData:
    text: str = ""
    udh: tuple[InformationElement, ...] = ()
    concat: Concat | None = None
    raw: bytes = b""


def _read_user_data(r: _Reader, udhi: bool, coding: DataCoding, lenient: bool, flags: list[Flag]) -> _UserData:
    udl_at = r.pos
    udl = r.octet("TP-UDL")
    septets = coding.encoding == "gsm7" and not coding.compressed
    needed = (udl * 7 + 7) // 8 if septets else udl
    if needed > r.remaining:
        size = f"{udl} septets ({needed} octets)" if septets else f"{udl} octets"
        message = f"TP-UDL at octet {udl_at} says {size} but only {r.remaining} octets follow"
        if not lenient:
            raise PduError(message, octet=udl_at)
        flags.append(Flag("ud-truncated", message + "; decoded what is there", udl_at))
        needed = r.remaining
        if septets:
            udl = needed * 8 // 7
    ud_at = r.pos
    ud = r.take(needed, "TP-UD")
    if r.remaining:
        flags.append(Flag("trailing-octets", f"{r.remaining} octet(s) after the user data at octet {r.pos}", r.pos))
    out = _UserData(raw=ud)
    header_len = 0
    if udhi:
        if not ud:
            raise PduError(f"TP-UDHI is set but the user data at octet {ud_at} is empty", octet=ud_at)
        udhl = ud[0]
        if 1 + udhl > len(ud):
            raise PduError(f"TP-UDHL at octet {ud_at} says {udhl} header octets but the user data holds only "
                           f"{len(ud) - 1}", octet=ud_at)
        header_len = 1 + udhl
        out.udh = _read_elements(ud[1:header_len], ud_at + 1)
        out.concat = _concat_of(out.udh, ud_at, flags)
    if coding.compressed:
        flags.append(Flag("compressed", f"user data is compressed (DCS 0x{coding.raw:02X}, TS 23.042), which "
                          "smsgate does not decompress: the text is empty, the octets are in user_data", ud_at))
        return out
    if septets:
        header_septets = (header_len * 8 + 6) // 7
        if header_septets > udl:
            raise PduError(f"TP-UDHL at octet {ud_at} ({header_len} octets) is longer than TP-UDL ({udl} septets)",
                           octet=ud_at)
        codes = gsm7.unpack_septets(ud, udl - header_septets, header_septets * 7)
        try:
            out.text, unknown = gsm7.decode_septets(codes)
        except gsm7.Gsm7DecodeError as e:
            at = ud_at + (header_septets + e.septet_index) * 7 // 8
            raise PduError(f"GSM-7 text ends in a lone escape (0x1B) at octet {at}: the character after it is "
                           "missing", octet=at) from e
        for code in unknown:
            flags.append(Flag("unknown-escape", f"GSM-7 escape 0x1B 0x{code:02X} is not in the extension table; "
                              "shown as its base character", ud_at))
        return out
    body = ud[header_len:]
    if coding.encoding == "8bit":
        out.text = body.decode("latin-1")
        return out
    if len(body) % 2:
        flags.append(Flag("ucs2-odd-length", f"UCS-2 text at octet {ud_at + header_len} has an odd number of "
                          "octets; the last one is ignored", ud_at + header_len))
        body = body[:-1]
    text = body.decode("utf-16-be", errors="surrogatepass")
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in text):
        flags.append(Flag("ucs2-lone-surrogate", "UCS-2 text holds half of a surrogate pair (the sender split a "
                          "character across parts); shown as U+FFFD", ud_at + header_len))
        text = "".join("\ufffd" if 0xD800 <= ord(ch) <= 0xDFFF else ch for ch in text)
    out.text = text
    return out


def _read_elements(header: bytes, at: int) -> tuple[InformationElement, ...]:
    elements = []
    i = 0
    while i < len(header):
        if i + 2 > len(header):
            raise PduError(f"user data header element at octet {at + i} is cut off", octet=at + i)
        iei, length = header[i], header[i + 1]
        if i + 2 + length > len(header):
            raise PduError(f"user data header element 0x{iei:02X} at octet {at + i} says {length} octets, "
                           f"which runs past the header", octet=at + i)
        elements.append(InformationElement(iei, bytes(header[i + 2 : i + 2 + length])))
        i += 2 + length
    return tuple(elements)


def _concat_of(elements: tuple[InformationElement, ...], at: int, flags: list[Flag]) -> Concat | None:
    found: Concat | None = None
    for ie in elements:
        if ie.iei == IEI_CONCAT_8 and len(ie.data) == 3:
            candidate = Concat(ie.data[0], 8, ie.data[1], ie.data[2])
        elif ie.iei == IEI_CONCAT_16 and len(ie.data) == 4:
            candidate = Concat((ie.data[0] << 8) | ie.data[1], 16, ie.data[2], ie.data[3])
        elif ie.iei in (IEI_CONCAT_8, IEI_CONCAT_16):
            flags.append(Flag("invalid-concat", f"concatenation element 0x{ie.iei:02X} has {len(ie.data)} "
                              "octets; ignored", at))
            continue
        else:
            continue
        if candidate.total == 0 or not 1 <= candidate.seq <= candidate.total:
            # TS 23.040 §9.2.3.24.1: such an element is to be ignored.
            flags.append(Flag("invalid-concat", f"concatenation part {candidate.seq} of {candidate.total} is "
                              "impossible; treated as a single message", at))
            continue
        if found is not None:
            flags.append(Flag("duplicate-concat", "more than one concatenation element; the first is used", at))
            continue
        found = candidate
    return found


# --------------------------------------------------------------------------------------------- decode

_STATUS_TEXT = {
    0x00: "received by the recipient",
    0x01: "forwarded to the recipient, delivery not confirmed",
    0x02: "replaced by the service centre",
    0x20: "congestion; the service centre is still trying",
    0x21: "recipient busy; the service centre is still trying",
    0x22: "no response from the recipient; the service centre is still trying",
    0x23: "service rejected; the service centre is still trying",
    0x24: "quality of service not available; the service centre is still trying",
    0x25: "error in the recipient's handset; the service centre is still trying",
    0x40: "remote procedure error",
    0x41: "incompatible destination",
    0x42: "connection rejected by the recipient",
    0x43: "not obtainable",
    0x44: "quality of service not available",
    0x45: "no interworking available",
    0x46: "validity period expired",
    0x47: "deleted by the sender",
    0x48: "deleted by the service centre administration",
    0x49: "message does not exist",
    0x60: "congestion; the service centre gave up",
    0x61: "recipient busy; the service centre gave up",
    0x62: "no response from the recipient; the service centre gave up",
    0x63: "service rejected; the service centre gave up",
    0x64: "quality of service not available; the service centre gave up",
    0x65: "error in the recipient's handset; the service centre gave up",
}


def status_meaning(status: int) -> tuple[str, Outcome]:
    """TP-ST (TS 23.040 §9.2.3.15) as readable text and delivered / pending / failed."""
    if status < 0x20:
        outcome: Outcome = "delivered"
    elif status < 0x40:
        outcome = "pending"
    else:
        outcome = "failed"
    text = _STATUS_TEXT.get(status)
    if text is None:
        if status >= 0x80:
            text = "reserved status value"
        elif status & 0x10 or status >= 0x70 or 0x30 <= status < 0x40 or 0x50 <= status < 0x60:
            text = "service-centre-specific status"
        else:
            text = "reserved status value"
        text = f"{text} 0x{status:02X} ({outcome})"
    return text, outcome


def decode(
    pdu_hex: str,
    *,
    has_smsc: bool = True,
    direction: Literal["mt", "mo"] = "mt",
    lenient: bool = False,
) -> Deliver | Submit | StatusReport:
    """Decode one PDU as printed by AT+CMGR / +CMGL / +CMT (SMSC field first unless `has_smsc` is False).

    TP-MTI picks the type. In storage and notifications (direction "mt") 0 is SMS-DELIVER, 1 a stored
    SMS-SUBMIT and 2 SMS-STATUS-REPORT; in the "mo" direction only SMS-SUBMIT can be decoded.
    `lenient` accepts a TP-UDL longer than the data (some modems store such PDUs) with an
    `ud-truncated` flag instead of raising.
    """
    raw = _parse_hex(pdu_hex)
    r = _Reader(raw)
    flags: list[Flag] = []
    smsc = _read_smsc(r, flags) if has_smsc else None
    first_at = r.pos
    first = r.octet("the first TPDU octet")
    mti = first & 0x03
    if mti == 0x03:
        raise PduError(f"TP-MTI 3 (reserved) in the first TPDU octet at octet {first_at}", octet=first_at)
    if direction == "mo" and mti != 0x01:
        kind = "SMS-DELIVER-REPORT" if mti == 0 else "SMS-COMMAND"
        raise PduError(f"TP-MTI {mti} in the MO direction is {kind}, which smsgate does not decode",
                       octet=first_at)
    hex_text = raw.hex().upper()
    if mti == 0x00:
        return _decode_deliver(r, first, smsc, hex_text, lenient, flags)
    if mti == 0x01:
        return _decode_submit(r, first, smsc, hex_text, lenient, flags)
    return _decode_status_report(r, first, smsc, hex_text, lenient, flags)


def _decode_deliver(r: _Reader, first: int, smsc: str | None, raw: str, lenient: bool,
                    flags: list[Flag]) -> Deliver:
    number, toa = _read_address(r, "TP-OA", flags)
    pid = r.octet("TP-PID")
    coding = parse_dcs(r.octet("TP-DCS"))
    _flag_dcs(coding, r.pos - 1, flags)
    timestamp = _read_timestamp(r, "TP-SCTS", flags)
    ud = _read_user_data(r, bool(first & 0x40), coding, lenient, flags)
    return Deliver(
        raw=raw, smsc=smsc, number=number, number_toa=toa, text=ud.text, encoding=coding.encoding,
        timestamp=timestamp, concat=ud.concat, message_class=coding.message_class, udh=ud.udh,
        user_data=ud.raw, pid=pid, dcs=coding, flags=tuple(flags),
        more_messages=not first & 0x04, status_report_indication=bool(first & 0x20), reply_path=bool(first & 0x80),
    )


def _decode_submit(r: _Reader, first: int, smsc: str | None, raw: str, lenient: bool,
                   flags: list[Flag]) -> Submit:
    reference = r.octet("TP-MR")
    number, toa = _read_address(r, "TP-DA", flags)
    pid = r.octet("TP-PID")
    coding = parse_dcs(r.octet("TP-DCS"))
    _flag_dcs(coding, r.pos - 1, flags)
    vpf = (first >> 3) & 0x03
    validity: timedelta | datetime | None = None
    if vpf == 0b10:
        validity = relative_validity(r.octet("TP-VP"))
    elif vpf == 0b11:
        validity = _read_timestamp(r, "TP-VP", flags)
    elif vpf == 0b01:
        at = r.pos
        r.take(7, "enhanced TP-VP")
        flags.append(Flag("enhanced-validity", f"enhanced validity period at octet {at} is not interpreted", at))
    ud = _read_user_data(r, bool(first & 0x40), coding, lenient, flags)
    return Submit(
        raw=raw, smsc=smsc, number=number, number_toa=toa, text=ud.text, encoding=coding.encoding,
        timestamp=None, concat=ud.concat, message_class=coding.message_class, udh=ud.udh, user_data=ud.raw,
        pid=pid, dcs=coding, flags=tuple(flags), reference=reference, validity=validity,
        status_report_requested=bool(first & 0x20), reject_duplicates=bool(first & 0x04),
        reply_path=bool(first & 0x80),
    )


def _decode_status_report(r: _Reader, first: int, smsc: str | None, raw: str, lenient: bool,
                          flags: list[Flag]) -> StatusReport:
    reference = r.octet("TP-MR")
    number, toa = _read_address(r, "TP-RA", flags)
    timestamp = _read_timestamp(r, "TP-SCTS", flags)
    discharge = _read_timestamp(r, "TP-DT", flags)
    status = r.octet("TP-ST")
    status_text, outcome = status_meaning(status)
    pid: int | None = None
    coding: DataCoding | None = None
    ud = _UserData()
    if r.remaining:
        # TP-PI and what it announces are optional (TS 23.040 §9.2.2.3). Modems add odd trailers here; the
        # mandatory part above is already complete, so a trailer that does not parse is flagged, not fatal.
        pi_at = r.pos
        try:
            pi = r.octet("TP-PI")
            if pi & 0x01:
                pid = r.octet("TP-PID")
            if pi & 0x02:
                coding = parse_dcs(r.octet("TP-DCS"))
            if pi & 0x04:
                ud = _read_user_data(r, bool(first & 0x40), coding or parse_dcs(0), lenient, flags)
        except PduError as e:
            flags.append(Flag("status-report-trailer", f"optional fields after TP-ST at octet {pi_at} do not "
                              f"parse ({e}); ignored", pi_at))
            pid, coding, ud = None, None, _UserData()
    encoding: Encoding = coding.encoding if coding else "gsm7"
    return StatusReport(
        raw=raw, smsc=smsc, number=number, number_toa=toa, text=ud.text, encoding=encoding,
        timestamp=timestamp, concat=ud.concat, message_class=coding.message_class if coding else None,
        udh=ud.udh, user_data=ud.raw, pid=pid, dcs=coding, flags=tuple(flags), reference=reference,
        discharge=discharge, status=status, status_text=status_text, outcome=outcome,
    )


def _flag_dcs(coding: DataCoding, at: int, flags: list[Flag]) -> None:
    if coding.reserved:
        flags.append(Flag("reserved-dcs", f"TP-DCS 0x{coding.raw:02X} at octet {at} uses a reserved coding; "
                          "read as GSM-7 as TS 23.038 asks", at))


def relative_validity(vp: int) -> timedelta:
    """Relative TP-VP (TS 23.040 §9.2.3.12.1) as a duration."""
    if vp <= 143:
        return timedelta(minutes=5 * (vp + 1))
    if vp <= 167:
        return timedelta(hours=12, minutes=30 * (vp - 143))
    if vp <= 196:
        return timedelta(days=vp - 166)
    return timedelta(weeks=vp - 192)


def encode_relative_validity(period: timedelta) -> int:
    """The smallest relative TP-VP that is at least `period` (the network rounds, we round up)."""
    minutes = math.ceil(period.total_seconds() / 60)
    if minutes <= 0:
        raise EncodeError(f"validity period must be positive, got {period}")
    if minutes <= 12 * 60:
        return math.ceil(minutes / 5) - 1
    if minutes <= 24 * 60:
        return 143 + math.ceil((minutes - 12 * 60) / 30)
    days = math.ceil(minutes / (24 * 60))
    if days <= 30:
        return 166 + days
    weeks = math.ceil(minutes / (7 * 24 * 60))
    if weeks <= 63:
        return 192 + weeks
    raise EncodeError(f"validity period {period} is longer than the maximum of 63 weeks")


# --------------------------------------------------------------------------------------------- encode


@dataclass(frozen=True)
class Segmentation:
    encoding: Encoding
    chunks: list[str]
    units: int
    per_part_limit: int


def _ucs2_units(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1


def segment(text: str, *, ref16: bool = False, force_ucs2: bool = False) -> Segmentation:
    """Split `text` into the fewest parts: GSM-7 if every character is in the alphabet, UCS-2 otherwise.

    Filling each part as far as it goes is optimal for an in-order split. An escape pair and a surrogate
    pair each count as one item, so neither is ever cut in two.
    """
    encoding: Encoding
    if not force_ucs2 and all(ch in gsm7.GSM7_CHARS for ch in text):
        cost, single, multi, encoding = gsm7.char_septets, SINGLE_GSM7, 152 if ref16 else 153, "gsm7"
    else:
        cost, single, multi, encoding = _ucs2_units, SINGLE_UCS2, 66 if ref16 else 67, "ucs2"
    costs = [cost(ch) for ch in text]
    units = sum(costs)
    if units <= single:
        return Segmentation(encoding, [text], units, single)
    chunks: list[str] = []
    start = used = 0
    for i, c in enumerate(costs):
        if used + c > multi:
            chunks.append(text[start:i])
            start, used = i, 0
        used += c
    chunks.append(text[start:])
    return Segmentation(encoding, chunks, units, multi)


def preview(text: str, *, ref16: bool = False) -> CostPreview:
    """What sending `text` costs: parts, encoding, units (septets or UTF-16 units) and which characters
    forced UCS-2, in order of first appearance."""
    seg = segment(text, ref16=ref16)
    forced = list(dict.fromkeys(ch for ch in text if ch not in gsm7.GSM7_CHARS))
    return CostPreview(len(seg.chunks), seg.encoding, seg.units, seg.per_part_limit, forced)


def _encode_number(number: str, what: str) -> tuple[int, str]:
    """(type of address, digits) for an international (+...) or national number."""
    cleaned = "".join(number.split())
    international = cleaned.startswith("+")
    digits = cleaned[1:] if international else cleaned
    if not digits or not digits.isascii() or not digits.isdigit():
        raise EncodeError(f"{what} {number!r} is not a phone number: write +<country code><number> or digits only")
    if len(digits) > 20:
        raise EncodeError(f"{what} {number!r} has {len(digits)} digits; the maximum is 20")
    return (0x91 if international else 0x81), digits


def _swap_digits(digits: str) -> bytes:
    padded = digits + "F" if len(digits) % 2 else digits
    return bytes(int(padded[i + 1] + padded[i], 16) for i in range(0, len(padded), 2))


def _smsc_field(smsc: str | None) -> bytes:
    if smsc is None:
        return b"\x00"
    toa, digits = _encode_number(smsc, "SMSC")
    if len(digits) > 20:
        raise EncodeError(f"SMSC {smsc!r} is too long")
    body = _swap_digits(digits)
    return bytes([len(body) + 1, toa]) + body


def _user_data(chunk: str, encoding: Encoding, header: bytes) -> tuple[int, bytes]:
    if encoding == "gsm7":
        header_septets = (len(header) * 8 + 6) // 7
        septets = gsm7.encode_septets(chunk)
        packed = bytearray(gsm7.pack_septets(septets, header_septets * 7))
        if len(packed) < len(header):
            packed.extend(b"\x00" * (len(header) - len(packed)))
        packed[: len(header)] = header
        return header_septets + len(septets), bytes(packed)
    data = header + chunk.encode("utf-16-be")
    return len(data), data


def encode_submit(
    number: str,
    text: str,
    *,
    smsc: str | None = None,
    request_status_report: bool = False,
    validity: timedelta | None = None,
    reference: int | None = None,
    ref16: bool = False,
    force_ucs2: bool = False,
    flash: bool = False,
) -> list[SubmitPdu]:
    """SMS-SUBMIT PDUs for `text` to `number`, one per part, ready for AT+CMGS.

    `reference` is the concatenation reference shared by the parts (random when None; only used when the
    text needs more than one part); `ref16` uses the 16-bit reference element. TP-MR is always 0 so the
    modem assigns it and reports it in the +CMGS answer.
    """
    toa, digits = _encode_number(number, "recipient")
    address = bytes([len(digits), toa]) + _swap_digits(digits)
    smsc_field = _smsc_field(smsc)
    seg = segment(text, ref16=ref16, force_ucs2=force_ucs2)
    parts = len(seg.chunks)
    if parts > 255:
        raise EncodeError(f"text needs {parts} parts; at most 255 can be concatenated")
    limit = 0xFFFF if ref16 else 0xFF
    if reference is None:
        reference = secrets.randbelow(limit + 1)
    elif not 0 <= reference <= limit:
        raise EncodeError(f"concatenation reference {reference} does not fit in {16 if ref16 else 8} bits")
    first = 0x01
    vp = b""
    if validity is not None:
        first |= 0x10
        vp = bytes([encode_relative_validity(validity)])
    if request_status_report:
        first |= 0x20
    if parts > 1:
        first |= 0x40
    dcs = (0x08 if seg.encoding == "ucs2" else 0x00) | (0x10 if flash else 0x00)
    out: list[SubmitPdu] = []
    for seq, chunk in enumerate(seg.chunks, start=1):
        concat: Concat | None = None
        header = b""
        if parts > 1:
            if ref16:
                concat = Concat(reference, 16, parts, seq)
                header = bytes([6, IEI_CONCAT_16, 4, reference >> 8, reference & 0xFF, parts, seq])
            else:
                concat = Concat(reference, 8, parts, seq)
                header = bytes([5, IEI_CONCAT_8, 3, reference, parts, seq])
        udl, ud = _user_data(chunk, seg.encoding, header)
        tpdu = bytes([first, 0x00]) + address + bytes([0x00, dcs]) + vp + bytes([udl]) + ud
        out.append(SubmitPdu(
            hex=(smsc_field + tpdu).hex().upper(), tpdu_length=len(tpdu), part=seq, parts=parts, text=chunk,
            encoding=seg.encoding, concat=concat,
        ))
    return out
