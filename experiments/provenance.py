"""Where a measurement comes from: the machine, the date and the commit, for results records."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import date
from pathlib import Path

from model_hooks.cpu_info import CPU_INFO, cpu_model_and_flags

ROOT = Path(__file__).resolve().parents[1]
# the flags that decide how fast matrix products run (AVX2/FMA fp32, AVX-512, VNNI int8, bf16, AMX)
MATRIX_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


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


def cpu_description(cpu_info: Path = CPU_INFO) -> str | None:
    """The CPU's model name and its matrix-relevant flags, e.g. "AMD EPYC (avx2 fma)"; None where unknown.

    Virtual machines of one name can run on different CPUs, and speed records are only comparable on one.
    """
    model, flags = cpu_model_and_flags(cpu_info)
    if model is None:
        return None
    present = [flag for flag in MATRIX_FLAGS if flag in flags]
    return f"{model} ({' '.join(present)})" if present else model


def run_fields(run_id: str) -> dict:
    """Fields every record of a run shares (the load average as the run starts: the cores are shared)."""
    return {
        "run_id": run_id,
        "cpu_count": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "machine": platform.platform(),
        "cpu": cpu_description(),
        "date": date.today().isoformat(),
        "git_commit": git_commit(),
        "git_dirty": git_dirty(),
    }
