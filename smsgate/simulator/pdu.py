"""The simulator's own, minimal SMS PDU handling (3GPP TS 23.040).

Deliberately independent of ``smsgate.at_commands``: the simulator is the yardstick for that code, so a
bug there must not be mirrored here. Only what the network side needs: parse an SMS-SUBMIT strictly,
build SMS-DELIVER (split into concatenated parts) and SMS-STATUS-REPORT.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

_GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXT = {0x0A: "\x0c", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~", 0x3E: "]",
             0x40: "|", 0x65: "€"}
_CHAR_TO_SEPTETS: dict[str, tuple[int, ...]] = {ch: (i,) for i, ch in enumerate(_GSM7_BASIC) if i != 0x1B}
_CHAR_TO_SEPTETS.update({ch: (0x1B, code) for code, ch in _GSM7_EXT.items()})

MTI_DELIVER = 0
MTI_SUBMIT = 1
MTI_STATUS_REPORT = 2


class PduFormatError(ValueError):
    """A PDU is malformed; the modem answers +CMS ERROR: 304 for it."""


@dataclass
class Submit:
    """A parsed SMS-SUBMIT with the fields the network acts on."""

    mr: int
    destination: str
    srr: bool
    pid: int
    dcs: int
    validity: bytes
    udh: bytes
    payload: bytes
    text: str | None
    concat: tuple[int, int, int] | None  # (reference, total, sequence)
    smsc: str | None = None
    tpdu_length: int = 0
    reject_duplicates: bool = False


@dataclass
class DeliverPart:
    """One SMS-DELIVER TPDU ready to go into a modem's storage or onto the line."""

    tpdu: bytes
    text: str
    concat: tuple[int, int, int] | None = None

    @property
    def tpdu_length(self) -> int:
        return len(self.tpdu)


@dataclass
class DecodedText:
    """What a receiver reassembles: used by handsets and by tests."""

    text: str
    parts: list[int] = field(default_factory=list)


def gsm7_septets(text: str) -> list[int] | None:
    """Septets for ``text`` in the GSM default alphabet, or None if a character has no GSM-7 form."""
    out: list[int] = []
    for ch in text:
        septets = _CHAR_TO_SEPTETS.get(ch)
        if septets is None:
            return None
        out.extend(septets)
    return out


def pack_septets(septets: list[int], fill_bits: int = 0) -> bytes:
    acc = 0
    nbits = fill_bits
    out = bytearray()
    for s in septets:
        acc |= (s & 0x7F) << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    return bytes(out)


def unpack_septets(data: bytes, count: int, fill_bits: int = 0) -> list[int]:
    value = int.from_bytes(data, "little")
    return [(value >> (fill_bits + 7 * i)) & 0x7F for i in range(count)]


def septets_to_text(septets: list[int]) -> str:
    out: list[str] = []
    escape = False
    for s in septets:
        if escape:
            out.append(_GSM7_EXT.get(s, " "))
            escape = False
        elif s == 0x1B:
            escape = True
        else:
            out.append(_GSM7_BASIC[s])
    return "".join(out)


def encode_semi_octets(digits: str) -> bytes:
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i + 1] + digits[i], 16) for i in range(0, len(digits), 2))


def decode_semi_octets(data: bytes, ndigits: int) -> str:
    text = "".join(f"{b & 0x0F:X}{b >> 4:X}" for b in data)
    return text[:ndigits]


def encode_address(number: str) -> bytes:
    """TP address field (length in digits, TOA, BCD)."""
    international = number.startswith("+")
    digits = number.lstrip("+")
    if not digits.isdigit():
        raise ValueError(f"phone number {number!r} must be digits with an optional leading +")
    toa = 0x91 if international else 0x81
    return bytes([len(digits), toa]) + encode_semi_octets(digits)


def encode_smsc(number: str) -> bytes:
    """SMSC field as it prefixes PDUs on the AT interface (length in octets, TOA, BCD)."""
    body = encode_address(number)[1:]
    return bytes([len(body)]) + body


def _decode_address(data: bytes, pos: int) -> tuple[str, int]:
    if pos + 2 > len(data):
        raise PduFormatError("address field runs past the end of the PDU")
    ndigits = data[pos]
    toa = data[pos + 1]
    noctets = (ndigits + 1) // 2
    end = pos + 2 + noctets
    if end > len(data):
        raise PduFormatError("address digits run past the end of the PDU")
    raw = data[pos + 2 : end]
    if (toa >> 4) & 0x07 == 0x05:
        number = septets_to_text(unpack_septets(raw, ndigits * 4 // 7))
    else:
        number = decode_semi_octets(raw, ndigits)
        if any(c not in "0123456789*#ABC" for c in number):
            raise PduFormatError(f"address contains invalid semi-octets: {number!r}")
        if (toa >> 4) & 0x07 == 0x01:
            number = "+" + number
    return number, end


def split_smsc(pdu: bytes) -> tuple[str | None, bytes]:
    """Split the AT-interface SMSC prefix from the TPDU."""
    if not pdu:
        raise PduFormatError("empty PDU")
    n = pdu[0]
    if n == 0:
        return None, pdu[1:]
    if 1 + n > len(pdu):
        raise PduFormatError("SMSC field runs past the end of the PDU")
    toa = pdu[1]
    digits = decode_semi_octets(pdu[2 : 1 + n], (n - 1) * 2).rstrip("F")
    if (toa >> 4) & 0x07 == 0x01:
        digits = "+" + digits
    return digits, pdu[1 + n :]


def data_coding(dcs: int) -> str:
    """'gsm7', '8bit' or 'ucs2' for a TP-DCS value."""
    group = dcs >> 4
    if group <= 0x07:
        if dcs & 0x20:
            return "8bit"  # compressed: treat as opaque data
        return ("gsm7", "8bit", "ucs2", "8bit")[(dcs >> 2) & 0x03]
    if group in (0x0C, 0x0D):
        return "gsm7"
    if group == 0x0E:
        return "ucs2"
    if group == 0x0F:
        return "8bit" if dcs & 0x04 else "gsm7"
    raise PduFormatError(f"reserved data coding scheme 0x{dcs:02X}")


def _parse_udh(udh: bytes) -> tuple[int, int, int] | None:
    pos = 0
    concat = None
    while pos < len(udh):
        if pos + 2 > len(udh):
            raise PduFormatError("truncated information element in user data header")
        iei, iel = udh[pos], udh[pos + 1]
        value = udh[pos + 2 : pos + 2 + iel]
        if len(value) != iel:
            raise PduFormatError("information element runs past the user data header")
        if iei == 0x00 and iel == 3:
            concat = (value[0], value[1], value[2])
        elif iei == 0x08 and iel == 4:
            concat = ((value[0] << 8) | value[1], value[2], value[3])
        pos += 2 + iel
    if concat is not None and (concat[1] == 0 or concat[2] == 0 or concat[2] > concat[1]):
        raise PduFormatError(f"invalid concatenation header {concat}")
    return concat


def _decode_user_data(
    tpdu: bytes, pos: int, dcs: int, udhi: bool
) -> tuple[bytes, bytes, str | None, tuple[int, int, int] | None]:
    if pos >= len(tpdu):
        raise PduFormatError("PDU ends before TP-UDL")
    udl = tpdu[pos]
    ud = tpdu[pos + 1 :]
    coding = data_coding(dcs)
    if coding == "gsm7":
        expected = (udl * 7 + 7) // 8
        if udl > 160:
            raise PduFormatError(f"TP-UDL {udl} septets exceeds 160")
    else:
        expected = udl
        if udl > 140:
            raise PduFormatError(f"TP-UDL {udl} octets exceeds 140")
    if len(ud) != expected:
        raise PduFormatError(f"user data is {len(ud)} octets but TP-UDL {udl} needs {expected}")
    udh = b""
    if udhi:
        if not ud:
            raise PduFormatError("UDHI set but no user data")
        udhl = ud[0]
        if 1 + udhl > len(ud):
            raise PduFormatError("user data header longer than the user data")
        udh = ud[1 : 1 + udhl]
    concat = _parse_udh(udh) if udhi else None
    header_octets = len(udh) + 1 if udhi else 0
    if coding == "gsm7":
        header_septets = (header_octets * 8 + 6) // 7
        fill = header_septets * 7 - header_octets * 8
        count = udl - header_septets
        if count < 0:
            raise PduFormatError("user data header longer than TP-UDL")
        septets = unpack_septets(ud[header_octets:], count, fill)
        return udh, ud[header_octets:], septets_to_text(septets), concat
    payload = ud[header_octets:]
    if coding == "ucs2":
        if len(payload) % 2:
            raise PduFormatError("UCS-2 user data has an odd number of octets")
        return udh, payload, payload.decode("utf-16-be", errors="replace"), concat
    return udh, payload, None, concat


def parse_submit(tpdu: bytes) -> Submit:
    """Strictly parse an SMS-SUBMIT TPDU (no SMSC prefix)."""
    if len(tpdu) < 7:
        raise PduFormatError(f"TPDU of {len(tpdu)} octets is too short for an SMS-SUBMIT")
    fo = tpdu[0]
    if fo & 0x03 != MTI_SUBMIT:
        raise PduFormatError(f"TP-MTI {fo & 0x03} is not SMS-SUBMIT")
    vpf = (fo >> 3) & 0x03
    mr = tpdu[1]
    destination, pos = _decode_address(tpdu, 2)
    if pos + 2 > len(tpdu):
        raise PduFormatError("PDU ends before TP-PID/TP-DCS")
    pid, dcs = tpdu[pos], tpdu[pos + 1]
    pos += 2
    vp_len = {0: 0, 2: 1, 1: 7, 3: 7}[vpf]
    validity = tpdu[pos : pos + vp_len]
    if len(validity) != vp_len:
        raise PduFormatError("PDU ends inside TP-VP")
    pos += vp_len
    udh, payload, text, concat = _decode_user_data(tpdu, pos, dcs, bool(fo & 0x40))
    return Submit(
        mr=mr, destination=destination, srr=bool(fo & 0x20), pid=pid, dcs=dcs, validity=validity,
        udh=udh, payload=payload, text=text, concat=concat, tpdu_length=len(tpdu),
        reject_duplicates=bool(fo & 0x04),
    )


def parse_at_submit(pdu_hex: str, declared_length: int) -> Submit:
    """Parse the hex a client wrote after ``AT+CMGS=<declared_length>``."""
    if len(pdu_hex) % 2 or any(c not in "0123456789abcdefABCDEF" for c in pdu_hex):
        raise PduFormatError("PDU is not an even number of hex digits")
    raw = bytes.fromhex(pdu_hex)
    smsc, tpdu = split_smsc(raw)
    if len(tpdu) != declared_length:
        raise PduFormatError(f"AT+CMGS={declared_length} but the TPDU has {len(tpdu)} octets")
    submit = parse_submit(tpdu)
    submit.smsc = smsc
    return submit


def scts(when: dt.datetime) -> bytes:
    """TP-SCTS / TP-DT: seven semi-octet fields with the sender's offset in quarter hours."""
    offset = when.utcoffset() or dt.timedelta(0)
    quarters = int(offset.total_seconds() // 900)
    tz = abs(quarters)
    tz_digits = f"{tz:02d}"
    tz_octet = int(tz_digits[1] + tz_digits[0], 16) | (0x08 if quarters < 0 else 0)
    fields = [when.year % 100, when.month, when.day, when.hour, when.minute, when.second]
    return encode_semi_octets("".join(f"{v:02d}" for v in fields)) + bytes([tz_octet])


def _split_text(text: str) -> tuple[str, list[tuple[str, bytes, int]]]:
    """Return (coding, [(part_text, payload, udl_units)]) for ``text``."""
    septets = gsm7_septets(text)
    if septets is not None:
        if len(septets) <= 160:
            return "gsm7", [(text, b"", len(septets))]
        parts: list[tuple[str, bytes, int]] = []
        current = ""
        count = 0
        for ch in text:
            n = len(_CHAR_TO_SEPTETS[ch])
            if count + n > 153:
                parts.append((current, b"", count))
                current, count = "", 0
            current += ch
            count += n
        parts.append((current, b"", count))
        return "gsm7", parts
    units = text.encode("utf-16-be")
    if len(units) <= 140:
        return "ucs2", [(text, units, len(units))]
    parts = []
    current = ""
    size = 0
    for ch in text:
        n = len(ch.encode("utf-16-be"))
        if size + n > 134:
            parts.append((current, current.encode("utf-16-be"), size))
            current, size = "", 0
        current += ch
        size += n
    parts.append((current, current.encode("utf-16-be"), size))
    return "ucs2", parts


def build_deliver(
    originator: str,
    text: str,
    *,
    when: dt.datetime | None = None,
    reference: int | None = None,
    status_report_indication: bool = False,
) -> list[DeliverPart]:
    """SMS-DELIVER TPDUs for ``text`` from ``originator``, concatenated (8-bit reference) when long."""
    when = when or dt.datetime.now(dt.UTC)
    coding, chunks = _split_text(text)
    if reference is None:
        reference = random.randrange(256)
    total = len(chunks)
    parts = []
    for seq, (chunk, payload, _units) in enumerate(chunks, start=1):
        udh = bytes([0x00, 0x03, reference & 0xFF, total, seq]) if total > 1 else b""
        fo = MTI_DELIVER | 0x04 | (0x40 if udh else 0) | (0x20 if status_report_indication else 0)
        dcs = 0x00 if coding == "gsm7" else 0x08
        if coding == "gsm7":
            header = bytes([len(udh)]) + udh if udh else b""
            header_septets = (len(header) * 8 + 6) // 7
            fill = header_septets * 7 - len(header) * 8
            septets = gsm7_septets(chunk) or []
            ud = header + pack_septets(septets, fill)
            udl = header_septets + len(septets)
        else:
            header = bytes([len(udh)]) + udh if udh else b""
            ud = header + payload
            udl = len(ud)
        tpdu = bytes([fo]) + encode_address(originator) + bytes([0x00, dcs]) + scts(when) + bytes([udl]) + ud
        concat = (reference & 0xFF, total, seq) if total > 1 else None
        parts.append(DeliverPart(tpdu=tpdu, text=chunk, concat=concat))
    return parts


def build_status_report(
    mr: int, recipient: str, status: int, *, submitted: dt.datetime, done: dt.datetime
) -> bytes:
    """SMS-STATUS-REPORT TPDU (TP-SRQ=0: the report on an SMS-SUBMIT)."""
    fo = MTI_STATUS_REPORT | 0x04
    return (
        bytes([fo, mr & 0xFF]) + encode_address(recipient) + scts(submitted) + scts(done) + bytes([status & 0xFF])
    )


def parse_deliver(tpdu: bytes) -> tuple[str, str | None, tuple[int, int, int] | None]:
    """(originator, text, concat) of an SMS-DELIVER; used to hand a modem's own message to another modem."""
    fo = tpdu[0]
    if fo & 0x03 != MTI_DELIVER:
        raise PduFormatError("not an SMS-DELIVER")
    originator, pos = _decode_address(tpdu, 1)
    dcs = tpdu[pos + 1]
    pos += 2 + 7
    _udh, _payload, text, concat = _decode_user_data(tpdu, pos, dcs, bool(fo & 0x40))
    return originator, text, concat
