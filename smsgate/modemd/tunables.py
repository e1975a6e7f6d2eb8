"""Timings of the daemon that are not configuration: production defaults, shortened by tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tunables:
    heartbeat_s: float = 5.0  # daemon row in daemon_status + systemd WATCHDOG=1
    health_s: float = 60.0  # signal, registration, operator, storage of each modem
    sweep_s: float = 300.0  # AT+CMGL=4 safety net (notices stop when storage is full)
    sweep_without_notices_s: float = 20.0  # modems with no usable +CNMI
    lease_check_s: float = 30.0
    rematch_s: float = 60.0  # unmatched delivery reports
    reassembly_timeout_s: float = 600.0  # gammu MultipartTimeout; then stored with a visible gap
    reassembly_check_s: float = 60.0
    queue_poll_s: float = 0.15  # PRAGMA data_version check for other processes' inserts
    idle_wake_s: float = 5.0  # a worker looks around at least this often
    registration_wait_s: float = 60.0
    registration_poll_s: float = 2.0
    no_network_poll_s: float = 15.0
    command_timeout_cap_s: float | None = None  # shorten every AT deadline (tests of hangs)
    resync_timeout_s: float = 3.0
    probe_timeout_s: float = 2.0
    send_timeout_s: float = 60.0
    recover_delays_s: tuple[float, ...] = (0.0, 2.0, 5.0, 10.0, 30.0)
    offline_after: int = 4  # failed recovery steps before the modem is marked offline and an alert raised
    offline_retry_s: float = 60.0
    cfun_settle_s: float = 5.0  # after AT+CFUN=1,1 the port vanishes for a while
    breaker_errors: int = 3  # modem-level errors within breaker_window_s open the circuit breaker
    breaker_window_s: float = 120.0
    breaker_cooldown_s: float = 60.0
    storage_alert_ratio: float = 0.8
    stop_timeout_s: float = 90.0  # SIGTERM: longest wait for the sends in flight
    absent_modem_after_s: float = 600.0  # an unconfigured modem silent this long is marked stopped


FAST = Tunables(
    heartbeat_s=0.5, health_s=2.0, sweep_s=3.0, sweep_without_notices_s=1.0, lease_check_s=1.0, rematch_s=1.0,
    reassembly_timeout_s=3.0, reassembly_check_s=0.5, queue_poll_s=0.05, idle_wake_s=1.0,
    registration_wait_s=3.0, registration_poll_s=0.1, no_network_poll_s=0.5, command_timeout_cap_s=2.0,
    resync_timeout_s=0.5, probe_timeout_s=0.5, send_timeout_s=3.0, recover_delays_s=(0.0, 0.2, 0.3, 0.5),
    offline_after=3, offline_retry_s=0.5, cfun_settle_s=0.3, breaker_errors=3, breaker_window_s=5.0,
    breaker_cooldown_s=0.5, stop_timeout_s=10.0,
)
