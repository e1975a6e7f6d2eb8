"""Codecs for the single fields of an SMS TPDU (TS 23.040 §9.2.3, TS 23.038 §4): the octet reader with
its truncation errors, addresses and the SMSC field, timestamps, TP-DCS, TP-VP and TP-ST.

Each field has its own rules for what is fatal and what is only flagged; keeping them here lets
`smsgate.at_commands.pdu` read as the layout of whole messages, field by field.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from typing import Literal

from smsgate.at_commands import gsm7
from smsgate.at_commands.pdu_errors import EncodeError, PduError
from smsgate.at_commands.pdu_records import DataCoding, Encoding, Flag, Outcome, WaitingIndication

__all__ = [
    "Reader",
    "encode_number",
    "encode_relative_validity",
    "encode_smsc",
    "flag_dcs",
    "parse_dcs",
    "parse_hex",
    "read_address",
    "read_smsc",
    "read_timestamp",
    "relative_validity",
    "status_meaning",
    "swap_digits",
]


class Reader:
    """Reads a PDU octet by octet; running short raises `PduError` naming the octet where it ended."""

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


def parse_hex(pdu_hex: str) -> bytes:
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


def read_address(r: Reader, what: str, flags: list[Flag]) -> tuple[str, int]:
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
        name = gsm7.decode_septets(gsm7.unpack_septets(body, septet_count))
        if name.lone_escape is not None:
            flags.append(Flag("address-lone-escape", f"{what} at octet {start}: the alphanumeric sender ends in an "
                              "escape (0x1B) with no character after it; shown as a space", start))
        return name.text, toa
    digits = _bcd_digits(body, length, what, start + 2, flags)
    if ton == 0b001 and digits:
        digits = "+" + digits
    return digits, toa


def read_smsc(r: Reader, flags: list[Flag]) -> str | None:
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


def read_timestamp(r: Reader, what: str, flags: list[Flag]) -> datetime | None:
    """TP-SCTS / TP-DT / absolute TP-VP (TS 23.040 §9.2.3.11): swapped BCD with a quarter-hour offset.

    A non-BCD digit or an impossible date is flagged and gives None: the rest of the message is fine.
    """
    start = r.pos
    raw = r.take(7, what)
    digits = [(octet & 0x0F, octet >> 4) for octet in raw[:6]]
    values = None if any(lo > 9 or hi > 9 for lo, hi in digits) else [lo * 10 + hi for lo, hi in digits]
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



def flag_dcs(coding: DataCoding, at: int, flags: list[Flag]) -> None:
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


def encode_number(number: str, what: str) -> tuple[int, str]:
    """(type of address, digits) for an international (+...) or national number."""
    cleaned = "".join(number.split())
    international = cleaned.startswith("+")
    digits = cleaned[1:] if international else cleaned
    if not digits or not digits.isascii() or not digits.isdigit():
        raise EncodeError(f"{what} {number!r} is not a phone number: write +<country code><number> or digits only")
    if len(digits) > 20:
        raise EncodeError(f"{what} {number!r} has {len(digits)} digits; the maximum is 20")
    return (0x91 if international else 0x81), digits


def swap_digits(digits: str) -> bytes:
    padded = digits + "F" if len(digits) % 2 else digits
    return bytes(int(padded[i + 1] + padded[i], 16) for i in range(0, len(padded), 2))


def encode_smsc(smsc: str | None) -> bytes:
    if smsc is None:
        return b"\x00"
    toa, digits = encode_number(smsc, "SMSC")
    if len(digits) > 20:
        raise EncodeError(f"SMSC {smsc!r} is too long")
    body = swap_digits(digits)
    return bytes([len(body) + 1, toa]) + body
