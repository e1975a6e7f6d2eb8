"""Handlers for the SMS commands of a simulated modem (TS 27.005): service and format settings (+CSCA,
+CMGF, +CSMS, +CMMS, +CSMP), new-message indications (+CNMI, +CNMA), message storage (+CPMS, +CMGR, +CMGL,
+CMGD, +CMGW) and the start of a send (+CMGS, +CMSS).

One of the command groups that ``modem.SimModem`` combines; ``HANDLERS`` maps command names to them. What
happens after the PDU prompt, and SMS arriving from the network, is in ``sms_traffic``.
"""

from __future__ import annotations

from . import pdu as pdumod
from .at_errors import AtFailure, cms
from .atparse import Command
from .modem_core import Handler, ModemCore
from .storage import STAT_NAMES, STAT_REC_READ, STAT_REC_UNREAD, STAT_STO_SENT, STAT_STO_UNSENT, Storage, StoredMessage


class SmsCommands(ModemCore):
    """SMS settings, indications, storage and the commands that start a send."""

    def _h_csca(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            toa = 145 if self.smsc.startswith("+") else 129
            return [f'+CSCA: "{self.smsc}",{toa}']
        if cmd.kind == "set":
            number = cmd.arg(0)
            if not number.lstrip("+").isdigit():
                raise cms(304)
            self.smsc = number
            return []
        return []

    def _h_cmgf(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            return [f"+CMGF: {self.s.cmgf}"]
        if cmd.kind == "test":
            return ["+CMGF: (0,1)"]
        value = cmd.int_arg(0, 0)
        if value not in (0, 1):
            raise cms(302)
        self.s.cmgf = value
        return []

    def _h_csms(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            return [f"+CSMS: {self.s.csms},1,1,1"]
        if cmd.kind == "test":
            return ["+CSMS: (0,1)"]
        value = cmd.int_arg(0, 0)
        if value not in (0, 1):
            raise cms(302)
        self.s.csms = value
        return ["+CSMS: 1,1,1"]

    def _h_cmms(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            return [f"+CMMS: {self.s.cmms}"]
        if cmd.kind == "test":
            return ["+CMMS: (0-2)"]
        value = cmd.int_arg(0, 0)
        if value not in (0, 1, 2):
            raise cms(302)
        self.s.cmms = value
        return []

    def _h_csmp(self, cmd: Command) -> list[str]:
        if cmd.kind == "read":
            return ["+CSMP: 17,167,0,0"]
        return []

    def _h_cnmi(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            return [self.p.cnmi_test]
        if cmd.kind == "read":
            return ["+CNMI: " + ",".join(str(v) for v in self.s.cnmi)]
        if self.sim.state != "READY":
            raise cms(311 if self.sim.state == "SIM PIN" else 316)
        values = [cmd.int_arg(i, 0) for i in range(5)]
        mode, mt, bm, ds, bfr = values
        if mode not in (0, 1, 2, 3) or mt not in (0, 1, 2, 3) or ds not in (0, 1, 2) or bfr not in (0, 1):
            raise cms(302)
        if self.p.cnmi_direct_only and (mt in (1, 3) or ds == 2):
            raise cms(303)
        self.s.cnmi = (mode, mt, bm, ds, bfr)
        if mode != 0:
            buffered, self._sms_buffer = self._sms_buffer, []
            if bfr == 0:
                for lines in buffered:
                    self._urc_queue.extend(["\x00", *lines])
        return []

    def _h_cnma(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            return ["+CNMA: (0-2)"]
        if self._awaiting_ack is None:
            raise cms(340)
        self._awaiting_ack = None
        self.counters.acks += 1
        if self._ack_timer:
            self._ack_timer.cancel()
            self._ack_timer = None
        self._later(0.0, lambda: self.network.retry_pending(self))
        return []

    # storage ------------------------------------------------------------------

    def _mem(self, which: int) -> Storage:
        return self.storages[self.s.mems[which]]

    def _h_cpms(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            return [self.p.cpms_test]
        if cmd.kind == "read":
            parts = []
            for name in self.s.mems[: self.p.cpms_max_params] if self.p.cpms_max_params < 3 else self.s.mems:
                st = self.storages[name]
                parts.append(f'"{name}",{st.used},{st.capacity}')
            return ["+CPMS: " + ",".join(parts)]
        names = [a.upper() for a in cmd.args if a != ""]
        if not names or len(names) > self.p.cpms_max_params:
            raise cms(302) if self.p.cpms_max_params >= 3 else AtFailure("plain")
        for name in names:
            if name not in self.p.memories:
                raise cms(302)
        if names[0] == "SR" and len(names) == 1:
            pass
        for i, name in enumerate(names):
            if i >= 1 and name == "SR":
                raise cms(302)
            self.s.mems[i] = name
        count = len(names) if self.p.cpms_set_pairs_given_only else 3
        pairs = []
        for name in self.s.mems[:count]:
            st = self.storages[name]
            pairs.append(f"{st.used},{st.capacity}")
        return ["+CPMS: " + ",".join(pairs)]

    def _index(self, cmd: Command, storage: Storage) -> int:
        index = cmd.int_arg(0)
        pos = index - self.p.first_index
        if pos < 0 or pos >= storage.capacity:
            raise cms(321)
        return pos

    def _h_cmgr(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            return []
        storage = self._mem(0)
        pos = self._index(cmd, storage)
        msg = storage.get(pos)
        if msg is None:
            raise cms(321)
        lines = self._render(msg, header=None)
        if msg.stat == STAT_REC_UNREAD:
            msg.stat = STAT_REC_READ
        return lines

    def _render(self, msg: StoredMessage, header: int | None) -> list[str]:
        if self.s.cmgf == 1:
            return self._render_text(msg, header)
        head = f"+CMGL: {header},{msg.stat},,{msg.tpdu_length}" if header is not None else (
            f"+CMGR: {msg.stat},,{msg.tpdu_length}")
        return [f"{head}\r\n{msg.pdu.hex().upper()}"]

    def _render_text(self, msg: StoredMessage, header: int | None) -> list[str]:
        _, tpdu = pdumod.split_smsc(msg.pdu)
        stat = STAT_NAMES[msg.stat]
        try:
            if tpdu[0] & 0x03 == pdumod.MTI_DELIVER:
                sender, text, _concat = pdumod.parse_deliver(tpdu)
                body = text or ""
            elif tpdu[0] & 0x03 == pdumod.MTI_SUBMIT:
                sub = pdumod.parse_submit(tpdu)
                sender, body = sub.destination, sub.text or ""
            else:
                sender, body = "", tpdu.hex().upper()
        except pdumod.PduFormatError:
            sender, body = "", tpdu.hex().upper()
        prefix = f"+CMGL: {header}," if header is not None else "+CMGR: "
        return [f'{prefix}"{stat}","{sender}",,\r\n{body}']

    def _h_cmgl(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            return ['+CMGL: ("REC UNREAD","REC READ","STO UNSENT","STO SENT","ALL")' if self.s.cmgf else
                    "+CMGL: (0-4)"]
        wanted = cmd.arg(0, "0" if self.s.cmgf == 0 else "REC UNREAD")
        names = {"REC UNREAD": 0, "REC READ": 1, "STO UNSENT": 2, "STO SENT": 3, "ALL": 4}
        if self.s.cmgf == 1:
            if wanted.upper() not in names:
                raise cms(305)
            stat = names[wanted.upper()]
        else:
            if not wanted.isdigit() or int(wanted) not in range(5):
                raise cms(304)
            stat = int(wanted)
        lines: list[str] = []
        for pos, msg in list(self._mem(0).items()):
            if stat == 4 or msg.stat == stat:
                lines.extend(self._render(msg, header=pos + self.p.first_index))
                if msg.stat == STAT_REC_UNREAD:
                    msg.stat = STAT_REC_READ
        return lines

    def _h_cmgd(self, cmd: Command) -> list[str]:
        if cmd.kind == "test":
            first = self.p.first_index
            return [f"+CMGD: ({first}-{self._mem(0).capacity - 1 + first}),(0-4)"]
        storage = self._mem(0)
        flag = cmd.int_arg(1, 0)
        if flag not in range(5):
            raise cms(302)
        if flag == 0:
            storage.delete(self._index(cmd, storage))
        else:
            doomed = {1: {STAT_REC_READ}, 2: {STAT_REC_READ, STAT_STO_SENT},
                      3: {STAT_REC_READ, STAT_STO_SENT, STAT_STO_UNSENT}, 4: {0, 1, 2, 3}}[flag]
            for pos, msg in list(storage.items()):
                if msg.stat in doomed:
                    storage.delete(pos)
        self._later(0.0, lambda: self.network.retry_pending(self))
        return []

    def _h_cmgw(self, cmd: Command) -> list[str] | None:
        if self.s.cmgf != 0:
            raise cms(303)
        return self._start_prompt(cmd, purpose="write")

    def _h_cmgs(self, cmd: Command) -> list[str] | None:
        if cmd.kind == "test":
            return []
        if self.s.cmgf != 0:
            raise cms(303)  # text-mode sending is not simulated
        return self._start_prompt(cmd, purpose="send")

    def _start_prompt(self, cmd: Command, purpose: str) -> None:
        length = cmd.int_arg(0)
        if length < 7 or length > 164:
            raise cms(304)
        self._pdu.clear()
        self._pdu_len = length
        self._purpose = purpose
        self._state = "prompt"
        self.write(b"\r\n> ")
        return None

    def _h_cmss(self, cmd: Command) -> list[str] | None:
        storage = self._mem(1)
        pos = self._index(cmd, storage)
        msg = storage.get(pos)
        if msg is None:
            raise cms(321)
        _, tpdu = pdumod.split_smsc(msg.pdu)
        try:
            submit = pdumod.parse_submit(tpdu)
        except pdumod.PduFormatError:
            raise cms(304) from None
        msg.stat = STAT_STO_SENT
        self._state = "air"
        self._begin_send(submit, prefix="+CMSS")
        return None


HANDLERS: dict[str, Handler] = {
    "+CSCA": SmsCommands._h_csca, "+CMGF": SmsCommands._h_cmgf, "+CSMS": SmsCommands._h_csms,
    "+CMMS": SmsCommands._h_cmms, "+CSMP": SmsCommands._h_csmp, "+CNMI": SmsCommands._h_cnmi,
    "+CNMA": SmsCommands._h_cnma, "+CPMS": SmsCommands._h_cpms, "+CMGR": SmsCommands._h_cmgr,
    "+CMGL": SmsCommands._h_cmgl, "+CMGD": SmsCommands._h_cmgd, "+CMGS": SmsCommands._h_cmgs,
    "+CMGW": SmsCommands._h_cmgw, "+CMSS": SmsCommands._h_cmss,
}
