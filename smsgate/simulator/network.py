"""The virtual network: an SMSC, handsets (phone numbers), and routing between them and the modems.

Runs on the event loop thread; ``Handset`` inboxes are read from other threads under a condition.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import pdu as pdumod
from .loop import EventLoop

if TYPE_CHECKING:
    from .modem import SimModem

log = logging.getLogger(__name__)

REPORT_STATUS = {"delivered": 0x00, "pending": 0x20, "failed": 0x41}
OUTCOMES = ("delivered", "failed", "pending_then_delivered", "delivered_then_pending", "none")


class UnknownNumber(LookupError):
    """A handset tried to text a number that is no simulated modem."""


class BadOutcome(ValueError):
    """Status report outcomes are delivered, failed, pending_then_delivered or none."""


def normalise(number: str) -> str:
    digits = "".join(c for c in number if c.isdigit())
    return digits


@dataclass
class HandsetMessage:
    """One SMS part a handset received from a modem."""

    sender: str
    text: str | None
    concat: tuple[int, int, int] | None
    mr: int
    status_report_requested: bool
    dcs: int
    payload: bytes
    received_at: dt.datetime


@dataclass
class Handset:
    """A phone on the virtual network; ``inbox`` holds the parts it received, in arrival order."""

    number: str
    inbox: list[HandsetMessage] = field(default_factory=list)
    report_outcomes: deque[str] = field(default_factory=deque)
    default_outcome: str = "delivered"
    cond: threading.Condition = field(default_factory=threading.Condition)

    def received_texts(self) -> list[str]:
        """Texts reassembled from their parts, in the order each completed."""
        with self.cond:
            messages = list(self.inbox)
        return reassemble(messages)


def reassemble(messages: list[HandsetMessage]) -> list[str]:
    texts: list[str] = []
    groups: dict[tuple[str, int, int], dict[int, str]] = {}
    for m in messages:
        if m.concat is None:
            texts.append(m.text or "")
            continue
        ref, total, seq = m.concat
        group = groups.setdefault((normalise(m.sender), ref, total), {})
        group[seq] = m.text or ""
        if len(group) == total:
            texts.append("".join(group[i] for i in range(1, total + 1)))
            del groups[(normalise(m.sender), ref, total)]
    return texts


class Network:
    """Routes SMS between modems and handsets; issues TP-MR-keyed status reports."""

    def __init__(
        self,
        loop: EventLoop,
        *,
        smsc: str = "+15550000000",
        latency: float | tuple[float, float] = (2.0, 6.0),
        status_report_delay: float = 0.0,
        pending_delay: float = 1.0,
        cnma_timeout: float = 10.0,
        seed: int | None = None,
    ) -> None:
        self.loop = loop
        self.smsc = smsc
        self.latency = latency
        self.status_report_delay = status_report_delay
        self.pending_delay = pending_delay
        self.cnma_timeout = cnma_timeout
        self.rng = random.Random(seed)
        self.modems: dict[str, SimModem] = {}  # by normalised MSISDN
        self.handsets: dict[str, Handset] = {}
        self.pending: dict[str, deque[bytes]] = {}  # SMS-DELIVERs waiting for a modem, by modem name
        self.reboot_hook: Callable[[SimModem], None] | None = None

    def send_latency(self) -> float:
        if isinstance(self.latency, tuple):
            return self.rng.uniform(*self.latency)
        return float(self.latency)

    def add_modem(self, modem: SimModem) -> None:
        self.modems[normalise(modem.sim.msisdn)] = modem
        self.pending.setdefault(modem.name, deque())

    def handset(self, number: str) -> Handset:
        key = normalise(number)
        if key not in self.handsets:
            self.handsets[key] = Handset(number if number.startswith("+") else "+" + key)
        return self.handsets[key]

    def reboot_modem(self, modem: SimModem) -> None:
        if self.reboot_hook is not None:
            self.reboot_hook(modem)

    # modem → network ------------------------------------------------------------

    def submit(self, modem: SimModem, submit: pdumod.Submit, mr: int, *, early_report: bool) -> None:
        """Accept an SMS-SUBMIT from ``modem`` (the +CMGS succeeded) and route it."""
        now = dt.datetime.now(dt.UTC)
        key = normalise(submit.destination)
        outcome = "delivered"
        target = self.modems.get(key)
        if target is None:
            handset = self.handset(submit.destination)
            with handset.cond:
                outcome = handset.report_outcomes.popleft() if handset.report_outcomes else handset.default_outcome

        def deliver() -> None:
            if target is not None:
                self.offer(target, self._as_deliver(modem.sim.msisdn, submit))
                return
            handset = self.handset(submit.destination)
            message = HandsetMessage(
                sender=modem.sim.msisdn, text=submit.text, concat=submit.concat, mr=mr,
                status_report_requested=submit.srr, dcs=submit.dcs, payload=submit.payload,
                received_at=dt.datetime.now(dt.UTC),
            )
            with handset.cond:
                handset.inbox.append(message)
                handset.cond.notify_all()

        def report(status: int, immediate: bool = False) -> None:
            tpdu = pdumod.build_status_report(
                mr, submit.destination, status, submitted=now, done=dt.datetime.now(dt.UTC)
            )
            modem.accept_status_report(tpdu, immediate=immediate)

        if outcome == "failed":
            if submit.srr:
                self._after(self.status_report_delay, lambda imm: report(REPORT_STATUS["failed"], imm), early_report)
            return
        if outcome == "pending_then_delivered":
            if submit.srr:
                self._after(self.status_report_delay, lambda imm: report(REPORT_STATUS["pending"], imm), early_report)

            def later() -> None:
                deliver()
                if submit.srr:
                    report(REPORT_STATUS["delivered"])

            self.loop.call_later(self.pending_delay, later)
            return
        deliver()
        if submit.srr and outcome == "delivered_then_pending":
            # Out of order (vumi#991): a stale "pending" report arrives after the final "delivered".
            def stale() -> None:
                report(REPORT_STATUS["pending"])

            self._after(self.status_report_delay, lambda imm: report(REPORT_STATUS["delivered"], imm), early_report)
            self.loop.call_later(self.status_report_delay + 0.05, stale)
            return
        if submit.srr and outcome != "none":
            self._after(self.status_report_delay, lambda imm: report(REPORT_STATUS["delivered"], imm), early_report)

    def _after(self, delay: float, fn: Callable[[bool], None], early: bool) -> None:
        if early:
            fn(True)  # fault: the report overtakes the +CMGS answer
        else:
            self.loop.call_later(delay, lambda: fn(False))

    def _as_deliver(self, originator: str, submit: pdumod.Submit) -> bytes:
        udhi = bool(submit.udh)
        fo = pdumod.MTI_DELIVER | 0x04 | (0x40 if udhi else 0)
        header = bytes([len(submit.udh)]) + submit.udh if udhi else b""
        coding = pdumod.data_coding(submit.dcs)
        if coding == "gsm7" and submit.text is not None:
            header_septets = (len(header) * 8 + 6) // 7
            fill = header_septets * 7 - len(header) * 8
            septets = pdumod.gsm7_septets(submit.text) or []
            ud = header + pdumod.pack_septets(septets, fill)
            udl = header_septets + len(septets)
        else:
            ud = header + submit.payload
            udl = len(ud)
        return (
            bytes([fo]) + pdumod.encode_address(originator) + bytes([submit.pid, submit.dcs])
            + pdumod.scts(dt.datetime.now(dt.UTC)) + bytes([udl]) + ud
        )

    # network → modem --------------------------------------------------------------

    def offer(self, modem: SimModem, tpdu: bytes) -> None:
        queue = self.pending[modem.name]
        queue.append(tpdu)
        self.retry_pending(modem)

    def requeue(self, modem: SimModem, tpdu: bytes) -> None:
        self.pending[modem.name].appendleft(tpdu)
        self.retry_pending(modem)

    def retry_pending(self, modem: SimModem) -> None:
        queue = self.pending.get(modem.name)
        while queue and modem.accept_sms(queue[0]):
            queue.popleft()

    def text_modem(
        self, sender: str, to: str, text: str, *, shuffle: bool = False, reference: int | None = None
    ) -> int:
        """A handset texts a modem; returns the number of parts sent."""
        modem = self.modems.get(normalise(to))
        if modem is None:
            known = ", ".join(m.sim.msisdn for m in self.modems.values())
            raise UnknownNumber(f"{to} is not a simulated modem's number (modems: {known})")
        self.handset(sender)
        parts = pdumod.build_deliver(
            sender, text, reference=self.rng.randrange(256) if reference is None else reference
        )
        if shuffle and len(parts) > 1:
            order = parts[:]
            while order == parts:
                self.rng.shuffle(order)
            parts = order
        for part in parts:
            self.offer(modem, part.tpdu)
        return len(parts)
