"""`Store`: the database with its repositories, built in dependency order.

Each process (and each thread) opens its own `Store`; they coordinate only through the file. Callers
name the repository they use (`store.outbox.enqueue(...)`, `store.consent.status(...)`), so a reader
knows which file to open, and each repository is handed the collaborators it may call, by name.

    audit, alerts, modems, keywords, accounts, webhooks   (the Db only)
    contacts, conversations                               (audit)
    lists                                                 (audit, contacts)
    segments                                              (audit, lists)
    consent                                               (audit, contacts, lists)
    outbox                                                (audit, consent, contacts, conversations, modems)
    inbox                                                 (contacts, conversations, modems)
    reports                                               (outbox, contacts)
    erasure                                               (audit, contacts, lists, outbox, inbox, webhooks)
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .accounts import Accounts
from .appointments import Appointments
from .audit import Alerts, AuditLog
from .clock import Clock, system_clock
from .consent import ConsentLedger
from .contacts import Contacts, Conversations
from .db import Db, connect
from .delivery_reports import DeliveryReports
from .erasure import Erasure
from .inbox import Inbox
from .keywords import Keywords
from .lists import Lists
from .modems import ModemRegistry
from .outbox import Defer, Outbox, Refuse
from .records import Message
from .segments import Segments
from .waitlist import Waitlist
from .webhooks import WebhookOutbox

if TYPE_CHECKING:
    from smsgate.config import Config


# The rules engine's gate as the daemon holds it: one object for every thread, so it is given the
# thread's store with each message. Bind it (`functools.partial(gate, store)`) to pass it to a claim.
Gate = Callable[["Store", Message, datetime], Defer | Refuse | None]


class Store(Db):
    """The smsgate database: a `Db` and one repository per table group."""

    def __init__(self, conn: sqlite3.Connection, *, path: Path, clock: Clock = system_clock,
                 default_region: str | None = None) -> None:
        super().__init__(conn, path=path, clock=clock, default_region=default_region)
        self.audit = AuditLog(self)
        self.alerts = Alerts(self)
        self.modems = ModemRegistry(self)
        self.keywords = Keywords(self, audit=self.audit)
        self.accounts = Accounts(self, audit=self.audit)
        self.webhooks = WebhookOutbox(self)
        self.contacts = Contacts(self, audit=self.audit)
        self.conversations = Conversations(self, audit=self.audit)
        self.lists = Lists(self, audit=self.audit, contacts=self.contacts)
        self.segments = Segments(self, audit=self.audit, lists=self.lists)
        self.consent = ConsentLedger(self, audit=self.audit, contacts=self.contacts, lists=self.lists)
        self.outbox = Outbox(self, audit=self.audit, consent=self.consent, contacts=self.contacts,
                             conversations=self.conversations, modems=self.modems)
        self.inbox = Inbox(self, contacts=self.contacts, conversations=self.conversations, modems=self.modems)
        self.reports = DeliveryReports(self, outbox=self.outbox, contacts=self.contacts)
        self.appointments = Appointments(self, contacts=self.contacts)
        self.waitlist = Waitlist(self, audit=self.audit, contacts=self.contacts)
        self.erasure = Erasure(self, audit=self.audit, contacts=self.contacts, lists=self.lists, outbox=self.outbox,
                               inbox=self.inbox, webhooks=self.webhooks)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, clock: Clock = system_clock, migrate: bool = True,
             default_region: str | None = None) -> Store:
        """Open (creating if needed) and, unless told not to, migrate the database at `path`."""
        conn, p = connect(path)
        store = cls(conn, path=p, clock=clock, default_region=default_region)
        if migrate:
            try:
                store.migrate()
            except BaseException:
                conn.close()
                raise
        return store

    @classmethod
    def for_config(cls, config: Config, *, migrate: bool = True, clock: Clock = system_clock) -> Store:
        """The store a configuration names, with its clinic's region for numbers written without +."""
        return cls.open(config.database_path, clock=clock, migrate=migrate,
                        default_region=config.clinic.region or None)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
