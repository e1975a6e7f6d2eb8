"""One line describing the machine a benchmark ran on, printed beside every figure."""

from __future__ import annotations

import os
import platform
import sqlite3
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def describe() -> str:
    return (f"{platform.platform()} | {cpu_model()} | {os.cpu_count()} cores | Python {platform.python_version()}"
            f" | SQLite {sqlite3.sqlite_version}")
