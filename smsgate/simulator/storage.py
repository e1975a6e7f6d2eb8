"""Message storages of a simulated modem (SM on the SIM, ME in the phone, SR for status reports)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

STAT_REC_UNREAD = 0
STAT_REC_READ = 1
STAT_STO_UNSENT = 2
STAT_STO_SENT = 3

STAT_NAMES = {0: "REC UNREAD", 1: "REC READ", 2: "STO UNSENT", 3: "STO SENT"}


@dataclass
class StoredMessage:
    """One occupied slot; ``pdu`` carries the SMSC prefix as +CMGR/+CMGL print it."""

    stat: int
    pdu: bytes
    tpdu_length: int


class Storage:
    """A fixed number of slots addressed by position (0-based); the AT index offset is the modem's business."""

    def __init__(self, name: str, capacity: int) -> None:
        self.name = name
        self.capacity = capacity
        self.slots: dict[int, StoredMessage] = {}

    @property
    def used(self) -> int:
        return len(self.slots)

    def store(self, message: StoredMessage) -> int | None:
        for pos in range(self.capacity):
            if pos not in self.slots:
                self.slots[pos] = message
                return pos
        return None

    def get(self, pos: int) -> StoredMessage | None:
        return self.slots.get(pos)

    def delete(self, pos: int) -> None:
        self.slots.pop(pos, None)

    def items(self) -> Iterator[tuple[int, StoredMessage]]:
        yield from sorted(self.slots.items())


class CombinedStorage(Storage):
    """Huawei's "MT": SM followed by ME in one index space."""

    def __init__(self, name: str, parts: list[Storage]) -> None:
        self.name = name
        self.parts = parts

    @property
    def capacity(self) -> int:  # type: ignore[override]  # computed from the parts, a plain field in Storage
        return sum(p.capacity for p in self.parts)

    @property
    def used(self) -> int:
        return sum(p.used for p in self.parts)

    def _locate(self, pos: int) -> tuple[Storage, int] | None:
        for part in self.parts:
            if pos < part.capacity:
                return part, pos
            pos -= part.capacity
        return None

    def store(self, message: StoredMessage) -> int | None:
        offset = 0
        for part in self.parts:
            pos = part.store(message)
            if pos is not None:
                return offset + pos
            offset += part.capacity
        return None

    def get(self, pos: int) -> StoredMessage | None:
        found = self._locate(pos)
        return found[0].get(found[1]) if found else None

    def delete(self, pos: int) -> None:
        found = self._locate(pos)
        if found:
            found[0].delete(found[1])

    def items(self) -> Iterator[tuple[int, StoredMessage]]:
        offset = 0
        for part in self.parts:
            for pos, msg in part.items():
                yield offset + pos, msg
            offset += part.capacity
