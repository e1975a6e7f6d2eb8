"""Byte -> frame rules of the AT framer, fed bytes directly (no port)."""

from __future__ import annotations

import pytest

from smsgate.at_commands.framing import MAX_LINE_BYTES, Frame, LineFramer


def frames(*chunks: bytes) -> list[Frame]:
    framer = LineFramer()
    out: list[Frame] = []
    for chunk in chunks:
        out += framer.feed(chunk)
    return out


def texts(*chunks: bytes) -> list[str]:
    return [f.text for f in frames(*chunks)]


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ((b"\r\nOK\r\n",), ["OK"]),
        ((b"\r\n+CSCS: \"GSM\"\r\n\r\n\r\nOK\r\n",), ['+CSCS: "GSM"', "OK"]),  # Huawei E1752 blank line
        ((b"+CGMI\r\r\n+CGMM\r\r\nOK\r\n",), ["+CGMI", "+CGMM", "OK"]),  # Huawei \r\r\n line ends
        ((b" WAVECOM MODEM\r\nOK\r\n",), ["WAVECOM MODEM", "OK"]),  # leading space
        ((b"O", b"K", b"\r", b"\n"),  ["OK"]),  # one byte at a time
        ((b"OK\n",), ["OK"]),
        ((b"OK\r",), ["OK"]),
    ],
)
def test_lines_are_cut_at_any_cr_lf_combination(chunks: tuple[bytes, ...], expected: list[str]) -> None:
    assert texts(*chunks) == expected


def test_prompt_is_reported_without_a_line_terminator() -> None:
    got = frames(b"AT+CMGS=23\r\r\n> ")
    assert [f.text for f in got] == ["AT+CMGS=23", "> "]
    assert got[-1].prompt


def test_prompt_split_over_two_reads_is_still_one_prompt() -> None:
    got = frames(b"\r\n>", b" ")
    assert [f.prompt for f in got] == [True]


def test_non_utf8_bytes_never_raise_and_keep_every_byte() -> None:
    got = texts(b"\xff\xfe garbage \x80\r\nOK\r\n")
    assert got == ["ÿþ garbage \x80", "OK"]


def test_nul_ctrl_z_and_esc_are_dropped_from_lines() -> None:
    assert texts(b"\x00OK\x1a\x1b\r\n") == ["OK"]


def test_cmt_header_gets_its_pdu_line_attached() -> None:
    got = frames(b'\r\n+CMT: "",24\r\n07911326040000F0040B911346610089F60000208062917314080CC8F71D14969741F977FD07\r\n')
    assert len(got) == 1
    assert got[0].text == '+CMT: "",24'
    assert got[0].pdu is not None and got[0].pdu.startswith("0791")


def test_pdu_mode_cds_gets_its_pdu_but_text_mode_cds_does_not() -> None:
    pdu = frames(b"+CDS: 25\r\n0006D60B911326880736F4111011719551401110117195714000\r\n")
    assert pdu[0].pdu == "0006D60B911326880736F4111011719551401110117195714000"
    text = frames(b'+CDS: 6,20,"0870000000",129,"13/04/29,19:58:00+04","13/04/29,19:59:00+04",0\r\nOK\r\n')
    assert [f.pdu for f in text] == [None, None]


def test_cusd_with_line_breaks_inside_quotes_is_one_frame() -> None:
    got = texts(b'+CUSD: 0,"Balance: R 96.45\r\nValid until 2027",15\r\nOK\r\n')
    assert got == ['+CUSD: 0,"Balance: R 96.45\nValid until 2027",15', "OK"]


def test_endless_line_without_terminator_is_cut_so_memory_stays_bounded() -> None:
    got = texts(b"A" * (MAX_LINE_BYTES + 10))
    assert len(got) == 1 and len(got[0]) == MAX_LINE_BYTES + 10


def test_flush_returns_a_header_still_waiting_for_its_pdu() -> None:
    framer = LineFramer()
    assert framer.feed(b"+CMT: ,24\r\n") == []
    assert [f.text for f in framer.flush()] == ["+CMT: ,24"]
