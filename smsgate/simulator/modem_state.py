"""The records a simulated modem keeps: its counters, the SIM card that outlives power cycles, the faults
armed on it, and the volatile settings every power-up resets.

Plain dataclasses, so the simulator's handles and the command groups share one definition of each.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class ModemCounters:
    """What a modem has seen and done; read a snapshot through ``ModemHandle.counters``."""

    command_lines: int = 0
    commands: int = 0
    errors: int = 0
    sends_ok: int = 0
    sends_failed: int = 0
    sends_ambiguous: int = 0
    pdus_rejected: int = 0
    sends_cancelled: int = 0
    inbound_stored: int = 0
    inbound_direct: int = 0
    inbound_refused: int = 0
    acks: int = 0  # +CNMA accepted (direct deliveries acknowledged)
    status_reports_routed: int = 0
    status_reports_dropped: int = 0
    urcs: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    bytes_discarded: int = 0
    unplugs: int = 0
    replugs: int = 0
    reboots: int = 0


@dataclass
class SimCard:
    """A SIM survives power cycles; so do its messages (SM, SR)."""

    imsi: str
    iccid: str
    msisdn: str
    pin: str | None = None
    puk: str = "12345678"
    pin_attempts: int = 3
    puk_attempts: int = 10
    state: str = "READY"  # READY | SIM PIN | SIM PUK | BLOCKED


@dataclass
class FaultState:
    """Faults armed on a modem, changed at run time by ``FaultHandle``."""

    hung: bool = False
    mute: bool = False  # input swallowed, but URCs keep coming
    cms_errors: deque[int] = field(default_factory=deque)
    cms_skip: int = 0  # sends that succeed before the queued cms_errors start
    command_errors: list[list[object]] = field(default_factory=list)  # [PREFIX, final line, times left]
    registration_denied: bool = False
    misfiled_reports: int = 0  # status reports stored in SR but announced as +CDSI: "SM",<i>
    ambiguous: int = 0
    no_network: bool = False
    storage_full: bool = False
    duplicate_inbound: int = 0
    early_status_report: int = 0
    garbage_before_reply: deque[bytes] = field(default_factory=deque)
    inbound_inside_reply: str | None = None  # inbound held until a command line with this prefix answers
    inbound_inside_reply_n: int = 0


@dataclass
class Settings:
    """Volatile settings, reset at every power-up."""

    echo: bool = True
    verbose: bool = True
    cmee: int = 0
    creg: int = 0
    cgreg: int = 0
    cereg: int = 0
    cops_format: int = 0
    cnmi: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)
    cmgf: int = 0
    cscs: str = "GSM"
    csms: int = 0
    cmms: int = 0
    mems: list[str] = field(default_factory=lambda: ["SM", "SM", "SM"])
    cfun: int = 1
    busy_until: float = 0.0  # the loop's clock; commands before it get +CME ERROR: 515
    ussdmode: int = 1
    curc: int = 1
