"""Whole system: a simulated handset texts a simulated modem, the daemon stores it and runs the rules,
and the reply arrives back at the handset.

These two are smoke tests; every keyword behaviour, including a reply that
overtakes a campaign already going out, is in `test_e2e_rules.py`."""

from __future__ import annotations

from pathlib import Path

from smsgate.keywords import RulesEngine, make_gate
from smsgate.simulator import SimModemSpec
from smsgate.testing import harness, wait_until

PATIENT = "+12125550123"


def test_stop_from_a_handset_is_confirmed_and_blocks_a_queued_campaign(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("front", msisdn="+12125550100")], start=False) as h:
        h.config.clinic.name = "Rivera Clinic"
        h.config.hours.quiet_kinds = []  # the test may run at any hour
        h.start_daemon(on_inbound=RulesEngine(h.config).process, gate=make_gate(h.config))
        h.wait_ready()
        phone = h.sim.handset(PATIENT)
        phone.send("+12125550100", "Stop please!")
        phone.wait_for_text("Rivera Clinic: you will receive no more messages from this number. "
                            "Reply START to resubscribe.", timeout=15)
        assert h.store.consent.status(PATIENT).opted_out
        (campaign,) = h.store.outbox.enqueue_many([{"to": PATIENT, "text": "Flu shots this week"}], campaign="flu",
                                                          kind="bulk")
        wait_until(lambda: h.message_state(campaign) == "cancelled", 10, what="campaign cancelled")
        phone.send("+12125550100", "HELP")
        phone.wait_for(lambda inbox: any("Reply STOP" in m.text for m in inbox[1:]), timeout=15)
        assert not any("Flu shots" in t for t in phone.received_texts())


def test_a_reminder_answered_from_the_handset_records_the_outcome_and_sends_the_follow_up(tmp_path: Path) -> None:
    with harness(tmp_path, [SimModemSpec("front", msisdn="+12125550100")], start=False) as h:
        h.start_daemon(on_inbound=RulesEngine(h.config).process, gate=make_gate(h.config))
        h.wait_ready()
        mid = h.store.outbox.enqueue(
            PATIENT,
            "Reminder: Dr Rivera 3:15 PM tomorrow. Reply YES to confirm, NO to cancel",
            expect={"YES": "confirmed", "NO": "cancelled"},
            follow_up={"YES": "See you then!"},
        ).id
        phone = h.sim.handset(PATIENT)
        phone.wait_for_text("Reminder: Dr Rivera 3:15 PM tomorrow. Reply YES to confirm, NO to cancel", timeout=15)
        h.wait_message(mid, "submitted", "delivered", timeout=15)
        phone.send("+12125550100", "yes!")
        phone.wait_for_text("See you then!", timeout=15)
        assert h.store.outbox.get(mid).outcome == "confirmed"
