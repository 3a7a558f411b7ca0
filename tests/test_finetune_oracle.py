"""The oracle table sets each oracle score beside the same cell's raw and curated finetune arms."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import finetune_oracle  # noqa: E402


def test_oracle_row_pairs_with_the_same_cell_of_the_experiment(tmp_path, monkeypatch):
    experiment = tmp_path / "experiment.jsonl"
    cells = [("finetune", "raw", 100, 0, 0.6), ("finetune", "curated", 100, 0, 0.59), ("head", "raw", 100, 0, 0.1),
             ("finetune", "raw", 100, 1, 0.9)]
    experiment.write_text("".join(json.dumps({"trainer": t, "arm": a, "k": k, "seed": s, "macro_f1": f}) + "\n" for t, a, k, s, f in cells))
    monkeypatch.setattr(finetune_oracle, "EXPERIMENT", experiment)
    oracle = {"date": "2026-12-02", "git_commit": "abc", "k": 100, "n_train": 1479, "train_seconds": 10.0}
    table = tmp_path / "oracle.md"
    finetune_oracle.write_markdown([{**oracle, "seed": 0, "macro_f1": 0.625}, {**oracle, "seed": 2, "macro_f1": 0.61}], table)
    seed_0, seed_2 = table.read_text().splitlines()[-2:]
    assert "| 0.600 | 0.590 | 0.625 | +2.50 |" in seed_0
    assert "| - | - | 0.610 | - |" in seed_2
