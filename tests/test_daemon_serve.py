"""`smsgate serve` with no modem configured starts simulated ones; `smsgate sim` talks to them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from smsgate.cli import cli
from smsgate.queue import Store
from smsgate.testing import wait_until


def test_serve_runs_the_daemon_on_simulated_modems_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    cfg = tmp_path / "smsgate.toml"
    cfg.write_text(f'database = "{tmp_path / "smsgate.db"}"\n'
                   '[clinic]\nname = "Demo Clinic"\ntimezone = "America/New_York"\n'
                   '[simulator]\nmodems = 2\npersonality = "generic"\nlatency = "0"\n'
                   'handsets = ["+15555550101"]\n')
    env = {**os.environ, "SMSGATE_CONFIG": str(cfg)}
    with open(tmp_path / "serve.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "smsgate.cli", "serve", "--no-web"], env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    try:
        with Store.open(tmp_path / "smsgate.db") as store:
            wait_until(lambda: [m["state"] for m in store.modems.all()] == ["ready", "ready"], timeout=20,
                       what="both simulated modems ready")
            runner = CliRunner()
            status = runner.invoke(cli, ["--config", str(cfg), "status"])
            assert status.exit_code == 0 and "daemon: running" in status.output
            assert status.output.count(" ready ") == 2
            sim1 = store.modems.by_name("sim1")
            assert sim1 is not None
            texted = runner.invoke(cli, ["--config", str(cfg), "sim", "text", "+15555550101", "+15550001001",
                                         "Is the clinic open today?"])
            assert texted.exit_code == 0, texted.output
            rows = wait_until(lambda: store.inbox.recent(), what="the simulated text stored")
            assert rows[0]["body"] == "Is the clinic open today?" and rows[0]["modem_id"] == sim1["id"]
            queued = runner.invoke(cli, ["--config", str(cfg), "send", "+15555550101", "Yes, until 6 pm",
                                         "--kind", "reply"])
            assert queued.exit_code == 0, queued.output

            def phone_got_it() -> bool:
                inbox = runner.invoke(cli, ["--config", str(cfg), "sim", "inbox", "+15555550101"])
                return "Yes, until 6 pm" in inbox.output

            wait_until(phone_got_it, what="the reply on the simulated phone")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
