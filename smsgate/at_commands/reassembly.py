"""Reassembly of concatenated messages (TS 23.040 §9.2.3.24.1).

Parts are grouped by (sender, reference, reference width, total): two senders may use the same reference,
and one sender's 8-bit and 16-bit references, or two messages that reuse a reference with a different
part count, are different messages. Even one key can hold two messages at once: a phone that draws its
references at random reuses one in about 1 of 256 pairs of long texts, so `group_for` decides which open
group a part belongs to, and a part that conflicts with a held one starts a group of its own. The daemon
keeps fragments in SQLite (the store calls `group_for`, then `join_parts` on what it has stored);
`Reassembler` is the same logic held in memory for tests, tools and the simulator's peers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from smsgate.at_commands import gsm7
from smsgate.at_commands.pdu import Deliver, StatusReport, Submit

__all__ = ["AssembledText", "Fragment", "GroupKey", "PendingGroup", "Reassembler", "assemble", "group_for",
           "join_parts"]


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
    sent_at: datetime | None = None  # TP-SCTS: tells apart two messages that share a reference

    def __post_init__(self) -> None:
        if self.total < 1 or not 1 <= self.seq <= self.total:
            raise ValueError(f"part {self.seq} of {self.total} is impossible")

    @property
    def key(self) -> GroupKey:
        return GroupKey(self.sender, self.reference, self.ref_bits, self.total)

    @classmethod
    def of(cls, message: Deliver | Submit | StatusReport) -> Fragment:
        c = message.concat
        ref, bits, total, seq = (0, 0, 1, 1) if c is None else (c.ref, c.ref_bits, c.total, c.seq)
        return cls(message.number, ref, bits, total, seq, message.text, message.encoding, message.ends_in_escape,
                   message.timestamp)

    def same_part_as(self, other: Fragment) -> bool:
        """A copy of `other` (the SMSC delivered it twice, the modem was read again), not another message's
        part with the same number: same number, text and timestamp."""
        return (self.seq, self.text, self.sent_at) == (other.seq, other.text, other.sent_at)


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
    completes = completed_escapes(by_seq, total)
    for seq in range(1, total + 1):
        part = by_seq.get(seq)
        if part is None:
            if gap is not None:
                pieces.append(gap(seq))
            continue
        text = part.text
        completed = gsm7.escaped_by(text[0]) if seq - 1 in completes else None
        if completed is not None:
            pieces[-1] = pieces[-1][:-1]
            text = completed + text[1:]
        pieces.append(text)
    return "".join(pieces)


def completed_escapes(by_seq: Mapping[int, Fragment], total: int) -> set[int]:
    """The parts whose trailing lone escape the next part completes into an extension character; every
    other lone escape stays a space (and its decode note stands)."""
    done: set[int] = set()
    for seq in range(1, total):
        part, after = by_seq.get(seq), by_seq.get(seq + 1)
        if (part is not None and after is not None and part.ends_in_escape and part.text.endswith(" ")
                and after.encoding == "gsm7" and after.text and gsm7.escaped_by(after.text[0]) is not None):
            done.add(seq)
    return done


def group_for(part: Fragment, groups: Sequence[Sequence[Fragment]]) -> int | None:
    """The index of the open group of `part`'s key that it belongs to, or None when it starts a new one.

    A group holding a copy of the part takes it. A group holding a different part with its number cannot:
    that is another message reusing the reference, and joining them would lose one of the two. Of the
    groups still lacking the number, the one whose parts the SMSC stamped nearest to this one wins (it
    stamps one message's parts seconds apart); without timestamps, the oldest group.
    """
    best: tuple[float, int] | None = None
    for index, group in enumerate(groups):
        held = [f for f in group if f.seq == part.seq]
        if held:
            if all(part.same_part_as(f) for f in held):
                return index
            continue
        gaps = [abs((f.sent_at - part.sent_at).total_seconds()) for f in group
                if f.sent_at is not None and part.sent_at is not None]
        rank = (min(gaps, default=math.inf), index)
        if best is None or rank < best:
            best = rank
    return None if best is None else best[1]


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
        self._groups: list[_Open] = []

    def add(self, fragment: Fragment | Deliver | Submit | StatusReport) -> AssembledText | None:
        """Store a part; return the whole message when this part completes it, else None.

        A part that arrives again after its group was completed starts a new group, as it would be a
        resend of the same message; one that conflicts with a held part starts a new group at once.
        """
        if not isinstance(fragment, Fragment):
            fragment = Fragment.of(fragment)
        same_key = [g for g in self._groups if g.key == fragment.key]
        index = group_for(fragment, [g.parts for g in same_key])
        if index is None:
            group = _Open(fragment.key, [], self._clock())
            self._groups.append(group)
        else:
            group = same_key[index]
        group.parts.append(fragment)
        result = assemble(group.parts)
        if not result.complete:
            return None
        self._groups.remove(group)
        return result

    def pending(self) -> list[PendingGroup]:
        out = []
        for group in self._groups:
            partial = assemble(group.parts)
            received = sorted({f.seq for f in group.parts})
            out.append(PendingGroup(group.key, received, partial.missing, group.first_seen))
        return out

    def expire(self, older_than: float) -> list[AssembledText]:
        """Give up on groups first seen more than `older_than` seconds ago; return what they hold."""
        now = self._clock()
        stale = [g for g in self._groups if now - g.first_seen > older_than]
        for group in stale:
            self._groups.remove(group)
        return [assemble(g.parts) for g in stale]


@dataclass(eq=False)
class _Open:
    key: GroupKey
    parts: list[Fragment]
    first_seen: float
