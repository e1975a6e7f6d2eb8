"""The real app in headless Chromium against the real daemon on simulated modems.

A simulated handset texts one of two simulated SIMs; the daemon (with the rules engine the hooks load by
default) stores it; staff log in, read the modems' signal on the status page, click through the inbox to
the conversation, reply, and the reply arrives at the handset from the SIM the patient texted.
Screenshots land in `test-artifacts/` for a person to look at.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from web_helpers import PASSWORD, PATIENT

from smsgate.config import Config, config_from_dict
from smsgate.modemd import Daemon
from smsgate.modemd.tunables import FAST
from smsgate.names import display_number
from smsgate.queue import Store
from smsgate.simulator import HandsetMessage, SimModemSpec, Simulator
from smsgate.testing import wait_until
from smsgate.web import create_app
from smsgate.web.serve import WebServer

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
WAIT_S = 15
PHONE_WIDTH = 390
PHONE_HEIGHT = 844

FRONT_DESK = "+15555550100"
LAB = "+15555550109"
QUESTION = "Hi, can I move my appointment?"
ANSWER = "Yes: Friday 10:00 works. See you then!"

DaemonFactory = Callable[[Config], AbstractContextManager[object]]


@dataclass
class LiveStack:
    config: Config
    base_url: str
    store: Store


@contextlib.contextmanager
def live_stack(config: Config, *, daemon: DaemonFactory | None = None) -> Iterator[LiveStack]:
    """The web app on 127.0.0.1:<free port> (and the daemon, if given) over one database file."""
    with contextlib.ExitStack() as stack:
        if daemon is not None:
            stack.enter_context(daemon(config))
        server = WebServer(create_app(config), "127.0.0.1", 0, threads=4)
        thread = server.start_thread()
        stack.callback(thread.join, 10)
        stack.callback(server.close)
        store = stack.enter_context(Store.open(config.database_path, default_region="US"))
        yield LiveStack(config, server.url, store)


@contextlib.contextmanager
def real_daemon(config: Config) -> Iterator[Daemon]:
    """`smsgate serve`'s daemon: on_inbound and gate left to their defaults, i.e. the rules engine."""
    daemon = Daemon(config, tunables=FAST)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


def clinic_config(tmp_path: Path, sim: Simulator) -> Config:
    """What a clinic would write, one `[[modems]]` per simulated SIM by its stable device link."""
    raw: dict[str, Any] = {
        "database": str(tmp_path / "smsgate.db"),
        "clinic": {"name": "Rivera Clinic", "region": "US", "timezone": "America/New_York"},
        "modems": [{"name": m.name, "device": str(m.path), "parts_per_minute": 0} for m in sim.modems],
        "sending": {"retry_base_seconds": 0.2, "retry_max_seconds": 1.0},
        "web": {"status_cache_seconds": 0.0},
    }
    return config_from_dict(raw, tmp_path / "smsgate.toml")


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulator]:
    # +CSQ 23 is -67 dBm (4 bars), 14 is -85 dBm (2 bars): two cards the page must tell apart.
    specs = [SimModemSpec("front-desk", msisdn=FRONT_DESK, signal=23), SimModemSpec("lab", msisdn=LAB, signal=14)]
    with Simulator(tmp_path / "sim", specs, latency=0) as simulator:
        yield simulator


@pytest.fixture
def browser(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Any]:
    """Chromium with a fresh profile; when the test fails, the page it was on is kept as web-failure.*."""
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
    failures_before = request.session.testsfailed
    try:
        yield driver
        if request.session.testsfailed > failures_before:  # the call phase is reported before teardown
            ARTIFACTS.mkdir(exist_ok=True)
            driver.save_screenshot(str(ARTIFACTS / "web-failure.png"))
            (ARTIFACTS / "web-failure.html").write_text(driver.page_source, encoding="utf-8")
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def screenshot(driver: Any, name: str) -> Path:
    """A PNG of the whole page (not just the window) in test-artifacts/, at the current viewport width."""
    ARTIFACTS.mkdir(exist_ok=True)
    width, height = driver.execute_script(
        "return [document.documentElement.clientWidth, document.documentElement.scrollHeight]")
    mobile = width <= PHONE_WIDTH
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
    path = ARTIFACTS / name
    try:
        assert driver.save_screenshot(str(path)), f"could not save {path}"
    finally:
        viewport = (PHONE_WIDTH, PHONE_HEIGHT) if mobile else (None, None)
        emulate(driver, *viewport)
    return path


def emulate(driver: Any, width: int | None, height: int | None) -> None:
    """A phone-sized viewport (Chromium will not shrink a window below 500 px), or back to the window's own."""
    if width is None:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    else:
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})


def overflow_x(driver: Any) -> int:
    """How many CSS pixels the page is wider than the window (0: no sideways scrolling)."""
    return int(driver.execute_script(
        "return Math.max(0, document.documentElement.scrollWidth - document.documentElement.clientWidth)"))


def reply_from(inbox: list[HandsetMessage], text: str) -> HandsetMessage | None:
    return next((m for m in inbox if m.text == text), None)


def test_staff_reply_in_the_browser_reaches_the_handset_from_the_sim_it_texted(
        tmp_path: Path, sim: Simulator, browser: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    driver = browser
    wait = WebDriverWait(driver, WAIT_S)
    config = clinic_config(tmp_path, sim)
    with live_stack(config, daemon=real_daemon) as stack:
        stack.store.accounts.add_user("maria", PASSWORD, "staff", actor="test")
        modems = {name: wait_until(lambda n=name: (r := stack.store.modems.by_name(n)) and r["state"] == "ready"
                                   and r["signal_dbm"] is not None and r, WAIT_S, what=f"modem {name} ready")
                  for name in ("front-desk", "lab")}
        phone = sim.handset(PATIENT)
        phone.send(LAB, QUESTION)
        wait_until(lambda: stack.store.conversations.threads(), WAIT_S, what="the handset's text stored")

        driver.get(stack.base_url + "/status")
        wait.until(ec.presence_of_element_located((By.ID, "login-button")))
        driver.find_element(By.ID, "username").send_keys("maria")
        driver.find_element(By.ID, "password").send_keys(PASSWORD)
        driver.find_element(By.ID, "login-button").click()

        front = wait.until(ec.presence_of_element_located((By.ID, f"modem-{modems['front-desk']['id']}")))
        lab = driver.find_element(By.ID, f"modem-{modems['lab']['id']}")
        assert "front-desk" in front.text and "-67 dBm" in front.text
        assert len(front.find_elements(By.CSS_SELECTOR, ".bar.on")) == 4
        assert "lab" in lab.text and "-85 dBm" in lab.text
        assert len(lab.find_elements(By.CSS_SELECTOR, ".bar.on")) == 2
        assert "ready" in front.text and "ready" in lab.text
        assert driver.execute_script("return getComputedStyle(document.body).backgroundColor") \
            == "rgb(245, 246, 248)", "the stylesheet must load under the CSP"
        screenshot(driver, "web-status.png")

        driver.find_element(By.LINK_TEXT, "Inbox").click()
        thread = wait.until(ec.element_to_be_clickable(
            (By.XPATH, f"//a[contains(@class, 'thread-link')][contains(., '{display_number(PATIENT)}')]")))
        assert "via lab" in thread.text and "1 new" in thread.text
        thread.click()
        history = wait.until(ec.presence_of_element_located((By.ID, "history")))
        assert QUESTION in history.text
        assert "texting the SIM lab" in driver.find_element(By.TAG_NAME, "main").text
        driver.find_element(By.ID, "reply-text").send_keys(ANSWER)
        send = driver.find_element(By.ID, "reply-send")
        assert send.text == "Send from lab"
        send.click()
        wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash.ok"), "Reply queued"))
        assert ANSWER in driver.find_element(By.ID, "history").text

        inbox = phone.wait_for(lambda parts: reply_from(parts, ANSWER) is not None, timeout=WAIT_S)
        arrived = reply_from(inbox, ANSWER)
        assert arrived is not None and arrived.sender == LAB, f"the reply came from {arrived and arrived.sender}"
        (sent,) = [m for m in stack.store.outbox.recent() if m.body == ANSWER]
        assert sent.created_by == "web:maria" and sent.required_modem_id == modems["lab"]["id"]
        wait_until(lambda: stack.store.outbox.get(sent.id).state.value == "delivered", WAIT_S,
                   what="the delivery report for the reply")
        driver.refresh()
        outgoing = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#history .msg.out")))
        assert "delivered" in outgoing.text
        screenshot(driver, "web-conversation.png")

        emulate(driver, PHONE_WIDTH, PHONE_HEIGHT)
        driver.find_element(By.LINK_TEXT, "Inbox").click()
        thread = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "a.thread-link")))
        assert driver.execute_script("return document.documentElement.clientWidth") == PHONE_WIDTH
        assert overflow_x(driver) == 0, "the inbox scrolls sideways on a phone"
        assert thread.size["width"] >= PHONE_WIDTH - 40, "a thread should span the phone's width"
        screenshot(driver, "web-inbox-phone.png")
        thread.click()
        wait.until(ec.presence_of_element_located((By.ID, "reply-text")))
        assert overflow_x(driver) == 0, "the conversation scrolls sideways on a phone"
        screenshot(driver, "web-conversation-phone.png")
        driver.find_element(By.LINK_TEXT, "Status").click()
        wait.until(ec.presence_of_element_located((By.ID, f"modem-{modems['lab']['id']}")))
        assert overflow_x(driver) == 0, "the status page scrolls sideways on a phone"
        screenshot(driver, "web-status-phone.png")
