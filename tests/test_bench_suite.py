"""The benchmark suite's summary: uplift against raw and the best reference, paired by seed; decision counts."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import suite  # noqa: E402


def records():
    found = []
    for seed, (raw, curated, tuned, tfidf) in enumerate([(0.50, 0.55, 0.52, 0.40), (0.60, 0.64, 0.61, 0.45), (0.55, 0.58, 0.57, 0.50)]):
        for arm, f1 in (("raw", raw), ("curated", curated), ("ref:tuned_lr", tuned), ("ref:tfidf_lr", tfidf)):
            record = {"dataset": "d", "eval_split": "test", "trainer": "head", "embedding_mode": "truncate", "k": 10, "seed": seed,
                      "arm": arm, "macro_f1": f1}
            if arm == "curated":
                record["decisions"] = [{"name": "adapt", "on": True}, {"name": "augment", "on": seed == 0},
                                       {"name": "op:keyboard", "on": True}, {"name": "curation", "on": True}]
            found.append(record)
    return found


def test_the_summary_pairs_curated_with_raw_and_with_the_best_reference():
    table = suite.summary_table(records())
    row = next(line for line in table.splitlines() if line.startswith("| d | minilm | 10 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    # raw 0.55, refs tfidf 0.45 and tuned 0.567, curated 0.59; uplift vs raw +4.0, vs tuned_lr (the best) +2.3
    assert cells[4] == "0.550" and cells[-4] == "0.590"
    assert cells[-3].startswith("+4.0 [") and cells[-2] == "tuned_lr" and cells[-1].startswith("+2.3 [")
    assert "minilm k=10: +4.0 (1 data sets)" in table


def test_each_encoder_gets_its_own_lines_and_its_cost():
    mpnet = [{**record, "encoder": "mpnet", "macro_f1": record["macro_f1"] + (0.02 if record["arm"] == "raw" else 0.0)}
             for record in records()]
    table = suite.summary_table(records() + mpnet)
    row = next(line for line in table.splitlines() if line.startswith("| d | mpnet | 10 |"))
    assert [cell.strip() for cell in row.strip("|").split("|")][4] == "0.570"  # raw, mpnet records only
    assert "minilm k=10: +4.0 (1 data sets)" in table and "mpnet k=10: +2.0 (1 data sets)" in table
    walls = [{"dataset": "d", "eval_split": "test", "ks": [10], "seeds": 3, "seconds": 600.0},
             {"dataset": "d", "encoder": "mpnet", "eval_split": "test", "ks": [10], "seeds": 3, "seconds": 1200.0,
              "embedding": {"mpnet": {"texts": 5000, "seconds": 540.0}}, "embedding_minutes": 9.0}]
    cost = suite.cost_table(walls)
    assert "| d | minilm | test | 10 | 3 | 10.0 | n/a | n/a |" in cost
    assert "| d | mpnet | test | 10 | 3 | 20.0 | 9.0 | 5000 |" in cost


def test_the_decision_table_counts_seeds_with_each_option_on():
    table = suite.decisions_table(records())
    assert "| d | minilm | 10 | 3 | 3/3 | 3/3 | 1/3 | 0/3 |" in table
