"""What exists only while a modem's port is open and brought up: one `ModemSession` per successful bring-up.

The worker holds `session: ModemSession | None`. None means "bring the modem up (again) before using it",
so nothing that needs the port can run against half of one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from smsgate.at_commands.channel import AtChannel
from smsgate.at_commands.errors import CmsError, CommandFailed
from smsgate.at_commands.modem import Modem, Registration, Signal
from smsgate.queue import Store

from .inbound import InboundProcessor, Outcome
from .outbound import Sender

log = logging.getLogger(__name__)


class CappedChannel:
    """The channel with every command deadline shortened to at most `cap` seconds (tests of hangs)."""

    def __init__(self, channel: AtChannel, cap: float | None) -> None:
        self.channel = channel
        self.cap = cap

    def _t(self, timeout: float) -> float:
        return timeout if self.cap is None else min(timeout, self.cap)

    def command(self, cmd: str, *, timeout: float = 5.0, expect: tuple[str, ...] | None = None,
                terminal: tuple[str, ...] = (), bare_info: bool | None = None,
                secret: str | None = None) -> list[str]:
        return self.channel.command(cmd, timeout=self._t(timeout), expect=expect, terminal=terminal,
                                    bare_info=bare_info, secret=secret)

    def send_pdu(self, pdu_hex: str, tpdu_length: int, *, timeout: float = 60.0) -> int:
        return self.channel.send_pdu(pdu_hex, tpdu_length, timeout=timeout)


def modem_over(channel: AtChannel, command_timeout_cap: float | None) -> Modem:
    return Modem(CappedChannel(channel, command_timeout_cap))


@dataclass(frozen=True)
class Health:
    """One health poll's facts; `used`/`total` are the first memory's, None when the modem will not say."""

    signal: Signal
    registration: Registration
    operator: str | None
    used: int | None
    total: int | None


@dataclass
class ModemSession:
    """One brought-up modem: its port, the handlers built for it, and what bring-up chose.

    Its methods are the reads that need exactly these parts (take, sweep, health facts); when to run
    them is the worker's business.
    """

    name: str
    channel: AtChannel
    modem: Modem
    store: Store  # the worker thread's own connection; inbound and sender write through it too
    modem_id: int
    inbound: InboundProcessor
    sender: Sender
    memories: tuple[str, ...]  # selected with +CPMS; memories[0] is where reads and deletes go
    sweep_memories: list[str] = field(default_factory=list)  # SR drops out when the modem refuses it
    notices: bool = True  # False: no usable +CNMI, so storage is polled
    cnma: bool = False  # direct deliveries are acknowledged with AT+CNMA

    def select_home(self) -> None:
        """Back to the selected memories after reading another one."""
        self.modem.select_storage(*self.memories)

    def take(self, index: int | None, pdu_hex: str) -> Outcome | None:
        """Store one PDU, then (and only then) delete the modem's copy."""
        pdu = pdu_hex.strip()
        if not pdu:
            return None
        outcome = self.inbound.process(pdu)
        if outcome.kind == "undecodable" and index is None:
            alt = self.inbound.process(pdu, has_smsc=False)
            outcome = alt if alt.kind != "undecodable" else outcome
        if outcome.delete and index is not None:
            try:
                self.modem.delete_message(index)
            except CmsError as exc:
                if exc.code != 321:
                    raise
        return outcome

    def sweep(self) -> None:
        """Take everything stored in the swept memories; SR leaves the sweep the first time it is refused."""
        m = self.modem
        for mem in list(self.sweep_memories) or [""]:
            switched = bool(mem) and mem != self.memories[0]
            if switched:
                try:
                    m.select_storage(mem)
                except CommandFailed as exc:
                    if mem == "SR":
                        log.info("modem %s: no status-report memory SR (%s)", self.name, exc.final_line)
                        self.sweep_memories.remove(mem)
                        continue
                    raise
            try:
                for item in m.list_messages(4):
                    if item.stat in (2, 3):
                        continue  # stored outgoing messages are not ours
                    self.take(item.index, item.pdu_hex)
            except CmsError as exc:
                log.info("modem %s: sweeping %s failed: %s", self.name, mem or "storage", exc)
            finally:
                if switched:
                    self.select_home()

    def read_health(self) -> Health:
        m = self.modem
        sig = m.signal()
        reg = m.registration()
        try:
            op = m.operator().name
        except CommandFailed:
            op = None
        used = total = None
        try:
            uses = m.storage()
            if uses:
                used, total = uses[0].used, uses[0].total
        except CommandFailed as exc:
            log.debug("modem %s: AT+CPMS? failed: %s", self.name, exc.final_line)
        return Health(sig, reg, op, used, total)
