"""The daemon against simulated modems on real ptys (latency 0): sending, receiving, hooks, priorities."""

from __future__ import annotations

import socket
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from smsgate.config import SendingConfig
from smsgate.modemd import FAST
from smsgate.queue import Kind, Store
from smsgate.queue.clock import ts
from smsgate.simulator import SimModemSpec
from smsgate.testing import harness, wait_until

PHONE = "+15555550101"
OTHER = "+15555550102"


def test_queued_message_is_sent_once_and_its_delivery_report_matched(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        queued = h.store.outbox.enqueue(PHONE, "Your appointment is at 3 pm")
        handset = h.sim.handset(PHONE)
        handset.wait_for_text("Your appointment is at 3 pm")
        msg = h.wait_message(queued.id, "delivered")
        assert msg.parts[0].tp_mr is not None
        assert msg.modem_id == h.modem_row("m1")["id"]
        assert handset.received_texts() == ["Your appointment is at 3 pm"]


def test_message_queued_by_another_process_is_picked_up_without_waiting_for_a_poll(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        with Store.open(h.config.database_path) as other:  # another connection, as the CLI or web app
            other.outbox.enqueue(PHONE, "from the web app")
        # idle_wake_s is 1 s in FAST: arriving well before that shows the data_version watcher woke the worker.
        h.sim.handset(PHONE).wait_for_text("from the web app", timeout=0.8)


def test_long_message_goes_out_part_by_part_and_arrives_whole(tmp_path: Path) -> None:
    text = "Please bring your insurance card and a list of medicines. " * 6
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        queued = h.store.outbox.enqueue(PHONE, text)
        assert queued.parts > 1
        h.sim.handset(PHONE).wait_for_text(text)
        msg = h.wait_message(queued.id, "submitted", "delivered")
        assert [p.state.value in ("submitted", "delivered") for p in msg.parts] == [True] * queued.parts
        assert len({p.tp_mr for p in msg.parts}) == queued.parts


def test_inbound_sms_is_stored_once_then_deleted_from_the_modem(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        h.sim.handset(PHONE).send(modem.msisdn, "Can I move my appointment?")
        rows = wait_until(lambda: h.store.inbox.recent(), what="inbound stored")
        assert [(r["sender"], r["body"]) for r in rows] == [(PHONE, "Can I move my appointment?")]
        assert rows[0]["pdu"]
        wait_until(lambda: modem.storage() == [], what="modem storage emptied")


def test_inbound_left_in_storage_while_the_daemon_was_down_is_swept_at_start(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")], start=False) as h:
        modem = h.sim.modem("m1")
        for i in range(3):
            h.sim.handset(PHONE).send(modem.msisdn, f"message {i}")
        wait_until(lambda: len(modem.storage()) == 3, what="messages in SIM storage")
        h.start_daemon()
        wait_until(lambda: len(h.store.inbox.recent()) == 3, what="three stored")
        assert sorted(r["body"] for r in h.store.inbox.recent()) == ["message 0", "message 1", "message 2"]
        wait_until(lambda: modem.storage() == [], what="storage emptied")


def test_shuffled_multipart_inbound_is_reassembled_into_one_message(tmp_path: Path) -> None:
    text = "I need to reschedule because my daughter has a school event that afternoon. " * 3
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        parts = h.sim.handset(PHONE).send(h.sim.modem("m1").msisdn, text, shuffle=True)
        assert parts > 1
        rows = wait_until(lambda: h.store.inbox.recent(), what="reassembled message")
        assert len(rows) == 1
        assert rows[0]["body"] == text and rows[0]["parts_total"] == parts and rows[0]["missing_parts"] is None


def test_two_long_texts_with_the_same_concatenation_reference_both_arrive_whole(tmp_path: Path) -> None:
    # Within the reassembly window the first text's parts are still kept when the second one's arrive.
    first = "Could I move my appointment on Tuesday to the afternoon, please? I work until noon. " * 3
    second = "My son has had a fever since last night. Should we come in today instead of Tuesday? " * 3
    with harness(tmp_path, [SimModemSpec("m1")], tunables=replace(FAST, reassembly_timeout_s=600)) as h:
        h.wait_ready()
        modem, phone = h.sim.modem("m1"), h.sim.handset(PHONE)
        parts = phone.send(modem.msisdn, first, concat_ref=0x5A)
        assert parts > 1 and phone.send(modem.msisdn, second, concat_ref=0x5A) == parts
        rows = wait_until(lambda: len(h.store.inbox.recent()) == 2 and h.store.inbox.recent(), timeout=8,
                          what="both long texts stored")
        assert sorted(r["body"] for r in rows) == sorted([first, second])
        assert all(r["missing_parts"] is None and r["parts_total"] == parts for r in rows)
        wait_until(lambda: modem.storage() == [], what="modem storage emptied")
        assert h.store.scalar("SELECT COUNT(DISTINCT group_id) FROM inbound_fragments") == 2


def test_escape_pair_split_across_two_parts_is_stored_as_one_message_with_its_character(tmp_path: Path) -> None:
    from pdu_support import ESC, concat8, gsm7_part, header, septets_of

    parts = [gsm7_part([*septets_of("Your bill is 40"), ESC], header(concat8(0x21, 2, 1))),
             gsm7_part(septets_of("e, due on Friday."), header(concat8(0x21, 2, 2)))]
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        _offer_raw(h, "m1", [bytes.fromhex(p[2:]) for p in parts])  # without the empty SMSC field
        rows = wait_until(lambda: h.store.inbox.recent(), what="joined message stored")
        assert [(r["body"], r["decode_error"], r["parts_total"]) for r in rows] == \
            [("Your bill is 40€, due on Friday.", None, 2)]
        wait_until(lambda: h.sim.modem("m1").storage() == [], what="both parts deleted once stored")


def _offer_raw(h: object, modem_name: str, tpdus: list[bytes]) -> None:
    """Put SMS-DELIVER TPDUs on the virtual network for a modem, as the SMSC would."""
    from smsgate.simulator.network import normalise

    sim = h.sim  # type: ignore[attr-defined]
    net = sim.network
    target = net.modems[normalise(sim.modem(modem_name).msisdn)]
    for tpdu in tpdus:
        sim.loop.run(lambda t=tpdu: net.offer(target, t))


def test_multipart_with_a_part_that_never_comes_is_stored_with_a_visible_gap(tmp_path: Path) -> None:
    from smsgate.simulator.pdu import build_deliver

    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        parts = build_deliver(PHONE, "A" * 153 + "B" * 153 + "C" * 20, reference=77)
        assert len(parts) == 3
        _offer_raw(h, "m1", [parts[0].tpdu, parts[2].tpdu])
        wait_until(lambda: h.store.query("SELECT COUNT(*) AS n FROM inbound_fragments")[0]["n"] == 2,
                   what="two fragments kept")
        assert h.store.inbox.recent() == []
        rows = wait_until(lambda: h.store.inbox.recent(), timeout=8, what="stored after the reassembly timeout")
        assert rows[0]["missing_parts"] == "2" and rows[0]["parts_total"] == 3
        assert rows[0]["body"] == "A" * 153 + "[part 2 of 3 missing]" + "C" * 20
        assert h.store.query("SELECT COUNT(*) AS n FROM inbound_fragments")[0]["n"] == 0


def test_undecodable_pdu_is_stored_raw_and_flagged_before_it_is_deleted(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        broken = bytes.fromhex("040B915155555501F10000")  # SMS-DELIVER cut off after TP-DCS
        _offer_raw(h, "m1", [broken])
        rows = wait_until(lambda: h.store.inbox.recent(), what="raw PDU stored")
        assert rows[0]["decode_error"] and "040B915155555501F1" in rows[0]["pdu"]
        wait_until(lambda: h.sim.modem("m1").storage() == [], what="deleted once stored")


def test_rules_hook_runs_in_the_transaction_that_stores_the_message(tmp_path: Path) -> None:
    seen: list[tuple[int, bool]] = []

    def on_inbound(store: Store, inbound: object) -> None:
        inbound_id = inbound.id  # type: ignore[attr-defined]
        seen.append((inbound_id, store.conn.in_transaction))
        store.outbox.enqueue(inbound.sender, "Thanks, we got your message", kind=Kind.REPLY,  # type: ignore[attr-defined]
                             in_reply_to=inbound_id, idempotency_key=f"auto:{inbound_id}")

    with harness(tmp_path, [SimModemSpec("m1")], on_inbound=on_inbound) as h:
        h.wait_ready()
        h.sim.handset(PHONE).send(h.sim.modem("m1").msisdn, "hello")
        h.sim.handset(PHONE).wait_for_text("Thanks, we got your message")
        inbound = h.store.inbox.recent()
        assert len(inbound) == 1 and seen == [(inbound[0]["id"], True)]


def test_a_failing_rules_hook_keeps_the_message_and_raises_an_alert(tmp_path: Path) -> None:
    def broken(store: Store, inbound: object) -> None:
        store.outbox.enqueue(PHONE, "half-done work that must roll back")
        raise RuntimeError("bug in a rule")

    with harness(tmp_path, [SimModemSpec("m1")], on_inbound=broken) as h:
        h.wait_ready()
        modem = h.sim.modem("m1")
        h.sim.handset(PHONE).send(modem.msisdn, "STOP")
        rows = wait_until(lambda: h.store.inbox.recent(), what="stored despite the hook")
        assert rows[0]["body"] == "STOP" and rows[0]["handled_at"] is None
        assert h.store.outbox.recent() == []  # the hook's write rolled back
        assert any(a["kind"] == "rules_failed" for a in h.store.alerts.open_alerts())
        wait_until(lambda: modem.storage() == [], what="deleted after the commit")


def test_gate_hook_is_asked_at_claim_time_and_can_defer(tmp_path: Path) -> None:
    from datetime import timedelta

    from smsgate.queue import Defer

    asked: list[int] = []

    def gate(store: Store, msg: object, now: object) -> Defer | None:
        asked.append(msg.id)  # type: ignore[attr-defined]
        if len(asked) == 1:
            return Defer(now + timedelta(seconds=0.3), "quiet hours")  # type: ignore[operator]
        return None

    with harness(tmp_path, [SimModemSpec("m1")], gate=gate) as h:
        h.wait_ready()
        queued = h.store.outbox.enqueue(PHONE, "after quiet hours")
        h.sim.handset(PHONE).wait_for_text("after quiet hours", timeout=5)
        assert asked[:2] == [queued.id, queued.id]


def test_a_reply_overtakes_a_queued_campaign_within_one_send_slot(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")], config_kwargs={"parts_per_minute": 1200}) as h:
        h.wait_ready()
        h.store.outbox.enqueue_many([{"to": f"+1202555{i:04d}", "text": f"Flu shots now {i}"} for i in range(300)],
                                    campaign="flu")
        wait_until(
            lambda: h.store.outbox.queue_counts().get("submitted") or h.store.outbox.queue_counts().get("delivered"),
            what="campaign under way",
        )
        reply = h.store.outbox.enqueue(PHONE, "Yes, 3 pm works", kind=Kind.REPLY)
        # The reply is committed now: from here on, the worker's next claim must be the reply. (Its
        # created_at is taken before its commit, so it cannot mark this moment.)
        visible = ts(datetime.now(UTC))
        h.wait_message(reply.id, "submitted", "delivered", timeout=5)
        reply_claimed = h.store.audit.entries(
            action_prefix="message.claimed", subject_type="message", subject_id=reply.id
        )[0]["at"]
        claimed_first = [
            e
            for e in h.store.audit.entries(action_prefix="message.claimed", limit=1000)
            if visible < e["at"] < reply_claimed
        ]
        sent_meanwhile = h.store.query(
            "SELECT COUNT(*) AS n FROM messages WHERE campaign = 'flu' AND submitted_at > ? AND submitted_at < ?",
            (visible, h.store.query("SELECT submitted_at FROM messages WHERE id = ?", (reply.id,))[0]["submitted_at"]),
        )[0]["n"]
        still_queued = h.store.query("SELECT COUNT(*) AS n FROM messages WHERE state = 'queued'")[0]["n"]
        assert still_queued > 0, "the campaign should still be running when the reply goes out"
        assert claimed_first == []  # no campaign message was claimed once the reply was visible
        assert sent_meanwhile <= 1  # only the one bulk message that already held the send slot


def test_rate_limit_counts_parts_not_messages(tmp_path: Path) -> None:
    from smsgate.queue.clock import parse_ts

    text = "x" * 300  # 2 parts each
    with harness(tmp_path, [SimModemSpec("m1")], config_kwargs={"parts_per_minute": 120}) as h:
        h.wait_ready()
        ids = [h.store.outbox.enqueue(PHONE, text).id for _ in range(8)]
        for i in ids:
            h.wait_message(i, "submitted", "delivered", timeout=15)
        times = sorted(
            parse_ts(r["submitted_at"])
            for r in h.store.query("SELECT submitted_at FROM message_parts WHERE modem_id IS NOT NULL")
        )
        # 16 parts at 2 parts/s with a 10-part burst: the last 6 parts need about 3 s. Counting messages
        # (8, within the burst) would have let everything go at once.
        assert len(times) == 16
        assert (times[-1] - times[0]).total_seconds() >= 2.4


def test_daily_cap_moves_traffic_to_the_other_modem(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1"), SimModemSpec("m2")], start=False) as h:
        h.config.modems[0].daily_cap = 2
        h.start_daemon()
        h.wait_ready()
        ids = [h.store.outbox.enqueue(f"+1202555{i:04d}", f"reminder {i}").id for i in range(8)]
        for i in ids:
            h.wait_message(i, "submitted", "delivered")
        m1 = h.modem_row("m1")
        per_modem = h.store.query("SELECT modem_id, COUNT(*) AS n FROM messages GROUP BY modem_id")
        counts = {r["modem_id"]: r["n"] for r in per_modem}
        assert counts.get(m1["id"], 0) <= 2
        assert sum(counts.values()) == 8
        assert h.wait_state("m1", "capped", "ready")["state"] in ("capped", "ready")


def test_sticky_sender_replies_from_the_sim_the_contact_texted(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1"), SimModemSpec("m2")]) as h:
        h.wait_ready()
        h.sim.handset(PHONE).send(h.sim.modem("m2").msisdn, "hi, this is Ana")
        wait_until(lambda: h.store.inbox.recent(), what="inbound")
        ids = [h.store.outbox.enqueue(PHONE, f"reply {i}", kind=Kind.REPLY).id for i in range(3)]
        m2 = h.modem_row("m2")["id"]
        for i in ids:
            assert h.wait_message(i, "submitted", "delivered").modem_id == m2
        assert {m.sender for m in h.sim.handset(PHONE).inbox} == {h.sim.modem("m2").msisdn}


def test_stop_finishes_cleanly_marks_modems_stopped_and_the_daemon_not_running(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        for i in range(20):
            h.store.outbox.enqueue(PHONE, f"msg {i}")
        assert h.stop_daemon() is True
        assert h.modem_row("m1")["state"] == "stopped"
        status = h.store.get_status("daemon")
        assert status is not None and status[0]["running"] is False
        states = {m.state.value for m in h.store.outbox.recent(limit=100)}
        assert states <= {"queued", "submitted", "delivered"}  # nothing left claimed or submitting
        sent = len(h.sim.handset(PHONE).inbox)
        h.start_daemon()
        wait_until(lambda: len(h.sim.handset(PHONE).inbox) == 20, what="the rest sent after restart")
        assert sent <= 20


def test_systemd_is_told_ready_and_watchdog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sock_path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(sock_path))
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", str(sock_path))
        with harness(tmp_path, [SimModemSpec("m1")]):
            got: list[str] = []
            while not ("READY=1" in got and "WATCHDOG=1" in got):
                got.extend(sock.recv(4096).decode().split("\n"))
        assert any(f.startswith("STATUS=") for f in got)


def test_status_command_shows_every_modem_state(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from smsgate.cli import cli

    with harness(tmp_path, [SimModemSpec("m1"), SimModemSpec("m2")]) as h:
        h.wait_ready()
        cfg = tmp_path / "smsgate.toml"
        cfg.write_text(
            f'database = "{h.config.database_path}"\n[clinic]\ntimezone = "America/New_York"\n'
            f'[[modems]]\nname = "m1"\ndevice = "{h.sim.modem("m1").path}"\n'
            f'[[modems]]\nname = "m2"\ndevice = "{h.sim.modem("m2").path}"\n'
        )
        result = CliRunner().invoke(cli, ["--config", str(cfg), "status"])
        assert result.exit_code == 0, result.output
        assert "daemon: running" in result.output
        lines = [line for line in result.output.splitlines() if line.startswith(("m1 ", "m2 "))]
        assert len(lines) == 2 and all(" ready " in line for line in lines)


def test_sending_config_backoff_is_used_for_transient_errors(tmp_path: Path) -> None:
    sending = SendingConfig(retry_base_seconds=0.2, retry_max_seconds=0.5, max_attempts=3)
    with harness(tmp_path, [SimModemSpec("m1")], config_kwargs={"sending": sending}) as h:
        h.wait_ready()
        h.sim.modem("m1").faults.cms_error(38, 2)  # network out of order, twice
        queued = h.store.outbox.enqueue(PHONE, "retry me")
        h.sim.handset(PHONE).wait_for_text("retry me", timeout=8)
        msg = h.wait_message(queued.id, "submitted", "delivered")
        assert msg.attempts == 2 and len(h.sim.handset(PHONE).inbox) == 1


def test_the_sims_own_number_is_recorded_for_staff_to_see(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("m1")]) as h:
        h.wait_ready()
        row = h.store.modems.by_name("m1")
        assert row is not None and row["msisdn"] == h.sim.modem("m1").msisdn
