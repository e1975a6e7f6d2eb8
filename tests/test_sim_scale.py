"""Many modems share one event loop thread."""

from __future__ import annotations

import threading

from smsgate.simulator import SimModemSpec, Simulator
from smsgate.simulator.wire import WireClient


def test_sixty_four_modems_answer_on_one_loop_thread(tmp_path):
    before = threading.active_count()
    specs = [SimModemSpec(f"m{i}") for i in range(64)]
    with Simulator(tmp_path, specs, latency=0) as sim:
        assert threading.active_count() == before + 1
        assert len({m.msisdn for m in sim.modems}) == 64
        clients = [WireClient(m.path) for m in sim.modems]
        try:
            for c in clients:
                c.write("AT+CGSN\r")
            imeis = [c.read_until(b"OK\r\n").split(b"\r\n")[1].decode() for c in clients]
        finally:
            for c in clients:
                c.close()
        assert imeis == [m.imei for m in sim.modems]
