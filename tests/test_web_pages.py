"""The staff pages on a real database: status, inbox handling, outbox decisions, reports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web_helpers import OTHER_PATIENT, PASSWORD, PATIENT, WebEnv, add_modem, make_env, page_csrf, receive

from smsgate.queue import Store


@pytest.fixture
def env(tmp_path: Path) -> Iterator[WebEnv]:
    e = make_env(tmp_path)
    e.store.accounts.add_user("ada", PASSWORD, "admin", actor="test")
    e.store.accounts.add_user("sam", PASSWORD, "staff", actor="test")
    yield e
    e.store.close()


def submit(store: Store, modem_id: int, to: str, text: str) -> int:
    """Drive one message through the real state machine to `submitted` on `modem_id`."""
    msg = store.outbox.enqueue(to, text, required_modem_id=modem_id)
    (claim,) = store.outbox.claim("test-worker", modem_id)
    store.outbox.mark_submitting(claim, 1)
    store.outbox.mark_part_submitted(claim, 1, tp_mr=7)
    return msg.id


def test_status_page_shows_each_modems_details_queues_and_alerts(env: WebEnv) -> None:
    modem = add_modem(env.store, last_error="+CMS ERROR: 38 network out of order", last_error_at=None,
                      state="recovering", state_detail="port reopened")
    add_modem(env.store, name="back-office", state="pin_required", signal_dbm=None, signal_bars=None)
    submit(env.store, modem, PATIENT, "sent one")
    receive(env.store, modem, PATIENT, "a reply")
    env.store.outbox.enqueue(OTHER_PATIENT, "waiting", kind="bulk")
    env.store.alerts.raise_alert("modem_down", "back-office needs its SIM PIN", modem_id=None)
    html = env.login("sam").get("/status").get_data(as_text=True)
    card = html[html.index('id="modem-1"'):html.index("<h2>Queues")]
    for fact in ("front-desk", "+15555550100", "Simnet", "-71 dBm", "home", "3/30", "recovering (port reopened)",
                 "+CMS ERROR: 38 network out of order", "1 sent · 0 failed · 1 received"):
        assert fact in card, fact
    assert card.count('class="bar b') == 5 and card.count(" on\"") == 4
    assert "pin_required" in html and "back-office needs its SIM PIN" in html
    assert 'http-equiv="refresh" content="15"' in html
    assert '<td class="num">1</td>' in html and 'id="oldest"' in html


def test_inbox_lists_threads_with_unread_and_team_filters(env: WebEnv) -> None:
    modem = add_modem(env.store)
    a = receive(env.store, modem, PATIENT, "first")
    b = receive(env.store, modem, OTHER_PATIENT, "second")
    env.store.conversations.update(b.conversation_id, actor="test", team="billing", unread=0)
    client = env.login("sam")
    unread = client.get("/inbox?show=unread").get_data(as_text=True)
    assert f'id="conv-{a.conversation_id}"' in unread and f'id="conv-{b.conversation_id}"' not in unread
    billing = client.get("/inbox?show=all&team=billing").get_data(as_text=True)
    assert f'id="conv-{b.conversation_id}"' in billing and f'id="conv-{a.conversation_id}"' not in billing


def test_opening_a_conversation_shows_history_and_marks_it_read(env: WebEnv) -> None:
    modem = add_modem(env.store)
    inbound = receive(env.store, modem, PATIENT, "Can I come at 4?")
    submit(env.store, modem, PATIENT, "Yes, see you at 4")
    html = env.login("sam").get(f"/inbox/{inbound.conversation_id}").get_data(as_text=True)
    assert html.index("Can I come at 4?") < html.index("Yes, see you at 4")
    assert "texting the SIM <strong>front-desk</strong>" in html
    assert env.store.conversations.get(inbound.conversation_id)["unread"] == 0


def test_a_conversation_shows_what_the_codec_noticed_beside_an_odd_text(env: WebEnv) -> None:
    modem = add_modem(env.store)
    row, _ = env.store.inbox.store(modem_id=modem, sender=PATIENT, body="Owed: 7 <b>", dedupe_key="odd",
                                   decode_notes=["part 1 of 2 ends in a lone escape <0x1B>"])
    html = env.login("sam").get(f"/inbox/{row.conversation_id}").get_data(as_text=True)
    assert 'class="meta decode-note">&#9888; part 1 of 2 ends in a lone escape &lt;0x1B&gt;</div>' in html


def test_reply_goes_out_from_the_sim_the_contact_used(env: WebEnv) -> None:
    add_modem(env.store, name="a-sim")
    second = add_modem(env.store, name="b-sim", msisdn="+15555550199")
    inbound = receive(env.store, second, PATIENT, "Running late")
    client = env.login("sam")
    response = client.post(f"/inbox/{inbound.conversation_id}/reply",
                           data={"text": "No problem", "csrf_token": page_csrf(client)})
    assert response.status_code == 302
    msg = env.store.outbox.recent(limit=1)[0]
    assert (msg.body, msg.required_modem_id, msg.kind.value, msg.in_reply_to) == ("No problem", second, "reply",
                                                                                   inbound.id)
    assert "Reply queued as message" in client.get(response.headers["Location"]).get_data(as_text=True)


def test_reply_that_is_too_long_is_refused_and_the_text_kept(env: WebEnv) -> None:
    inbound = receive(env.store, add_modem(env.store), PATIENT, "hi")
    client = env.login("sam")
    long_text = "word " * 300
    response = client.post(f"/inbox/{inbound.conversation_id}/reply",
                           data={"text": long_text, "csrf_token": page_csrf(client)})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "Not sent" in html and "SMS parts" in html and long_text.strip() in html
    assert env.store.outbox.recent() == []


def test_opted_out_number_shows_a_badge_and_cannot_be_sent_to(env: WebEnv) -> None:
    inbound = receive(env.store, add_modem(env.store), PATIENT, "STOP")
    env.store.consent.record(PATIENT, "opt_out", source="keyword", actor="rules")
    client = env.login("sam")
    html = client.get(f"/inbox/{inbound.conversation_id}").get_data(as_text=True)
    assert 'id="optout-badge"' in html and 'id="reply-send" disabled' in html
    assert "opted out" in client.get("/inbox").get_data(as_text=True)
    response = client.post(f"/inbox/{inbound.conversation_id}/reply",
                           data={"text": "sorry to see you go", "csrf_token": page_csrf(client)})
    assert response.status_code == 409 and env.store.outbox.recent() == []


def test_likely_opt_out_can_be_confirmed_into_the_consent_ledger(env: WebEnv) -> None:
    inbound = receive(env.store, add_modem(env.store), PATIENT, "please stop texting me")
    env.store.inbox.mark_handled(inbound.id, likely_opt_out=True)
    env.store.conversations.update(inbound.conversation_id, actor="rules", likely_opt_out=1)
    client = env.login("sam")
    html = client.get(f"/inbox/{inbound.conversation_id}").get_data(as_text=True)
    assert 'id="likely-opt-out"' in html and "please stop texting me" in html
    client.post(f"/inbox/{inbound.conversation_id}/opt-out", data={"decision": "confirm",
                                                                    "csrf_token": page_csrf(client)})
    status = env.store.consent.status(PATIENT)
    assert status.opted_out and status.last_source == "web"
    assert env.store.consent.history(PATIENT)[-1]["inbound_id"] == inbound.id
    assert env.store.conversations.get(inbound.conversation_id)["likely_opt_out"] == 0


def test_likely_opt_out_can_be_dismissed(env: WebEnv) -> None:
    inbound = receive(env.store, add_modem(env.store), PATIENT, "stop it you're so funny")
    env.store.conversations.update(inbound.conversation_id, actor="rules", likely_opt_out=1)
    client = env.login("sam")
    client.post(f"/inbox/{inbound.conversation_id}/opt-out", data={"decision": "dismiss",
                                                                    "csrf_token": page_csrf(client)})
    assert not env.store.consent.status(PATIENT).opted_out
    assert env.store.conversations.get(inbound.conversation_id)["likely_opt_out"] == 0
    assert env.store.audit.entries(action_prefix="consent.likely_opt_out_dismissed")


def test_assign_and_mark_done(env: WebEnv) -> None:
    env.store.keywords.add("NURSE", reply="A nurse will call you back.", route="nurses")
    inbound = receive(env.store, add_modem(env.store), PATIENT, "question")
    conv = inbound.conversation_id
    client = env.login("sam")
    csrf = page_csrf(client)
    client.post(f"/inbox/{conv}/assign", data={"assigned_to": "ada", "team": "nurses", "csrf_token": csrf})
    client.post(f"/inbox/{conv}/done", data={"csrf_token": csrf})
    row = env.store.conversations.get(conv)
    assert (row["assigned_to"], row["team"], row["status"]) == ("ada", "nurses", "done")
    assert f'id="conv-{conv}"' not in client.get("/inbox").get_data(as_text=True)
    assert f'id="conv-{conv}"' in client.get("/inbox?show=done").get_data(as_text=True)


def test_outbox_filters_by_state_and_explains_failures(env: WebEnv) -> None:
    modem = add_modem(env.store)
    failing = env.store.outbox.enqueue(OTHER_PATIENT, "will fail", required_modem_id=modem).id
    (claim,) = env.store.outbox.claim("w", modem)
    env.store.outbox.enqueue(PATIENT, "still waiting")
    env.store.outbox.fail(claim, "+CMS ERROR: 21 short message transfer rejected", code=21)
    client = env.login("sam")
    html = client.get("/outbox?state=failed").get_data(as_text=True)
    assert "will fail" in html and "still waiting" not in html
    assert "The network refused this message and will keep refusing it: +CMS ERROR: 21" in html
    by_number = client.get("/outbox", query_string={"number": PATIENT}).get_data(as_text=True)
    assert "still waiting" in by_number and "will fail" not in by_number
    assert client.get("/outbox?state=nonsense").status_code == 400
    detail = client.get(f"/outbox/{failing}").get_data(as_text=True)
    assert 'id="reason"' in detail and "message.failed" in detail


def test_unknown_messages_are_listed_for_an_admin_to_resend(env: WebEnv) -> None:
    modem = add_modem(env.store)
    msg = env.store.outbox.enqueue(PATIENT, "maybe sent", required_modem_id=modem).id
    (claim,) = env.store.outbox.claim("w", modem)
    env.store.outbox.mark_submitting(claim, 1)
    env.store.outbox.mark_unknown(claim, 1, "timeout after the PDU")
    admin = env.login("ada")
    html = admin.get("/outbox").get_data(as_text=True)
    assert 'id="unknown"' in html and "maybe sent" in html
    admin.post(f"/outbox/{msg}/retry", data={"csrf_token": page_csrf(admin), "back": "/outbox"})
    assert env.store.outbox.get(msg).state.value == "queued"
    second = admin.post(f"/outbox/{msg}/retry", data={"csrf_token": page_csrf(admin)})
    assert "Not possible" in admin.get(second.headers["Location"]).get_data(as_text=True)


def test_reports_show_keywords_outcomes_ratings_opt_outs_and_a_chart(env: WebEnv) -> None:
    modem = add_modem(env.store)
    delivered = submit(env.store, modem, OTHER_PATIENT, "delivered one")
    env.store.execute("INSERT INTO keywords (keyword, created_at, updated_at) VALUES ('HOURS', 'x', 'x')")
    for n in range(7):  # the page counts what came in, the same figure as `smsgate report`
        inbound, _ = env.store.inbox.store(modem_id=modem, sender=OTHER_PATIENT, body="hours", dedupe_key=f"h{n}")
        env.store.inbox.mark_handled(inbound.id, keyword="HOURS", action="keyword")
    for text, outcome in (("Confirm?", "confirmed"), ("Confirm 2?", None), ("Rate us", "rating:5")):
        msg = env.store.outbox.enqueue(PATIENT, text, expect={"YES": "confirmed"}).id
        if outcome:
            env.store.execute("UPDATE messages SET outcome = ? WHERE id = ?", (outcome, msg))
    env.store.reports.record(modem_id=modem, tp_mr=7, recipient=OTHER_PATIENT, status_code=0,
                             outcome="delivered", dedupe_key="r1")
    assert env.store.outbox.get(delivered).state.value == "delivered"
    env.store.consent.record(PATIENT, "opt_out", source="keyword", actor="rules")
    html = env.login("sam").get("/reports").get_data(as_text=True)
    assert "HOURS" in html and ">7<" in html
    assert "confirmed" in html and "no answer" in html and "5 / 5" in html
    assert 'id="hourly-chart"' in html and "<polyline" in html
    assert 'id="delivery-rate">100 %' in html


def test_status_figures_are_shared_for_the_cache_period(tmp_path: Path) -> None:
    env = make_env(tmp_path, status_cache_seconds=60.0)
    env.store.accounts.add_user("sam", PASSWORD, "staff", actor="test")
    add_modem(env.store)
    client = env.login("sam")
    assert "-71 dBm" in client.get("/status").get_data(as_text=True)
    env.store.modems.update(1, signal_dbm=-99)
    assert "-71 dBm" in client.get("/status").get_data(as_text=True), "served from the shared snapshot"
    assert env.client().get("/api/v1/health").json["modems"]["total"] == 1
    fresh = make_env(tmp_path, status_cache_seconds=0.0)
    fresh.store.accounts.add_user("other", PASSWORD, "viewer", actor="test")
    assert "-99 dBm" in fresh.login("other").get("/status").get_data(as_text=True)
    env.store.close()
    fresh.store.close()


@pytest.mark.parametrize(("method", "path", "status"), [
    ("get", f"/outbox/{2**63}", 404), ("get", f"/inbox/{2**63}", 404),
    ("post", f"/outbox/{2**63}/cancel", 404), ("post", f"/inbox/{2**63}/done", 404),
    ("get", f"/inbox?page={10**30}", 400), ("get", f"/outbox?page={10**30}", 400), ("get", "/outbox?page=x", 400),
])
def test_an_id_or_page_beyond_the_database_is_a_missing_row_not_a_500(env: WebEnv, method: str, path: str,
                                                                       status: int) -> None:
    client = env.login("ada")
    data = {"csrf_token": page_csrf(client)} if method == "post" else None
    assert getattr(client, method)(path, data=data).status_code == status
