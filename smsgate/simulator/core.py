"""The public face of the simulator: ``Simulator`` and the handles tests hold."""

from __future__ import annotations

import dataclasses
import logging
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .loop import EventLoop
from .modem import ModemCounters, SimCard, SimModem, random_digits
from .network import OUTCOMES, BadOutcome, HandsetMessage, Network, normalise
from .personality import get_personality, with_direct_delivery_only
from .storage import STAT_NAMES

log = logging.getLogger(__name__)


class SimulatorError(RuntimeError):
    """Misuse of the simulator (unknown modem, duplicate name, closed simulator)."""


class WaitTimeout(TimeoutError):
    """A ``wait_for`` condition did not come true before its deadline."""


@dataclass(frozen=True)
class SimModemSpec:
    """What to plug in: a modem of a personality with its own SIM and IMEI (generated when left out)."""

    name: str
    personality: str = "generic"
    msisdn: str | None = None
    imsi: str | None = None
    iccid: str | None = None
    imei: str | None = None
    pin: str | None = None
    puk: str = "12345678"
    signal: int = 20
    first_mr: int = 0
    pin_attempts: int = 3  # PIN attempts left on the SIM (AT+CPINR); 1 means the next wrong PIN makes it PUK
    direct_delivery_only: bool = False  # AT+CNMI offers only +CMT/+CDS (mt 0/2, ds 0/1), no +CMTI/+CDSI


@dataclass(frozen=True)
class StoredSms:
    """A snapshot of one occupied storage slot, by AT index."""

    index: int
    stat: int
    stat_name: str
    pdu_hex: str
    tpdu_length: int


GARBAGE = b"\xff\xfe\x00\x80\x9cgarbage\xc3(\r\n"  # NUL, invalid UTF-8 and stray CR LF


class FaultHandle:
    """Switch faults on a modem at run time; each call takes effect before it returns."""

    def __init__(self, sim: Simulator, modem: SimModem) -> None:
        self._sim = sim
        self._m = modem

    def _run(self, fn: Callable[[], Any]) -> Any:
        return self._sim.loop.run(fn)

    def unplug(self) -> None:
        """The device path disappears and open file descriptors see the port vanish."""

        def do() -> None:
            if self._m.device.is_open:
                self._m.counters.unplugs += 1
                self._m.unplug()

        self._run(do)

    def replug(self) -> None:
        """A new pty appears and the stable symlink is re-pointed at it; the modem boots afresh."""

        def do() -> None:
            if self._m.device.is_open:
                self._m.unplug()
            self._m.counters.replugs += 1
            self._m.plug(registration_delay=self._sim.registration_delay)

        self._run(do)

    def hang(self, *, keep_urcs: bool = False) -> None:
        """The modem stops answering (input is swallowed, no URCs) until ``recover`` or a replug.

        ``keep_urcs=True``: commands go unanswered but unsolicited lines (``^BOOT``, ``^RSSI``) keep
        coming, the case where a URC that resets a reply timer keeps a client waiting forever (gammu#393).
        """

        def do() -> None:
            if keep_urcs:
                self._m.faults.mute = True
            else:
                self._m.faults.hung = True

        self._run(do)

    def recover(self) -> None:
        """The modem answers again; a send it hung in the middle of is lost, unless it is still on the air."""

        def do() -> None:
            self._m.recover_from_hang()
            self._sim.network.retry_pending(self._m)

        self._run(do)

    def garbage(self, data: bytes = GARBAGE, *, before_next_reply: bool = False) -> None:
        """Put bytes on the line now, or just before the next command's reply."""

        def do() -> None:
            if before_next_reply:
                self._m.faults.garbage_before_reply.append(data)
            else:
                self._m.write(data)

        self._run(do)

    def urc_storm(self, count: int = 200, lines: Iterable[str] | None = None) -> None:
        """Emit ``count`` unsolicited lines at once (default: registration and signal indications)."""
        chosen = list(lines) if lines is not None else (
            ["^RSSI:17", "^MODE:5,4"] if self._m.p.periodic_urcs else ["+CREG: 1", "+CGREG: 1"])

        def do() -> None:
            for i in range(count):
                self._m.urc([chosen[i % len(chosen)]])

        self._run(do)

    def cms_error(self, code: int, n: int = 1, *, after: int = 0) -> None:
        """The next ``n`` sends fail with ``+CMS ERROR: code`` and nothing is sent.

        ``after``: that many sends succeed first (part 2 of a multipart message fails, part 1 went out).
        """

        def do() -> None:
            self._m.faults.cms_errors.extend([code] * n)
            self._m.faults.cms_skip = after

        self._run(do)

    def ambiguous(self, n: int = 1) -> None:
        """The next ``n`` sends are delivered by the network but the modem answers ``+CMS ERROR: 500``."""

        def do() -> None:
            self._m.faults.ambiguous += n

        self._run(do)

    def no_network(self, on: bool = True) -> None:
        def do() -> None:
            self._m.faults.no_network = on
            if not on and not self._m.attached and self._m.sim.state == "READY":
                self._m.attached = True
            self._m.update_registration()

        self._run(do)

    def sim_pin(self, pin: str = "1234", *, attempts: int = 3) -> None:
        """The SIM now asks for a PIN (as after a power cycle with PIN lock enabled), ``attempts`` left."""
        if not 1 <= attempts <= 3:
            raise ValueError("a SIM asking for its PIN has 1 to 3 attempts left")

        def do() -> None:
            self._m.sim.pin = pin
            self._m.sim.state = "SIM PIN"
            self._m.sim.pin_attempts = attempts
            self._m.attached = False
            self._m.update_registration()

        self._run(do)

    def sim_puk(self, puk: str = "12345678") -> None:
        def do() -> None:
            self._m.sim.puk = puk
            self._m.sim.state = "SIM PUK"
            self._m.sim.pin_attempts = 0
            self._m.attached = False
            self._m.update_registration()

        self._run(do)

    def storage_full(self, on: bool = True) -> None:
        """No free slot: no +CMTI, new messages stay at the SMSC until space is freed or the fault ends."""

        def do() -> None:
            self._m.faults.storage_full = on
            if not on:
                self._sim.network.retry_pending(self._m)

        self._run(do)

    def duplicate_inbound(self, n: int = 1) -> None:
        """The next ``n`` inbound messages are delivered twice (as after a lost network acknowledgement)."""

        def do() -> None:
            self._m.faults.duplicate_inbound += n

        self._run(do)

    def early_status_report(self, n: int = 1) -> None:
        """For the next ``n`` sends with TP-SRR, the status report arrives before ``+CMGS:``."""

        def do() -> None:
            self._m.faults.early_status_report += n

        self._run(do)

    def command_error(self, prefix: str, final: str, n: int = 1) -> None:
        """The next ``n`` command lines starting with ``prefix`` answer ``final`` and do nothing.

        E.g. ``("AT+CMGD", "+CMS ERROR: 320")`` (a delete that fails), ``("AT+CIMI", "+CME ERROR: 14")``
        (SIM busy right after the PIN), ``("AT+CMGR", "+CMS ERROR: 321")``.
        """
        if n < 1 or not prefix.strip() or not final.strip():
            raise ValueError("command_error needs a command prefix, a final line and n >= 1")

        def do() -> None:
            self._m.faults.command_errors.append([prefix.strip().upper(), final.strip(), n])

        self._run(do)

    def registration_denied(self, on: bool = True) -> None:
        """The network refuses the SIM: ``+CREG: <n>,3`` (barred, not provisioned); sends fail with 331."""

        def do() -> None:
            self._m.faults.registration_denied = on
            self._m.update_registration()

        self._run(do)

    def misfiled_status_reports(self, n: int = 1) -> None:
        """The next ``n`` status reports are stored in SR but announced as ``+CDSI: "SM",<i>`` (EC25)."""

        def do() -> None:
            self._m.faults.misfiled_reports += n

        self._run(do)

    def inbound_inside_reply(self, command: str = "AT+CSQ", n: int = 1) -> None:
        """Hold inbound SMS at the SMSC until the modem answers a command line starting with ``command``,
        then deliver them between that reply's information lines and its final result (``n`` times).

        With direct delivery a ``+CMT:`` and its PDU land in the middle of another command's reply, the
        way ZTE modems interleave unsolicited lines (modem-profiles.md).
        """
        if n < 1 or not command.strip():
            raise ValueError("inbound_inside_reply needs a command prefix and n >= 1")

        def do() -> None:
            self._m.faults.inbound_inside_reply = command.strip().upper()
            self._m.faults.inbound_inside_reply_n = n

        self._run(do)

    def reboot(self, gap: float | None = None) -> None:
        """Drop off the bus for ``gap`` seconds and come back, as ``AT+CFUN=1,1`` does."""
        self._run(lambda: self._sim._reboot(self._m, gap))


class ModemHandle:
    """A test's view of one simulated modem."""

    def __init__(self, sim: Simulator, modem: SimModem) -> None:
        self._sim = sim
        self._m = modem
        self.faults = FaultHandle(sim, modem)

    @property
    def name(self) -> str:
        return self._m.name

    @property
    def path(self) -> Path:
        """The stable symlink (like /dev/serial/by-id/...); it vanishes while unplugged."""
        return self._m.device.link

    @property
    def tty_path(self) -> str:
        return self._sim.loop.run(lambda: self._m.device.tty_path if self._m.device.is_open else "")

    @property
    def personality(self) -> str:
        return self._m.p.name

    @property
    def msisdn(self) -> str:
        return self._m.sim.msisdn

    @property
    def imsi(self) -> str:
        return self._m.sim.imsi

    @property
    def iccid(self) -> str:
        return self._m.sim.iccid

    @property
    def imei(self) -> str:
        return self._m.imei

    @property
    def counters(self) -> ModemCounters:
        return self._sim.loop.run(lambda: dataclasses.replace(self._m.counters))

    @property
    def plugged(self) -> bool:
        return self._sim.loop.run(lambda: self._m.device.is_open)

    @property
    def registered(self) -> bool:
        return self._sim.loop.run(lambda: self._m.registered)

    @property
    def sim_state(self) -> str:
        return self._sim.loop.run(lambda: self._m.sim.state)

    @property
    def pin_attempts(self) -> int:
        return self._sim.loop.run(lambda: self._m.sim.pin_attempts)

    @property
    def cnmi(self) -> tuple[int, int, int, int, int]:
        """The ``AT+CNMI`` setting a client chose: ``(mode, mt, bm, ds, bfr)``."""
        return self._sim.loop.run(lambda: self._m.s.cnmi)

    @property
    def csms(self) -> int:
        """The ``AT+CSMS`` service: 1 means direct deliveries wait for ``AT+CNMA``."""
        return self._sim.loop.run(lambda: self._m.s.csms)

    def watch_commands(self, prefix: str, callback: Callable[[str], None]) -> Callable[[], None]:
        """Call ``callback(line)`` on the simulator's thread whenever a command line starting with ``prefix``
        arrives, before the modem acts on it; returns a function that stops watching.

        For tests that check what a client had done by the time it sent a command (e.g. that an SMS was
        committed before its ``AT+CNMA``). Keep the callback short: the whole simulator waits for it.
        """
        entry = (prefix.strip().upper(), callback)
        self._sim.loop.run(lambda: self._m.command_taps.append(entry))

        def stop() -> None:
            self._sim.loop.run(lambda: self._m.command_taps.remove(entry) if entry in self._m.command_taps else None)

        return stop

    def set_signal(self, rssi: int) -> None:
        self._sim.loop.run(lambda: self._m.set_signal(rssi))

    def storage(self, name: str = "SM") -> list[StoredSms]:
        def snap() -> list[StoredSms]:
            return [
                StoredSms(i, m.stat, STAT_NAMES[m.stat], m.pdu.hex().upper(), m.tpdu_length)
                for i, m in self._m.snapshot_storage(name)
            ]

        return self._sim.loop.run(snap)

    def pending_at_network(self) -> int:
        return self._sim.loop.run(lambda: len(self._sim.network.pending[self._m.name]))

    def __repr__(self) -> str:
        return f"<ModemHandle {self.name} {self.personality} {self.msisdn} {self.path}>"


class HandsetHandle:
    """A phone on the virtual network."""

    def __init__(self, sim: Simulator, number: str) -> None:
        self._sim = sim
        self._h = sim.loop.run(lambda: sim.network.handset(number))

    @property
    def number(self) -> str:
        return self._h.number

    def send(self, to: str, text: str, *, shuffle: bool = False, concat_ref: int | None = None) -> int:
        """Text a modem; returns how many concatenated parts went out (shuffled on request).

        ``concat_ref``: the 8-bit concatenation reference a long text's parts carry (random when left out), so a
        test can make two texts collide the way a phone that reuses references does.
        """
        if concat_ref is not None and not (isinstance(concat_ref, int) and 0 <= concat_ref <= 255):
            raise ValueError(f"concat_ref must be a whole number from 0 to 255 (8 bits), not {concat_ref!r}")
        return self._sim.loop.run(lambda: self._sim.network.text_modem(
            self._h.number, to, text, shuffle=shuffle, reference=concat_ref))

    @property
    def inbox(self) -> list[HandsetMessage]:
        with self._h.cond:
            return list(self._h.inbox)

    def received_texts(self) -> list[str]:
        return self._h.received_texts()

    def wait_for(
        self, predicate: Callable[[list[HandsetMessage]], bool] | None = None, timeout: float = 5.0
    ) -> list[HandsetMessage]:
        """Block until ``predicate(inbox)`` holds (default: the inbox is not empty)."""
        check = predicate or (lambda inbox: bool(inbox))
        deadline = time.monotonic() + timeout
        with self._h.cond:
            while not check(list(self._h.inbox)):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WaitTimeout(f"handset {self.number}: condition not met within {timeout} s "
                                      f"(inbox has {len(self._h.inbox)} parts)")
                self._h.cond.wait(remaining)
            return list(self._h.inbox)

    def wait_for_text(self, text: str, timeout: float = 5.0) -> None:
        self.wait_for(lambda inbox: text in _texts(inbox), timeout)

    def set_report_outcome(self, outcome: str) -> None:
        """Status-report outcome for every later message to this handset."""
        _check_outcome(outcome)
        with self._h.cond:
            self._h.default_outcome = outcome

    def queue_report_outcomes(self, *outcomes: str) -> None:
        """Outcomes for the next messages to this handset, in order, before falling back to the default."""
        for o in outcomes:
            _check_outcome(o)
        with self._h.cond:
            self._h.report_outcomes.extend(outcomes)


def _texts(inbox: list[HandsetMessage]) -> list[str]:
    from .network import reassemble

    return reassemble(inbox)


def _check_outcome(outcome: str) -> None:
    if outcome not in OUTCOMES:
        raise BadOutcome(f"unknown status report outcome {outcome!r}; choose one of {', '.join(OUTCOMES)}")


class Simulator:
    """Virtual modems on real ptys plus a virtual network, served by one event loop thread.

    ``latency=0`` gives a test-speed world: sends complete at once and, unless ``registration_delay`` is
    given, modems register immediately. The default latency is a real modem's 2–6 s.
    """

    def __init__(
        self,
        base_dir: Path | str,
        modems: Iterable[SimModemSpec] = (),
        *,
        latency: float | tuple[float, float] = (2.0, 6.0),
        registration_delay: float | None = None,
        smsc: str = "+15550000000",
        status_report_delay: float = 0.0,
        pending_delay: float = 1.0,
        reboot_gap: float = 1.0,
        cnma_timeout: float = 10.0,
        periodic_urc_interval: float = 10.0,
        seed: int | None = None,
        control_socket: Path | str | None = None,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.dev_dir = self.base_dir / "dev"
        self.specs = list(modems)
        self.latency = latency
        if registration_delay is None:
            registration_delay = 0.0 if latency == 0 else 3.0
        self.registration_delay = registration_delay
        self.reboot_gap = reboot_gap
        self.periodic_urc_interval = periodic_urc_interval
        self.rng = random.Random(seed)
        self.loop = EventLoop()
        self.network = Network(
            self.loop, smsc=smsc, latency=latency, status_report_delay=status_report_delay,
            pending_delay=pending_delay, cnma_timeout=cnma_timeout, seed=seed,
        )
        self.network.reboot_hook = lambda m: self._reboot(m, None)
        self._modems: dict[str, SimModem] = {}
        self._handles: dict[str, ModemHandle] = {}
        self._control_path = Path(control_socket) if control_socket else None
        self._control: Any = None
        self._started = False
        self._closed = False

    # lifecycle -------------------------------------------------------------------

    def start(self) -> Simulator:
        if self._started:
            return self
        self.dev_dir.mkdir(parents=True, exist_ok=True)
        self.loop.start()
        self._started = True
        try:
            for spec in self.specs:
                self._add(spec)
            if self._control_path is not None:
                from .control import ControlServer

                self._control = ControlServer(self, self._control_path)
                self._control.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._control is not None:
            self._control.stop()
        if self._started:
            def unplug_all() -> None:
                for m in self._modems.values():
                    m.unplug()

            self.loop.run(unplug_all)
        self.loop.stop()

    def advance(self, seconds: float) -> None:
        """Let ``seconds`` of simulated time pass at once: sends on the air complete, registration and busy
        windows end, status reports and reboots come, all before this returns (see ``EventLoop.advance``)."""
        self.loop.advance(seconds)

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # modems and handsets -----------------------------------------------------------

    def add_modem(self, spec: SimModemSpec) -> ModemHandle:
        if not self._started:
            raise SimulatorError("start the simulator before adding modems")
        self.specs.append(spec)
        return self._add(spec)

    def _add(self, spec: SimModemSpec) -> ModemHandle:
        if spec.name in self._modems:
            raise SimulatorError(f"a modem named {spec.name!r} already exists")
        if not spec.name or "/" in spec.name or spec.name.startswith("."):
            raise SimulatorError(f"modem name {spec.name!r} must be a plain file name")
        personality = get_personality(spec.personality)
        if spec.direct_delivery_only:
            personality = with_direct_delivery_only(personality)
        n = len(self._modems) + 1
        msisdn = spec.msisdn or f"+1555000{1000 + n:04d}"
        if normalise(msisdn) in self.network.modems:
            raise SimulatorError(f"two modems cannot share the number {msisdn}")
        card = SimCard(
            imsi=spec.imsi or random_digits(self.rng, "00101", 15),
            iccid=spec.iccid or random_digits(self.rng, "8901", 19),
            msisdn=msisdn, pin=spec.pin, puk=spec.puk, pin_attempts=spec.pin_attempts,
        )
        modem = SimModem(
            name=spec.name, personality=personality, sim=card,
            imei=spec.imei or random_digits(self.rng, "35", 15), link=self.dev_dir / spec.name,
            loop=self.loop, network=self.network, signal=spec.signal, first_mr=spec.first_mr,
            periodic_urc_interval=self.periodic_urc_interval,
        )

        def plug() -> None:
            self.network.add_modem(modem)
            modem.plug(registration_delay=self.registration_delay, boot_urcs=False)

        self.loop.run(plug)
        self._modems[spec.name] = modem
        self._handles[spec.name] = ModemHandle(self, modem)
        return self._handles[spec.name]

    def modem(self, name: str) -> ModemHandle:
        try:
            return self._handles[name]
        except KeyError:
            raise SimulatorError(f"no simulated modem named {name!r}; have {', '.join(self._handles)}") from None

    @property
    def modems(self) -> list[ModemHandle]:
        return list(self._handles.values())

    def handset(self, number: str) -> HandsetHandle:
        return HandsetHandle(self, number)

    def _reboot(self, modem: SimModem, gap: float | None) -> None:
        """On the loop: vanish shortly after the final OK got out, come back after ``gap``."""
        gap = self.reboot_gap if gap is None else gap
        modem.counters.reboots += 1

        def vanish() -> None:
            modem.unplug()
            self.loop.call_later(gap, back)

        def back() -> None:
            if not modem.device.is_open and not self._closed:
                modem.plug(registration_delay=self.registration_delay)

        modem.power_off()
        self.loop.call_later(0.05, vanish)

    # subprocess mode ---------------------------------------------------------------

    @staticmethod
    def spawn(
        base_dir: Path | str,
        modems: Iterable[SimModemSpec],
        *,
        latency: float = 0.0,
        timeout: float = 15.0,
    ) -> SpawnedSimulator:
        """Run the simulator in a child process (``python -m smsgate.simulator``) with a control socket."""
        base = Path(base_dir)
        base.mkdir(parents=True, exist_ok=True)
        sock = base / "control.sock"
        args = [sys.executable, "-m", "smsgate.simulator", "--dir", str(base), "--control", str(sock),
                "--latency", str(latency)]
        for spec in modems:
            args += ["--modem", f"{spec.name}:{spec.personality}:{spec.msisdn or ''}"]
        log_path = base / "simulator.log"
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log_file, text=True)
        from .control import ControlError, SimulatorClient

        client = SimulatorClient(sock)
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                err = log_path.read_text(errors="replace").strip()
                raise SimulatorError(f"simulator process exited with {proc.returncode}: {err}")
            try:
                client.status()
                break
            except ControlError:
                if time.monotonic() > deadline:
                    proc.terminate()
                    raise SimulatorError(f"simulator process did not open {sock} within {timeout} s") from None
                threading.Event().wait(0.05)
        return SpawnedSimulator(proc, client, base)


class SpawnedSimulator:
    """A simulator running in a child process; talk to it through ``client``."""

    def __init__(self, proc: subprocess.Popen[str], client: Any, base_dir: Path) -> None:
        self.proc = proc
        self.client = client
        self.base_dir = base_dir

    def path(self, name: str) -> Path:
        return self.base_dir / "dev" / name

    def close(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        return self.proc.returncode

    def __enter__(self) -> SpawnedSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
