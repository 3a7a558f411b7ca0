"""Where a measurement comes from: the machine, the date and the commit, for results records."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() or None


def git_dirty() -> bool | None:
    """Whether tracked files differ from the commit (the run then measured uncommitted code)."""
    try:
        out = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return None
    return bool(out.stdout.strip()) if out.returncode == 0 else None


def run_fields(run_id: str) -> dict:
    """Fields every record of a run shares (the load average as the run starts: the cores are shared)."""
    return {
        "run_id": run_id,
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "machine": platform.platform(),
        "date": date.today().isoformat(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
    }
