"""AtChannel over real ptys against a scripted peer (tests/at_peer.py)."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator

import pytest
import serial
from at_peer import AtPeer, Received, script

from smsgate.at_commands.channel import AtChannel
from smsgate.at_commands.classify import Urc
from smsgate.at_commands.errors import (
    AtTimeout,
    ChannelDesynced,
    CmeError,
    CmsError,
    CommandFailed,
    ErrorClass,
    PortGone,
    classify_error,
)

PDU = "0011000B916407281553F80000AA0AE8329BFD4697D9EC37"


@pytest.fixture
def make_channel() -> Iterator:
    made: list[tuple[AtPeer, AtChannel]] = []

    def make(handler, **kwargs) -> tuple[AtPeer, AtChannel]:
        peer = AtPeer(handler)
        channel = AtChannel(peer.open_port(), name="test-modem", **kwargs)
        made.append((peer, channel))
        return peer, channel

    yield make
    for peer, channel in made:
        channel.close()
        peer.close()


def drain_urcs(channel: AtChannel, count: int, timeout: float = 5.0) -> list[Urc]:
    deadline = time.monotonic() + timeout
    out = []
    while len(out) < count:
        out.append(channel.urcs.get(timeout=max(0.0, deadline - time.monotonic())))
    return out


def test_urc_inside_reply_is_delivered_and_does_not_end_command(make_channel) -> None:
    _, channel = make_channel(script({
        "AT+CMGL=4": '\r\n+CMGL: 1,0,,24\r\n0791AA\r\n\r\n+CMTI: "SM",3\r\n\r\n^RSSI: 17\r\n'
                     "+CMGL: 2,1,,24\r\n0791BB\r\n\r\nOK\r\n",
    }))
    assert channel.command("AT+CMGL=4") == ["+CMGL: 1,0,,24", "0791AA", "+CMGL: 2,1,,24", "0791BB"]
    urcs = drain_urcs(channel, 2)
    assert [(u.name, u.args) for u in urcs] == [("+CMTI", ("SM", "3")), ("^RSSI", ("17",))]


def test_urc_between_prompt_request_and_prompt_does_not_break_cmgs(make_channel) -> None:
    def handler(peer: AtPeer, got: Received) -> None:
        if got.text.startswith("AT+CMGS"):
            peer.send('\r\n+ZDONR: "METEOR",272,3,"CS_ONLY","ROAM_OFF"\r\n> ')
        elif got.end == "\x1a":
            peer.send('\r\n+ZPASR: "UMTS"\r\n+CMGS: 77\r\n\r\nOK\r\n')

    _, channel = make_channel(handler)
    assert channel.send_pdu(PDU, 24) == 77
    assert [u.name for u in drain_urcs(channel, 2)] == ["+ZDONR", "+ZPASR"]


def test_urc_storm_does_not_extend_the_absolute_deadline_and_every_urc_arrives_in_order(make_channel) -> None:
    storm_size = 150
    started = threading.Event()

    def storm(peer: AtPeer) -> None:
        for i in range(storm_size):
            peer.send(f"\r\n^RSSI: {i}\r\n")
            time.sleep(0.01)  # modem pacing (the fake's behaviour), not test synchronisation

    def handler(peer: AtPeer, got: Received) -> None:
        if got.text == "AT+CMGL=4":
            started.set()
            threading.Thread(target=storm, args=(peer,), daemon=True).start()
        elif got.text == "AT":
            peer.send("\r\nOK\r\n")

    peer, channel = make_channel(handler)
    t0 = time.monotonic()
    with pytest.raises(AtTimeout) as info:
        channel.command("AT+CMGL=4", timeout=0.4)
    peer.wait_for(lambda r: any(x.end == "\x1b" for x in r))
    esc_at = next(i for i, x in enumerate(peer.received) if x.end == "\x1b")
    assert esc_at == 1  # the timeout fired (ESC sent) while the storm was still running
    assert time.monotonic() - t0 < 1.2 + channel.resync_timeout
    assert info.value.resynced
    urcs = drain_urcs(channel, storm_size)
    assert [u.args for u in urcs] == [(str(i),) for i in range(storm_size)]
    assert channel.command("AT") == []


def test_urc_storm_during_a_command_that_completes_leaves_its_result_intact(make_channel) -> None:
    storm = "".join(f"\r\n^RSSI: {i}\r\n" for i in range(300))
    _, channel = make_channel(script({"AT+CSQ": storm + "\r\n+CSQ: 21,99\r\n" + storm + "\r\nOK\r\n"}))
    assert channel.command("AT+CSQ") == ["+CSQ: 21,99"]
    assert [int(u.args[0]) for u in drain_urcs(channel, 600)] == list(range(300)) * 2


def test_garbage_and_non_utf8_bytes_do_not_kill_the_reader(make_channel) -> None:
    peer, channel = make_channel(script({"AT+CGMI": "\r\n\xffWAVE\xfeCOM\x80\r\nOK\r\n"}))
    peer.send(b"\xff\xfe\x00\x80\x81garbage\xc3\x28\r\n\x1b\x1a\r\n")
    unknown = channel.urcs.get(timeout=5)
    assert not unknown.known and "garbage" in unknown.line
    assert channel.alive
    assert channel.command("AT+CGMI") == ["ÿWAVEþCOM\x80"]
    assert channel.command("AT") == []


def test_modem_that_stops_answering_mid_command_times_out_at_the_deadline_then_resyncs(make_channel) -> None:
    def handler(peer: AtPeer, got: Received) -> None:
        if got.text == "AT+CMGL=4":
            peer.send("\r\n+CMGL: 1,0,,24\r\n")  # ... and nothing more
        elif got.text:
            peer.send("\r\nOK\r\n")

    peer, channel = make_channel(handler)
    t0 = time.monotonic()
    with pytest.raises(AtTimeout) as info:
        channel.command("AT+CMGL=4", timeout=0.3)
    assert 0.3 <= time.monotonic() - t0 < 0.3 + channel.resync_timeout
    assert info.value.partial == ["+CMGL: 1,0,,24"]
    assert info.value.resynced and not info.value.after_submit
    assert [r.end for r in peer.received[:3]] == ["\r", "\x1b", "\r"]
    assert channel.command("AT+CSQ") == []


def test_dead_modem_gives_channel_desynced_and_stays_desynced(make_channel) -> None:
    _, channel = make_channel(lambda peer, got: None, resync_timeout=0.4)
    with pytest.raises(ChannelDesynced) as info:
        channel.command("AT+CSQ", timeout=0.2)
    assert isinstance(info.value.__cause__, AtTimeout)
    assert classify_error(info.value) is ErrorClass.MODEM
    t0 = time.monotonic()
    with pytest.raises(ChannelDesynced):
        channel.command("AT")
    assert time.monotonic() - t0 < 2.0


@pytest.mark.parametrize(
    ("answer", "error", "code"),
    [
        ("\r\nCOMMAND NOT SUPPORT\r\n", CommandFailed, None),
        ("\r\nTOO MANY PARAMETERS\r\n", CommandFailed, None),
        ("\r\nERROR\r\n", CommandFailed, None),
        ("\r\n+CMS ERROR: 330\r\n", CmsError, 330),
        ("\r\n+CME ERROR: 515\r\n", CmeError, 515),
        ("\r\n+CME ERROR: SIM busy\r\n", CmeError, 14),
    ],
)
def test_error_finals_raise_typed_errors_immediately(make_channel, answer: str, error: type, code) -> None:
    _, channel = make_channel(script({"AT+WIND?": answer}))
    t0 = time.monotonic()
    with pytest.raises(error) as info:
        channel.command("AT+WIND?", timeout=5.0)
    assert time.monotonic() - t0 < 2.0
    assert getattr(info.value, "code", None) == code
    assert channel.command("AT") == []


def test_wavecom_cpin_without_ok_ends_on_the_terminal_info_line(make_channel) -> None:
    _, channel = make_channel(script({"AT+CPIN?": "\r\n+CPIN: READY\r\n"}))
    t0 = time.monotonic()
    assert channel.command("AT+CPIN?", terminal=("+CPIN:",), timeout=5.0) == ["+CPIN: READY"]
    assert time.monotonic() - t0 < 2.0
    assert channel.command("AT") == []


def test_terminal_line_followed_by_ok_does_not_leak_ok_into_next_command(make_channel) -> None:
    _, channel = make_channel(script({"AT+CPIN?": "\r\n+CPIN: READY\r\n\r\nOK\r\n",
                                      "AT+CSQ": "\r\n+CSQ: 9,99\r\nOK\r\n"}))
    assert channel.command("AT+CPIN?", terminal=("+CPIN:",)) == ["+CPIN: READY"]
    assert channel.command("AT+CSQ") == ["+CSQ: 9,99"]


def test_blank_lines_before_ok_and_crcrlf_line_ends(make_channel) -> None:
    _, channel = make_channel(script({"AT+CSCS?": '\r\n+CSCS: "GSM"\r\r\n\r\n\r\nOK\r\r\n'}))
    assert channel.command("AT+CSCS?") == ['+CSCS: "GSM"']


def test_prompt_and_pdu_are_one_exchange_no_command_slips_in(make_channel) -> None:
    cmgs_seen = threading.Event()
    release_prompt = threading.Event()

    def handler(peer: AtPeer, got: Received) -> None:
        if got.text.startswith("AT+CMGS="):
            cmgs_seen.set()
            release_prompt.wait(5)
            peer.send("\r\n> ")
        elif got.end == "\x1a":
            peer.send("\r\n+CMGS: 12\r\n\r\nOK\r\n")
        elif got.text:
            peer.send("\r\n+CSQ: 20,99\r\nOK\r\n")

    peer, channel = make_channel(handler)
    result: dict[str, object] = {}
    sender = threading.Thread(target=lambda: result.setdefault("mr", channel.send_pdu(PDU, 24)))
    sender.start()
    assert cmgs_seen.wait(5)
    other = threading.Thread(target=lambda: result.setdefault("csq", channel.command("AT+CSQ")))
    other.start()
    other.join(0.2)  # bounded wait: the other command must still be blocked on the lock
    assert other.is_alive()
    release_prompt.set()
    sender.join(5)
    other.join(5)
    assert result == {"mr": 12, "csq": ["+CSQ: 20,99"]}
    assert [(r.text, r.end) for r in peer.received] == [("AT+CMGS=24", "\r"), (PDU, "\x1a"), ("AT+CSQ", "\r")]


def test_echo_on_commands_and_pdu_echo_are_not_mistaken_for_info(make_channel) -> None:
    def handler(peer: AtPeer, got: Received) -> None:
        peer.send(got.text + got.end)  # echo everything, like ATE1
        if got.text.startswith("AT+CMGS="):
            peer.send("\r\n> ")
        elif got.end == "\x1a":
            peer.send("\r\n+CMGS: 5\r\n\r\nOK\r\n")
        elif got.text == "AT+CSQ":
            peer.send("\r\n+CSQ: 18,99\r\n\r\nOK\r\n")
        elif got.text == "AT+CGMI":
            peer.send("\r\nhuawei\r\n\r\nOK\r\n")

    _, channel = make_channel(handler)
    assert channel.command("AT+CSQ") == ["+CSQ: 18,99"]
    assert channel.command("AT+CGMI") == ["huawei"]
    assert channel.send_pdu(PDU, 24) == 5


def test_echo_off_plain_replies(make_channel) -> None:
    _, channel = make_channel(script({"AT+CGMI": "\r\nhuawei\r\n\r\nOK\r\n"}))
    assert channel.command("AT+CGMI") == ["huawei"]


def test_device_vanishing_mid_command_fails_at_once_with_port_gone(make_channel) -> None:
    def handler(peer: AtPeer, got: Received) -> None:
        if got.text == "AT+CMGL=4":
            peer.vanish()

    _, channel = make_channel(handler)
    t0 = time.monotonic()
    with pytest.raises(PortGone):
        channel.command("AT+CMGL=4", timeout=20.0)
    assert time.monotonic() - t0 < 2.0
    assert not channel.alive and isinstance(channel.error, PortGone)
    with pytest.raises(PortGone):
        channel.command("AT")


def test_device_vanishing_after_pdu_is_ambiguous(make_channel) -> None:
    def handler(peer: AtPeer, got: Received) -> None:
        if got.text.startswith("AT+CMGS"):
            peer.send("\r\n> ")
        elif got.end == "\x1a":
            peer.vanish()

    _, channel = make_channel(handler)
    with pytest.raises(PortGone) as info:
        channel.send_pdu(PDU, 24, timeout=20.0)
    assert classify_error(info.value) is ErrorClass.AMBIGUOUS


def test_cms_500_after_pdu_is_ambiguous(make_channel) -> None:
    def handler(peer: AtPeer, got: Received) -> None:
        if got.text.startswith("AT+CMGS"):
            peer.send("\r\n> ")
        elif got.end == "\x1a":
            peer.send("\r\n+CMS ERROR: 500\r\n")

    _, channel = make_channel(handler)
    with pytest.raises(CmsError) as info:
        channel.send_pdu(PDU, 24)
    assert info.value.code == 500 and info.value.after_submit
    assert classify_error(info.value) is ErrorClass.AMBIGUOUS


def test_cms_error_before_prompt_is_not_after_submit(make_channel) -> None:
    _, channel = make_channel(script({"AT+CMGS=24": "\r\n+CMS ERROR: 331\r\n"}))
    with pytest.raises(CmsError) as info:
        channel.send_pdu(PDU, 24)
    assert not info.value.after_submit
    assert classify_error(info.value) is ErrorClass.TRANSIENT


def test_timeout_after_pdu_is_flagged_after_submit(make_channel) -> None:
    def handler(peer: AtPeer, got: Received) -> None:
        if got.text.startswith("AT+CMGS"):
            peer.send("\r\n> ")
        elif got.text == "AT":
            peer.send("\r\nOK\r\n")

    _, channel = make_channel(handler)
    with pytest.raises(AtTimeout) as info:
        channel.send_pdu(PDU, 24, timeout=0.3)
    assert info.value.after_submit and info.value.resynced
    assert classify_error(info.value) is ErrorClass.AMBIGUOUS


def test_timeout_waiting_for_prompt_sends_esc_and_is_not_after_submit(make_channel) -> None:
    peer, channel = make_channel(script({"AT+CMGS=24": "", "AT": "\r\nOK\r\n"}))
    with pytest.raises(AtTimeout) as info:
        channel.send_pdu(PDU, 24, timeout=0.3)
    assert not info.value.after_submit
    assert "\x1b" in [r.end for r in peer.received]
    assert PDU not in peer.texts()


def test_bad_pdu_input_is_refused_before_anything_is_written(make_channel) -> None:
    peer, channel = make_channel(script({}))
    with pytest.raises(ValueError, match="hex"):
        channel.send_pdu("00XY", 1)
    with pytest.raises(ValueError, match="TPDU length"):
        channel.send_pdu(PDU, 300)
    with pytest.raises(ValueError, match="one line"):
        channel.command("AT\rAT+CFUN=0")
    assert peer.received == []


def test_urc_callback_and_raw_log_hook_and_pin_is_masked(make_channel) -> None:
    seen: list[Urc] = []
    raw: list[tuple[str, bytes]] = []
    _, channel = make_channel(script({'AT+CPIN="1234"': '\r\nOK\r\n\r\n+CPIN: READY\r\n'}, echo=True),
                                 on_urc=seen.append, raw_log=lambda d, b: raw.append((d, b)))
    channel.command('AT+CPIN="1234"', secret="1234")
    channel.urcs.get(timeout=5)
    assert [u.name for u in seen] == ["+CPIN"]
    assert ("tx", b'AT+CPIN="****"\r') in raw
    assert all(b"1234" not in data for _, data in raw)


def test_close_wakes_a_waiting_command_at_once(make_channel) -> None:
    peer, channel = make_channel(lambda p, g: None)
    errors: queue.Queue[BaseException] = queue.Queue()

    def run() -> None:
        try:
            channel.command("AT+CSQ", timeout=20.0)
        except Exception as exc:
            errors.put(exc)

    t = threading.Thread(target=run)
    t.start()
    peer.wait_for(lambda r: len(r) == 1)
    t0 = time.monotonic()
    channel.close()
    t.join(5)
    assert time.monotonic() - t0 < 3.0
    assert "closed" in str(errors.get(timeout=1))
    assert not channel.alive


def test_works_over_pyserial_loop_url() -> None:
    port = serial.serial_for_url("loop://", timeout=0.05)
    with AtChannel(port, name="loop") as channel:
        port.write(b'\r\n+CMTI: "ME",7\r\n')
        urc = channel.urcs.get(timeout=5)
        assert (urc.name, urc.args) == ("+CMTI", ("ME", "7"))
        assert channel.alive
    assert not channel.alive


def test_cmt_urc_carries_its_pdu(make_channel) -> None:
    peer, channel = make_channel(script({}))
    peer.send('\r\n+CMT: "",24\r\n07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07\r\n')
    urc = channel.urcs.get(timeout=5)
    assert urc.name == "+CMT" and urc.pdu is not None and urc.pdu.endswith("FD07")
