"""The daemon on a modem that offers only direct delivery (`+CMT`/`+CDS`, acknowledged with `AT+CNMA`).

Every simulated personality offers store-and-notify, which the daemon prefers, so these tests use
`SimModemSpec(direct_delivery_only=True)`: `AT+CNMI=?` lists mt 0/2 and ds 0/1 only. The rule under test is
RELIABILITY.md's "commit, then act": an SMS handed over by `+CMT` is stored and committed before the
`AT+CNMA` that lets the network forget it, so a daemon that dies in between costs a re-delivery (absorbed
by the inbound unique key), never the message.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from smsgate.modemd.testing import Harness, harness, wait_until
from smsgate.simulator import SimModemSpec

PHONE = "+15555550101"
DIRECT = SimModemSpec("m1", direct_delivery_only=True)


def _bodies(h: Harness) -> list[str]:
    return [r["body"] for r in h.store.inbox.recent()]


def _stored_count(db: Path, body: str) -> int:
    """Rows with that body as another process would see them: committed ones only."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        return int(conn.execute("SELECT count(*) FROM inbound WHERE body = ?", (body,)).fetchone()[0])


def test_direct_only_modem_is_set_to_cmt_and_cds_with_acknowledgements(tmp_path: Path) -> None:
    with harness(tmp_path, [DIRECT]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        mode, mt, _bm, ds, _bfr = modem.cnmi
        assert mode in (1, 2) and mt == 2 and ds == 1 and modem.csms == 1


def test_sms_by_cmt_is_stored_once_and_acknowledged_after_the_commit(tmp_path: Path) -> None:
    with harness(tmp_path, [DIRECT]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        db = h.config.database_path
        seen_at_ack: list[int] = []
        modem.watch_commands("AT+CNMA", lambda _line: seen_at_ack.append(_stored_count(db, "direct hello")))
        h.sim.handset(PHONE).send(modem.msisdn, "direct hello")
        wait_until(lambda: modem.counters.acks >= 1, what="the +CMT acknowledged")
        assert seen_at_ack == [1]  # committed (visible to another connection) before AT+CNMA went out
        assert _bodies(h) == ["direct hello"]
        counters = modem.counters
        assert counters.inbound_direct == 1 and counters.inbound_stored == 0  # never touched SIM storage
        assert modem.storage("SM") == []
        assert modem.pending_at_network() == 0


def test_several_sms_by_cmt_each_wait_for_their_ack_and_all_are_stored_once(tmp_path: Path) -> None:
    with harness(tmp_path, [DIRECT]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        texts = [f"message {i}" for i in range(5)]
        for t in texts:
            h.sim.handset(PHONE).send(modem.msisdn, t)
        wait_until(lambda: len(h.store.inbox.recent()) == 5, what="five stored")
        assert sorted(_bodies(h)) == sorted(texts)
        wait_until(lambda: modem.counters.acks == 5, what="five acknowledgements")


def test_multipart_by_cmt_is_reassembled_into_one_message(tmp_path: Path) -> None:
    text = "".join(f"part-{i:03d} " for i in range(60))  # 600 GSM-7 characters: 4 parts
    with harness(tmp_path, [DIRECT]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        assert h.sim.handset(PHONE).send(modem.msisdn, text, shuffle=True) == 4
        rows = wait_until(lambda: h.store.inbox.recent(), what="the long message")
        assert len(rows) == 1 and rows[0]["body"] == text and not rows[0]["missing_parts"]
        wait_until(lambda: modem.counters.acks == 4, what="every part acknowledged")


def test_status_report_by_cds_is_matched_and_acknowledged(tmp_path: Path) -> None:
    with harness(tmp_path, [DIRECT]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        queued = h.store.outbox.enqueue(PHONE, "please confirm")
        h.wait_message(queued.id, "delivered")
        counters = modem.counters
        assert counters.status_reports_routed == 1 and modem.storage("SR") == []  # came as +CDS, not stored
        wait_until(lambda: modem.counters.acks == 1, what="the +CDS acknowledged")
        assert h.store.inbox.recent() == []  # a report is not an inbound message


def test_lost_acknowledgement_means_a_redelivery_that_is_stored_once(tmp_path: Path) -> None:
    """The daemon stored and committed, but its AT+CNMA did not count: the network delivers again."""
    with harness(tmp_path, [DIRECT], sim_kwargs={"cnma_timeout": 0.5}) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        modem.faults.command_error("AT+CNMA", "+CMS ERROR: 340", 1)  # the ack is refused, nothing acked
        h.sim.handset(PHONE).send(modem.msisdn, "said twice by the network")
        wait_until(lambda: modem.counters.inbound_direct >= 2, what="the network re-delivering")
        wait_until(lambda: modem.counters.acks >= 1, what="the re-delivery acknowledged")
        assert _bodies(h) == ["said twice by the network"]
        after = h.store.outbox.enqueue(PHONE, "still sending")  # the refused ack did not upset the modem
        h.wait_message(after.id, "submitted", "delivered")


def test_daemon_gone_between_receiving_and_storing_gets_the_sms_again_and_stores_it_once(tmp_path: Path) -> None:
    """No AT+CNMA within the timeout (the daemon died with the +CMT unread): the network re-delivers."""
    with harness(tmp_path, [DIRECT], sim_kwargs={"cnma_timeout": 0.5}) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        assert h.stop_daemon()
        h.sim.handset(PHONE).send(modem.msisdn, "while nobody listened")
        wait_until(lambda: modem.counters.inbound_direct >= 2, what="delivered, unacknowledged, delivered again")
        assert h.store.inbox.recent() == []
        h.start_daemon()
        h.wait_ready()
        wait_until(lambda: h.store.inbox.recent(), timeout=10, what="stored after the restart")
        wait_until(lambda: modem.counters.acks >= 1, what="acknowledged after the restart")
        h.sim.handset(PHONE).send(modem.msisdn, "after the restart")
        wait_until(lambda: len(h.store.inbox.recent()) == 2, what="the next one")
        assert sorted(_bodies(h)) == ["after the restart", "while nobody listened"]


def test_cmt_inside_another_commands_reply_is_stored_and_the_reply_still_read(tmp_path: Path) -> None:
    with harness(tmp_path, [DIRECT]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        modem.set_signal(9)
        modem.faults.inbound_inside_reply("AT+CSQ")
        h.sim.handset(PHONE).send(modem.msisdn, "squeezed into +CSQ")
        assert modem.pending_at_network() == 1  # held until the next AT+CSQ
        h.daemon.workers["m1"].request("health")  # type: ignore[union-attr]
        wait_until(lambda: h.store.inbox.recent(), what="the +CMT from inside the reply stored")
        assert _bodies(h) == ["squeezed into +CSQ"]
        wait_until(lambda: modem.counters.acks == 1, what="acknowledged")
        wait_until(lambda: h.modem_row("m1")["signal_dbm"] == -113 + 2 * 9, what="the +CSQ answer still read")
        assert h.modem_row("m1")["state"] == "ready"


def test_cmt_during_a_send_on_the_air_is_stored_and_the_send_completes(tmp_path: Path) -> None:
    with harness(tmp_path, [DIRECT], start=False) as h:
        h.sim.network.latency = 0.4  # type: ignore[attr-defined]
        h.start_daemon()
        h.wait_ready()
        modem = h.sim.modem("m1")
        queued = h.store.outbox.enqueue(PHONE, "slow send")
        wait_until(lambda: h.message_state(queued.id) == "submitting", what="a send on the air")
        h.sim.handset(PHONE).send(modem.msisdn, "arrives mid-send")
        h.wait_message(queued.id, "submitted", "delivered")
        wait_until(lambda: h.store.inbox.recent(), what="stored")
        assert _bodies(h) == ["arrives mid-send"]
        wait_until(lambda: modem.counters.acks >= 1, what="acknowledged")
