#!/usr/bin/env bash
# Runs every benchmark one after another on this machine and keeps the output in benchmarks/results.txt,
# the source of the table in docs/benchmarks.md. Run it on a quiet machine: each figure is only worth
# comparing with the others printed in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
out=benchmarks/results.txt
{
    echo "# smsgate benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
    for bench in bench_codec bench_at_engine bench_simulator bench_store bench_daemon bench_web bench_appointments bench_contacts_import; do
        echo
        echo "## $bench"
        .venv/bin/python "benchmarks/$bench.py"
    done
} 2>&1 | tee "$out"
