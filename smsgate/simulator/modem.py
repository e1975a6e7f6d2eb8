"""A simulated GSM modem: the AT state machine behind one pseudo-terminal.

Runs only on the simulator's event loop thread. Framing follows V.250 (CR-terminated command lines,
``\\r\\n``-framed replies, echo on at power-up); commands follow 3GPP TS 27.005/27.007 with the quirks of
the chosen personality.

The modem is put together here from its parts: ``modem_core`` (state and the command line), the command
groups ``commands_general``, ``commands_network`` and ``commands_sms``, and ``sms_traffic``. This module
adds power and plugging, and keeps exporting the names the rest of the simulator imports from it.
"""

from __future__ import annotations

import random
from typing import ClassVar

from . import commands_general, commands_network, commands_sms
from .at_errors import CME_TEXT, CMS_TEXT, AtFailure, cme, cms
from .commands_general import GeneralCommands
from .commands_network import NetworkCommands
from .commands_sms import SmsCommands
from .device import PtyDevice
from .modem_core import Handler
from .modem_state import FaultState, ModemCounters, Settings, SimCard
from .sms_traffic import SmsTraffic
from .storage import STAT_REC_UNREAD

__all__ = [
    "CME_TEXT",
    "CMS_TEXT",
    "AtFailure",
    "FaultState",
    "ModemCounters",
    "PtyDevice",
    "SimCard",
    "SimModem",
    "cme",
    "cms",
    "random_digits",
]


class SimModem(GeneralCommands, NetworkCommands, SmsCommands, SmsTraffic):
    """State machine of one modem; ``feed`` takes bytes from the line, replies go out through the pty."""

    HANDLERS: ClassVar[dict[str, Handler]] = {
        **commands_general.HANDLERS, **commands_network.HANDLERS, **commands_sms.HANDLERS,
    }

    # ----------------------------------------------------------------- power and the pty

    def plug(self, *, registration_delay: float, boot_urcs: bool = True) -> None:
        """Make the device appear; ``boot_urcs=False`` for a modem that was already up when we started."""
        self.device.open()
        self.loop.add_reader(self.device.master, self._on_readable)
        self.power_on(registration_delay=registration_delay, boot_urcs=boot_urcs)

    def unplug(self) -> None:
        self.power_off()
        if self.device.is_open:
            self.loop.remove_fd(self.device.master)
            self.device.close()
        self._outbuf.clear()

    def power_on(self, *, registration_delay: float, boot_urcs: bool = True) -> None:
        self._power_epoch += 1
        self.s = Settings()
        self.s.mems = ["SM", "SM", "SM"] if "SM" in self.p.memories else ["ME", "ME", "ME"]
        self.powered = True
        self.attached = False
        self._state = "command"
        self._line.clear()
        self._held.clear()
        self._urc_queue.clear()
        self._sms_buffer.clear()
        self._awaiting_ack = None
        self.faults.hung = False
        self.faults.mute = False
        if self.sim.pin is not None and self.sim.state == "READY":
            self.sim.state = "SIM PIN"
        self.reg_stat = dict.fromkeys(self.reg_stat, 0)
        self.registration_delay = registration_delay
        if self.sim.state == "READY":
            self._schedule_attach()
        if boot_urcs and (self.p.boot_urcs or self.p.boot_notifies_stored):
            # Later than the port appearing, as a booting module is: a client that opens at once sees them.
            self._later(self.boot_urc_delay, self._boot_urcs)
        if self.p.periodic_urcs and self.periodic_urc_interval > 0:
            self._schedule_periodic(self._power_epoch)

    def _boot_urcs(self) -> None:
        for line in self.p.boot_urcs:
            if line.startswith("+CPIN:"):
                line = f"+CPIN: {self.sim.state}"
            self.urc([line])
        if self.p.boot_notifies_stored:
            for pos, msg in self.storages["SM"].items():
                if msg.stat == STAT_REC_UNREAD:
                    self.urc([f'+CMTI: "SM",{pos + self.p.first_index}'])

    def power_off(self) -> None:
        self._power_epoch += 1
        self.powered = False
        self.attached = False
        for t in self._timers:
            t.cancel()
        self._timers.clear()
        if self._ack_timer:
            self._ack_timer.cancel()
            self._ack_timer = None
        self._awaiting_ack = None
        self._state = "command"

    def _schedule_periodic(self, epoch: int) -> None:
        def tick() -> None:
            if self.s.curc:
                self.urc([f"^RSSI:{self.signal}"])
                self.urc(["^MODE:5,4"])
                self.urc(["^BOOT:20952548,0,0,0,72"])
            self._later(self.periodic_urc_interval, tick)

        self._later(self.periodic_urc_interval, tick)


def random_digits(rng: random.Random, prefix: str, length: int) -> str:
    return prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix)))
