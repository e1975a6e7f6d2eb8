#!/usr/bin/env bash
# README command 2: set up, then ruff, mypy and the whole test suite with one process per core (pytest-xdist).
#   bash scripts/test.sh            everything
#   bash scripts/test.sh --quick    everything but the real-time daemon, browser and crash tests (marks
#                                   daemon, browser, slow; the table is in tests/conftest.py): about 40 s here
# Other arguments go to pytest after ours, so they win: `-n 0` runs in one process, `-m daemon` one lane.
set -euo pipefail
cd "$(dirname "$0")/.."
lane=()
args=()
for arg in "$@"; do
    if [ "$arg" = "--quick" ]; then
        lane=(-m "not daemon and not browser and not slow")
    else
        args+=("$arg")
    fi
done
bash scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/mypy
exec .venv/bin/python -m pytest -n auto ${lane[@]+"${lane[@]}"} ${args[@]+"${args[@]}"}
