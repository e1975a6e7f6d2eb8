"""The one configuration file (TOML) and its defaults.

Found by `--config`, else `$SMSGATE_CONFIG`, else `/etc/smsgate/smsgate.toml`. Every key is documented in
`docs/configuration.md`; an unknown key or a wrong type is an error that names the key, because a typo
in `quiet_hours` that silently fell back to a default would text patients at night.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from smsgate.appointments.plans import (
    MISSING,
    AppointmentsConfig,
    ReminderConfigError,
    RemindersConfig,
    parse_appointments,
)

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "AppointmentsConfig",
    "ClinicConfig",
    "ComplianceConfig",
    "Config",
    "ConfigError",
    "HoursConfig",
    "ModemConfig",
    "RemindersConfig",
    "SendingConfig",
    "SimulatorConfig",
    "WebConfig",
    "WebhookConfig",
    "find_config_path",
    "load_config",
    "render_default_config",
]

DEFAULT_CONFIG_PATH = Path("/etc/smsgate/smsgate.toml")
ENV_VAR = "SMSGATE_CONFIG"


class ConfigError(Exception):
    """The configuration file is missing, unreadable or wrong; the message names the file and key."""


@dataclass
class ClinicConfig:
    name: str = "Our clinic"
    contact: str = ""
    region: str = "US"
    timezone: str = ""  # IANA name; empty: the machine's zone (refused when that is UTC and region says otherwise)


@dataclass
class ModemConfig:
    name: str = ""
    device: str = ""
    imei: str = ""
    imsi: str = ""
    number: str = ""
    pin: str = ""
    baudrate: int = 115200
    parts_per_minute: int = 30
    daily_cap: int = 1000
    monthly_recipient_cap: int = 0
    probe: list[str] = field(default_factory=lambda: ["/dev/ttyUSB*", "/dev/ttyACM*"])


@dataclass
class SimulatorConfig:
    modems: int = 2
    personality: str = "huawei"
    latency: str = "0.5-1.5"
    handsets: list[str] = field(default_factory=lambda: ["+15555550101", "+15555550102"])
    control_socket: str = ""


@dataclass
class SendingConfig:
    max_parts: int = 6
    max_attempts: int = 5
    retry_base_seconds: float = 30.0
    retry_max_seconds: float = 3600.0
    lease_seconds: float = 120.0
    status_reports: bool = True
    resend_unknown: bool = False
    validity_hours: int = 72


@dataclass
class HoursConfig:
    business_hours: list[str] = field(default_factory=lambda: ["Mon-Fri 08:00-18:00"])
    holidays: list[str] = field(default_factory=list)
    after_hours_reply: str = ""
    after_hours_window_hours: float = 12.0
    quiet_start: str = "08:00"
    quiet_end: str = "21:00"
    per_day: int = 1  # campaign (bulk, marketing) messages per recipient; 0 = no cap
    per_week: int = 3
    transactional_per_day: int = 0  # reminders and API sends per recipient; 0 = no cap
    transactional_per_week: int = 0
    # Kinds of message that wait for the recipient's daytime (replies and STOP/HELP answers never wait).
    quiet_kinds: list[str] = field(default_factory=lambda: ["bulk", "marketing"])


@dataclass
class ComplianceConfig:
    opt_out_words: list[str] = field(default_factory=list)
    opt_in_words: list[str] = field(default_factory=list)
    help_words: list[str] = field(default_factory=list)
    stop_reply: str = (
        "{clinic}: you will receive no more messages from this number. Reply START to resubscribe."
    )
    start_reply: str = "{clinic}: you are subscribed again. Reply HELP for help, STOP to opt out."
    help_reply: str = (
        "{clinic}: appointment reminders and replies, a few msgs per month. Call {contact} for help. "
        "Reply STOP to opt out."
    )
    first_message_footer: str = "Reply STOP to opt out."
    auto_reply_limit: int = 5
    auto_reply_window_minutes: float = 10.0
    answer_window_hours: float = 72.0
    # A STOP/START/HELP confirmation still `unknown` this long after a stop, a crash or an ambiguous modem
    # answer, with no delivery report to show it went out, is sent once more (a duplicate is harmless).
    confirmation_resend_minutes: float = 10.0
    # Legacy: names a patient may send after STOP/START, each its own scope (lists with a keyword do this now).
    list_scopes: list[str] = field(default_factory=list)
    # Words a patient may send after STOP/START for the transactional purpose ("STOP REMINDERS").
    transactional_words: list[str] = field(default_factory=list)
    # Built-in keyword packs by language ("es", "fr", "de", "pt"), on top of the English words.
    languages: list[str] = field(default_factory=list)
    # Extra wording flagged for staff as a likely opt-out (plain phrases, matched as whole words).
    likely_opt_out_phrases: list[str] = field(default_factory=list)


@dataclass
class WebConfig:
    bind: str = "127.0.0.1"
    port: int = 8080
    secret_key_file: str = ""
    idle_logout_minutes: float = 30.0
    secure_cookies: bool = False
    login_attempts_per_minute: int = 10
    api_sends_per_minute: int = 120
    status_refresh_seconds: int = 15
    status_cache_seconds: float = 1.0
    keyword_webhook_secret: str = ""


@dataclass
class WebhookConfig:
    url: str = ""
    secret: str = ""
    events: list[str] = field(default_factory=lambda: ["inbound", "state", "outcome"])
    timeout_seconds: float = 10.0
    max_attempts: int = 12
    retry_base_seconds: float = 10.0
    retry_max_seconds: float = 3600.0


@dataclass
class WaitlistConfig:
    offer_to: int = 3
    offer_hours: float = 2.0


@dataclass
class Config:
    path: Path | None = None
    database: str = "smsgate.db"
    log_level: str = "INFO"
    clinic: ClinicConfig = field(default_factory=ClinicConfig)
    modems: list[ModemConfig] = field(default_factory=list)
    simulator: SimulatorConfig = field(default_factory=SimulatorConfig)
    sending: SendingConfig = field(default_factory=SendingConfig)
    hours: HoursConfig = field(default_factory=HoursConfig)
    compliance: ComplianceConfig = field(default_factory=ComplianceConfig)
    web: WebConfig = field(default_factory=WebConfig)
    webhooks: list[WebhookConfig] = field(default_factory=list)
    waitlist: WaitlistConfig = field(default_factory=WaitlistConfig)
    # Read by smsgate.appointments.plans (see _build_config), not by the generic reader below.
    appointments: AppointmentsConfig = field(default_factory=AppointmentsConfig)
    reminders: RemindersConfig = field(default_factory=RemindersConfig.default)

    @property
    def database_path(self) -> Path:
        """The database path, relative paths taken from the config file's folder."""
        p = Path(self.database).expanduser()
        if not p.is_absolute() and self.path is not None:
            p = self.path.parent / p
        return p

    @property
    def uses_simulator(self) -> bool:
        return not self.modems


def find_config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return DEFAULT_CONFIG_PATH


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the configuration file."""
    p = find_config_path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"No configuration file at {p}. Create one with `smsgate init` "
            f"(or point --config / ${ENV_VAR} at yours)."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p} is not valid TOML: {exc}") from None
    cfg = _build_config(raw, p)
    cfg.path = p.resolve()
    _validate(cfg, p)
    return cfg


def config_from_dict(raw: dict[str, Any], path: Path | None = None) -> Config:
    """Build a Config from a dict shaped like the TOML file (for tests and `init`)."""
    cfg = _build_config(raw, path or Path("<dict>"))
    cfg.path = path
    _validate(cfg, path or Path("<dict>"))
    return cfg


_OWN_READERS = ("appointments", "reminders")


def _build_config(raw: dict[str, Any], p: Path) -> Config:
    """The generic reader for every section but `[appointments]` and `[[reminders]]`, whose plans have
    their own reader and messages (`smsgate.appointments.plans`)."""
    cfg = _build(Config, {k: v for k, v in raw.items() if k not in _OWN_READERS}, "")
    try:
        cfg.appointments, cfg.reminders = parse_appointments(raw.get("appointments", MISSING),
                                                             raw.get("reminders", MISSING))
    except ReminderConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
    return cfg


def _validate(cfg: Config, p: Path) -> None:
    if cfg.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"{p}: log_level = {cfg.log_level!r}; use DEBUG, INFO, WARNING or ERROR.")
    names = [m.name for m in cfg.modems]
    if len(set(names)) != len(names):
        raise ConfigError(f"{p}: two [[modems]] share a name; each modem needs its own name.")
    for i, m in enumerate(cfg.modems):
        if not m.name:
            raise ConfigError(f"{p}: modems[{i}] has no name; add name = \"front-desk\" or similar.")
        if not (m.device or m.imei or m.imsi):
            raise ConfigError(
                f"{p}: modem {m.name!r} needs device = \"/dev/serial/by-id/...\", imei = \"...\" or imsi = \"...\"."
            )
    for key in ("quiet_start", "quiet_end"):
        value = getattr(cfg.hours, key)
        if not _is_hhmm(value):
            raise ConfigError(f"{p}: hours.{key} = {value!r} is not a time; write it as \"08:00\".")
    for key in ("per_day", "per_week", "transactional_per_day", "transactional_per_week"):
        _in_range(p, f"hours.{key}", getattr(cfg.hours, key), 0, 1000)
    _in_range(p, "sending.max_parts", cfg.sending.max_parts, 1, 255)
    _in_range(p, "sending.max_attempts", cfg.sending.max_attempts, 1, 1000)
    _in_range(p, "sending.lease_seconds", cfg.sending.lease_seconds, 5, 86400)
    _in_range(p, "web.port", cfg.web.port, 1, 65535)
    _in_range(p, "waitlist.offer_to", cfg.waitlist.offer_to, 1, 100)
    _in_range(p, "waitlist.offer_hours", cfg.waitlist.offer_hours, 0.05, 168)
    _in_range(p, "compliance.confirmation_resend_minutes", cfg.compliance.confirmation_resend_minutes, 0.01, 1440)
    region = cfg.clinic.region
    if region:
        import phonenumbers

        if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigError(
                f"{p}: clinic.region = {region!r} is not a country code; use a two-letter ISO code such as \"US\"."
            )
    _validate_clinic_zone(cfg, p)


def _validate_clinic_zone(cfg: Config, p: Path) -> None:
    """Settle `clinic.timezone` (the machine's zone when unset) or refuse a zone that would shift times.

    On a UTC server an unset zone would read `--at 09:00` as 04:00 in New York; when the clinic's region
    has no UTC zone at all, that is certainly not what the admin meant, so smsgate does not start.
    """
    from smsgate.clinic_time import ClinicTimeError, is_utc_zone, load_zone, machine_zone_name, region_zones

    given = cfg.clinic.timezone.strip()
    name = given or machine_zone_name()
    try:
        load_zone(name)
    except ClinicTimeError as exc:
        raise ConfigError(f"{p}: clinic.timezone = {given!r}: {exc}.") from None  # the machine's zone always loads
    region = cfg.clinic.region.strip().upper()
    if region and is_utc_zone(name):
        zones = region_zones(region)
        if zones and not any(is_utc_zone(z) for z in zones):
            where = (f"clinic.timezone = {given!r}" if given
                     else f"clinic.timezone is not set and this machine runs on {name}")
            raise ConfigError(
                f"{p}: {where}, but numbers in clinic.region = {region!r} are in {', '.join(zones)}: the times "
                f"staff type (`smsgate send --at 09:00`) and read would not be the clinic's. Set the clinic's "
                f"zone in [clinic], e.g. timezone = \"{zones[0]}\"."
            )
    cfg.clinic.timezone = name


def _in_range(p: Path, key: str, value: float, low: float, high: float) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{p}: {key} = {value!r} is out of range; use a value from {low} to {high}.")


def _is_hhmm(value: str) -> bool:
    parts = value.split(":")
    if len(parts) != 2 or not all(x.isdigit() and 1 <= len(x) <= 2 for x in parts):
        return False
    hour, minute = int(parts[0]), int(parts[1])
    return (hour < 24 and minute < 60) or (hour, minute) == (24, 0)


_Section = TypeVar("_Section", bound="DataclassInstance")


def _build(cls: type[_Section], raw: dict[str, Any], where: str) -> _Section:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where or 'the file'} must be a table")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls) if f.name != "path"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ConfigError(
            f"unknown key {where + '.' if where else ''}{unknown[0]}; known keys here: {', '.join(sorted(known))}"
        )
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        kwargs[name] = _coerce(hints[name], value, f"{where}.{name}" if where else name)
    return cls(**kwargs)


def _coerce(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value, where)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where} must be a list")
        return [_coerce(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        return value
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, float, bool) and not (
        isinstance(value, hint) and not (hint is int and isinstance(value, bool))
    ):
        raise ConfigError(f"{where} must be a {hint.__name__}, not {value!r}")
    return value


def render_default_config(database: str = "smsgate.db", *, demo: bool = False) -> str:
    """The commented file `smsgate init` writes."""
    modems = (
        "# No [[modems]] configured: `smsgate serve` starts simulated modems (see [simulator]).\n"
        "# For a real modem add, for example:\n"
        "# [[modems]]\n"
        "# name = \"front-desk\"\n"
        "# device = \"/dev/serial/by-id/usb-HUAWEI_Technology_HUAWEI_Mobile-if00-port0\"\n"
        "# pin = \"\"\n"
    )
    return f"""# smsgate configuration. Every key is described in docs/configuration.md.
database = "{database}"
log_level = "INFO"

[clinic]
name = "{'Demo Clinic' if demo else 'Our clinic'}"
contact = "+15555550100"
region = "US"
timezone = "America/New_York"

{modems}
[simulator]
modems = 2
personality = "huawei"
latency = "0.5-1.5"
handsets = ["+15555550101", "+15555550102"]

[sending]
max_parts = 6
max_attempts = 5

[hours]
business_hours = ["Mon-Fri 08:00-18:00"]
quiet_start = "08:00"
quiet_end = "21:00"

[web]
bind = "127.0.0.1"
port = 8080
"""
