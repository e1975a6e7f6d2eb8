"""Every real-world PDU in tests/data/pdu-vectors.json decodes to its documented meaning."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from smsgate.at_commands.pdu import Deliver, PduError, StatusReport, Submit, decode
from smsgate.at_commands.reassembly import Fragment, assemble

VECTORS_PATH = Path(__file__).resolve().parent / "data" / "pdu-vectors.json"
DATA = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
VECTORS = {v["id"]: v for v in DATA["vectors"]}

TYPES = {"deliver": Deliver, "submit": Submit, "status-report": StatusReport}
# The vectors' schema names a field differently from our records in two places.
FIELD_NAMES = {"msg_class": "message_class"}
# The vector's own note says a strict decoder may reject it: TP-UDL is 160 but 10 octets follow.
STRICT_REJECTS = {"babca-submit-ucs2-udl-too-long"}


def observed(message: Deliver | Submit | StatusReport, name: str) -> Any:
    value = getattr(message, FIELD_NAMES.get(name, name))
    if isinstance(value, datetime):
        return value.isoformat()
    if name == "concat" and value is not None:
        return [value.ref, value.total, value.seq]
    return value


def check_expected(message: Deliver | Submit | StatusReport, expected: dict[str, Any]) -> None:
    got = {name: observed(message, name) for name in expected}
    assert got == expected


@pytest.mark.parametrize("vector_id", sorted(VECTORS))
def test_vector_decodes_to_its_documented_fields(vector_id: str) -> None:
    vector = VECTORS[vector_id]
    if vector_id in STRICT_REJECTS:
        with pytest.raises(PduError, match="TP-UDL at octet 13"):
            decode(vector["pdu_hex"])
        message = decode(vector["pdu_hex"], lenient=True)
        assert "ud-truncated" in {f.code for f in message.flags}
    else:
        message = decode(vector["pdu_hex"])
    assert isinstance(message, TYPES[vector["type"]])
    check_expected(message, vector["expected"])
    assert message.raw == vector["pdu_hex"].upper()


def test_timestamps_keep_the_senders_offset() -> None:
    message = decode(VECTORS["gammu-03-deliver-ist"]["pdu_hex"])
    assert message.timestamp is not None
    assert message.timestamp.utcoffset() is not None
    assert message.timestamp.utcoffset().total_seconds() == 5.5 * 3600


def test_non_bcd_timezone_is_flagged_and_the_rest_decodes() -> None:
    message = decode(VECTORS["babca-modem-sr-invalid-tz-bcd"]["pdu_hex"])
    assert isinstance(message, StatusReport)
    assert message.timestamp is None
    assert [f.code for f in message.flags] == ["invalid-timestamp"]
    assert "610103409544C2" in message.flags[0].message
    assert message.outcome == "delivered"


@pytest.mark.parametrize("group", DATA["multipart"], ids=lambda g: g["id"])
def test_multipart_group_reassembles_in_any_order(group: dict[str, Any]) -> None:
    fragments = [Fragment.of(decode(VECTORS[part_id]["pdu_hex"])) for part_id in group["parts"]]
    forward = assemble(fragments)
    backward = assemble(list(reversed(fragments)) + fragments[:1])
    assert forward.complete and forward.missing == []
    assert forward.text == group["full_text"]
    assert backward.text == group["full_text"]
    assert backward.duplicates == 1


def _deliver_around(address_hex: str = "00D0", scts_hex: str = "00000000000000") -> str:
    """An SMS-DELIVER with no SMSC and empty text, built around one field under test."""
    return "00" + "04" + address_hex + "0000" + scts_hex + "00"


@pytest.mark.parametrize("case", DATA["fields"]["scts"], ids=lambda c: c["hex"])
def test_scts_field_decodes_with_its_offset(case: dict[str, Any]) -> None:
    message = decode(_deliver_around(address_hex="0091", scts_hex=case["hex"]))
    assert message.timestamp is not None
    assert message.timestamp.isoformat() == case["iso"]


@pytest.mark.parametrize("case", DATA["fields"]["address"], ids=lambda c: c["hex"])
def test_address_field_decodes(case: dict[str, Any]) -> None:
    message = decode(_deliver_around(address_hex=case["hex"], scts_hex="11101131521440"))
    assert message.number == case["value"]
