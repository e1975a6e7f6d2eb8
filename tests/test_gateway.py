"""The Gateway: what `smsgate serve` and `python -m smsgate.modemd` run, started in order, stopped in reverse,
and refusing to start (with a sentence an admin can act on) rather than running half a system."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_web_webhooks import SECRET, Receiver

from smsgate.config import Config, config_from_dict
from smsgate.gateway import Gateway, StartupError
from smsgate.modemd import FAST
from smsgate.queue import Store
from smsgate.testing import wait_until

HANDSET = "+15555550101"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def simulator_config(tmp_path: Path, **sections: Any) -> Config:
    """A fresh install: no [[modems]], so the Gateway starts one simulated modem; the web server on a free port."""
    raw: dict[str, Any] = {"database": str(tmp_path / "smsgate.db"),
                           "clinic": {"name": "Demo Clinic", "timezone": "America/New_York"},
                           "simulator": {"modems": 1, "personality": "generic", "latency": "0",
                                         "handsets": [HANDSET]}}
    for name, values in sections.items():
        raw[name] = values if isinstance(values, list) else {**raw.get(name, {}), **values}
    config = config_from_dict(raw, tmp_path / "smsgate.toml")
    return dataclasses.replace(config, web=dataclasses.replace(config.web, port=0))


def test_a_gateway_on_a_brand_new_database_starts_every_part_without_a_traceback(
        tmp_path: Path, receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    config = simulator_config(tmp_path, webhooks=[{"url": receiver.url, "secret": SECRET, "events": ["inbound"]}])
    assert not config.database_path.exists()
    announced: list[str] = []
    caplog.set_level(logging.INFO)
    with Gateway(config, tunables=FAST, announce=announced.append) as gateway:
        assert gateway.simulator is not None and gateway.web_server is not None and gateway.daemon is not None
        with Store.open(config.database_path) as store:
            wait_until(lambda: [m["state"] for m in store.modems.all()] == ["ready"], timeout=20,
                       what="the simulated modem ready")
            with urllib.request.urlopen(f"{gateway.web_server.url}/api/v1/health", timeout=5) as health:
                assert health.status == 200
            modem = gateway.simulator.modems[0]
            gateway.simulator.handset(HANDSET).send(modem.msisdn, "Is the clinic open today?")
            receiver.wait_for(1, timeout=20)
            posted = json.loads(receiver.requests[0][1])
            assert posted["event"] == "inbound" and posted["data"]["text"] == "Is the clinic open today?"
            assert store.get_status("daemon")[0]["running"]  # type: ignore[index]
    assert any(line.startswith("simulated modem sim1: ") for line in announced)
    assert any(line.startswith("status page on http://") for line in announced)
    problems = [r for r in caplog.records if r.exc_info or "no such table" in r.getMessage()]
    assert problems == []


def test_the_parts_stop_in_reverse_order_and_the_daemon_records_its_stop(tmp_path: Path) -> None:
    config = simulator_config(tmp_path)
    gateway = Gateway(config, tunables=FAST)
    gateway.start()
    assert gateway.running_parts == ("simulator", "web server", "webhook deliverer", "daemon")
    assert gateway.stop(timeout=10) is True
    assert gateway.running_parts == ()
    with Store.open(config.database_path) as store:
        assert store.get_status("daemon")[0]["running"] is False  # type: ignore[index]


def test_a_port_in_use_stops_start_up_with_a_sentence_and_leaves_nothing_running(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = simulator_config(tmp_path)
        config = dataclasses.replace(config, web=dataclasses.replace(config.web, bind="127.0.0.1", port=port))
        gateway = Gateway(config, tunables=FAST)
        with pytest.raises(StartupError, match=rf"cannot serve the status page on 127.0.0.1:{port} .*stop "
                                               r"whatever uses that port, or set \[web\] port"):
            gateway.start()
    assert gateway.running_parts == ()
    assert gateway.simulator is not None and not gateway.simulator.modems[0].path.exists()
    with Store.open(config.database_path) as store:
        assert store.get_status("daemon") is None, "the daemon never started"


def test_an_unusable_database_path_stops_start_up_before_anything_runs(tmp_path: Path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    config = dataclasses.replace(simulator_config(tmp_path), database=str(tmp_path / "not-a-folder" / "smsgate.db"))
    gateway = Gateway(config, tunables=FAST)
    with pytest.raises(StartupError, match=r"cannot open the database .*may write to it"):
        gateway.start()
    assert gateway.simulator is None and gateway.running_parts == ()


def test_a_simulator_that_cannot_start_names_the_setting_to_fix(tmp_path: Path) -> None:
    config = simulator_config(tmp_path, simulator={"personality": "no-such-phone"})
    with pytest.raises(StartupError, match=r"cannot start the simulated modems: simulator\.personality"):
        Gateway(config, tunables=FAST).start()


@pytest.mark.parametrize("entry", ["smsgate serve", "python -m smsgate.modemd"])
def test_a_rules_engine_that_cannot_be_imported_stops_start_up(tmp_path: Path, entry: str) -> None:
    """Before the Gateway, the daemon logged a warning and ran on, storing every STOP without the opt-out."""
    cfg = tmp_path / "smsgate.toml"
    modems = "" if entry == "smsgate serve" else f'[[modems]]\nname = "m1"\ndevice = "{tmp_path / "ttyUSB0"}"\n'
    cfg.write_text(f'database = "{tmp_path / "smsgate.db"}"\n[clinic]\ntimezone = "America/New_York"\n{modems}'
                   '[simulator]\nmodems = 1\npersonality = "generic"\nlatency = "0"\n')
    argv = ["serve", "--no-web"] if entry == "smsgate serve" else ["--config", str(cfg), "--fast"]
    module = "smsgate.cli" if entry == "smsgate serve" else "smsgate.modemd"
    # A None entry in sys.modules makes every `import smsgate.keywords` fail, as a broken package would.
    script = ("import runpy, sys\nsys.modules['smsgate.keywords'] = None\n"
              f"sys.argv = [{module!r}, *{argv!r}]\nrunpy.run_module({module!r}, run_name='__main__')\n")
    done = subprocess.run([sys.executable, "-c", script], env={**os.environ, "SMSGATE_CONFIG": str(cfg)},
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "smsgate.keywords" in done.stderr
    if (tmp_path / "smsgate.db").exists():
        with Store.open(tmp_path / "smsgate.db") as store:
            assert store.get_status("daemon") is None, "the daemon must not have run"
