"""A patient's right-to-erasure request, carried out in one commit.

What the law needs stays: the contact's row and number (the consent ledger and the audit trail point at
it), every consent event with its evidence, and every audit entry with its time, actor and action. What
identifies the person beyond the number goes: name, language, time zone, the clinic's fields, tags and
notes, list memberships, the words of every message both ways (and of forwards to staff and webhook
bodies), and the personal values recorded in audit entries about the contact. The row remains, blank, so
a later text from the number simply starts again on a nameless contact.
"""

from __future__ import annotations

from dataclasses import dataclass

from .audit import AuditLog
from .contacts import Contacts
from .db import Db
from .inbox import Inbox
from .lists import Lists
from .outbox import Outbox
from .webhooks import WebhookOutbox

MARKER = "[erased]"


@dataclass(frozen=True)
class ErasureResult:
    number: str
    erased_at: str
    cancelled: int  # messages that were still waiting to go, cancelled before their text was erased
    sent_erased: int  # outbound texts (and forwards of the patient's texts) replaced by the marker
    received_erased: int
    lists_left: tuple[str, ...]
    audit_entries_scrubbed: int
    webhook_bodies_scrubbed: int

    def lines(self) -> list[str]:
        return [
            f"erased {self.number} at {self.erased_at}:",
            "  name, language, time zone, fields, tags and notes removed",
            f"  {self.sent_erased} sent and {self.received_erased} received texts replaced by {MARKER!r}"
            + (f" ({self.cancelled} waiting messages cancelled first)" if self.cancelled else ""),
            f"  left lists: {', '.join(self.lists_left) or 'none'}",
            f"  {self.audit_entries_scrubbed} audit entries kept without the personal values they recorded"
            + (f"; {self.webhook_bodies_scrubbed} webhook bodies scrubbed" if self.webhook_bodies_scrubbed else ""),
            "  kept: the number, every consent event with its evidence, and the audit trail of who did what when",
        ]


class Erasure:
    """Erases what a contact's row, messages, lists and audit entries say about the person."""

    def __init__(self, db: Db, *, audit: AuditLog, contacts: Contacts, lists: Lists, outbox: Outbox,
                 inbox: Inbox, webhooks: WebhookOutbox) -> None:
        self.db = db
        self.audit = audit
        self.contacts = contacts
        self.lists = lists
        self.outbox = outbox
        self.inbox = inbox
        self.webhooks = webhooks

    def erase(self, number: str, *, actor: str) -> ErasureResult:
        """Erase the contact of `number` (`NotFound` if there is none); erasing twice is harmless."""
        with self.db.transaction():
            contact = self.contacts.require(number)
            number = contact.number
            lists = tuple(self.lists.lists_of(contact.id))
            for name in lists:
                self.lists.remove_members(name, [contact.id], actor=actor)
            inbound_ids = self.inbox.erase_texts(number, MARKER)
            cancelled, sent = self.outbox.erase_texts(number, inbound_ids, MARKER, actor=actor)
            hooks = self.webhooks.erase_texts(number, MARKER)
            self.contacts.blank(contact.id)
            scrubbed = self.audit.erase_details("contact", contact.id)
            erased_at = self.contacts.by_id(contact.id).erased_at or self.db.now()
            result = ErasureResult(number, erased_at, cancelled, sent, len(inbound_ids), lists, scrubbed, hooks)
            self.audit.record(actor, "contact.erase", "contact", contact.id, {
                "number": number, "sent": sent, "received": len(inbound_ids), "cancelled": cancelled,
                "lists": len(lists), "audit_entries": scrubbed})
            return result
