"""Shared fixtures: a real SQLite store in `tmp_path`, a clock the test moves by hand, a CLI configuration."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from at_peer import AtPeer, script
from click.testing import CliRunner

from smsgate.at_commands.channel import AtChannel
from smsgate.at_commands.modem import Modem
from smsgate.cli import cli
from smsgate.queue import Store
from smsgate.simulator import Simulator
from smsgate.simulator.wire import WireClient


class FakeClock:
    """A clock that stands still until the test advances it (leases, retries, report windows)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 22, 18, 0, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "smsgate.db"


@pytest.fixture
def store(db_path: Path, clock: FakeClock) -> Iterator[Store]:
    s = Store.open(db_path, clock=clock)
    yield s
    s.close()


@pytest.fixture
def cli_config(tmp_path: Path) -> Path:
    """The configuration `smsgate init` writes, its database beside it: where an admin starts."""
    path = tmp_path / "etc" / "smsgate.toml"
    result = CliRunner().invoke(cli, ["--config", str(path), "init"])
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def modem_for() -> Iterator[Callable[[dict[str, str]], tuple[AtPeer, Modem]]]:
    """A `Modem` over a pty whose peer answers each command from a table (ERROR for anything else), for
    parsing and policy tests against the answers recorded from real modems."""
    made: list[tuple[AtPeer, AtChannel]] = []

    def make(answers: dict[str, str]) -> tuple[AtPeer, Modem]:
        peer = AtPeer(script(answers, default="\r\nERROR\r\n"))
        channel = AtChannel(peer.open_port(), name="modem-test")
        made.append((peer, channel))
        return peer, Modem(channel)

    yield make
    for peer, channel in made:
        channel.close()
        peer.close()


@pytest.fixture
def at(sim: Simulator) -> Iterator[WireClient]:
    """A raw AT client on simulated modem m1 with echo off; each module's `sim` fixture sets the modem up."""
    with WireClient(sim.modem("m1").path) as client:
        client.command("ATE0")
        yield client


# Lanes: `scripts/test.sh --quick` leaves out the `daemon`, `browser` and `slow` marks (pyproject.toml says what
# each means). A file's tests share its lane, so a new test lands in the lane of the file it joins; a new file
# that runs the daemon or a program on wall-clock timers belongs in this table.
LANES = {
    "test_daemon_direct_delivery.py": "daemon",
    "test_daemon_reliability.py": "daemon",
    "test_daemon_serve.py": "daemon",
    "test_modemd_daemon.py": "daemon",
    "test_modemd_faults.py": "daemon",
    "test_gammu_sim.py": "daemon",
    "test_web_browser.py": "browser",
    "test_daemon_crash.py": "slow",
    "test_daemon_kill_unknown.py": "slow",
    "test_store_crash.py": "slow",
    "test_contacts_import_crash.py": "slow",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        lane = LANES.get(item.path.name)
        if lane is not None:
            item.add_marker(getattr(pytest.mark, lane))
