"""Network registration of a simulated modem and the commands about it: +CREG/+CGREG/+CEREG with their
URCs, +CGATT, +CSQ, +COPS and +CFUN (which takes the radio off the network or reboots the modem).

One of the command groups that ``modem.SimModem`` combines; ``HANDLERS`` maps command names to them.
"""

from __future__ import annotations

from .at_errors import AtFailure, cme
from .atparse import Command
from .modem_core import Handler, ModemCore


class NetworkCommands(ModemCore):
    """Registration state (attach after a delay, the URCs +CREG=1/2 ask for) and the network commands."""

    def _schedule_attach(self) -> None:
        def attach() -> None:
            self.attached = True
            self.update_registration()
            self.network.retry_pending(self)

        if self.registration_delay <= 0:
            self.attached = True
            self.update_registration()
        else:
            self.update_registration()
            self._later(self.registration_delay, attach)

    @property
    def registered(self) -> bool:
        return self.reg_stat["+CREG"] in (1, 5)

    def _target_stat(self) -> int:
        if not self.powered or self.s.cfun != 1 or self.sim.state != "READY" or self.faults.no_network:
            return 0
        if self.faults.registration_denied:
            return 3
        return 1 if self.attached else 2

    def update_registration(self) -> None:
        stat = self._target_stat()
        for name, n_attr in (("+CREG", "creg"), ("+CGREG", "cgreg"), ("+CEREG", "cereg")):
            if self.reg_stat[name] == stat:
                continue
            self.reg_stat[name] = stat
            n = getattr(self.s, n_attr)
            if n == 1:
                self.urc([f"{name}: {stat}"])
            elif n == 2:
                self.urc([f"{name}: {stat}" + (self._location(name) if stat in (1, 5) else "")])
        if stat == 1:
            self.network.retry_pending(self)

    def _location(self, name: str) -> str:
        if self.p.creg_unquoted_hex:
            return ",4CA,81DE445"
        if name == "+CEREG":
            return ',"00A1","00001234",7'
        return ',"00A1","00001234"'

    def set_signal(self, rssi: int) -> None:
        self.signal = rssi
        if self.p.periodic_urcs and self.s.curc:
            self.urc([f"^RSSI:{rssi}"])

    def _h_reg(self, cmd: Command) -> list[str]:
        attr = {"+CREG": "creg", "+CGREG": "cgreg", "+CEREG": "cereg"}[cmd.name]
        if cmd.kind == "test":
            return [f"{cmd.name}: (0-2)"]
        if cmd.kind == "set":
            value = cmd.int_arg(0, 0)
            if value not in (0, 1, 2):
                raise cme(50)
            setattr(self.s, attr, value)
            return []
        if cmd.kind == "read":
            n = getattr(self.s, attr)
            stat = self.reg_stat[cmd.name]
            loc = self._location(cmd.name) if n == 2 and stat in (1, 5) else ""
            return [f"{cmd.name}: {n},{stat}{loc}"]
        raise AtFailure("unsupported")

    def _h_cgatt(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            return [f"+CGATT: {1 if self.registered else 0}"]
        if cmd.kind == "test":
            return ["+CGATT: (0,1)"]
        return []

    def _h_csq(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            return ["+CSQ: (0-31,99),(0-7,99)"]
        rssi = self.signal if self.registered or self.attached else 99
        return [f"+CSQ: {rssi},99"]

    def _h_cops(self, cmd: Command) -> list[str]:
        if cmd.kind == "set":
            mode = cmd.int_arg(0, 0)
            if mode == 3:
                fmt = cmd.int_arg(1, 0)
                if fmt not in (0, 1, 2):
                    raise cme(50)
                self.s.cops_format = fmt
            return []
        if cmd.kind == "test":
            op = f'"{self.operator_name}","{self.operator_name[:8]}","{self.operator_numeric}"'
            return [f"+COPS: (2,{op},2),,(0-4),(0-2)"]
        if not self.registered:
            return ["+COPS: 0"]
        value = self.operator_numeric if self.s.cops_format == 2 else self.operator_name
        return [f'+COPS: 0,{self.s.cops_format},"{value}",2']

    def _h_cfun(self, cmd: Command) -> list[str] | None:
        if cmd.kind == "read":
            return [f"+CFUN: {self.s.cfun}"]
        if cmd.kind == "test":
            return ["+CFUN: (0,1,4),(0,1)"]
        fun = cmd.int_arg(0, 1)
        rst = cmd.int_arg(1, 0)
        if fun not in (0, 1, 4) or rst not in (0, 1):
            raise cme(50)
        if rst == 1:
            self.write(self._final("OK"))
            self.network.reboot_modem(self)
            return None
        self.s.cfun = fun
        if fun == 1:
            if self.p.cfun_busy_seconds > 0:
                self.s.busy_until = self.loop.time() + self.p.cfun_busy_seconds
            if not self.attached and self.sim.state == "READY":
                self._schedule_attach()
        else:
            self.attached = False
        self.update_registration()
        return []


HANDLERS: dict[str, Handler] = {
    "+CREG": NetworkCommands._h_reg, "+CGREG": NetworkCommands._h_reg, "+CEREG": NetworkCommands._h_reg,
    "+CGATT": NetworkCommands._h_cgatt, "+CSQ": NetworkCommands._h_csq, "+COPS": NetworkCommands._h_cops,
    "+CFUN": NetworkCommands._h_cfun,
}
