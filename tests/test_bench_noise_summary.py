"""The noise-robustness benchmark's summary (benchmarks/noise_robustness.py): drops paired by seed, the targets, the typo reader."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import noise_robustness  # noqa: E402


def records(reader: bool):
    found = []
    # seed: (raw clean, raw noisy, curated clean, curated noisy, without:augment clean)
    for seed, (raw, raw_noisy, curated, curated_noisy, without) in enumerate([(0.80, 0.72, 0.82, 0.80, 0.81), (0.78, 0.69, 0.80, 0.77, 0.79),
                                                                             (0.82, 0.74, 0.83, 0.81, 0.82)]):
        for arm, clean, noisy in (("raw", raw, raw_noisy), ("curated", curated, curated_noisy), ("without:augment", without, without)):
            extra = {"typo_reader": True} if reader and arm != "raw" else {}
            base = {"dataset": "banking77", "goal": "robustness", "eval_split": "test", "k": 10, "seed": seed, "arm": arm, **extra}
            found.append({**base, "noise": "none", "macro_f1": clean})
            found.append({**base, "noise": "char@0.10", "macro_f1": noisy, "drop_from_clean": round((clean - noisy) * 100, 4)})
    return found


def test_the_summary_pairs_the_drops_by_seed_and_says_whether_the_reader_was_on():
    row = noise_robustness.target_rows(records(reader=True))[0]
    assert row["typo_reader"] == "on" and row["seeds"] == 3
    assert round(row["raw_drop"]["mean"], 2) == 8.33 and round(row["curated_drop"]["mean"], 2) == 2.33
    assert row["halves_the_drop"] == "yes" and row["clean_kept"] == "yes"
    assert noise_robustness.target_rows(records(reader=False))[0]["typo_reader"] == "off"
    line = next(line for line in noise_robustness.summary(records(reader=True)).splitlines() if line.startswith("| banking77 | robustness | on |"))
    assert "| yes |" in line
