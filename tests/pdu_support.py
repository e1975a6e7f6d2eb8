"""Hand-built SMS-DELIVER PDUs for the codec and inbound tests.

They make the shapes smsgate's encoder never produces but senders do: a part whose GSM-7 text ends in a
lone escape (an escape pair split across two parts), two concatenation elements in one header, an
element whose length runs past its header. The septets are packed with `gsm7.pack_septets`, which
`test_pdu_properties` checks on its own.
"""

from __future__ import annotations

from collections.abc import Sequence

from smsgate.at_commands import gsm7

SENDER = "+4915112345678"
SENDER_FIELD = "0B919451113254F6"  # TP-OA of SENDER
SCTS = "31308051206180"  # 2013-03-08 15:02:16 +02:00
ESC = 0x1B


def deliver_hex(dcs: int, ud_hex: str, udl: int, *, first: int = 0x04, oa: str = SENDER_FIELD,
                scts: str = SCTS) -> str:
    """SMS-DELIVER with an empty SMSC field: a fixed sender and timestamp, the given DCS and user data."""
    return f"00{first:02X}{oa}00{dcs:02X}{scts}{udl:02X}{ud_hex}"


def concat8(ref: int, total: int, seq: int) -> bytes:
    """Concatenation element with an 8-bit reference (TS 23.040 §9.2.3.24.1)."""
    return bytes([0x00, 3, ref, total, seq])


def concat16(ref: int, total: int, seq: int) -> bytes:
    """Concatenation element with a 16-bit reference (TS 23.040 §9.2.3.24.8)."""
    return bytes([0x08, 4, ref >> 8, ref & 0xFF, total, seq])


def header(*elements: bytes) -> bytes:
    """A user data header: TP-UDHL, then the elements as given (lengths are not checked)."""
    body = b"".join(elements)
    return bytes([len(body)]) + body


def gsm7_user_data(udh: bytes, septets: Sequence[int]) -> tuple[str, int]:
    """(TP-UD hex, TP-UDL) for a header followed by septets starting on the next septet boundary."""
    header_septets = (len(udh) * 8 + 6) // 7
    packed = bytearray(gsm7.pack_septets(septets, header_septets * 7))
    packed.extend(b"\x00" * max(0, len(udh) - len(packed)))
    packed[: len(udh)] = udh
    return packed.hex().upper(), header_septets + len(septets)


def gsm7_part(septets: Sequence[int], udh: bytes = b"", *, scts: str = SCTS) -> str:
    """A GSM-7 SMS-DELIVER carrying `septets` after `udh` (TP-UDHI set when there is a header)."""
    ud, udl = gsm7_user_data(udh, septets)
    return deliver_hex(0x00, ud, udl, first=0x44 if udh else 0x04, scts=scts)


def ucs2_part(text: str, udh: bytes = b"", *, scts: str = SCTS) -> str:
    ud = udh + text.encode("utf-16-be")
    return deliver_hex(0x08, ud.hex().upper(), len(ud), first=0x44 if udh else 0x04, scts=scts)


def septets_of(text: str) -> list[int]:
    return gsm7.encode_septets(text)


def stamp(second: int, minute: int = 2) -> str:
    """TP-SCTS of 2013-03-08 15:<minute>:<second> +02:00, for parts stamped apart."""
    def swapped(n: int) -> str:
        return f"{n % 10}{n // 10}"
    return "31308051" + swapped(minute) + swapped(second) + "80"
