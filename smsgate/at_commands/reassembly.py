"""Reassembly of concatenated messages (TS 23.040 §9.2.3.24.1).

Parts are grouped by (sender, reference, reference width, total): two senders may use the same reference,
and one sender's 8-bit and 16-bit references, or two messages that reuse a reference with a different
part count, are different messages. The daemon keeps fragments in SQLite and calls `assemble` on what it
has stored; `Reassembler` is the same logic held in memory for tests, tools and the simulator's peers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from smsgate.at_commands import gsm7
from smsgate.at_commands.pdu import Deliver, StatusReport, Submit

__all__ = ["AssembledText", "Fragment", "GroupKey", "PendingGroup", "Reassembler", "assemble", "join_parts"]


@dataclass(frozen=True)
class GroupKey:
    sender: str
    reference: int
    ref_bits: int
    total: int


@dataclass(frozen=True)
class Fragment:
    """One part of a (possibly) concatenated message; a message without a concatenation element is a
    group of one."""

    sender: str
    reference: int
    ref_bits: int
    total: int
    seq: int
    text: str
    encoding: str | None = "gsm7"  # only a GSM-7 part can finish an escape pair the part before left open
    ends_in_escape: bool = False

    def __post_init__(self) -> None:
        if self.total < 1 or not 1 <= self.seq <= self.total:
            raise ValueError(f"part {self.seq} of {self.total} is impossible")

    @property
    def key(self) -> GroupKey:
        return GroupKey(self.sender, self.reference, self.ref_bits, self.total)

    @classmethod
    def of(cls, message: Deliver | Submit | StatusReport) -> Fragment:
        c = message.concat
        if c is None:
            return cls(message.number, 0, 0, 1, 1, message.text, message.encoding, message.ends_in_escape)
        return cls(message.number, c.ref, c.ref_bits, c.total, c.seq, message.text, message.encoding,
                   message.ends_in_escape)


@dataclass(frozen=True)
class AssembledText:
    """The text of the parts present, in order; `missing` lists absent part numbers (1-based)."""

    text: str
    missing: list[int]
    complete: bool
    key: GroupKey | None = None
    duplicates: int = 0
    conflicting: list[int] = field(default_factory=list)


def assemble(parts: Iterable[Fragment]) -> AssembledText:
    """Join the fragments of one group, in any order, with duplicates.

    A repeated part with the same text is counted in `duplicates`; one with a different text keeps the
    first copy and is listed in `conflicting`, so the caller can show that the message is doubtful.
    """
    by_seq: dict[int, Fragment] = {}
    key: GroupKey | None = None
    duplicates = 0
    conflicting: list[int] = []
    for part in parts:
        if key is None:
            key = part.key
        elif part.key != key:
            raise ValueError(f"fragment of {part.key} does not belong to group {key}")
        if part.seq in by_seq:
            duplicates += 1
            if by_seq[part.seq].text != part.text and part.seq not in conflicting:
                conflicting.append(part.seq)
            continue
        by_seq[part.seq] = part
    if key is None:
        return AssembledText("", [], False)
    missing = [seq for seq in range(1, key.total + 1) if seq not in by_seq]
    return AssembledText(join_parts(by_seq, key.total), missing, not missing, key, duplicates, sorted(conflicting))


def join_parts(by_seq: Mapping[int, Fragment], total: int, *, gap: Callable[[int], str] | None = None) -> str:
    """The text of parts 1..`total` in order; `gap(n)` stands for an absent part n (left out when None).

    A part ending in a lone escape (shown as a space) and a GSM-7 next part whose first septet completes
    an extension character are joined into that character: senders that split a message by septets
    leave ESC at the end of one part and the code after it at the start of the next. When the next part
    is absent or cannot complete it, the escape stays a space, as TS 23.038 §6.2.1.1 has receivers show
    an escape they cannot resolve.
    """
    pieces: list[str] = []
    previous: Fragment | None = None
    for seq in range(1, total + 1):
        part = by_seq.get(seq)
        if part is None:
            if gap is not None:
                pieces.append(gap(seq))
            previous = None
            continue
        text = part.text
        if previous is not None and previous.ends_in_escape and part.encoding == "gsm7" and text:
            completed = gsm7.escaped_by(text[0])
            if completed is not None and pieces[-1].endswith(" "):
                pieces[-1] = pieces[-1][:-1]
                text = completed + text[1:]
        pieces.append(text)
        previous = part
    return "".join(pieces)


@dataclass(frozen=True)
class PendingGroup:
    key: GroupKey
    received: list[int]
    missing: list[int]
    first_seen: float


class Reassembler:
    """Collects fragments in memory and hands back each message once all its parts are in.

    `clock` (monotonic seconds) is injectable so that `expire` can be tested without waiting.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._groups: dict[GroupKey, list[Fragment]] = {}
        self._first_seen: dict[GroupKey, float] = {}

    def add(self, fragment: Fragment | Deliver | Submit | StatusReport) -> AssembledText | None:
        """Store a part; return the whole message when this part completes it, else None.

        A part that arrives again after its group was completed starts a new group, as it would be a
        resend of the same message.
        """
        if not isinstance(fragment, Fragment):
            fragment = Fragment.of(fragment)
        key = fragment.key
        group = self._groups.setdefault(key, [])
        self._first_seen.setdefault(key, self._clock())
        group.append(fragment)
        result = assemble(group)
        if not result.complete:
            return None
        del self._groups[key]
        del self._first_seen[key]
        return result

    def pending(self) -> list[PendingGroup]:
        out = []
        for key, group in self._groups.items():
            partial = assemble(group)
            received = sorted({f.seq for f in group})
            out.append(PendingGroup(key, received, partial.missing, self._first_seen[key]))
        return out

    def expire(self, older_than: float) -> list[AssembledText]:
        """Give up on groups first seen more than `older_than` seconds ago; return what they hold."""
        now = self._clock()
        stale = [key for key, seen in self._first_seen.items() if now - seen > older_than]
        out = []
        for key in stale:
            out.append(assemble(self._groups.pop(key)))
            del self._first_seen[key]
        return out
