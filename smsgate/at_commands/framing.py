"""Byte stream -> AT response frames, kept apart from the port so tests can feed it bytes.

Rules (3GPP TS 27.007 §5.7 plus what real modems do, see modem-profiles.md):
- lines end in CR, LF, CR LF or CR CR LF (Huawei ``\\r\\r\\n``); empty lines are dropped;
- the ``> `` prompt of ``+CMGS`` has no line terminator and is reported as soon as it is seen;
- no byte can stop the framer: each line is decoded as UTF-8 and falls back to latin-1 (lossless);
- the line after a ``+CMT:``/``+CBM:`` header (and a PDU-mode ``+CDS: <length>``) is its PDU and is attached;
- a ``+CUSD:`` body may hold CR LF inside its quotes (modem-profiles.md, [babca]); it is re-joined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_TERMINATORS = re.compile(rb"[\r\n]")
_STRIP_BYTES = b"\x00\x1a\x1b"
MAX_LINE_BYTES = 8192
MAX_CUSD_LINES = 20
_PDU_HEADERS = ("+CMT:", "+CBM:")
_CDS_PDU_HEADER = re.compile(r"^\+CDS:\s*\d+\s*$")


@dataclass(frozen=True)
class Frame:
    """One unit of modem output: a text line (with its PDU line for +CMT/+CDS/+CBM) or the ``> `` prompt."""

    text: str
    pdu: str | None = None
    prompt: bool = False


PROMPT_FRAME = Frame(text="> ", prompt=True)


def decode_line(raw: bytes) -> str:
    """Decode one line without ever raising: UTF-8 first, else latin-1 (every byte maps to a character)."""
    cleaned = raw.translate(None, _STRIP_BYTES)
    try:
        return cleaned.decode("utf-8")
    except UnicodeDecodeError:
        return cleaned.decode("latin-1")


def _needs_pdu_line(text: str) -> bool:
    return text.startswith(_PDU_HEADERS) or bool(_CDS_PDU_HEADER.match(text))


class LineFramer:
    """Incremental framer: ``feed(bytes) -> list[Frame]``. Not thread-safe (one reader owns it)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._held: str | None = None  # a +CMT/+CDS header waiting for its PDU line
        self._cusd: list[str] | None = None  # a +CUSD line whose quotes are still open

    def feed(self, data: bytes) -> list[Frame]:
        self._buf += data
        out: list[Frame] = []
        while True:
            start = 0
            while start < len(self._buf) and self._buf[start] in b"\r\n":
                start += 1
            if start:
                del self._buf[:start]
            if self._buf == b">" or self._buf.startswith(b"> "):
                # No terminator follows the prompt; a space that arrives later is stripped with the next line.
                del self._buf[: 2 if self._buf.startswith(b"> ") else 1]
                out.append(PROMPT_FRAME)
                continue
            match = _TERMINATORS.search(self._buf)
            if match is None:
                if len(self._buf) > MAX_LINE_BYTES:
                    raw = bytes(self._buf)
                    self._buf.clear()
                    self._emit(decode_line(raw), out)
                break
            raw = bytes(self._buf[: match.start()])
            del self._buf[: match.end()]
            self._emit(decode_line(raw), out)
        return out

    def flush(self) -> list[Frame]:
        """Emit whatever is buffered (a header still waiting for its PDU, a partial line)."""
        out: list[Frame] = []
        if self._buf:
            raw = bytes(self._buf)
            self._buf.clear()
            self._emit(decode_line(raw), out)
        if self._cusd is not None:
            out.append(Frame(text="\n".join(self._cusd)))
            self._cusd = None
        if self._held is not None:
            out.append(Frame(text=self._held))
            self._held = None
        return out

    def _emit(self, text: str, out: list[Frame]) -> None:
        text = text.strip()
        if not text:
            return
        if self._cusd is not None:
            self._cusd.append(text)
            joined = "\n".join(self._cusd)
            if joined.count('"') % 2 == 0 or len(self._cusd) >= MAX_CUSD_LINES:
                self._cusd = None
                out.append(Frame(text=joined))
            return
        if self._held is not None:
            header, self._held = self._held, None
            out.append(Frame(text=header, pdu=text))
            return
        if _needs_pdu_line(text):
            self._held = text
            return
        if text.startswith("+CUSD:") and text.count('"') % 2 == 1:
            self._cusd = [text]
            return
        out.append(Frame(text=text))
