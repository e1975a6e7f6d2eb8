"""What a source reader hands back: the appointments it could read and, one by one, the items it could not.

A reader never stops at the first bad item: a clinic exporting 300 appointments with one broken
VEVENT must get 299 imported and one sentence about the last. A problem with the file as a whole (not
JSON at all, not a calendar) is an item called "file".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from smsgate.queue.appointments import AppointmentInput

__all__ = ["MAX_FILE_BYTES", "ItemError", "ParsedFile", "SourceError", "read_text"]

MAX_FILE_BYTES = 64 * 1024 * 1024


class SourceError(ValueError):
    """One item of a source cannot be read; the message says what is wrong with it."""


@dataclass(frozen=True)
class ItemError:
    item: str
    message: str

    def __str__(self) -> str:
        return f"{self.item}: {self.message}"


@dataclass
class ParsedFile:
    kind: str
    items: list[AppointmentInput] = field(default_factory=list)
    errors: list[ItemError] = field(default_factory=list)


def read_text(path: Path) -> str:
    """The file as text, or `SourceError` saying why it cannot be read (missing, too big, not UTF-8)."""
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SourceError(f"{path} is {size // (1024 * 1024)} MB; split it into files under "
                              f"{MAX_FILE_BYTES // (1024 * 1024)} MB")
        data = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceError(f"{path} is not UTF-8 text (byte {exc.start} cannot be read); export it again as "
                          "UTF-8") from None
