"""Every phone number the docs, the README and `--help` give as an example behaves like a patient's.

An admin copies `smsgate keywords test "HELP" --from <number>` from the guide; if that number is one smsgate
takes for a machine (an invalid number such as +1 555 123 4567), the answer "no automatic replies" teaches
them the wrong thing. Patients in examples are the US fictional range 555-0100..0199 with a real area code
(+1 202 555 0123); the simulator's own modems and SMSC are +1 555 000 xxxx, which smsgate treats as a
machine, as it should (docs/admin-guide-keywords.md says both).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from smsgate.cli import cli
from smsgate.config import render_default_config
from smsgate.numbers import is_robot_sender

REPO = Path(__file__).resolve().parent.parent
# docs/reference holds recorded transcripts and profiles (real-world strings), not examples to copy.
DOC_FILES = sorted([*(REPO / "docs").glob("*.md"), REPO / "README.md"])
NUMBER = re.compile(r"\+\d[\d ()-]{6,}\d")
SIMULATOR_OWN = re.compile(r"\+1555000\d{4}")  # simulated modems (+1555000100n) and the SMSC (+15550000000)


def _e164(text: str) -> str:
    return "+" + re.sub(r"\D", "", text)


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out.extend(_commands(command, (*prefix, name)))
        else:
            out.append((*prefix, name))
    return out


@cache
def _help_texts() -> dict[str, str]:
    runner = CliRunner()
    texts = {}
    for path in _commands(cli):
        result = runner.invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, result.output
        texts["smsgate " + " ".join(path) + " --help"] = result.output
    return texts


@cache
def _examples() -> dict[str, set[str]]:
    """Each example number, with where it appears."""
    sources = {str(p.relative_to(REPO)): p.read_text(encoding="utf-8") for p in DOC_FILES}
    sources.update(_help_texts())
    sources["smsgate init's configuration"] = render_default_config()
    found: dict[str, set[str]] = {}
    for where, text in sources.items():
        for match in NUMBER.finditer(text):
            found.setdefault(_e164(match.group(0)), set()).add(where)
    return found


PEOPLE = sorted(n for n in _examples() if not SIMULATOR_OWN.fullmatch(n))


def test_the_docs_and_help_give_example_numbers_at_all() -> None:
    # Guards the scan: a changed pattern must not make the next test pass by finding nothing.
    assert "+12025550123" in PEOPLE and len(PEOPLE) >= 3
    assert any("--help" in where for n in PEOPLE for where in _examples()[n])


@pytest.mark.parametrize("number", PEOPLE)
def test_every_example_number_in_the_docs_and_help_behaves_like_a_patients(cli_config: Path, number: str) -> None:
    where = ", ".join(sorted(_examples()[number]))
    assert not is_robot_sender(number), f"{number} ({where}) is taken for a machine sender"
    result = CliRunner().invoke(cli, ["--config", str(cli_config), "keywords", "test", "HELP", "--from", number])
    assert result.exit_code == 0, result.output
    assert "no automatic replies" not in result.output, f"{number} ({where}): {result.output}"
    assert f"queue help (compliance) to {number}" in result.output, result.output


def test_the_simulators_own_numbers_are_machines_to_smsgate() -> None:
    # The other half of the rule the guide states: two gateways must never auto-reply to each other.
    assert all(is_robot_sender(n) for n in ("+15550001001", "+15550001002", "+15550000000"))
