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
    finetune_oracle.write_markdown([{**oracle, "seed": 2, "macro_f1": 0.61}, {**oracle, "seed": 0, "macro_f1": 0.62}], table)
    lines = table.read_text().splitlines()
    seed_0, seed_2 = (next(line for line in lines if line.startswith(f"| 2026-12-02 | abc | 100 | {seed} |")) for seed in (0, 2))
    assert "| 0.600 | 0.590 | 0.620 | +2.00 |" in seed_0
    assert "| - | - | 0.610 | - |" in seed_2
    assert lines.index(seed_0) < lines.index(seed_2)
    assert lines[-1].startswith("| 100 | 2 | 0.615 | 0.007 | [")


class RecordingTrainer:
    """Stands in for the 30-minute fine-tune: remembers what it was given, predicts the first label."""

    def fit_predict(self, train_texts, train_labels, test_texts, labels, seed, families=None):
        self.train = dict(zip(train_texts, train_labels))
        self.test = list(test_texts)
        return [labels[0]] * len(test_texts)


def test_oracle_trains_on_every_pool_row_with_its_true_label_and_never_on_eval(monkeypatch):
    import pyarrow as pa

    from experiments.config import ExperimentConfig
    from model_hooks import trainers

    labels = ["a", "b"]
    rows = pa.table({
        "id": [f"r{i}" for i in range(10)],
        "text": [f"text {i}" for i in range(10)],
        "label": ["a", "a", "a", "b", "b", "b", "a", "b", "a", "b"],
        "split": ["labeled"] * 6 + ["eval"] * 4,
    })
    trainer = RecordingTrainer()
    monkeypatch.setattr(trainers, "make_trainer", lambda *args: trainer)
    record = finetune_oracle.oracle_record(rows, labels, 1, 0, ExperimentConfig(trainer="finetune"))
    assert trainer.train == {f"text {i}": label for i, label in enumerate(["a", "a", "a", "b", "b", "b"])}
    assert trainer.test == [f"text {i}" for i in range(6, 10)]
    assert (record["n_train"], record["labeled"], record["arm"]) == (6, 2, "oracle")
    assert record["accuracy"] == 0.5  # two of the four eval rows are "a"
