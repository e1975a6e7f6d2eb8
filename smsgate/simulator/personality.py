"""Personalities: the recorded answers and quirks of real modem families.

Strings come from docs/reference/modem-profiles.md (confidence letters as there). Where that file says
"not recorded", a personality keeps the standard (3GPP TS 27.005/27.007) behaviour; docs/simulator.md lists
which is which.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


class UnknownPersonality(ValueError):
    """No personality of that name; the message lists the valid ones."""


@dataclass(frozen=True)
class Personality:
    """How one modem family answers; the modem engine consults it instead of branching on names."""

    name: str
    manufacturer: str
    model: str
    revision: str | None  # None: AT+CGMR answers ERROR (Wavecom)
    ati: tuple[str, ...]
    unsupported_final: str | None = None  # replaces ERROR/+CME ERROR for unknown commands
    cpin_ok: bool = True  # False: "+CPIN: READY" with no OK (Wavecom)
    cpms_test: str = '+CPMS: ("SM","ME","SR"),("SM","ME","SR"),("SM","ME","SR")'
    memories: tuple[str, ...] = ("SM", "ME", "SR")
    cpms_max_params: int = 3
    cpms_set_pairs_given_only: bool = False  # Wavecom answers only the pairs it was given
    cnmi_test: str = "+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)"
    cnmi_direct_only: bool = False  # +CNMI refuses mt=1/3 and ds=2 (see with_direct_delivery_only)
    cscs_test: str = '+CSCS: ("IRA","GSM","UCS2")'
    cscs_read_trailing_empty_line: bool = False  # Huawei E1752
    creg_unquoted_hex: bool = False  # Huawei: +CREG: 2,1,4CA,81DE445
    first_index: int = 1
    ccid_command: str = "+CCID"
    ccid_prefixed: bool = True
    # Wavecom: every command for this long after AT+CFUN=1 gets +CME ERROR: 515 ("init in progress"). Recorded
    # as "the next two commands"; a real module is busy for a while, however much or little is typed.
    cfun_busy_seconds: float = 0.0
    cusd_needs_ussdmode0: bool = False  # Huawei E1752: AT+CUSD=1 → ERROR until AT^USSDMODE=0
    boot_urcs: tuple[str, ...] = ()
    boot_notifies_stored: bool = False  # SIMCom: +CMTI for stored unread messages right after boot
    periodic_urcs: bool = False  # Huawei ^RSSI/^BOOT/^MODE (common knowledge, C)
    extra_ok_commands: frozenset[str] = field(default_factory=frozenset)
    sm_capacity: int = 30
    me_capacity: int = 100
    sr_capacity: int = 30


PERSONALITIES: dict[str, Personality] = {
    "generic": Personality(
        name="generic",
        manufacturer="SMSGATE-SIM",
        model="VIRTUAL-GSM",
        revision="1.0.0",
        ati=("SMSGATE-SIM", "VIRTUAL-GSM", "Revision: 1.0.0"),
        cpms_test='+CPMS: ("SM","ME"),("SM","ME"),("SM","ME")',
        memories=("SM", "ME", "SR"),
    ),
    "huawei": Personality(
        name="huawei",
        manufacturer="huawei",
        model="E1752",
        revision="11.126.13.00.00",
        ati=("Manufacturer: huawei", "Model: E1752", "Revision: 11.126.13.00.00"),  # ATI not recorded
        unsupported_final="COMMAND NOT SUPPORT",
        cpms_test='+CPMS: ("ME","MT","SM","SR"),("ME","MT","SM","SR"),("ME","MT","SM","SR")',
        memories=("ME", "MT", "SM", "SR"),
        cscs_read_trailing_empty_line=True,
        creg_unquoted_hex=True,
        first_index=0,
        cusd_needs_ussdmode0=True,
        periodic_urcs=True,
        extra_ok_commands=frozenset({"^CURC", "^USSDMODE"}),
    ),
    "simcom": Personality(
        name="simcom",
        manufacturer="SIMCOM_Ltd",
        model="SIMCOM_SIM800",
        revision="Revision:1308B05SIM800M32",
        ati=("SIM800 R13.08",),
        cnmi_test="+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)",
        boot_urcs=("*ATREADY: 1", "+CPIN: READY", "SMS DONE"),
        boot_notifies_stored=True,
    ),
    "quectel": Personality(
        name="quectel",
        manufacturer="Quectel",
        model="EC25",
        revision="EC25EFAR06A06M4G",
        ati=("Quectel", "EC25", "Revision: EC25EFAR06A06M4G"),
        ccid_command="+QCCID",
        extra_ok_commands=frozenset({"+QURCCFG"}),
    ),
    "wavecom": Personality(
        name="wavecom",
        manufacturer=" WAVECOM MODEM",
        model=" MULTIBAND  900E  1800",
        revision=None,
        ati=(" WAVECOM MODEM",),  # not recorded: reuse the manufacturer line
        cpin_ok=False,
        cpms_test='+CPMS: (("SM","BM","SR"),("SM"))',
        memories=("SM", "BM", "SR"),
        cpms_max_params=2,
        cpms_set_pairs_given_only=True,
        cfun_busy_seconds=2.0,
        sm_capacity=50,
        extra_ok_commands=frozenset({"+WIND"}),
    ),
}


def get_personality(name: str) -> Personality:
    try:
        return PERSONALITIES[name]
    except KeyError:
        raise UnknownPersonality(
            f"unknown modem personality {name!r}; choose one of {', '.join(sorted(PERSONALITIES))}"
        ) from None


DIRECT_ONLY_CNMI_TEST = "+CNMI: (0-2),(0,2),(0,2),(0,1),(0,1)"


def with_direct_delivery_only(p: Personality) -> Personality:
    """The personality, but offering only direct delivery (``+CMT``/``+CDS``), never store-and-notify.

    No modem in modem-profiles.md is recorded doing this; it exists so that a gateway's ``+CMT``/``+CNMA``
    path can be exercised at all (a gateway that prefers ``+CMTI`` never takes it otherwise).
    """
    return replace(p, cnmi_test=DIRECT_ONLY_CNMI_TEST, cnmi_direct_only=True)
