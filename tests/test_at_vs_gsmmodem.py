"""Documented failures of python-gsmmodem-new's engine (installed as ``gsmmodem``) that ours avoids.

These assert what THAT library does today over the same real pty, so the decision in docs/at-engine.md
stays backed by a reproducible failure. If an upgrade fixes one, its test fails and the doc must change.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from at_peer import AtPeer, Received, script
from gsmmodem.exceptions import TimeoutException
from gsmmodem.serial_comms import SerialComms

from smsgate.at_commands.channel import AtChannel


@pytest.fixture
def gsm_comms() -> Iterator:
    made: list[tuple[AtPeer, SerialComms]] = []

    def make(handler) -> tuple[AtPeer, SerialComms, list]:
        peer = AtPeer(handler)
        notices: list[list[str]] = []
        comms = SerialComms(peer.path, notifyCallbackFunc=notices.append)
        comms.connect()
        made.append((peer, comms))
        return peer, comms, notices

    yield make
    for peer, comms in made:
        comms.alive = False
        comms.rxThread.join(5)
        comms.serial.close()
        peer.close()


def test_gsmmodem_swallows_a_cmti_that_arrives_inside_a_reply(gsm_comms) -> None:
    reply = '\r\n+CSQ: 18,99\r\n+CMTI: "SM",3\r\nOK\r\n'
    _, comms, notices = gsm_comms(script({"AT+CSQ": reply}))
    response = comms.write("AT+CSQ\r", timeout=5)
    assert response == ["+CSQ: 18,99", '+CMTI: "SM",3', "OK"]  # the notice became part of the reply
    assert notices == []  # ... and the new-message callback never hears of it

    peer = AtPeer(script({"AT+CSQ": reply}))
    try:
        with AtChannel(peer.open_port(), name="ours") as ours:
            assert ours.command("AT+CSQ") == ["+CSQ: 18,99"]
            assert ours.urcs.get(timeout=5).args == ("SM", "3")
    finally:
        peer.close()


def test_gsmmodem_reader_thread_dies_on_one_non_utf8_byte(gsm_comms, monkeypatch) -> None:
    died: list[BaseException] = []
    dead = threading.Event()

    def hook(args: threading.ExceptHookArgs) -> None:
        died.append(args.exc_value)
        dead.set()

    monkeypatch.setattr(threading, "excepthook", hook)

    def handler(peer: AtPeer, got: Received) -> None:
        if got.text == "AT":
            peer.send("\r\nOK\r\n")

    peer, comms, _ = gsm_comms(handler)
    peer.send(b"\r\n\xff\r\n")
    assert dead.wait(5)
    assert isinstance(died[0], UnicodeDecodeError)
    assert comms.alive  # still claims to be alive ...
    with pytest.raises(TimeoutException):
        comms.write("AT\r", timeout=0.5)  # ... but nothing reads the modem's OK any more
