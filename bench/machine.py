"""One line naming the machine and library versions, for every benchmark section in BENCHMARKS.md."""

from __future__ import annotations

import os
import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version


def machine_line() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    libs = []
    for name in ("torch", "transformers", "trl", "peft"):
        try:
            libs.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            pass
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"Machine: {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}; {', '.join(libs)}; {when}."
