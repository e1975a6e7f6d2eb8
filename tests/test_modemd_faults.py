"""Every fault the simulator injects, against the running daemon: what ends up stored and what is sent."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from smsgate.queue import Kind, SendPolicy, Store
from smsgate.queue.outbox import AUTOMATIC_RESEND, COMPLIANCE_RESEND
from smsgate.simulator import ModemHandle, SimModemSpec
from smsgate.testing import Harness, harness, wait_until

PHONE = "+15555550101"


def _alert_kinds(h: object) -> set[str]:
    return {a["kind"] for a in h.store.alerts.open_alerts()}  # type: ignore[attr-defined]


def _hang_until_offline(h: Harness, name: str = "m1") -> ModemHandle:
    """Hang the modem and ask for a health check at once, so the ladder runs to `offline` without waiting."""
    modem = h.sim.modem(name)
    modem.faults.hang()
    h.daemon.workers[name].request("health")  # type: ignore[union-attr]
    h.wait_state(name, "offline", timeout=20)
    return modem


def test_unplug_mid_send_and_replug_under_a_new_tty_is_found_again_by_imei(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")], start=False) as h:
        modem = h.sim.modem("m1")
        first_tty = modem.tty_path
        cfg = h.config.modems[0]
        cfg.device = first_tty  # the raw tty, which will not come back
        cfg.imei = modem.imei
        cfg.probe = [str(modem.path.parent / "*")]
        h.start_daemon()
        h.wait_ready()
        ids = [h.store.outbox.enqueue(PHONE, f"batch {i}").id for i in range(30)]
        wait_until(lambda: len(h.sim.handset(PHONE).inbox) >= 3, what="sending under way")
        modem.faults.unplug()
        h.wait_state("m1", "recovering", "offline")
        # Hold a pty so the kernel cannot hand the old number back: the modem returns under a new tty,
        # and an unrelated terminal now sits at the old path.
        squatter_master, squatter_slave = os.openpty()
        try:
            modem.faults.replug()
            assert modem.tty_path != first_tty
            h.wait_ready("m1")
        finally:
            os.close(squatter_master)
            os.close(squatter_slave)
        for i in ids:
            h.wait_message(i, "submitted", "delivered", "unknown")
        with h.store.read_snapshot():  # an unknown one may be settled from its report at any moment
            states = [h.message_state(i) for i in ids]
            sent_count = h.modem_row("m1")["sent_count"]
        texts = h.sim.handset(PHONE).received_texts()
        for i, state in zip(range(30), states, strict=True):
            n = texts.count(f"batch {i}")
            assert n == (1 if state != "unknown" else n) and n <= 1, (i, state, n)
        assert h.modem_row("m1")["device"] != first_tty  # found again under the new path, same history
        assert sent_count == sum(s in ("submitted", "delivered") for s in states)


def test_hung_modem_is_taken_offline_with_an_alert_and_recovers_by_itself(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        modem = _hang_until_offline(h)
        assert "modem_offline" in _alert_kinds(h)
        queued = h.store.outbox.enqueue(PHONE, "sent once the modem is back")
        modem.faults.recover()
        h.wait_ready("m1", timeout=10)
        h.sim.handset(PHONE).wait_for_text("sent once the modem is back")
        h.wait_message(queued.id, "submitted", "delivered")
        assert "modem_offline" not in _alert_kinds(h)
        assert h.sim.handset(PHONE).received_texts() == ["sent once the modem is back"]


def test_garbage_on_the_line_loses_neither_sends_nor_inbound(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        modem.faults.garbage()
        modem.faults.garbage(before_next_reply=True)
        ids = [h.store.outbox.enqueue(PHONE, f"after garbage {i}").id for i in range(3)]
        modem.faults.garbage()
        h.sim.handset(PHONE).send(modem.msisdn, "inbound through the noise")
        for i in ids:
            h.wait_message(i, "submitted", "delivered", "unknown")
        wait_until(lambda: h.store.inbox.recent(), what="inbound stored")
        texts = h.sim.handset(PHONE).received_texts()
        assert all(texts.count(f"after garbage {i}") <= 1 for i in range(3))
        sent = sum(h.message_state(i) in ("submitted", "delivered") for i in ids)
        assert sent + sum(h.message_state(i) == "unknown" for i in ids) == 3 and sent >= 2
        assert [r["body"] for r in h.store.inbox.recent()] == ["inbound through the noise"]


def test_urc_storm_does_not_stall_sending_or_receiving(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1", personality="huawei")]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        modem.faults.urc_storm(2000)
        queued = h.store.outbox.enqueue(PHONE, "through the storm")
        h.sim.handset(PHONE).send(modem.msisdn, "also through the storm")
        modem.faults.urc_storm(2000)
        h.wait_message(queued.id, "submitted", "delivered")
        wait_until(lambda: h.store.inbox.recent(), what="inbound during the storm")
        assert h.sim.handset(PHONE).received_texts() == ["through the storm"]


def test_permanent_cms_error_fails_that_message_and_the_next_one_goes(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        h.sim.modem("m1").faults.cms_error(1)  # unassigned number
        bad = h.store.outbox.enqueue(PHONE, "to a number that does not exist")
        good = h.store.outbox.enqueue(PHONE, "the next one")
        failed = h.wait_message(bad.id, "failed")
        h.wait_message(good.id, "submitted", "delivered")
        assert failed.error_class == "permanent" and "CMS ERROR 1" in (failed.last_error or "")
        assert h.sim.handset(PHONE).received_texts() == ["the next one"]


def test_transient_cms_error_is_retried_with_backoff_then_gives_up_at_the_cap(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        h.sim.modem("m1").faults.cms_error(42, 50)  # congestion, every time
        queued = h.store.outbox.enqueue(PHONE, "never gets through", policy=SendPolicy(max_attempts=3))
        failed = h.wait_message(queued.id, "failed", timeout=10)
        assert failed.attempts == 3 and "gave up after 3 attempts" in (failed.last_error or "")
        history = [e["action"] for e in h.store.outbox.history(queued.id)]
        assert history.count("message.queued") == 3  # queued at first, then twice back after backoff
        assert h.sim.handset(PHONE).received_texts() == []


def test_modem_level_cms_error_requeues_without_using_an_attempt_and_reinitialises(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        h.sim.modem("m1").faults.cms_error(300)  # ME failure
        queued = h.store.outbox.enqueue(PHONE, "after the re-init")
        msg = h.wait_message(queued.id, "submitted", "delivered")
        assert msg.attempts == 0
        assert [e for e in h.store.outbox.history(queued.id) if e["detail"].get("class") == "modem"]
        assert h.sim.handset(PHONE).received_texts() == ["after the re-init"]


def test_cms_500_after_the_pdu_is_unknown_and_not_resent(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        h.sim.modem("m1").faults.ambiguous()
        h.sim.handset(PHONE).queue_report_outcomes("none")  # and the network never says what became of it
        queued = h.store.outbox.enqueue(PHONE, "did it go?")
        after = h.store.outbox.enqueue(PHONE, "the queue goes on")
        msg = h.wait_message(queued.id, "unknown")
        h.wait_message(after.id, "submitted", "delivered")
        assert msg.error_class == "ambiguous"
        texts = h.sim.handset(PHONE).received_texts()
        assert texts.count("did it go?") == 1  # the network had it; the daemon did not send it again
        assert h.message_state(queued.id) == "unknown"


def test_an_ambiguous_send_the_network_reports_delivered_is_settled_from_that_report(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        h.sim.modem("m1").faults.ambiguous()  # on the air, but the modem answers +CMS ERROR: 500
        queued = h.store.outbox.enqueue(PHONE, "did it go?")
        msg = h.wait_message(queued.id, "delivered")
        (part,) = h.sim.handset(PHONE).inbox
        (evidence,) = [e["detail"] for e in h.store.outbox.history(queued.id) if e["action"] == "message.submitted"]
        assert evidence["tp_mr"] == part.mr == msg.parts[0].tp_mr and evidence["report_ids"]
        assert evidence["sc_timestamp"] and evidence["discharge_time"]
        assert h.sim.handset(PHONE).received_texts() == ["did it go?"]  # settled, not sent twice


def test_resend_unknown_when_configured_sends_the_ambiguous_message_again(tmp_path: Path) -> None:
    from smsgate.config import SendingConfig

    sending = SendingConfig(resend_unknown=True, retry_base_seconds=0.2, retry_max_seconds=0.5)
    with harness(tmp_path, [SimModemSpec("m1")], config_kwargs={"sending": sending}) as h:
        h.wait_ready()
        h.sim.modem("m1").faults.ambiguous()
        queued = h.store.outbox.enqueue(PHONE, "resend me if unsure")
        h.wait_message(queued.id, "submitted", "delivered")
        assert h.sim.handset(PHONE).received_texts().count("resend me if unsure") == 2


def _left_mid_send_by_a_killed_daemon(h: Harness, text: str, **enqueue: object) -> int:
    """A message whose part was being written when a daemon on this host died (its pid is gone)."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])  # its pid is free once it has exited
    dead.wait()
    modem = h.store.modems.upsert("m1", state="ready")
    queued = h.store.outbox.enqueue(PHONE, text, **enqueue)  # type: ignore[arg-type]
    (claim,) = h.store.outbox.claim(f"{socket.gethostname()}:{dead.pid}:m1", modem)
    h.store.outbox.mark_submitting(claim, 1)
    return queued.id


def test_resend_unknown_also_resends_a_message_a_killed_daemon_left_mid_send(tmp_path: Path) -> None:
    from smsgate.config import SendingConfig

    sending = SendingConfig(resend_unknown=True, retry_base_seconds=0.2, retry_max_seconds=0.5)
    with harness(tmp_path, [SimModemSpec("m1")], start=False, config_kwargs={"sending": sending}) as h:
        mid = _left_mid_send_by_a_killed_daemon(h, "caught mid-send")
        h.start_daemon()
        h.wait_message(mid, "submitted", "delivered")
        assert h.sim.handset(PHONE).received_texts() == ["caught mid-send"]
        (resend,) = [e for e in h.store.outbox.history(mid) if e["detail"].get("reason") == AUTOMATIC_RESEND]
        assert resend["actor"] == "lease-expiry:resend_unknown"


def test_a_stop_confirmation_a_killed_daemon_left_unknown_is_resent_once_after_the_window(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")], start=False) as h:
        assert h.config.sending.resend_unknown is False
        h.config.compliance.confirmation_resend_minutes = 0.02
        text = "Clinic: you will receive no more messages from this number."
        mid = _left_mid_send_by_a_killed_daemon(h, text, kind=Kind.COMPLIANCE, created_by="rules", source="rules")
        h.start_daemon()
        h.wait_message(mid, "unknown")  # may have gone: the network gets its chance to say so first
        h.wait_message(mid, "submitted", "delivered", timeout=15)
        assert h.sim.handset(PHONE).received_texts() == [text]
        assert [e["detail"]["reason"] for e in h.store.outbox.history(mid)
                if e["action"] == "message.queued" and e["detail"].get("reason")] == [COMPLIANCE_RESEND]


def test_storage_full_holds_messages_at_the_network_and_all_are_stored_once_when_freed(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        modem.faults.storage_full()
        for i in range(3):
            h.sim.handset(PHONE).send(modem.msisdn, f"while full {i}")
        assert modem.pending_at_network() == 3
        modem.faults.storage_full(False)
        wait_until(lambda: len(h.store.inbox.recent()) == 3, what="all three stored")
        assert sorted(r["body"] for r in h.store.inbox.recent()) == [f"while full {i}" for i in range(3)]


def test_full_sim_storage_at_start_is_emptied_and_nothing_is_lost(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")], start=False) as h:
        modem = h.sim.modem("m1")
        for i in range(34):
            h.sim.handset(PHONE).send(modem.msisdn, f"backlog {i}")
        wait_until(lambda: len(modem.storage()) == 30, what="SIM storage full")
        assert modem.pending_at_network() == 4
        h.start_daemon()
        wait_until(lambda: len(h.store.inbox.recent()) == 34, timeout=15, what="all 34 stored")
        bodies = sorted(r["body"] for r in h.store.inbox.recent())
        assert bodies == sorted(f"backlog {i}" for i in range(34))


def test_the_same_sms_delivered_twice_is_stored_once(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        modem.faults.duplicate_inbound(2)
        h.sim.handset(PHONE).send(modem.msisdn, "only once please")
        h.sim.handset(PHONE).send(modem.msisdn, "x" * 200)  # a multipart one, each part twice
        wait_until(lambda: len(h.store.inbox.recent()) == 2 and modem.storage() == [], what="stored")
        assert modem.pending_at_network() == 0
        bodies = sorted(r["body"] for r in h.store.inbox.recent())
        assert bodies == sorted(["only once please", "x" * 200])


def test_status_report_arriving_before_cmgs_is_matched(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        h.sim.modem("m1").faults.early_status_report()
        queued = h.store.outbox.enqueue(PHONE, "report races the answer")
        msg = h.wait_message(queued.id, "delivered")
        assert msg.parts[0].state.value == "delivered"
        assert h.store.reports.unmatched() == []


def test_configured_pin_is_entered_once_and_the_modem_comes_up(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1", pin="4321")], start=False) as h:
        h.config.modems[0].pin = "4321"
        h.start_daemon()
        h.wait_ready("m1")
        assert h.sim.modem("m1").sim_state == "READY"


def test_wrong_pin_is_tried_exactly_once_then_the_modem_stops_with_an_alert(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1", pin="4321"), SimModemSpec("m2")], start=False) as h:
        h.config.modems[0].pin = "0000"
        h.start_daemon()
        row = h.wait_state("m1", "locked")
        assert "PIN" in (row["state_detail"] or "")
        assert h.sim.modem("m1").pin_attempts == 2  # one attempt used, never a second
        assert "sim_locked" in _alert_kinds(h)
        h.wait_ready("m2")
        queued = h.store.outbox.enqueue(PHONE, "the other modem still works")
        assert h.wait_message(queued.id, "submitted", "delivered").modem_id == h.modem_row("m2")["id"]
        assert h.sim.modem("m1").pin_attempts == 2


def test_sim_asking_for_puk_stops_the_modem_without_entering_anything(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        modem.faults.sim_puk()
        modem.faults.reboot(0.1)
        row = h.wait_state("m1", "locked", timeout=15)
        assert "PUK" in (row["state_detail"] or "")
        assert modem.sim_state == "SIM PUK"
        assert "sim_locked" in _alert_kinds(h)


def test_no_network_holds_sends_raises_an_alert_and_resumes_when_registered(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        modem.faults.no_network()
        h.daemon.workers["m1"].request("health")  # type: ignore[union-attr]
        h.wait_state("m1", "no_network")
        assert "no_network" in _alert_kinds(h)
        queued = h.store.outbox.enqueue(PHONE, "waits for the network")
        modem.faults.no_network(False)
        h.wait_message(queued.id, "submitted", "delivered", timeout=10)
        assert "no_network" not in _alert_kinds(h)
        assert h.sim.handset(PHONE).received_texts() == ["waits for the network"]


def test_one_modem_of_four_failing_while_the_others_carry_its_traffic(tmp_path: Path) -> None:
    specs = [SimModemSpec(f"m{i}") for i in range(1, 5)]
    with harness(tmp_path, specs) as h:
        h.wait_ready()
        numbers = [f"+1202555{i:04d}" for i in range(40)]
        # m3 is everyone's sticky modem, and it dies.
        for n in numbers[:10]:
            h.sim.handset(n).send(h.sim.modem("m3").msisdn, "hello")
        wait_until(lambda: len(h.store.inbox.recent(limit=100)) == 10, what="contacts know m3")
        h.sim.modem("m3").faults.unplug()
        ids = [h.store.outbox.enqueue(n, f"to {n}").id for n in numbers]
        for i in ids:
            h.wait_message(i, "submitted", "delivered", "unknown", timeout=15)
        m3 = h.modem_row("m3")["id"]
        msgs = [h.store.outbox.get(i) for i in ids]
        delivered = [m for m in msgs if m.state.value in ("submitted", "delivered")]
        assert len(delivered) >= 39 and all(m.modem_id != m3 for m in delivered)
        assert any(m.failover_from == m3 for m in delivered)
        for n in numbers:
            assert h.sim.handset(n).received_texts().count(f"to {n}") <= 1
        assert h.wait_state("m3", "offline", timeout=10)["state"] == "offline"
        assert "modem_offline" in _alert_kinds(h)


def test_reboot_with_cfun_drops_the_port_and_the_modem_comes_back(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        modem.faults.reboot(0.3)
        h.wait_state("m1", "recovering", "offline", "ready")
        queued = h.store.outbox.enqueue(PHONE, "after the reboot")
        h.wait_message(queued.id, "submitted", "delivered", timeout=10)
        h.wait_ready("m1")
        assert modem.counters.reboots == 1


def test_a_reader_never_sees_a_modem_offline_without_its_alert_or_ready_with_it(tmp_path: Path) -> None:
    """The state and its alert are one commit; a page polling the file must never see one without the other."""
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        seen: list[tuple[str, bool]] = []
        done = threading.Event()

        def watch() -> None:
            reader = Store.open(h.config.database_path)
            try:
                while not done.is_set():
                    with reader.read_snapshot():
                        state = reader.modems.by_name("m1")["state"]  # type: ignore[index]
                        alerted = any(a["kind"] == "modem_offline" for a in reader.alerts.open_alerts())
                    seen.append((state, alerted))
            finally:
                reader.close()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        try:
            modem = _hang_until_offline(h)
            modem.faults.recover()
            h.wait_ready("m1", timeout=10)
        finally:
            done.set()
            watcher.join(timeout=5)
        assert ("offline", True) in seen and ("ready", False) in seen
        assert ("offline", False) not in seen
        assert ("ready", True) not in seen


def test_a_modem_that_comes_back_without_network_trades_its_offline_alert_for_a_network_one(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        modem = _hang_until_offline(h)
        assert "modem_offline" in _alert_kinds(h)
        modem.faults.registration_denied()
        modem.faults.recover()
        h.wait_state("m1", "no_network", timeout=15)
        # It answers again, so "check its USB cable" no longer holds; the network is now the problem.
        assert _alert_kinds(h) == {"no_network"}
        modem.faults.registration_denied(False)
        h.wait_ready("m1", timeout=15)
        assert _alert_kinds(h) == set()
