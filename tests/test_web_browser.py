"""The real app in headless Chromium: log in, read a modem's signal, open a conversation, reply.

`live_stack` serves the app with waitress on loopback in a thread. It takes an optional `daemon`: a
function from the configuration to a context manager that runs for the duration of the test (the real
daemon on simulated modems, when the lead plugs it in); without one, the test seeds the database the
way the daemon would.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

import pytest
from web_helpers import PASSWORD, PATIENT, add_modem, make_config, receive

from smsgate.config import Config
from smsgate.queue import Store
from smsgate.web import create_app
from smsgate.web.serve import WebServer

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WAIT_S = 15

Daemon = Callable[[Config], AbstractContextManager[object]]


@dataclass
class LiveStack:
    config: Config
    base_url: str
    store: Store


@contextlib.contextmanager
def live_stack(config: Config, *, daemon: Daemon | None = None) -> Iterator[LiveStack]:
    """The web app on 127.0.0.1:<free port> (and the daemon, if given) over one database file."""
    app = create_app(config)
    server = WebServer(app, "127.0.0.1", 0, threads=4)
    with contextlib.ExitStack() as stack:
        if daemon is not None:
            stack.enter_context(daemon(config))
        thread = server.start_thread()
        stack.callback(thread.join, 10)
        stack.callback(server.close)
        store = stack.enter_context(Store.open(config.database_path, default_region="US"))
        yield LiveStack(config, server.url, store)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    assert not missing, f"{missing} not installed: run scripts/setup.sh (apt-get install chromium chromium-driver)"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1200,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def test_staff_logs_in_sees_the_signal_opens_a_conversation_and_replies(tmp_path: Path, browser: object) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    wait = WebDriverWait(driver, WAIT_S)  # type: ignore[arg-type]
    config = make_config(tmp_path)
    with live_stack(config) as stack:
        stack.store.add_user("maria", PASSWORD, "staff", actor="test")
        modem = add_modem(stack.store, name="front-desk", signal_dbm=-71, signal_bars=4)
        inbound = receive(stack.store, modem, PATIENT, "Can I move my appointment to Friday? <b>thanks</b>")

        driver.get(stack.base_url + "/status")  # type: ignore[attr-defined]
        wait.until(ec.presence_of_element_located((By.ID, "login-button")))
        driver.find_element(By.ID, "username").send_keys("maria")  # type: ignore[attr-defined]
        driver.find_element(By.ID, "password").send_keys(PASSWORD)  # type: ignore[attr-defined]
        driver.find_element(By.ID, "login-button").click()  # type: ignore[attr-defined]

        card = wait.until(ec.presence_of_element_located((By.ID, f"modem-{modem}")))
        assert "front-desk" in card.text and "-71 dBm" in card.text
        assert len(card.find_elements(By.CSS_SELECTOR, ".bar.on")) == 4
        background = driver.execute_script(  # type: ignore[attr-defined]
            "return getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(245, 246, 248)", "the stylesheet must load under the CSP"
        ARTIFACTS.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(ARTIFACTS / "web-status.png"))  # type: ignore[attr-defined]

        driver.find_element(By.LINK_TEXT, "Inbox").click()  # type: ignore[attr-defined]
        wait.until(ec.element_to_be_clickable((By.ID, f"conv-{inbound.conversation_id}"))).click()
        history = wait.until(ec.presence_of_element_located((By.ID, "history")))
        assert "Can I move my appointment to Friday? <b>thanks</b>" in history.text  # shown as text, not markup
        driver.find_element(By.ID, "reply-text").send_keys("Yes, Friday 10:00 works.")  # type: ignore[attr-defined]
        driver.find_element(By.ID, "reply-send").click()  # type: ignore[attr-defined]
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash.ok"), "Reply queued"))
        assert "Yes, Friday 10:00 works." in driver.find_element(By.ID, "history").text  # type: ignore[attr-defined]

        (reply,) = [m for m in stack.store.list_messages() if m.body == "Yes, Friday 10:00 works."]
        assert reply.to_number == PATIENT and reply.required_modem_id == modem
        assert reply.created_by == "web:maria" and reply.in_reply_to == inbound.id
