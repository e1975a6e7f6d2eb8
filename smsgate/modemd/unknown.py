"""What the daemon does by itself about messages whose fate is `unknown`, each round of its report job.

In this order: reports that came before their part's TP-MR was committed are matched; `unknown` messages
the network has already answered for are settled from that evidence; STOP/START/HELP confirmations still
`unknown` after `compliance.confirmation_resend_minutes` go once more. What none of these settles waits
for a person, with the reason on the message.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from smsgate.config import Config
from smsgate.queue import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnknownRound:
    matched: int
    settled: int
    ambiguous: int
    resent: list[int]

    @property
    def requeued(self) -> bool:
        """Whether something may now be waiting in the queue (a resend, or the rest of a settled message)."""
        return bool(self.resent or self.settled)


def unknown_round(store: Store, config: Config) -> UnknownRound:
    matched = store.reports.rematch()
    counts = store.reports.settle_unknown()
    resent = store.outbox.resend_unconfirmed(after_s=config.compliance.confirmation_resend_minutes * 60.0,
                                             actor="modemd:confirmations")
    if matched:
        log.info("matched %s delivery reports that had arrived early", matched)
    if counts["settled"]:
        log.info("settled %s unknown messages from their delivery reports", counts["settled"])
    if resent:
        log.warning("re-sent %s STOP/START/HELP confirmations left unknown: %s", len(resent), resent)
    return UnknownRound(matched, counts["settled"], counts["ambiguous"], resent)
