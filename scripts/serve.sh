#!/usr/bin/env bash
# README command 1: set up, then run the daemon with the status page. With no modem configured it
# starts simulated modems, so a fresh machine shows a working system. State lives in ./var/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export SMSGATE_CONFIG="${SMSGATE_CONFIG:-$PWD/var/smsgate.toml}"
[ -f "$SMSGATE_CONFIG" ] || .venv/bin/smsgate --config "$SMSGATE_CONFIG" init --demo
exec .venv/bin/smsgate --config "$SMSGATE_CONFIG" serve "$@"
