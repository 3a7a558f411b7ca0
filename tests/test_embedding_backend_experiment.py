"""The backend comparison pairs the two experiments' records cell by cell and seed by seed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import embedding_backend_experiment as comparison  # noqa: E402


def _record(arm, k, seed, f1, trainer="head"):
    return {"trainer": trainer, "arm": arm, "k": k, "seed": seed, "macro_f1": f1}


def test_differences_are_paired_by_seed_and_unmatched_seeds_left_out():
    baseline = [_record("raw", 10, 0, 0.50), _record("raw", 10, 1, 0.60), _record("curated", 10, 0, 0.55)]
    candidate = [_record("raw", 10, 1, 0.61), _record("raw", 10, 0, 0.49), _record("curated", 10, 0, 0.56),
                 _record("curated", 10, 7, 0.99)]  # seed 7 has no baseline: not compared
    rows = {row["arm"]: row for row in comparison.paired_differences(baseline, candidate)}
    assert rows["raw"]["seeds"] == 2 and rows["raw"]["diff_points"] == pytest.approx(0.0)
    assert rows["raw"]["max_abs_seed_diff_points"] == pytest.approx(1.0)
    assert rows["curated"]["seeds"] == 1 and rows["curated"]["diff_points"] == pytest.approx(1.0)
    assert rows["curated"]["candidate_macro_f1"] == pytest.approx(0.56)


def test_table_names_the_largest_change_against_the_target(tmp_path):
    rows = comparison.paired_differences([_record("raw", 10, 0, 0.50)], [_record("raw", 10, 0, 0.506)])
    path = tmp_path / "comparison.md"
    comparison.write_markdown(rows, "onnx", "torch_bf16", path)
    text = path.read_text()
    assert "Largest change of a mean: 0.60 points, outside the target" in text
    assert "| head | 10 | raw | 1 | 0.5000 | 0.5060 | +0.60 | 0.60 |" in text


def test_missing_results_name_the_make_target(tmp_path):
    with pytest.raises(SystemExit, match="make bench-embed-experiment"):
        comparison.read_records("onnx", folder=tmp_path)
