"""SMS PDU codec (3GPP TS 23.040 / TS 23.038): decode SMS-DELIVER, SMS-SUBMIT and SMS-STATUS-REPORT,
encode SMS-SUBMIT with segmentation, and preview what a text will cost.

Decoding is strict about structure and tolerant about content: a PDU whose lengths do not add up raises
`PduError` naming the octet, because guessing would produce a wrong message; a field whose content is odd
(a timestamp with a non-BCD digit, an unknown escape, a reserved DCS) decodes with a `Flag` on the
message, because the rest of the message is still right and must not be lost.

The records live in `pdu_records` and the single-field codecs in `pdu_fields`; this module lays out whole
messages from them and still exports every public name, so callers import from here alone.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from smsgate.at_commands import gsm7
from smsgate.at_commands.pdu_errors import EncodeError, PduError
from smsgate.at_commands.pdu_fields import (
    Reader,
    encode_number,
    encode_relative_validity,
    encode_smsc,
    flag_dcs,
    parse_dcs,
    parse_hex,
    read_address,
    read_smsc,
    read_timestamp,
    relative_validity,
    status_meaning,
    swap_digits,
)
from smsgate.at_commands.pdu_records import (
    Concat,
    CostPreview,
    DataCoding,
    Deliver,
    Encoding,
    Flag,
    InformationElement,
    Segmentation,
    StatusReport,
    Submit,
    SubmitPdu,
    WaitingIndication,
)
from smsgate.at_commands.pdu_records import Outcome as Outcome

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

IEI_CONCAT_8 = 0x00
IEI_CONCAT_16 = 0x08

SINGLE_GSM7 = 160
SINGLE_UCS2 = 70
MAX_UD_OCTETS = 140


@dataclass
class _UserData:
    text: str = ""
    udh: tuple[InformationElement, ...] = ()
    concat: Concat | None = None
    raw: bytes = b""


def _read_user_data(r: Reader, udhi: bool, coding: DataCoding, lenient: bool, flags: list[Flag]) -> _UserData:
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
        out.udh = _read_elements(ud[1:header_len], ud_at + 1, flags)
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
        decoded = gsm7.decode_septets(codes)
        out.text = decoded.text
        for code in decoded.unknown_escapes:
            flags.append(Flag("unknown-escape", f"GSM-7 escape 0x1B 0x{code:02X} is not in the extension table; "
                              "shown as its base character", ud_at))
        if decoded.lone_escape is not None:
            at = ud_at + (header_septets + decoded.lone_escape) * 7 // 8
            flags.append(Flag("lone-escape", f"GSM-7 text ends in an escape (0x1B) at octet {at} with no character "
                              "after it; shown as a space (TS 23.038 §6.2.1.1). If the next part starts with the "
                              "rest of the pair, the reassembled message has the character", at))
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


def _read_elements(header: bytes, at: int, flags: list[Flag]) -> tuple[InformationElement, ...]:
    """The information elements of a header, or none at all when the last one does not fit in it.

    TS 23.040 §9.2.3.24: when the header length leaves too few or too many octets for the final element,
    the whole header is ignored. TP-UDHL still says where the text starts, so the text is kept.
    """
    elements = []
    i = 0
    while i < len(header):
        if i + 2 > len(header):
            problem = f"user data header element at octet {at + i} is cut off after its identifier"
        elif i + 2 + header[i + 1] > len(header):
            problem = (f"user data header element 0x{header[i]:02X} at octet {at + i} says {header[i + 1]} "
                       "octets, which runs past the header")
        else:
            length = header[i + 1]
            elements.append(InformationElement(header[i], bytes(header[i + 2 : i + 2 + length])))
            i += 2 + length
            continue
        flags.append(Flag("invalid-udh", f"{problem}; the whole header is ignored (TS 23.040 §9.2.3.24), so "
                          "this message is not joined with others", at + i))
        return ()
    return tuple(elements)


def _concat_of(elements: tuple[InformationElement, ...], at: int, flags: list[Flag]) -> Concat | None:
    """The concatenation element of a header. 8-bit and 16-bit ones exclude each other, and neither may
    repeat: TS 23.040 §9.2.3.24 has the last occurrence used. An impossible one is ignored first."""
    found: Concat | None = None
    repeated = False
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
        repeated = repeated or found is not None
        found = candidate
    if repeated:
        flags.append(Flag("duplicate-concat", "more than one concatenation element; the last is used "
                          "(TS 23.040 §9.2.3.24)", at))
    return found


# --------------------------------------------------------------------------------------------- decode

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
    raw = parse_hex(pdu_hex)
    r = Reader(raw)
    flags: list[Flag] = []
    smsc = read_smsc(r, flags) if has_smsc else None
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


def _decode_deliver(r: Reader, first: int, smsc: str | None, raw: str, lenient: bool,
                    flags: list[Flag]) -> Deliver:
    number, toa = read_address(r, "TP-OA", flags)
    pid = r.octet("TP-PID")
    coding = parse_dcs(r.octet("TP-DCS"))
    flag_dcs(coding, r.pos - 1, flags)
    timestamp = read_timestamp(r, "TP-SCTS", flags)
    ud = _read_user_data(r, bool(first & 0x40), coding, lenient, flags)
    return Deliver(
        raw=raw, smsc=smsc, number=number, number_toa=toa, text=ud.text, encoding=coding.encoding,
        timestamp=timestamp, concat=ud.concat, message_class=coding.message_class, udh=ud.udh,
        user_data=ud.raw, pid=pid, dcs=coding, flags=tuple(flags),
        more_messages=not first & 0x04, status_report_indication=bool(first & 0x20), reply_path=bool(first & 0x80),
    )


def _decode_submit(r: Reader, first: int, smsc: str | None, raw: str, lenient: bool,
                   flags: list[Flag]) -> Submit:
    reference = r.octet("TP-MR")
    number, toa = read_address(r, "TP-DA", flags)
    pid = r.octet("TP-PID")
    coding = parse_dcs(r.octet("TP-DCS"))
    flag_dcs(coding, r.pos - 1, flags)
    vpf = (first >> 3) & 0x03
    validity: timedelta | datetime | None = None
    if vpf == 0b10:
        validity = relative_validity(r.octet("TP-VP"))
    elif vpf == 0b11:
        validity = read_timestamp(r, "TP-VP", flags)
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


def _decode_status_report(r: Reader, first: int, smsc: str | None, raw: str, lenient: bool,
                          flags: list[Flag]) -> StatusReport:
    reference = r.octet("TP-MR")
    number, toa = read_address(r, "TP-RA", flags)
    timestamp = read_timestamp(r, "TP-SCTS", flags)
    discharge = read_timestamp(r, "TP-DT", flags)
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


# --------------------------------------------------------------------------------------------- encode


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
    toa, digits = encode_number(number, "recipient")
    address = bytes([len(digits), toa]) + swap_digits(digits)
    smsc_field = encode_smsc(smsc)
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
