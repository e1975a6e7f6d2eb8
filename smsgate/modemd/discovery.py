"""Finding a configured modem: by device path, by `/dev/serial/by-id` link, or by IMEI/IMSI over candidates.

A USB stick that comes back as ttyUSB3 instead of ttyUSB0 is found again by its identity (gammu#83), and of
a multi-port stick only the port that answers `AT` is used (the others spew `^BOOT` or stay silent).
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import serial

from smsgate.at_commands.channel import AtChannel
from smsgate.at_commands.classify import Urc
from smsgate.at_commands.errors import ModemError
from smsgate.at_commands.modem import Identity, Modem
from smsgate.config import ModemConfig

log = logging.getLogger(__name__)

# Long enough that 64 idle readers cost nothing; close() cancels the read at once.
PORT_READ_TIMEOUT = 0.5


class DiscoveryError(Exception):
    """No port answered as the configured modem; the message says which ports were tried and why."""


class PortRegistry:
    """Which device nodes the workers of this process hold, so two workers never probe the same port."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[str, str] = {}

    def acquire(self, path: str, owner: str) -> bool:
        real = os.path.realpath(path)
        with self._lock:
            holder = self._owners.get(real)
            if holder is not None and holder != owner:
                return False
            self._owners[real] = owner
            return True

    def release_all(self, owner: str) -> None:
        with self._lock:
            for real in [p for p, o in self._owners.items() if o == owner]:
                del self._owners[real]


@dataclass
class Found:
    channel: AtChannel
    path: str
    identity: Identity | None


def open_channel(path: str, baudrate: int, *, name: str, on_urc: Callable[[Urc], None] | None,
                 resync_timeout: float) -> AtChannel:
    """Open `path` exclusively (another program holding it is reported, not fought over) as an AT channel."""
    try:
        port = serial.Serial(path, baudrate, timeout=PORT_READ_TIMEOUT, exclusive=True)
    except serial.SerialException as exc:
        text = str(exc)
        if "lock" in text.lower() or "busy" in text.lower():
            raise DiscoveryError(
                f"{path} is in use by another program ({text}). Stop ModemManager or add the udev rule "
                "from udev/ (ENV{ID_MM_DEVICE_IGNORE}=\"1\"), and make sure no other gateway runs."
            ) from exc
        raise DiscoveryError(f"cannot open {path}: {text}") from exc
    return AtChannel(port, name=name, on_urc=on_urc, resync_timeout=resync_timeout)


def candidates(cfg: ModemConfig, last_device: str | None) -> list[str]:
    """Ports to try, best guess first: the configured device, where the modem was last time, then probes."""
    out: list[str] = []
    if cfg.device:
        out.append(cfg.device)
    if cfg.imei or cfg.imsi or not cfg.device:
        if last_device:
            out.append(last_device)
        for pattern in cfg.probe:
            out.extend(sorted(glob.glob(pattern)))
    seen: set[str] = set()
    unique = []
    for p in out:
        real = os.path.realpath(p)
        if real not in seen:
            seen.add(real)
            unique.append(p)
    return unique


def matches(cfg: ModemConfig, ident: Identity) -> bool:
    if cfg.imei and (ident.imei or "").strip() != cfg.imei:
        return False
    return not (cfg.imsi and (ident.imsi or "").strip() != cfg.imsi)


def find(cfg: ModemConfig, registry: PortRegistry, owner: str, *, last_device: str | None,
         on_urc: Callable[[Urc], None] | None, probe_timeout: float) -> Found:
    """Open the port of the modem `cfg` describes; raises `DiscoveryError` naming every port tried."""
    need_identity = bool(cfg.imei or cfg.imsi)
    tried: list[str] = []
    for path in candidates(cfg, last_device):
        if not os.path.exists(path):
            tried.append(f"{path}: does not exist")
            continue
        if not registry.acquire(path, owner):
            tried.append(f"{path}: used by another modem of this daemon")
            continue
        channel: AtChannel | None = None
        try:
            channel = open_channel(path, cfg.baudrate, name=f"{cfg.name}@{path}", on_urc=on_urc,
                                   resync_timeout=probe_timeout)
            channel.resync()
            ident = None
            if need_identity:
                ident = Modem(channel).identify()
                if not matches(cfg, ident):
                    tried.append(f"{path}: IMEI {ident.imei} / IMSI {ident.imsi} is another modem")
                    raise _NotThisOne()
            log.info("modem %s found on %s", cfg.name, path)
            return Found(channel, path, ident)
        except _NotThisOne:
            pass
        except (DiscoveryError, ModemError, serial.SerialException, OSError) as exc:
            tried.append(f"{path}: {exc}")
        if channel is not None:
            channel.close()
        registry.release_all(owner)
    what = f"IMEI {cfg.imei}" if cfg.imei else f"IMSI {cfg.imsi}" if cfg.imsi else cfg.device
    raise DiscoveryError(
        f"modem {cfg.name!r} ({what}) not found; tried: " + ("; ".join(tried) if tried else
                                                            f"no port matches {cfg.probe}")
        + ". Check the cable and `ls -l /dev/serial/by-id/`."
    )


class _NotThisOne(Exception):
    """The port answered, but as a different modem."""
