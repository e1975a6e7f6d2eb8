#!/usr/bin/env bash
# Sets up a development/test environment from nothing but Python 3.11 and the package registries:
# the Debian packages the tests use (gammu as a real AT client, chromium for browser tests) and a
# virtualenv in .venv with smsgate installed in editable mode. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v gammu >/dev/null 2>&1 || need_apt+=(gammu)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
# python-gammu (a test-time cross-check of our PDUs) compiles against libgammu.
[ -f /usr/include/gammu/gammu.h ] || need_apt+=(libgammu-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v gcc >/dev/null 2>&1 || need_apt+=(gcc)
if [ "${SMSGATE_SKIP_APT:-0}" != "1" ] && [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = "0" ]; then SUDO=""; else SUDO="sudo"; fi
    echo "setup: installing Debian packages: ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
stamp=.venv/.smsgate-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -e ".[test]"
    touch "$stamp"
fi
