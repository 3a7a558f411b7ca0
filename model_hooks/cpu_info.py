"""What the CPU is: its model name and feature flags, read from /proc/cpuinfo (Linux)."""

from __future__ import annotations

from pathlib import Path

CPU_INFO = Path("/proc/cpuinfo")


def cpu_model_and_flags(cpu_info: Path = CPU_INFO) -> tuple[str | None, frozenset[str]]:
    """The first processor's model name and flags; (None, no flags) where the file cannot be read."""
    try:
        lines = cpu_info.read_text().splitlines()
    except OSError:
        return None, frozenset()
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), None)
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return model, frozenset(flags)
