"""The GSM 7-bit default alphabet of 3GPP TS 23.038 §6.2.1, its extension table, and septet packing.

The tables are written out from the specification rather than taken from another library, because the
libraries of the field disagree with it (python-gsmmodem maps 0x5F to a backtick instead of `§`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

ESC = 0x1B

# TS 23.038 §6.2.1, code points 0x00-0x7F in order. 0x1B is the escape to the extension table; it is
# never produced from text, so it is a placeholder here.
DEFAULT_ALPHABET = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

# TS 23.038 §6.2.1.1: the characters reached by ESC followed by this code.
EXTENSION_TABLE: dict[int, str] = {
    0x0A: "\x0c",  # form feed (page break)
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

CHAR_TO_SEPTET: dict[str, int] = {ch: code for code, ch in enumerate(DEFAULT_ALPHABET) if code != ESC}
CHAR_TO_EXTENSION: dict[str, int] = {ch: code for code, ch in EXTENSION_TABLE.items()}
GSM7_CHARS = frozenset(CHAR_TO_SEPTET) | frozenset(CHAR_TO_EXTENSION)


@dataclass(frozen=True)
class Gsm7Text:
    """Decoded septets: the text, the codes of escapes not in the extension table, and where a lone
    escape at the very end lies (its septet index), if one does."""

    text: str
    unknown_escapes: list[int]
    lone_escape: int | None = None


def is_gsm7(ch: str) -> bool:
    return ch in GSM7_CHARS


def char_septets(ch: str) -> int:
    """Septets one character costs: 2 for the extension table, 1 otherwise (caller checks is_gsm7)."""
    return 2 if ch in CHAR_TO_EXTENSION else 1


def encode_septets(text: str) -> list[int]:
    """Text to septet codes; raises ValueError naming the first character outside the alphabet."""
    out: list[int] = []
    for index, ch in enumerate(text):
        code = CHAR_TO_SEPTET.get(ch)
        if code is not None:
            out.append(code)
            continue
        ext = CHAR_TO_EXTENSION.get(ch)
        if ext is None:
            raise ValueError(f"character {ch!r} (U+{ord(ch):04X}) at index {index} is not in the GSM-7 alphabet")
        out.append(ESC)
        out.append(ext)
    return out


def decode_septets(septets: Sequence[int]) -> Gsm7Text:
    """Septet codes to text.

    An unknown escape shows its base character (TS 23.038 §6.2.1.1 note); ESC ESC shows a space, as the
    specification asks until a second extension table is defined. A lone ESC at the very end cannot be
    resolved either and shows a space too: it is what a sender leaves when it splits an escape pair across
    two parts, and `escaped_by` lets reassembly finish the pair from the next part.
    """
    chars: list[str] = []
    unknown: list[int] = []
    lone: int | None = None
    i = 0
    n = len(septets)
    while i < n:
        code = septets[i] & 0x7F
        if code != ESC:
            chars.append(DEFAULT_ALPHABET[code])
            i += 1
            continue
        if i + 1 >= n:
            chars.append(" ")
            lone = i
            break
        nxt = septets[i + 1] & 0x7F
        ext = EXTENSION_TABLE.get(nxt)
        if ext is not None:
            chars.append(ext)
        else:
            unknown.append(nxt)
            chars.append(" " if nxt == ESC else DEFAULT_ALPHABET[nxt])
        i += 2
    return Gsm7Text("".join(chars), unknown, lone)


def escaped_by(ch: str) -> str | None:
    """The extension character that an escape followed by the septet shown as `ch` stands for, or None.

    Exact on decoded text: every character it answers for comes only from a single septet, since an
    escape before that septet would have shown the extension character instead.
    """
    code = CHAR_TO_SEPTET.get(ch)
    return None if code is None else EXTENSION_TABLE.get(code)


def pack_septets(septets: Sequence[int], bit_offset: int = 0) -> bytes:
    """Pack septets least-significant bit first (TS 23.038 §6.1.2.1.1), starting `bit_offset` bits in.

    The leading bits are zero; a caller that puts a user data header there overwrites those octets. The
    offset is how fill bits after a header are produced: the text starts on the next septet boundary.
    """
    value = 0
    shift = bit_offset
    for code in septets:
        value |= (code & 0x7F) << shift
        shift += 7
    return value.to_bytes((shift + 7) // 8, "little")


def unpack_septets(data: bytes, count: int, bit_offset: int = 0) -> list[int]:
    """Read `count` septets from packed `data`, starting `bit_offset` bits in (caller checks the length)."""
    value = int.from_bytes(data, "little") >> bit_offset
    out = []
    for _ in range(count):
        out.append(value & 0x7F)
        value >>= 7
    return out
