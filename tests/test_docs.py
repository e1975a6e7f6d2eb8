"""The docs keep up with the code: every configuration key and every CLI command is documented."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import click
import pytest

from smsgate import config as cfg
from smsgate.cli import cli

DOCS = Path(__file__).resolve().parent.parent / "docs"
SECTIONS = {
    "": cfg.Config, "clinic": cfg.ClinicConfig, "modems": cfg.ModemConfig, "simulator": cfg.SimulatorConfig,
    "sending": cfg.SendingConfig, "hours": cfg.HoursConfig, "compliance": cfg.ComplianceConfig,
    "web": cfg.WebConfig, "webhooks": cfg.WebhookConfig, "waitlist": cfg.WaitlistConfig,
}


def _section_text(name: str) -> str:
    text = (DOCS / "configuration.md").read_text(encoding="utf-8")
    if not name:
        return text.split("## `[clinic]`")[0]
    match = re.search(rf"## `\[\[?{name}\]?\]`.*?(?=\n## |\Z)", text, re.S)
    assert match, f"docs/configuration.md has no section for [{name}]"
    return match.group(0)


@pytest.mark.parametrize("section", sorted(SECTIONS))
def test_every_configuration_key_is_documented_in_its_section(section: str) -> None:
    text = _section_text(section)
    keys = [f.name for f in dataclasses.fields(SECTIONS[section])
            if f.name != "path" and not dataclasses.is_dataclass(f.type) and f.name not in SECTIONS]
    assert [k for k in keys if f"`{k}`" not in text] == []


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, command in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        out.append((full, command))
        if isinstance(command, click.Group):
            out.extend(_commands(command, full + " "))
    return out


ALL_DOCS = "\n".join(p.read_text(encoding="utf-8") for p in [*DOCS.glob("*.md"), DOCS.parent / "README.md"])


@pytest.mark.parametrize(("name", "command"), _commands(cli), ids=lambda v: v if isinstance(v, str) else "")
def test_every_cli_command_has_help_and_is_documented(name: str, command: click.Command) -> None:
    assert (command.help or "").strip(), f"`smsgate {name}` has no --help text"
    assert f"smsgate {name}" in ALL_DOCS, f"`smsgate {name}` is not mentioned in docs/ or README.md"
