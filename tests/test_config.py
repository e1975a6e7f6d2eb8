"""The TOML configuration: found by flag, environment or default; every mistake names the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from smsgate.config import (
    DEFAULT_CONFIG_PATH,
    ConfigError,
    config_from_dict,
    find_config_path,
    load_config,
    render_default_config,
)

NY = {"timezone": "America/New_York"}


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "smsgate.toml"
    p.write_text(text, encoding="utf-8")
    return p


def test_default_file_loads_and_database_is_beside_it(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, render_default_config("data/sms.db")))
    assert cfg.database_path == (tmp_path / "data" / "sms.db").resolve()
    assert cfg.uses_simulator and cfg.sending.max_parts == 6
    assert cfg.hours.quiet_start == "08:00"


def test_config_is_found_by_flag_then_environment_then_default(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SMSGATE_CONFIG", raising=False)
    assert find_config_path() == DEFAULT_CONFIG_PATH
    monkeypatch.setenv("SMSGATE_CONFIG", str(tmp_path / "env.toml"))
    assert find_config_path() == tmp_path / "env.toml"
    assert find_config_path(tmp_path / "flag.toml") == tmp_path / "flag.toml"


def test_missing_file_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="smsgate init"):
        load_config(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("database = ", "not valid TOML"),
        ("databse = 'x.db'", "unknown key databse"),
        ("[sending]\nmax_parts = 'six'", "sending.max_parts must be a int"),
        ("[sending]\nstatus_reports = 1", "sending.status_reports must be a bool"),
        ("[sending]\nmax_parts = 0", "sending.max_parts = 0 is out of range"),
        ("[hours]\nquiet_start = '8pm'", "hours.quiet_start"),
        ("[hours]\nquiet_end = '24:30'", "hours.quiet_end"),
        ("[web]\nport = 70000", "web.port"),
        ("[clinic]\nregion = 'USA'", "clinic.region"),
        ("[[modems]]\nname = 'a'", "needs device"),
        ("[[modems]]\ndevice = '/dev/ttyUSB0'", "has no name"),
        ("[[modems]]\nname='a'\ndevice='x'\n[[modems]]\nname='a'\ndevice='y'", "share a name"),
        ("[clinic]\nnmae = 'x'", "unknown key clinic.nmae"),
    ],
)
def test_mistakes_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_integer_is_accepted_where_a_float_is_expected() -> None:
    cfg = config_from_dict({"clinic": NY, "sending": {"lease_seconds": 60}})
    assert cfg.sending.lease_seconds == 60.0 and isinstance(cfg.sending.lease_seconds, float)


def test_midnight_as_24_00_is_a_valid_quiet_hours_end() -> None:
    assert config_from_dict({"clinic": NY, "hours": {"quiet_end": "24:00"}}).hours.quiet_end == "24:00"


def test_an_unknown_log_level_is_refused_with_the_choices() -> None:
    from smsgate.config import ConfigError, config_from_dict

    with pytest.raises(ConfigError, match="DEBUG, INFO, WARNING or ERROR"):
        config_from_dict({"log_level": "LOUD"})


def test_an_unset_clinic_zone_on_a_utc_server_is_refused_for_a_us_clinic(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    with pytest.raises(ConfigError) as refused:
        load_config(write(tmp_path, "[clinic]\nname = 'Rivera Clinic'\nregion = 'US'\n"))
    message = str(refused.value)
    assert str(tmp_path / "smsgate.toml") in message and "clinic.timezone is not set" in message
    assert "America/New_York" in message and 'timezone = "America/New_York"' in message


def test_utc_written_out_for_a_clinic_whose_numbers_are_not_on_utc_is_refused_too() -> None:
    with pytest.raises(ConfigError, match=r"clinic.timezone = 'UTC', but numbers in clinic.region = 'GB'.*London"):
        config_from_dict({"clinic": {"region": "GB", "timezone": "UTC"}})


def test_an_unset_clinic_zone_is_the_machines_zone_when_that_is_not_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "America/Chicago")
    assert config_from_dict({}).clinic.timezone == "America/Chicago"


def test_a_clinic_in_a_region_on_utc_all_year_may_run_on_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    assert config_from_dict({"clinic": {"region": "IS"}}).clinic.timezone == "UTC"
    assert config_from_dict({"clinic": {"region": ""}}).clinic.timezone == "UTC"  # no region: nothing to go by


def test_a_clinic_zone_that_does_not_exist_is_refused_with_an_example() -> None:
    with pytest.raises(ConfigError, match=r"clinic.timezone = 'America/NewYork'.*America/New_York"):
        config_from_dict({"clinic": {"timezone": "America/NewYork"}})


def test_the_configuration_init_writes_sets_the_clinic_zone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    assert load_config(write(tmp_path, render_default_config())).clinic.timezone == "America/New_York"
