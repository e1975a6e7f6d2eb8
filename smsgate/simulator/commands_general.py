"""Handlers for the general commands of a simulated modem: V.250 basics (E, V, Z, I, ...), identity
(+CGMI, +CGSN, +CIMI, the ICCID variants), error reporting (+CMEE), SIM PIN/PUK (+CPIN, +CPINR),
character set (+CSCS), battery (+CBC) and USSD (+CUSD).

One of the command groups that ``modem.SimModem`` combines; ``HANDLERS`` maps command names to them.
"""

from __future__ import annotations

from .at_errors import AtFailure, cme
from .atparse import Command
from .modem_core import Handler, ModemCore
from .modem_state import Settings


class GeneralCommands(ModemCore):
    """V.250 basics, identity, SIM PIN/PUK, +CMEE, +CSCS, +CBC and +CUSD."""

    def _h_basic(self, cmd: Command) -> list[str]:
        value = int(cmd.arg(0, "0")) if cmd.args else 0
        if cmd.name == "E":
            self.s.echo = bool(value)
        elif cmd.name == "V":
            self.s.verbose = bool(value)
        elif cmd.name in ("Z", "&F"):
            keep_reg = (self.s.cfun,)
            self.s = Settings()
            self.s.cfun = keep_reg[0]
        elif cmd.name == "I":
            if value != 0:
                raise AtFailure("plain")  # no personality has other pages recorded; V.250 says ERROR
            return list(self.p.ati)
        elif cmd.name == "D":
            raise cme(3)
        elif cmd.name in ("H", "Q", "&C", "&D", "&K", "&W", "X", "L", "M") or cmd.name.startswith("S"):
            if cmd.kind == "read":
                return ["000"]
        else:
            raise AtFailure("unsupported")
        return []

    def _h_identity(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            return []
        name = cmd.name.replace("+G", "+CG") if cmd.name in ("+GMI", "+GMM", "+GMR", "+GSN") else cmd.name
        if name == "+CGMI":
            return [self.p.manufacturer]
        if name == "+CGMM":
            return [self.p.model]
        if name == "+CGMR":
            if self.p.revision is None:
                raise AtFailure("plain")
            return [self.p.revision]
        if name == "+CGSN":
            return [self.imei]
        if name == "+CIMI":
            self._require_sim_cme()
            return [self.sim.imsi]
        raise AtFailure("unsupported")

    def _h_cnum(self, cmd: Command) -> list[str]:
        # TS 27.007 §7.1. Not recorded in modem-profiles.md: standard form, with the MSISDN the
        # simulated SIM carries (many real SIMs have none stored and answer a bare OK).
        if cmd.kind == "test":
            return []
        self._require_sim_cme()
        if not self.sim.msisdn:
            return []
        kind = 145 if self.sim.msisdn.startswith("+") else 129
        return [f'+CNUM: "","{self.sim.msisdn}",{kind}']

    def _h_ccid(self, cmd: Command) -> list[str]:
        if cmd.name != self.p.ccid_command and not (cmd.name == "+CCID" and self.p.ccid_command == "+CCID"):
            raise AtFailure("unsupported")
        if cmd.kind == "test":
            return []
        prefix = cmd.name.lstrip("+^")
        return [f"+{prefix}: {self.sim.iccid}"] if self.p.ccid_prefixed else [self.sim.iccid]

    def _require_sim_cme(self) -> None:
        if self.sim.state == "SIM PIN":
            raise cme(11)
        if self.sim.state in ("SIM PUK", "BLOCKED"):
            raise cme(12 if self.sim.state == "SIM PUK" else 13)

    def _h_cmee(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            return [f"+CMEE: {self.s.cmee}"]
        if cmd.kind == "test":
            return ["+CMEE: (0-2)"]
        value = cmd.int_arg(0, 0)
        if value not in (0, 1, 2):
            raise cme(50)
        self.s.cmee = value
        return []

    def _h_cpin(self, cmd: Command) -> list[str] | None:
        if cmd.kind == "read":
            if self.sim.state == "BLOCKED":
                raise cme(13)
            line = f"+CPIN: {self.sim.state}"
            if not self.p.cpin_ok:
                self.write(self._frame(line))
                return None  # Wavecom: no final result after +CPIN:
            return [line]
        if cmd.kind == "test":
            return []
        code = cmd.arg(0)
        if self.sim.state == "READY":
            raise cme(3)
        if self.sim.state == "SIM PIN":
            if code != self.sim.pin:
                self.sim.pin_attempts -= 1
                if self.sim.pin_attempts <= 0:
                    self.sim.state = "SIM PUK"
                raise cme(16)
            self.sim.pin_attempts = 3
            self._unlock()
            return []
        if self.sim.state == "SIM PUK":
            new_pin = cmd.arg(1)
            if code != self.sim.puk or not new_pin:
                self.sim.puk_attempts -= 1
                if self.sim.puk_attempts <= 0:
                    self.sim.state = "BLOCKED"
                raise cme(16)
            self.sim.pin = new_pin
            self.sim.pin_attempts = 3
            self.sim.puk_attempts = 10
            self._unlock()
            return []
        raise cme(13)

    def _unlock(self) -> None:
        self.sim.state = "READY"
        self._schedule_attach()

    def _h_cpinr(self, cmd: Command) -> list[str]:
        return [
            f"+CPINR: SIM PIN,{self.sim.pin_attempts},3",
            f"+CPINR: SIM PUK,{self.sim.puk_attempts},10",
        ]

    def _h_cbc(self, cmd: Command) -> list[str]:
        return ["+CBC: 0,100"]

    def _h_cscs(self, cmd: Command) -> list[str] | None:
        if cmd.kind == "read":
            lines = [f'+CSCS: "{self.s.cscs}"']
            if self.p.cscs_read_trailing_empty_line:
                self.write(self._frame(lines[0]) + b"\r\n")
                self.write(self._final("OK"))
                return None
            return lines
        if cmd.kind == "test":
            return [self.p.cscs_test]
        value = cmd.arg(0).upper()
        if value not in ("IRA", "GSM", "UCS2"):
            raise cme(4)
        self.s.cscs = value
        return []

    def _h_cusd(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            return ["+CUSD: 0"]
        if cmd.kind == "test":
            return ["+CUSD: (0-2)"]
        n = cmd.int_arg(0, 0)
        if self.p.cusd_needs_ussdmode0 and n == 1 and self.s.ussdmode == 1:
            raise AtFailure("plain")
        if len(cmd.args) > 1 and cmd.arg(1):
            self._later(0.0, lambda: self.urc(['+CUSD: 0,"Balance: 10.00",15']))
        return []


HANDLERS: dict[str, Handler] = {
    **{n: GeneralCommands._h_basic for n in ("E", "V", "Z", "&F", "I", "D", "H", "Q", "&C", "&D", "&K", "&W", "X",
                                             "L", "M")},
    **{n: GeneralCommands._h_identity for n in ("+CGMI", "+CGMM", "+CGMR", "+CGSN", "+CIMI", "+GMI", "+GMM",
                                                "+GMR", "+GSN")},
    "+CNUM": GeneralCommands._h_cnum,
    "+CCID": GeneralCommands._h_ccid, "+QCCID": GeneralCommands._h_ccid, "^ICCID": GeneralCommands._h_ccid,
    "+CMEE": GeneralCommands._h_cmee, "+CPIN": GeneralCommands._h_cpin, "+CPINR": GeneralCommands._h_cpinr,
    "+CBC": GeneralCommands._h_cbc, "+CSCS": GeneralCommands._h_cscs, "+CUSD": GeneralCommands._h_cusd,
}
