"""Sending one claimed message part by part, and turning each modem error into the right store transition.

Crash safety is the order of writes: `mark_submitting` commits before `AT+CMGS`, the TP-MR commits the
moment the modem answers. Parts already `submitted` are skipped, and the concatenation reference is the
message's own, so a retry re-encodes identical parts and never re-sends one the network accepted.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from smsgate.at_commands.errors import CmeError, CmsError, ErrorClass, ModemError, classify_error
from smsgate.at_commands.modem import Modem
from smsgate.at_commands.pdu import EncodeError, encode_submit
from smsgate.config import SendingConfig
from smsgate.queue import Claim, LeaseLost, PartState, Store, StoreError
from smsgate.queue.clock import ts
from smsgate.retry import backoff_delay

from .limits import Caps, TokenBucket

log = logging.getLogger(__name__)


_ACCEPTED = frozenset({PartState.SUBMITTED, PartState.DELIVERED, PartState.UNDELIVERABLE})


class Result(enum.Enum):
    SENT = "sent"
    FAILED = "failed"  # permanent: this message will not be sent
    RETRY = "retry"  # transient: back in the queue with backoff (or failed when out of attempts)
    MODEM = "modem"  # the modem failed: message back in the queue, modem needs recovery
    UNKNOWN = "unknown"  # may have gone out: a person decides (or resend_unknown)
    STOPPED = "stopped"  # the daemon is stopping: released before anything more was sent
    LOST = "lost"  # our lease was taken over; someone else owns the message now


@dataclass(frozen=True)
class SendOutcome:
    result: Result
    error: Exception | None = None

    @property
    def modem_needs_recovery(self) -> bool:
        if self.result is Result.MODEM:
            return True
        err = self.error
        return self.result is Result.UNKNOWN and err is not None and not isinstance(err, CmsError | CmeError)


def error_class(exc: Exception) -> ErrorClass:
    if isinstance(exc, ModemError):
        try:
            return classify_error(exc)
        except TypeError:
            # A bare ModemError (channel closed under us): we cannot know whether the PDU was written.
            return ErrorClass.AMBIGUOUS
    return ErrorClass.MODEM


class Sender:
    """Sends claims for one modem; lives on that modem's worker thread."""

    def __init__(self, store: Store, modem: Modem, *, modem_name: str, sending: SendingConfig,
                 bucket: TokenBucket, caps: Caps, stop: threading.Event, send_timeout: float,
                 on_unknown_resend: Callable[[int], bool] | None = None) -> None:
        self.store = store
        self.modem = modem
        self.modem_name = modem_name
        self.sending = sending
        self.bucket = bucket
        self.caps = caps
        self.stop = stop
        self.send_timeout = send_timeout
        self.on_unknown_resend = on_unknown_resend

    def send(self, claim: Claim) -> SendOutcome:
        msg = claim.message
        try:
            pdus = encode_submit(
                msg.to_number, msg.body, reference=msg.concat_ref & 0xFF,
                request_status_report=msg.status_report and self.sending.status_reports,
                validity=timedelta(hours=self.sending.validity_hours) if self.sending.validity_hours else None,
            )
        except EncodeError as exc:
            return self._permanent(claim, f"cannot encode this message: {exc}", None, exc)
        if len(pdus) != msg.parts_total:
            return self._permanent(claim, f"the text now encodes to {len(pdus)} parts, not the {msg.parts_total} "
                                   "it was queued with; re-queue it as a new message", None, None)
        # A part the network accepted may already have its status report (delivered/undeliverable).
        done = {p.part_no for p in msg.parts if p.state in _ACCEPTED}
        first = True
        for pdu in pdus:
            if pdu.part in done:
                continue
            if not first:
                # The worker took the first part's token before claiming; later parts wait here, even
                # when the daemon is stopping (a started message is finished).
                self.bucket.take(threading.Event())
            first = False
            try:
                if claim.lease_until < ts(self.store.clock() + timedelta(seconds=self.sending.lease_seconds / 2)):
                    claim = self.store.outbox.renew(claim, self.sending.lease_seconds)
                self.store.outbox.mark_submitting(claim, pdu.part)
            except LeaseLost as exc:
                log.error("%s: lost the lease on message #%s before part %s: %s", self.modem_name, msg.id,
                          pdu.part, exc)
                return SendOutcome(Result.LOST, exc)
            try:
                tp_mr = self.modem.send_pdu(pdu.hex, pdu.tpdu_length, timeout=self.send_timeout)
            except ModemError as exc:
                return self._on_error(claim, pdu.part, exc)
            self.caps.count_part(msg.to_number)
            try:
                self.store.outbox.mark_part_submitted(claim, pdu.part, tp_mr)
            except (LeaseLost, StoreError) as exc:
                log.error("%s: part %s of #%s went out (TP-MR %s) but recording it failed: %s",
                          self.modem_name, pdu.part, msg.id, tp_mr, exc)
                return SendOutcome(Result.LOST, exc)
        return SendOutcome(Result.SENT)

    def _on_error(self, claim: Claim, part_no: int, exc: ModemError) -> SendOutcome:
        cls = error_class(exc)
        code = getattr(exc, "code", None)
        reason = str(exc)
        msg = claim.message
        log.warning("%s: message #%s part %s: %s (%s)", self.modem_name, msg.id, part_no, reason, cls.value)
        if cls is ErrorClass.PERMANENT:
            return self._permanent(claim, reason, code, exc)
        if cls is ErrorClass.TRANSIENT:
            delay = backoff_delay(msg.attempts, base=self.sending.retry_base_seconds,
                                  cap=self.sending.retry_max_seconds)
            retried = self.store.outbox.retry_later(claim, reason, delay=delay, code=code)
            return SendOutcome(Result.RETRY if retried else Result.FAILED, exc)
        if cls is ErrorClass.MODEM:
            self.store.outbox.requeue(claim, f"modem {self.modem_name}: {reason}")
            return SendOutcome(Result.MODEM, exc)
        # One commit: nobody (staff on the outbox page, a webhook) sees the message `unknown` and acts
        # on it while the automatic resend is about to put it back.
        with self.store.transaction():
            self.store.outbox.mark_unknown(claim, part_no, reason)
            if self.sending.resend_unknown and self.on_unknown_resend is not None:
                self.on_unknown_resend(msg.id)
        return SendOutcome(Result.UNKNOWN, exc)

    def _permanent(self, claim: Claim, reason: str, code: int | None, exc: Exception | None) -> SendOutcome:
        self.store.outbox.fail(claim, reason, code=code)
        return SendOutcome(Result.FAILED, exc)
