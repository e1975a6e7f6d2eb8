"""The failure modes of RELIABILITY.md §1/§2.2 and FIELD.md §3 that had no daemon-level test, against the
real daemon on simulated modems (docs/reliability-checklist.md maps every item to its test)."""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
import sqlite3
import struct
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from gsmmodem.pdu import encodeSmsSubmitPdu

from smsgate.cli import cli
from smsgate.config import SendingConfig
from smsgate.queue import Store
from smsgate.queue.clock import ts
from smsgate.simulator import SimModemSpec
from smsgate.simulator.wire import WireClient
from smsgate.testing import Harness, harness, wait_until

PHONE = "+15555550101"


def _alerts(h: Harness) -> dict[str, str]:
    return {a["kind"]: a["message"] for a in h.store.alerts.open_alerts()}


def _write_stored_outgoing(path: Path, count: int) -> None:
    """Fill SIM slots with saved outgoing messages (AT+CMGW, stat 2): not inbound, so never ours to delete."""
    pdu = encodeSmsSubmitPdu(PHONE, "draft left on the SIM")[0]
    with WireClient(path) as at:
        at.command("ATE0")
        for _ in range(count):
            at.write(f"AT+CMGW={pdu.tpduLength},2\r")
            at.read_until(b"> ")
            at.write(pdu.data.hex().upper() + "\x1a")
            at.read_until(b"OK\r\n")


# -- the port, the SIM and the network ----------------------------------------------------------------

def test_port_held_by_another_program_is_reported_busy_and_taken_once_released(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")], start=False) as h:
        fd = os.open(h.sim.modem("m1").path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what pyserial's exclusive=True takes
            h.start_daemon()
            row = h.wait_state("m1", "offline", timeout=15)
            assert "in use by another program" in (row["state_detail"] or "")
            alert = _alerts(h)["modem_offline"]
            assert "in use by another program" in alert and "ID_MM_DEVICE_IGNORE" in alert
        finally:
            os.close(fd)
        h.wait_ready("m1", timeout=10)
        assert "modem_offline" not in _alerts(h)


def test_sim_busy_right_after_the_pin_is_waited_out_without_a_reset(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1", pin="2468")], start=False) as h:
        h.config.modems[0].pin = "2468"
        modem = h.sim.modem("m1")
        modem.faults.command_error("AT+CIMI", "+CME ERROR: 14", 3)  # python-gsmmodem#11
        modem.faults.command_error("AT+CPMS", "+CMS ERROR: 314", 2)
        modem.faults.command_error("AT+CNMI", "+CME ERROR: 515", 1)
        h.start_daemon()
        h.wait_ready("m1")
        assert modem.pin_attempts == 3 and modem.sim_state == "READY"  # the PIN went in once, and was right
        assert modem.counters.reboots == 0  # waited out, not escalated to AT+CFUN=1,1
        queued = h.store.outbox.enqueue(PHONE, "after the SIM woke up")
        h.wait_message(queued.id, "submitted", "delivered")


def test_registration_denied_raises_an_alert_and_does_not_hammer_the_modem(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")], start=False) as h:
        modem = h.sim.modem("m1")
        modem.faults.registration_denied()
        h.start_daemon()
        row = h.wait_state("m1", "no_network")
        assert row["state_detail"] == "registration denied"
        assert "not registered" in _alerts(h)["no_network"]
        queued = h.store.outbox.enqueue(PHONE, "waits until the network lets the SIM in")
        before = modem.counters.commands
        time.sleep(1.5)  # a measured interval, not synchronisation: how many commands in 1.5 s
        polled = modem.counters.commands - before
        assert polled <= 30, f"{polled} commands in 1.5 s while denied"  # FAST polls every 0.5 s
        assert modem.counters.sends_ok + modem.counters.sends_failed == 0  # no send tried while denied
        assert h.message_state(queued.id) == "queued"
        modem.faults.registration_denied(False)
        h.wait_message(queued.id, "submitted", "delivered")
        assert "no_network" not in _alerts(h)


def test_unknown_smsc_keeps_the_message_queued_and_tells_the_admin_to_set_csca(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        modem.faults.cms_error(330, n=3)
        queued = h.store.outbox.enqueue(PHONE, "no service centre")
        alert = wait_until(lambda: _alerts(h).get("smsc_unknown"), what="smsc alert")
        assert "AT+CSCA" in alert and "m1" in alert
        # waits, not failed (it may already be on its next try by the time we look)
        assert h.message_state(queued.id) in ("queued", "claimed", "submitting", "submitted", "delivered")
        assert h.store.outbox.get(queued.id).attempts == 0
        # the SIM gets its service centre back (the fault runs out): the same message goes out
        msg = h.wait_message(queued.id, "submitted", "delivered", timeout=20)
        assert msg.attempts == 0  # a SIM problem never used up the message's attempts
        h.sim.handset(PHONE).wait_for_text("no service centre")
        wait_until(lambda: "smsc_unknown" not in _alerts(h), what="alert cleared")


# Alerts about a modem that an earlier daemon process raised (then was stopped or killed): each must close
# once the modem shows it no longer holds, not only through the memory of the process that raised it.
EARLIER_ALERTS = {
    "smsc_unknown": "modem m1 does not know its SMS service centre",
    "sim_locked": "modem m1: the SIM wanted its PIN",
    "worker_crashed": "the worker of modem m1 stopped on an internal error",
    "modem_offline": "modem m1 is offline",
    "modem_paused": "modem m1 paused",
    "no_network": "modem m1 is not registered",
    "storage_full": "modem m1 storage is 9/10 full",
}


@pytest.mark.parametrize("kind", sorted(EARLIER_ALERTS))
def test_an_alert_an_earlier_process_left_open_closes_once_the_modem_shows_it_no_longer_holds(
        tmp_path: Path, kind: str) -> None:
    with harness(tmp_path, [SimModemSpec("m1")], start=False) as h:
        modem_id = h.store.modems.upsert("m1", state="stopped")
        h.store.alerts.raise_alert(kind, EARLIER_ALERTS[kind], modem_id=modem_id)
        h.start_daemon()
        h.wait_ready()
        queued = h.store.outbox.enqueue(PHONE, "the SIM sends again")
        h.wait_message(queued.id, "submitted", "delivered")
        wait_until(lambda: kind not in _alerts(h), what=f"{kind} resolved")


def test_the_modemmanager_alert_of_an_earlier_start_closes_when_it_is_no_longer_running(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")], start=False) as h:
        h.store.alerts.raise_alert("modemmanager", "ModemManager is running", level="warning")
        h.start_daemon()
        h.wait_ready()
        assert "modemmanager" not in _alerts(h)  # nothing here runs ModemManager


# -- inbound and status reports -----------------------------------------------------------------------

def test_status_report_announced_in_sm_but_stored_in_sr_is_found_by_listing(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        modem.faults.misfiled_status_reports()  # +CDSI: "SM",1 -> reading SM 1 gives CMS 321
        queued = h.store.outbox.enqueue(PHONE, "report filed elsewhere")
        h.wait_message(queued.id, "delivered", timeout=2.5)  # well before the 3 s periodic sweep
        wait_until(lambda: modem.storage("SR") == [], what="SR emptied")
        assert h.store.reports.unmatched() == []


def test_status_report_announced_at_an_index_holding_another_message_is_still_found_at_once(
        tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")], start=False) as h:
        modem = h.sim.modem("m1")
        _write_stored_outgoing(modem.path, 1)  # SM 1 holds a saved draft: the wrong message (chan-quectel#75)
        h.start_daemon()
        h.wait_ready()
        modem.faults.misfiled_status_reports()
        queued = h.store.outbox.enqueue(PHONE, "report behind a draft")
        h.wait_message(queued.id, "delivered", timeout=2.5)  # not left for the periodic sweep
        assert len(modem.storage("SM")) == 1  # the draft is not ours: neither stored nor deleted
        assert h.store.inbox.recent() == []


def test_storage_at_eighty_percent_that_the_daemon_cannot_empty_raises_an_alert(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")], start=False) as h:
        _write_stored_outgoing(h.sim.modem("m1").path, 25)  # 25 of 30 slots
        h.start_daemon()
        h.wait_ready()
        alert = wait_until(lambda: _alerts(h).get("storage_full"), what="storage alert")
        assert "25/30" in alert
        assert h.modem_row("m1")["storage_used"] == 25
        h.sim.handset(PHONE).send(h.sim.modem("m1").msisdn, "still received")
        wait_until(lambda: h.store.inbox.recent(), what="inbound stored")


def test_failed_delete_neither_loses_nor_duplicates_the_message(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        modem.faults.command_error("AT+CMGD", "+CMS ERROR: 320", 2)  # HA#40462: delete fails, SMS re-read
        h.sim.handset(PHONE).send(modem.msisdn, "delete me twice")
        h.sim.handset(PHONE).send(modem.msisdn, "and me")
        wait_until(lambda: modem.storage() == [] and len(h.store.inbox.recent()) == 2, timeout=10,
                   what="both stored and deleted")
        h.wait_ready("m1")
        assert sorted(r["body"] for r in h.store.inbox.recent()) == ["and me", "delete me twice"]


def test_tp_mr_wraparound_after_256_sends_matches_the_newest_message(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        phone = h.sim.handset(PHONE)
        phone.queue_report_outcomes(*(["none"] * 256), "delivered")
        ids = [h.store.outbox.enqueue(PHONE, f"n{i}", kind="bulk").id for i in range(257)]
        last = h.wait_message(ids[-1], "delivered", timeout=20)
        first = h.store.outbox.get(ids[0])
        assert first.parts[0].tp_mr == last.parts[0].tp_mr == 0  # the same one-octet reference
        assert first.state.value == "submitted"  # the report went to the newest, not the oldest
        assert h.store.reports.unmatched() == []


def test_repeated_and_out_of_order_reports_only_move_states_forward(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")], sim_kwargs={"pending_delay": 0.2}) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        h.sim.handset(PHONE).queue_report_outcomes("delivered_then_pending", "pending_then_delivered", "failed")
        late, slow, bad = (h.store.outbox.enqueue(PHONE, t).id
                           for t in ("stale pending after", "pending first", "lost"))
        h.wait_message(slow, "delivered")
        h.wait_message(bad, "undeliverable")
        wait_until(
            lambda: modem.counters.status_reports_routed == 5 and modem.storage("SR") == [],
            what="all five reports read",
        )
        assert h.message_state(late) == "delivered"  # the stale "pending" did not move it back
        assert h.store.outbox.get(late).parts[0].state.value == "delivered"
        history = [e["action"] for e in h.store.outbox.history(late)]
        assert history.count("message.delivered") == 1


def test_inbound_survives_a_long_send_in_flight(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")], start=False) as h:
        h.sim.network.latency = 0.4  # type: ignore[attr-defined]
        h.start_daemon()
        h.wait_ready()
        ids = [h.store.outbox.enqueue(PHONE, f"slow {i}").id for i in range(3)]
        wait_until(lambda: h.message_state(ids[0]) == "submitting", what="a send on the air")
        h.sim.handset(PHONE).send(h.sim.modem("m1").msisdn, "arrives while sending")
        for i in ids:
            h.wait_message(i, "submitted", "delivered")
        wait_until(lambda: h.store.inbox.recent(), what="inbound stored")
        assert [r["body"] for r in h.store.inbox.recent()] == ["arrives while sending"]


def test_a_54_part_message_is_stored_whole(tmp_path: Path) -> None:
    text = "".join(f"{i:04d} " for i in range(1650))[: 54 * 153]  # gammu#442 crashed on one
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        assert h.sim.handset(PHONE).send(h.sim.modem("m1").msisdn, text, shuffle=True) == 54
        rows = wait_until(lambda: h.store.inbox.recent(), timeout=15, what="the long message")
        assert len(rows) == 1 and rows[0]["body"] == text and not rows[0]["missing_parts"]


def test_text_with_ok_lines_and_emoji_arrives_and_leaves_intact(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        inbound = "Fine\r\nOK\r\nERROR? no 😀 café"
        h.sim.handset(PHONE).send(h.sim.modem("m1").msisdn, inbound)
        rows = wait_until(lambda: h.store.inbox.recent(), what="stored")
        assert rows[0]["body"] == inbound
        out = h.store.outbox.enqueue(PHONE, "OK\nRésumé ✓ 😀")
        h.wait_message(out.id, "submitted", "delivered")
        assert h.sim.handset(PHONE).received_texts() == ["OK\nRésumé ✓ 😀"]


# -- engine and outbound ------------------------------------------------------------------------------


def test_boot_urcs_every_50_ms_never_extend_a_command_deadline(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1", personality="huawei")], sim_kwargs={"periodic_urc_interval": 0.05}) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        modem.faults.hang(keep_urcs=True)  # gammu#393: ^BOOT kept resetting a 40 s timeout
        urcs = modem.counters.urcs
        h.daemon.workers["m1"].request("health")  # type: ignore[union-attr]
        h.wait_state("m1", "recovering", "offline", timeout=5)
        assert modem.counters.urcs > urcs  # URCs kept flowing all the while
        h.wait_state("m1", "offline", timeout=20)
        modem.faults.recover()
        h.wait_ready("m1", timeout=10)


@pytest.mark.parametrize(
    ("codes", "final", "cls"),
    [
        ((1, 8, 10, 27, 28, 29, 30, 50, 69, 303, 304, 305), "failed", "permanent"),
        ((38, 41, 42, 47, 111, 192, 314, 331, 332, 515), "submitted", "transient"),
        ((208, 300, 302, 320, 322, 330), "submitted", "modem"),
        ((500, 197), "unknown", "ambiguous"),
    ],
    ids=["permanent", "transient", "modem", "ambiguous"],
)
def test_every_cms_error_class_has_its_daemon_outcome(
    tmp_path: Path, codes: tuple[int, ...], final: str, cls: str
) -> None:
    sending = SendingConfig(retry_base_seconds=0.1, retry_max_seconds=0.2, max_attempts=3)
    with harness(tmp_path, [SimModemSpec("m1")], config_kwargs={"sending": sending}) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        for code in codes:  # one at a time, so each message meets exactly its code
            modem.faults.cms_error(code)
            queued = h.store.outbox.enqueue(PHONE, f"code {code}")
            msg = h.wait_message(queued.id, "failed", "submitted", "delivered", "unknown", timeout=10)
            assert msg.state.value in ((final, "delivered") if final == "submitted" else (final,)), code
            details = [e["detail"] for e in h.store.outbox.history(queued.id)]
            assert any(str(code) in str(d.get("reason", "")) for d in details), (code, details)
            if final in ("failed", "unknown"):
                assert msg.error_class == cls, code
            else:
                assert any(d.get("class") == cls for d in details), (code, details)
            if cls == "transient":
                assert msg.attempts == 1, code  # retried once with backoff, then sent
            if cls == "modem":
                assert msg.attempts == 0, code  # the modem's fault uses no attempt
        texts = h.sim.handset(PHONE).received_texts()
        assert len(texts) == (len(codes) if final == "submitted" else 0)


def test_multipart_partial_failure_never_resends_an_accepted_part(tmp_path: Path) -> None:
    text = "part by part " * 30  # 3 parts
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        modem.faults.cms_error(42, 1, after=1)  # part 1 accepted, part 2 refused (gammu#311)
        queued = h.store.outbox.enqueue(PHONE, text)
        msg = h.wait_message(queued.id, "submitted", "delivered")
        assert msg.parts_total == 3 and msg.attempts == 1
        assert len(h.sim.handset(PHONE).inbox) == 3  # three parts on the air, none twice
        assert h.sim.handset(PHONE).received_texts() == [text]
        assert modem.counters.sends_ok == 3


def test_a_half_sent_message_resent_after_its_sim_went_offline_arrives_whole_from_the_other_sim(
        tmp_path: Path) -> None:
    text = "one message, three parts " * 14
    with harness(tmp_path, [SimModemSpec("m1"), SimModemSpec("m2")]) as h:
        h.wait_ready()
        m1 = h.modem_row("m1")["id"]
        h.sim.modem("m1").faults.cms_error(500, 1, after=1)  # part 1 goes, part 2 answers ambiguously
        queued = h.store.outbox.enqueue(PHONE, text, preferred_modem_id=m1)
        msg = h.wait_message(queued.id, "unknown")
        assert [p.state.value for p in msg.parts][1:] == ["unknown", "pending"]
        h.sim.modem("m1").faults.unplug()
        h.wait_state("m1", "offline", timeout=15)
        config = tmp_path / "cli.toml"
        config.write_text(f'database = "{h.config.database_path}"\n\n[clinic]\ntimezone = "America/New_York"\n')
        result = CliRunner().invoke(cli, ["--config", str(config), "resend", str(queued.id)])
        assert result.exit_code == 0, result.output
        h.wait_message(queued.id, "submitted", "delivered")
        handset = h.sim.handset(PHONE)
        handset.wait_for_text(text)  # joined: every part of it came from one SIM under one reference
        m2_number = h.sim.modem("m2").msisdn
        assert sum(1 for p in handset.inbox if p.sender == m2_number) == 3
        assert h.sim.modem("m2").counters.sends_ok == 3


def test_a_modem_gone_from_the_configuration_does_not_hold_its_half_sent_message_forever(tmp_path: Path) -> None:
    text = "one message, three parts " * 14
    with harness(tmp_path, [SimModemSpec("m1")], start=False) as h:
        # A modem of an earlier configuration, killed with the daemon while it was ready, after part 1.
        old = h.store.modems.upsert("old-stick", state="ready")
        hour_ago = h.store.clock() - timedelta(hours=1)
        h.store.modems.update(old, heartbeat_at=ts(hour_ago), last_seen_at=ts(hour_ago))
        h.store.alerts.raise_alert("modem_paused", "modem old-stick paused", modem_id=old)
        queued = h.store.outbox.enqueue(PHONE, text, preferred_modem_id=old)
        (claim,) = h.store.outbox.claim("elsewhere:1:old-stick", old)
        h.store.outbox.mark_submitting(claim, 1)
        h.store.outbox.mark_part_submitted(claim, 1, tp_mr=9)
        h.store.outbox.requeue(claim, "the daemon stopped")
        h.start_daemon()
        h.wait_message(queued.id, "submitted", "delivered")
        h.sim.handset(PHONE).wait_for_text(text)  # whole, from m1
        row = h.modem_row("old-stick")
        assert row["state"] == "stopped" and "not in the configuration" in row["state_detail"]
        assert "modem_paused" not in _alerts(h)


def test_stop_returns_promptly_while_a_modem_hangs_mid_command(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1"), SimModemSpec("m2")]) as h:
        h.wait_ready()
        h.sim.modem("m1").faults.hang()
        h.sim.handset(PHONE).send(h.sim.modem("m1").msisdn, "into a hung modem")  # gammu#45 froze here
        h.daemon.workers["m1"].request("health")  # type: ignore[union-attr]
        started = time.monotonic()
        assert h.stop_daemon() is True
        assert time.monotonic() - started < 8
        assert h.modem_row("m2")["state"] == "stopped"


# -- secrets and the database -------------------------------------------------------------------------


def test_log_lines_never_contain_the_sim_pin(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    good, wrong = "73915046", "19283746"
    caplog.set_level(logging.DEBUG)
    specs = [SimModemSpec("m1", pin=good), SimModemSpec("m2", pin="55667788")]
    with harness(tmp_path, specs, start=False) as h:
        h.config.modems[0].pin = good
        h.config.modems[1].pin = wrong
        h.start_daemon()
        h.wait_ready("m1")
        h.wait_state("m2", "locked")
        leaked = [r for r in caplog.records if good in r.getMessage() or wrong in r.getMessage()]
        assert leaked == []
        assert any("m2" in r.getMessage() and "PIN" in r.getMessage() for r in caplog.records)
        assert all(
            good not in (a["message"] or "") and wrong not in (a["message"] or "") for a in h.store.alerts.open_alerts()
        )


def test_sim_pin_with_one_attempt_left_is_not_tried_and_the_admin_is_told_to_enter_it(tmp_path: Path) -> None:
    specs = [SimModemSpec("m1", pin="4321", pin_attempts=1), SimModemSpec("m2")]
    with harness(tmp_path, specs, start=False) as h:
        h.config.modems[0].pin = "4321"  # even the right PIN is not risked on the last attempt
        h.start_daemon()
        row = h.wait_state("m1", "locked")
        modem = h.sim.modem("m1")
        assert modem.sim_state == "SIM PIN" and modem.pin_attempts == 1  # nothing was entered
        assert "1 attempt left" in (row["state_detail"] or "")
        alert = _alerts(h)["sim_locked"]
        assert "by hand" in alert and "4321" not in alert
        h.wait_ready("m2")  # the other modem is not held up
        assert modem.sim_state == "SIM PIN" and modem.pin_attempts == 1


@pytest.mark.parametrize("left", [3, 2])
def test_sim_pin_with_attempts_to_spare_is_entered_once_and_the_modem_comes_up(tmp_path: Path, left: int) -> None:
    with harness(tmp_path, [SimModemSpec("m1", pin="4321", pin_attempts=left)], start=False) as h:
        h.config.modems[0].pin = "4321"
        h.start_daemon()
        h.wait_ready("m1")
        modem = h.sim.modem("m1")
        assert modem.sim_state == "READY" and modem.pin_attempts == 3  # a right PIN resets the counter
        assert "sim_locked" not in _alerts(h)


def test_wrong_pin_with_attempts_to_spare_costs_exactly_one_attempt(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1", pin="4321", pin_attempts=3)], start=False) as h:
        h.config.modems[0].pin = "1111"
        h.start_daemon()
        h.wait_state("m1", "locked")
        modem = h.sim.modem("m1")
        assert modem.pin_attempts == 2 and modem.sim_state == "SIM PIN"
        assert "sim_locked" in _alerts(h)


def _wal_commit_ends(wal: bytes) -> tuple[int, list[int]]:
    """Frame size and the byte offset after each commit frame of the WAL's current generation."""
    if len(wal) < 32:
        return 0, []
    page_size = struct.unpack(">I", wal[8:12])[0]
    salts = wal[16:24]
    frame = 24 + page_size
    ends: list[int] = []
    off = 32
    while off + frame <= len(wal):
        if wal[off + 8 : off + 16] != salts:
            break
        if struct.unpack(">I", wal[off + 4 : off + 8])[0]:
            ends.append(off + frame)
        off += frame
    return frame, ends


def test_db_copied_mid_run_with_its_wal_and_a_torn_tail_opens_consistent(tmp_path: Path) -> None:
    copies: list[Path] = []
    with harness(tmp_path / "run", [SimModemSpec("m1")]) as h:
        h.wait_ready()
        db = Path(h.config.database_path)
        for i in range(60):
            h.store.outbox.enqueue(f"+1202555{i:04d}", f"busy {i}")
        for i in range(4):
            h.sim.handset(PHONE).send(h.sim.modem("m1").msisdn, f"in {i}")
            wait_until(lambda n=i: h.sim.modem("m1").counters.sends_ok >= 12 * (n + 1), what="progress")
            reader = sqlite3.connect(db)
            try:
                reader.execute("BEGIN")
                reader.execute("SELECT count(*) FROM messages").fetchone()  # holds the WAL: no reset mid-copy
                snap = tmp_path / f"snap{i}.db"
                shutil.copyfile(db, snap)
                shutil.copyfile(f"{db}-wal", f"{snap}-wal")
            finally:
                reader.close()
            wal = Path(f"{snap}-wal").read_bytes()
            frame, ends = _wal_commit_ends(wal)
            # Power loss drops what was not yet synced: at most the last transaction (synchronous=FULL).
            start = ends[-2] if len(ends) >= 2 else 32
            cuts = {len(wal)}
            if ends:
                cuts |= {ends[-1] - 1, ends[-1] - frame, start + (ends[-1] - start) // 2}
            for cut in sorted(cuts):
                copy = tmp_path / f"snap{i}-{cut}.db"
                shutil.copyfile(snap, copy)
                Path(f"{copy}-wal").write_bytes(wal[: max(cut, 0)])
                copies.append(copy)
    assert len(copies) >= 8
    states = {
        "queued",
        "claimed",
        "submitting",
        "submitted",
        "delivered",
        "undeliverable",
        "failed",
        "unknown",
        "cancelled",
    }
    for copy in copies:
        conn = sqlite3.connect(copy)
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)], copy
            assert conn.execute("PRAGMA foreign_key_check").fetchall() == [], copy
            assert {r[0] for r in conn.execute("SELECT DISTINCT state FROM messages")} <= states
        finally:
            conn.close()
        store = Store.open(copy)
        try:
            store.integrity_check()
        finally:
            store.close()
        config = copy.with_suffix(".toml")
        config.write_text(f'database = "{copy}"\n[clinic]\ntimezone = "America/New_York"\n')
        result = CliRunner().invoke(cli, ["--config", str(config), "db", "check"])
        assert result.exit_code == 0, result.output
