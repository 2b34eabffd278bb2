"""bench/RESULTS.md is shared by the benchmarks: each one rewrites only its own section."""

from __future__ import annotations

import platform as host
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def write_section(key: str, text: str) -> None:
    """Replace the section between ``<!-- key:start -->`` and ``<!-- key:end -->`` (appended
    when absent); the other sections are kept as they are."""
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    block = f"{start}\n{text.strip()}\n{end}"
    current = RESULTS.read_text() if RESULTS.exists() else "# Benchmarks\n"
    if start in current and end in current:
        before, rest = current.split(start, 1)
        after = rest.split(end, 1)[1]
        current = before + block + after
    else:
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(current)


def machine() -> str:
    """The machine in one line: CPU model, cores, Python and the date."""
    import os

    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        host.processor(),
    )
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {host.python_version()}, "
        f"{time.strftime('%Y-%m-%d')}"
    )
