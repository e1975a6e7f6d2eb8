"""Error classes follow RELIABILITY.md; messages say what to do."""

from __future__ import annotations

import pytest

from smsgate.at_commands.errors import (
    AtTimeout,
    ChannelDesynced,
    CmeError,
    CmsError,
    CommandFailed,
    ErrorClass,
    ModemError,
    PortGone,
    SimLocked,
    classify_error,
)


@pytest.mark.parametrize("code", [1, 8, 10, 27, 28, 29, 30, 50, 69, 303, 304, 305])
def test_cms_permanent_codes(code: int) -> None:
    assert classify_error(CmsError("AT+CMGS=20", code)) is ErrorClass.PERMANENT


@pytest.mark.parametrize("code", [38, 41, 42, 47, 192, 194, 314, 331, 332])
def test_cms_transient_codes(code: int) -> None:
    assert classify_error(CmsError("AT+CMGS=20", code)) is ErrorClass.TRANSIENT


@pytest.mark.parametrize("code", [300, 302, 310, 311, 312, 313, 315, 316, 317, 318, 320])
def test_cms_modem_level_codes(code: int) -> None:
    assert classify_error(CmsError("AT+CMGS=20", code)) is ErrorClass.MODEM


def test_cms_500_is_ambiguous_even_before_submit() -> None:
    assert classify_error(CmsError("AT+CMGS=20", 500)) is ErrorClass.AMBIGUOUS
    assert classify_error(CmsError("AT+CMGS=20", 500, after_submit=True)) is ErrorClass.AMBIGUOUS


def test_unknown_cms_code_after_submit_is_ambiguous_before_is_transient() -> None:
    assert classify_error(CmsError("AT+CMGS=20", 999, after_submit=True)) is ErrorClass.AMBIGUOUS
    assert classify_error(CmsError("AT+CMGS=20", 999)) is ErrorClass.TRANSIENT


@pytest.mark.parametrize(
    ("code", "cls"),
    [(14, ErrorClass.TRANSIENT), (515, ErrorClass.TRANSIENT), (11, ErrorClass.MODEM), (12, ErrorClass.MODEM),
     (16, ErrorClass.MODEM), (10, ErrorClass.MODEM), (21, ErrorClass.PERMANENT), (4, ErrorClass.PERMANENT),
     (30, ErrorClass.TRANSIENT)],
)
def test_cme_codes(code: int, cls: ErrorClass) -> None:
    assert classify_error(CmeError("AT+CPIN?", code)) is cls


def test_timeouts_and_port_loss() -> None:
    assert classify_error(AtTimeout("AT+CMGS=20", 60.0, after_submit=True)) is ErrorClass.AMBIGUOUS
    assert classify_error(AtTimeout("AT+CSQ", 5.0)) is ErrorClass.TRANSIENT
    assert classify_error(PortGone("/dev/ttyUSB0", OSError(5, "EIO"))) is ErrorClass.MODEM
    assert classify_error(PortGone("/dev/ttyUSB0", after_submit=True)) is ErrorClass.AMBIGUOUS
    assert classify_error(ChannelDesynced("/dev/ttyUSB0", "no OK")) is ErrorClass.MODEM
    assert classify_error(ChannelDesynced("/dev/ttyUSB0", "no OK", after_submit=True)) is ErrorClass.AMBIGUOUS
    assert classify_error(SimLocked("SIM PUK", "unlock by hand")) is ErrorClass.MODEM


def test_plain_error_after_submit_is_ambiguous_and_vendor_finals_are_permanent() -> None:
    assert classify_error(CommandFailed("AT+CMGS=20", "ERROR", after_submit=True)) is ErrorClass.AMBIGUOUS
    assert classify_error(CommandFailed("AT+WIND?", "COMMAND NOT SUPPORT")) is ErrorClass.PERMANENT


def test_messages_name_command_code_reason_and_advice() -> None:
    msg = str(CmsError("AT+CMGS=20", 1))
    assert "AT+CMGS=20" in msg and "1" in msg and "nassigned" in msg and "Retrying will not" in msg
    assert "may already have been sent" in str(CmsError("AT+CMGS=20", 500))
    assert "partial reply ['+CMGL: 1,0,,20']" in str(AtTimeout("AT+CMGL=4", 5.0, ["+CMGL: 1,0,,20"]))
    assert "/dev/serial/by-id" in str(PortGone("/dev/ttyUSB0"))


def test_hierarchy_lets_callers_catch_the_base() -> None:
    for exc in (CmsError("AT", 1), CmeError("AT", 1), AtTimeout("AT", 1.0), PortGone("p"),
                ChannelDesynced("p", "x"), CommandFailed("AT", "ERROR")):
        assert isinstance(exc, ModemError)
    assert isinstance(CmsError("AT", 1), CommandFailed)
    assert AtTimeout("AT", 1.0, ["x"]).partial == ["x"]


def test_classify_error_rejects_unrelated_exceptions_clearly() -> None:
    with pytest.raises(TypeError, match="KeyError"):
        classify_error(KeyError("x"))


def test_a_bare_modem_error_is_modem_level_not_a_crash() -> None:
    from smsgate.at_commands.errors import ErrorClass, ModemError, classify_error

    assert classify_error(ModemError("AT channel on m1 was closed while waiting for a reply.")) is ErrorClass.MODEM


def test_a_vanished_port_after_the_pdu_stays_ambiguous_when_raised_again_to_other_threads() -> None:
    from smsgate.at_commands.channel import _fresh
    from smsgate.at_commands.errors import ChannelDesynced, ErrorClass, PortGone, classify_error

    assert classify_error(_fresh(PortGone("/dev/m1", after_submit=True))) is ErrorClass.AMBIGUOUS
    assert classify_error(_fresh(ChannelDesynced("/dev/m1", "no OK", after_submit=True))) is ErrorClass.AMBIGUOUS
    assert classify_error(_fresh(PortGone("/dev/m1"))) is ErrorClass.MODEM
