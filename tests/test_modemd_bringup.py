"""Bring-up policies, table-tested over the answers real modems gave, and applied over a real pty.

The `+CNMI=?` and `+CPMS=?` lines below are copied from the modem profiles recorded for this project
(shared/data/modem-profiles.md; its sources are python-gsmmodem's test/fakemodems.py and gammu's
tests/at-*/*.dump captures, and third-party notes marked (c) there). Lines marked "synthetic" are
not recorded from any modem: they pin the policy's edge cases.
"""

from __future__ import annotations

import threading

import pytest

from smsgate.at_commands.errors import CmeError, CmsError, ErrorClass, SimLocked, classify_error
from smsgate.at_commands.modem import parse_cnmi_test, parse_cpms_test
from smsgate.modemd.bringup import (
    DEFAULT_STORAGE,
    CnmiChoice,
    PinMemory,
    busy_retry,
    choose_cnmi,
    choose_storage,
    is_sim_busy,
    select_storage,
    set_up_notices,
    sim_refusal,
    unlock_sim,
)

OK = "\r\nOK\r\n"
ERROR = "\r\nERROR\r\n"

QUECTEL_EC25 = "+CNMI: (0-2),(0-3),(0,2),(0-2),(0,1)"  # also a Huawei firmware table and a gammu fixture
SIM800_SIMULATOR = "+CNMI: (0-3),(0-3),(0,2),(0-2),(0,1)"
GAMMU_A = "+CNMI: (2),(0-1,3),(0,2),(0-1),(0)"
GAMMU_B = "+CNMI: (0-2),(0,1,3),(0),(0,1),(0,1)"
GAMMU_NO_SPACE = "+CNMI:(0-3),(0-3),(0-3),(0,1),(0,1)"


@pytest.mark.parametrize(
    ("answer", "reports", "expected"),
    [
        (QUECTEL_EC25, True, CnmiChoice(2, 1, 0, 2, 0)),
        (QUECTEL_EC25, False, CnmiChoice(2, 1, 0, 0, 0)),
        (SIM800_SIMULATOR, True, CnmiChoice(2, 1, 0, 2, 0)),
        (GAMMU_A, True, CnmiChoice(2, 1, 0, 1, 0)),
        (GAMMU_A, False, CnmiChoice(2, 1, 0, 0, 0)),
        (GAMMU_B, True, CnmiChoice(2, 1, 0, 1, 0)),
        (GAMMU_NO_SPACE, True, CnmiChoice(2, 1, 0, 1, 0)),
        # synthetic: no +CMTI, only direct delivery -> mt 2, acknowledged with +CNMA
        ("+CNMI: (1,2),(0,2,3),(0),(0),(0,1)", True, CnmiChoice(2, 2, 0, 0, 0)),
        # synthetic: buffer flush not offered -> bfr left out, never 1 (that discards buffered notices)
        ("+CNMI: (0-2),(0-3),(0,2),(0-2),(1)", True, CnmiChoice(2, 1, 0, 2, None)),
        # synthetic: only mode 3 and no mode list at all
        ("+CNMI: (3),(0-1),(0),(0),(0)", False, CnmiChoice(3, 1, 0, 0, 0)),
        ("+CNMI: (),(0-1),(0),(0),(0)", False, CnmiChoice(2, 1, 0, 0, 0)),
    ],
)
def test_cnmi_choice_prefers_buffered_store_and_notify(answer: str, reports: bool, expected: CnmiChoice) -> None:
    assert choose_cnmi(parse_cnmi_test([answer]), status_reports=reports) == expected


@pytest.mark.parametrize("answer", ["+CNMI: (0-2),(0),(0),(0),(0)", "+CNMI: (0-2),(3),(0),(0),(0)", "+CNMI: "])
def test_a_modem_without_sms_notices_is_polled_instead(answer: str) -> None:  # synthetic answers
    assert choose_cnmi(parse_cnmi_test([answer]), status_reports=True) is None


def test_nokia_that_refuses_cnmi_is_polled_instead() -> None:
    # Nokia N79/N95: AT+CNMI=? answers ERROR, which Modem.supported_cnmi turns into None.
    assert choose_cnmi(None, status_reports=True) is None


@pytest.mark.parametrize(
    ("choice", "needs_cnma"),
    [(CnmiChoice(2, 1, 0, 2, 0), False), (CnmiChoice(2, 2, 0, 0, 0), True), (CnmiChoice(2, 1, 0, 1, 0), True)],
)
def test_direct_delivery_needs_cnma(choice: CnmiChoice, needs_cnma: bool) -> None:
    assert choice.needs_cnma is needs_cnma


HUAWEI_K3715 = '+CPMS: ("ME","MT","SM","SR"),("ME","MT","SM","SR"),("ME","MT","SM","SR")'  # also E1752, ZTE
WAVECOM = '+CPMS: (("SM","BM","SR"),("SM"))'
NOKIA = "+CPMS: (),(),()"
HUAWEI_E3372 = '+CPMS: ("SM","ME"),("SM","ME"),("SM","ME")'
ALCATEL_S320 = '+CPMS: ("SM", "ME", "SM_P", "ME_P", "MT")'  # only its first list is recorded
SAMSUNG_J700 = "+CPMS: "


@pytest.mark.parametrize(
    ("answer", "memories"),
    [
        (HUAWEI_K3715, ("MT", "SM", "MT")),
        (WAVECOM, ("SM", "SM", "SM")),
        (HUAWEI_E3372, ("SM", "SM", "SM")),
        (ALCATEL_S320, ("MT", "SM", "MT")),
        # Nothing offered: the SIM, as when +CPMS=? fails. (The profile notes the Nokia cannot read SMS
        # over AT at all; smsgate still tries the SIM, and the sweep's errors say so in the log.)
        (NOKIA, ("SM", "SM", "SM")),
        (SAMSUNG_J700, ("SM", "SM", "SM")),
    ],
)
def test_storage_choice_reads_and_receives_into_mt_and_writes_to_the_sim(answer: str, memories: tuple) -> None:
    choice = choose_storage(parse_cpms_test([answer]), status_reports=False)
    assert choice.memories == memories
    assert choice.sweep == (memories[0],)


@pytest.mark.parametrize("answer", [HUAWEI_K3715, WAVECOM, NOKIA])
def test_status_reports_add_the_sr_memory_to_the_sweep_even_when_not_offered(answer: str) -> None:
    choice = choose_storage(parse_cpms_test([answer]), status_reports=True)
    assert choice.sweep == (choice.memories[0], "SR")


def test_a_modem_that_cannot_list_its_memories_keeps_the_sim() -> None:
    assert choose_storage(DEFAULT_STORAGE, status_reports=False).memories == ("SM", "SM", "SM")


@pytest.mark.parametrize(
    ("error", "busy"),
    [(CmeError("AT+CPIN?", 14), True), (CmeError("AT+CPIN?", 515), True), (CmsError("AT+CMGL=4", 314), True),
     (CmsError("AT+CMGL=4", 515), True), (CmeError("AT+CPIN?", 10), False), (CmeError("AT+CPIN?", 314), False),
     (CmsError("AT+CMGS=20", 330), False)],
)
def test_sim_busy_codes(error: CmeError | CmsError, busy: bool) -> None:
    assert is_sim_busy(error) is busy


def test_busy_retry_waits_out_a_busy_sim_then_returns_the_answer() -> None:
    answers: list[object] = [CmeError("AT+CPIN?", 515), CmeError("AT+CPIN?", 14), "READY"]

    def pin_state() -> str:
        item = answers.pop(0)
        if isinstance(item, Exception):
            raise item
        return str(item)

    assert busy_retry(pin_state, name="m1", stop=threading.Event()) == "READY"
    assert answers == []


def test_busy_retry_gives_up_at_once_on_other_errors_and_when_stopping() -> None:
    calls = 0

    def refused() -> str:
        nonlocal calls
        calls += 1
        raise CmeError("AT+CPIN?", 10)

    with pytest.raises(CmeError):
        busy_retry(refused, name="m1", stop=threading.Event())
    assert calls == 1
    stopping = threading.Event()
    stopping.set()
    with pytest.raises(CmeError) as info:
        busy_retry(lambda: (_ for _ in ()).throw(CmeError("AT+CPIN?", 515)), name="m1", stop=stopping)
    assert info.value.code == 515


@pytest.mark.parametrize(
    ("state", "pin", "refused", "says"),
    [
        ("READY", False, False, None),
        ("SIM PIN", True, False, None),
        ("SIM PIN", False, False, 'add pin = "...."'),
        ("SIM PIN", True, True, "will not try again"),
        ("SIM PUK", True, False, "needs its PUK"),
        ("SIM PUK2", True, False, "needs its PUK"),
        ("PH-SIM PIN", True, False, "does not enter"),
    ],
)
def test_sim_refusals_say_what_the_admin_must_do(state: str, pin: bool, refused: bool, says: str | None) -> None:
    refusal = sim_refusal(state, name="m1", pin_configured=pin, pin_refused=refused)
    if says is None:
        assert refusal is None
        return
    assert isinstance(refusal, SimLocked)
    assert says in str(refusal) and "modem m1" in str(refusal)
    assert refusal.state == state
    assert classify_error(refusal) is ErrorClass.MODEM


# -- the same policies applied over a real pty --------------------------------------------------------


def test_wavecom_that_refuses_three_memories_falls_back_to_one(modem_for) -> None:
    peer, modem = modem_for({"AT+CPMS=?": f"\r\n{WAVECOM}\r\nOK\r\n", 'AT+CPMS="SM"': "\r\n+CPMS: 14,50\r\nOK\r\n"})
    selected, sweep = select_storage(modem, name="m1", status_reports=True)
    assert selected == ("SM",)
    assert sweep == ["SM", "SR"]
    assert peer.texts() == ["AT+CPMS=?", 'AT+CPMS="SM","SM","SM"', 'AT+CPMS="SM"']


def test_notices_are_set_with_cnma_when_reports_come_directly(modem_for) -> None:
    peer, modem = modem_for({"AT+CNMI=?": f"\r\n{GAMMU_A}\r\nOK\r\n", "AT+CSMS=1": "\r\n+CSMS: 1,1,1\r\nOK\r\n",
                             "AT+CNMI=2,1,0,1,0": OK})
    notices = set_up_notices(modem, name="m1", status_reports=True)
    assert (notices.enabled, notices.cnma) == (True, True)
    assert peer.texts() == ["AT+CNMI=?", "AT+CSMS=1", "AT+CNMI=2,1,0,1,0"]


def test_a_refused_bfr_is_left_out(modem_for) -> None:
    peer, modem = modem_for({"AT+CNMI=?": f"\r\n{QUECTEL_EC25}\r\nOK\r\n", "AT+CNMI=2,1,0,2": OK})
    notices = set_up_notices(modem, name="m1", status_reports=True)
    assert (notices.enabled, notices.cnma) == (True, False)
    assert peer.texts() == ["AT+CNMI=?", "AT+CNMI=2,1,0,2,0", "AT+CNMI=2,1,0,2"]


def test_nokia_without_notices_sets_nothing(modem_for) -> None:
    peer, modem = modem_for({})
    notices = set_up_notices(modem, name="m1", status_reports=True)
    assert (notices.enabled, notices.cnma) == (False, False)
    assert peer.texts() == ["AT+CNMI=?"]


def test_a_puk_locked_sim_is_never_offered_the_pin(modem_for) -> None:
    peer, modem = modem_for({"AT+CPIN?": "\r\n+CPIN: SIM PUK\r\nOK\r\n"})
    with pytest.raises(SimLocked, match="needs its PUK"):
        unlock_sim(modem, name="m1", pin="1234", memory=PinMemory(), stop=threading.Event(), note=lambda _: None)
    assert peer.texts() == ["AT+CPIN?"]


def test_a_refused_pin_is_remembered_and_never_tried_twice(modem_for) -> None:
    peer, modem = modem_for({"AT+CPIN?": "\r\n+CPIN: SIM PIN\r\nOK\r\n",
                             "AT+CPINR": "\r\n+CPINR: SIM PIN,3,3\r\nOK\r\n",
                             'AT+CPIN="1234"': "\r\n+CME ERROR: 16\r\n"})
    memory = PinMemory()
    notes: list[str] = []
    with pytest.raises(SimLocked, match="rejected the configured PIN"):
        unlock_sim(modem, name="m1", pin="1234", memory=memory, stop=threading.Event(), note=notes.append)
    assert memory.refused and notes == ["entering SIM PIN"]
    with pytest.raises(SimLocked, match="will not try again"):
        unlock_sim(modem, name="m1", pin="1234", memory=memory, stop=threading.Event(), note=notes.append)
    assert peer.texts().count('AT+CPIN="1234"') == 1
