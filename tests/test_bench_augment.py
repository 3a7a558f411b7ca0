"""The augmentation benchmark plots the latest run that has the peer beside ours, and nothing without one."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_augment  # noqa: E402


def _record(system: str, run_id: str | None, seconds: float) -> dict:
    record = {"system": system, "seconds": seconds, "similarity_gate_seconds": seconds * 0.8, "parents": 500, "date": "2026-12-02"}
    return record | ({"run_id": run_id} if run_id else {})


def test_plot_needs_a_run_with_the_peer(tmp_path):
    png = tmp_path / "plot.png"
    unpaired = [_record("ours", None, 100.0), _record("ours", "solo", 90.0)]
    bench_augment.write_plot(unpaired, png)
    assert not png.exists()
    paired = [_record("ours", "pair", 80.0) | {"docs_per_s_ratio_vs_nlpaug_loop": 1.2}, _record("nlpaug_loop", "pair", 96.0)]
    bench_augment.write_plot(unpaired + paired, png)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
