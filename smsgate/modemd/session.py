"""What exists only while a modem's port is open and brought up: one `ModemSession` per successful bring-up.

The worker holds `session: ModemSession | None`. None means "bring the modem up (again) before using it",
so nothing that needs the port can run against half of one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from smsgate.at_commands.channel import AtChannel
from smsgate.at_commands.modem import Modem
from smsgate.queue import Store

from .inbound import InboundProcessor
from .outbound import Sender


class CappedChannel:
    """The channel with every command deadline shortened to at most `cap` seconds (tests of hangs)."""

    def __init__(self, channel: AtChannel, cap: float | None) -> None:
        self.channel = channel
        self.cap = cap

    def _t(self, timeout: float) -> float:
        return timeout if self.cap is None else min(timeout, self.cap)

    def command(self, cmd: str, *, timeout: float = 5.0, **kw: object) -> list[str]:
        return self.channel.command(cmd, timeout=self._t(timeout), **kw)  # type: ignore[arg-type]

    def send_pdu(self, pdu_hex: str, tpdu_length: int, *, timeout: float = 60.0) -> int:
        return self.channel.send_pdu(pdu_hex, tpdu_length, timeout=timeout)


def modem_over(channel: AtChannel, command_timeout_cap: float | None) -> Modem:
    return Modem(CappedChannel(channel, command_timeout_cap))


@dataclass
class ModemSession:
    """One brought-up modem: its port, the handlers built for it, and what bring-up chose."""

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
