"""Simulated modems from the `[simulator]` section, for `smsgate serve` (the Gateway) and `smsgate sim start`.

The simulator's modems appear as ordinary `[[modems]]` entries pointing at their stable device links, so
the daemon runs its real code path against them; nothing in the daemon knows it is talking to a simulator.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from smsgate.config import Config, ConfigError, ModemConfig
from smsgate.simulator import SimModemSpec, Simulator, UnknownPersonality


def simulator_dir(config: Config) -> Path:
    """Where the simulator keeps its device links: next to the database."""
    return config.database_path.parent / "simulator"


def control_socket(config: Config) -> Path:
    return Path(config.simulator.control_socket) if config.simulator.control_socket else \
        simulator_dir(config) / "control.sock"


def parse_latency(text: str) -> float | tuple[float, float]:
    """`"0"`, `"1.5"` or a range `"0.5-1.5"` (seconds)."""
    try:
        if "-" in text.strip().lstrip("-"):
            low, high = (float(x) for x in text.split("-", 1))
            if low < 0 or high < low:
                raise ValueError(text)
            return low, high
        value = float(text)
        if value < 0:
            raise ValueError(text)
        return value
    except ValueError:
        raise ConfigError(f"simulator.latency = {text!r} is not a delay; write \"0\", \"1.5\" or a range "
                          "like \"0.5-1.5\" (seconds)") from None


def start_simulator(config: Config) -> tuple[Simulator, Config]:
    """Start the configured simulated modems and handsets; returns it and a Config naming its modems."""
    sc = config.simulator
    if sc.modems < 1:
        raise ConfigError("simulator.modems must be at least 1")
    specs = [SimModemSpec(name=f"sim{i}", personality=sc.personality) for i in range(1, sc.modems + 1)]
    latency = parse_latency(sc.latency)
    try:
        sim = Simulator(simulator_dir(config), specs, latency=latency, control_socket=control_socket(config))
        sim.start()
    except UnknownPersonality as exc:
        raise ConfigError(f"simulator.personality: {exc}") from None
    for number in sc.handsets:
        sim.handset(number)
    modems = [ModemConfig(name=m.name, device=str(m.path), parts_per_minute=0) for m in sim.modems]
    return sim, dataclasses.replace(config, modems=modems)
