"""SMS traffic through a simulated modem once commands have done their part: the PDU typed at the prompt
is stored or sent to the network (with the armed send faults), and SMS-DELIVERs and status reports from
the network are stored or passed straight to the client as +CNMI asks, waiting for +CNMA when +CSMS=1.

Mixed into ``modem.SimModem`` next to the command groups; the network calls ``accept_sms`` and
``accept_status_report``.
"""

from __future__ import annotations

import dataclasses
import logging

from . import pdu as pdumod
from .at_errors import cms
from .modem_core import ModemCore
from .storage import STAT_REC_UNREAD, STAT_STO_UNSENT, StoredMessage

log = logging.getLogger(__name__)


class SmsTraffic(ModemCore):
    """Sending what the prompt collected, and taking in what the network delivers."""

    # sending --------------------------------------------------------------------

    def _finish_pdu(self) -> None:
        hextext = self._pdu.decode("latin-1")
        self._pdu.clear()
        try:
            submit = pdumod.parse_at_submit(hextext, self._pdu_len)
        except pdumod.PduFormatError as exc:
            log.info("modem %s: rejected PDU: %s", self.name, exc)
            self.counters.pdus_rejected += 1
            self.counters.errors += 1
            self._state = "command"
            self.write(self._final(self._error_text(cms(304))))
            self._after_command()
            return
        if self._purpose == "write":
            storage = self._mem(1)
            raw = bytes.fromhex(hextext)
            pos = storage.store(StoredMessage(STAT_STO_UNSENT, raw, submit.tpdu_length))
            self._state = "command"
            if pos is None:
                self.write(self._final(self._error_text(cms(322))))
            else:
                self.write(self._frame(f"+CMGW: {pos + self.p.first_index}") + self._final("OK"))
            self._after_command()
            return
        self._state = "air"
        self._begin_send(submit, prefix="+CMGS")

    def _begin_send(self, submit: pdumod.Submit, prefix: str) -> None:
        delay = self.network.send_latency()
        if delay <= 0:
            self._complete_send(submit, prefix)
        else:
            self._later(delay, lambda: self._complete_send(submit, prefix))

    def _complete_send(self, submit: pdumod.Submit, prefix: str) -> None:
        if not self.powered:
            return
        if self.faults.hung:
            # A hung modem never answers and the send is lost with it, but it must not stay "on the air":
            # after ``recover`` it takes commands again, as a real modem does once it comes back to life.
            self._state = "command"
            self._held.clear()
            return
        if not self.registered:
            self.counters.sends_failed += 1
            self._send_final(None, 331, prefix)
            return
        if self.faults.cms_errors and self.faults.cms_skip:
            self.faults.cms_skip -= 1
        elif self.faults.cms_errors:
            code = self.faults.cms_errors.popleft()
            self.counters.sends_failed += 1
            self._send_final(None, code, prefix)
            return
        mr = self.next_mr
        self.next_mr = (self.next_mr + 1) & 0xFF
        early = False
        if self.faults.early_status_report and submit.srr:
            self.faults.early_status_report -= 1
            early = True
        self.network.submit(self, submit, mr, early_report=early)
        if self.faults.ambiguous:
            self.faults.ambiguous -= 1
            self.counters.sends_ambiguous += 1
            self._send_final(None, 500, prefix)
            return
        self.counters.sends_ok += 1
        self._send_final(mr, None, prefix)

    def _send_final(self, mr: int | None, error: int | None, prefix: str) -> None:
        self._state = "command"
        if error is not None:
            self.counters.errors += 1
            self.write(self._final(self._error_text(cms(error))))
        else:
            self.write(self._frame(f"{prefix}: {mr}") + self._final("OK"))
        self._after_command()

    # inbound from the network -----------------------------------------------------

    def _smsc_prefix(self) -> bytes:
        return pdumod.encode_smsc(self.smsc)

    def accept_sms(self, tpdu: bytes) -> bool:
        """The network offers an SMS-DELIVER; False means "not now" and the network keeps it."""
        if not self.powered or not self.registered or self.faults.hung:
            return False
        if self.faults.inbound_inside_reply is not None and not self._releasing_inbound:
            return False  # held for the middle of a later reply
        copies = 1
        if self.faults.duplicate_inbound:
            self.faults.duplicate_inbound -= 1
            copies = 2
        mode, mt = self.s.cnmi[0], self.s.cnmi[1]
        if mt == 2 and mode != 0:
            if self._awaiting_ack is not None:
                return False
            for _ in range(copies):
                self._deliver_direct("+CMT", tpdu, alpha=True)
            self.counters.inbound_direct += 1
            return True
        storage = self._mem(2)
        if self.faults.storage_full or storage.capacity - storage.used < copies:
            self.counters.inbound_refused += 1
            return False
        for _ in range(copies):
            pos = storage.store(StoredMessage(STAT_REC_UNREAD, self._smsc_prefix() + tpdu, len(tpdu)))
            assert pos is not None
            self.counters.inbound_stored += 1
            if mt in (1, 2, 3):
                self.sms_indication([f'+CMTI: "{storage.name}",{pos + self.p.first_index}'])
        return True

    def _deliver_direct(self, prefix: str, tpdu: bytes, *, alpha: bool, immediate: bool = False) -> None:
        head = f"{prefix}: ,{len(tpdu)}" if alpha else f"{prefix}: {len(tpdu)}"
        lines = [f"{head}\r\n{(self._smsc_prefix() + tpdu).hex().upper()}"]
        if immediate:
            self._emit_now(lines)
        else:
            self.sms_indication(lines)
        if self.s.csms == 1:
            self._awaiting_ack = (prefix, tpdu)

            def no_ack() -> None:
                if self._awaiting_ack is not None and self._awaiting_ack[1] is tpdu:
                    self._awaiting_ack = None
                    self._ack_timer = None
                    log.info("modem %s: no +CNMA for %s, the network will retry", self.name, prefix)
                    if prefix == "+CMT":
                        self.network.requeue(self, tpdu)
                    else:
                        self.network.retry_pending(self)

            self._ack_timer = self._later(self.network.cnma_timeout, no_ack)

    def accept_status_report(self, tpdu: bytes, *, immediate: bool = False) -> bool:
        if not self.powered or self.faults.hung:
            return False
        ds = self.s.cnmi[3]
        if ds == 1:
            if self._awaiting_ack is not None and not immediate:
                return False
            self._deliver_direct("+CDS", tpdu, alpha=False, immediate=immediate)
            self.counters.status_reports_routed += 1
            return True
        if ds == 2:
            storage = self.storages["SR"]
            pos = storage.store(StoredMessage(STAT_REC_UNREAD, self._smsc_prefix() + tpdu, len(tpdu)))
            if pos is None:
                self.counters.status_reports_dropped += 1
                return True
            announced = "SR"
            if self.faults.misfiled_reports:
                self.faults.misfiled_reports -= 1
                announced = "SM"  # stored in SR, announced elsewhere (EC25, chan-quectel#75)
            line = [f'+CDSI: "{announced}",{pos + self.p.first_index}']
            if immediate:
                self._emit_now(line)
            else:
                self.sms_indication(line)
            self.counters.status_reports_routed += 1
            return True
        self.counters.status_reports_dropped += 1
        return True

    def snapshot_storage(self, name: str) -> list[tuple[int, StoredMessage]]:
        return [(pos + self.p.first_index, dataclasses.replace(m)) for pos, m in self.storages[name].items()]
