import math

import pyarrow.compute as pc
import pytest

from experiments.metrics import classification_scores, mean_confidence_interval
from experiments.runner import training_families
from experiments.sampling import SamplingError, draw_k_shot
from model_hooks.trainers import HeadTrainer, SetFitTrainer
from row_fixtures import make_rows
from schemas.rows import family_keys, family_weights


def pool_rows():
    rows = []
    for label, count in (("a", 6), ("b", 4), ("c", 5)):
        rows += [(f"{label} text number {i}", label, "labeled") for i in range(count)]
    rows += [(f"eval text {i}", "a", "eval") for i in range(3)]
    rows += [("some unlabeled text", None, "unlabeled")]
    return make_rows(*rows)


def test_sampler_draws_exactly_k_per_class_and_never_from_eval():
    rows = pool_rows()
    drawn = draw_k_shot(rows, k=3, seed=0)
    labeled = drawn.filter(pc.equal(drawn.column("split"), "labeled"))
    assert sorted(labeled.column("label").to_pylist()) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    eval_before = rows.filter(pc.equal(rows.column("split"), "eval"))
    eval_after = drawn.filter(pc.equal(drawn.column("split"), "eval"))
    assert eval_after.equals(eval_before)
    unlabeled = drawn.filter(pc.equal(drawn.column("split"), "unlabeled"))
    assert unlabeled.num_rows == 15 - 9 + 1 and unlabeled.column("label").null_count == unlabeled.num_rows
    assert drawn.num_rows == rows.num_rows


def test_sampler_is_reproducible_and_seed_dependent():
    rows = pool_rows()

    def chosen(seed):
        drawn = draw_k_shot(rows, 2, seed)
        return drawn.filter(pc.equal(drawn.column("split"), "labeled")).column("id").to_pylist()

    assert chosen(0) == chosen(0)
    assert any(chosen(0) != chosen(seed) for seed in range(1, 6))
    # the draw does not depend on the order the rows come in
    reversed_rows = rows.take(list(range(rows.num_rows - 1, -1, -1)))
    drawn = draw_k_shot(reversed_rows, 2, 0)
    assert sorted(drawn.filter(pc.equal(drawn.column("split"), "labeled")).column("id").to_pylist()) == sorted(chosen(0))


def test_k_larger_than_a_class_names_the_class_and_counts():
    with pytest.raises(SamplingError, match=r"k=5 .*'b' has 4"):
        draw_k_shot(pool_rows(), k=5, seed=0)


def test_one_class_is_a_clear_error():
    rows = make_rows(("x one", "a", "labeled"), ("x two", "a", "labeled"), ("e", "a", "eval"))
    with pytest.raises(SamplingError, match="at least 2 classes"):
        draw_k_shot(rows, k=1, seed=0)


def test_confidence_interval_matches_a_worked_example():
    # differences 1..5: mean 3, s = sqrt(2.5) = 1.5811, se = 0.7071, t(0.975, 4) = 2.7764
    result = mean_confidence_interval([1, 2, 3, 4, 5])
    assert result["mean"] == 3 and math.isclose(result["std"], 1.581139, rel_tol=1e-5)
    assert math.isclose(result["ci_low"], 1.036757, rel_tol=1e-5)
    assert math.isclose(result["ci_high"], 4.963243, rel_tol=1e-5)
    assert math.isnan(mean_confidence_interval([0.5])["ci_low"])


def test_macro_f1_counts_every_class():
    scores = classification_scores(["a", "a", "b", "c"], ["a", "b", "b", "b"], ["a", "b", "c"])
    # a: P=1 R=.5 F=.667; b: P=1/3 R=1 F=.5; c: 0
    assert math.isclose(scores["macro_f1"], (2 / 3 + 0.5 + 0) / 3)
    assert scores["accuracy"] == 0.5 and scores["per_class_f1"]["c"] == 0.0


def test_pipeline_memo_reuses_stage_prefixes_and_changes_nothing(monkeypatch):
    import stages.pipeline as pipeline
    from flows.config import RunConfig

    rows = make_rows(*[(f"Patients with condition {i} were treated in clinic {i % 3} for several weeks.", "ab"[i % 2], "labeled") for i in range(8)])
    config = RunConfig.model_validate({"ingest": {"sources": [{"path": "x.csv"}]}, "augmentation": {"enabled": False},
                                       "domain": {"enabled": False}, "validation": {"enabled": False}})
    calls = []
    monkeypatch.setattr(pipeline, "PIPELINE", tuple((name, (lambda f, n: lambda r, c: (calls.append(n), f(r, c))[1])(f, name)) for name, f in pipeline.PIPELINE))
    memo = {}
    full, _ = pipeline.run_pipeline(rows, config, 0, memo=memo)
    without_validate, _ = pipeline.run_pipeline(rows, config, 0, skip=frozenset({"validate"}), memo=memo)
    assert calls == ["clean", "augment", "adapt", "validate"]  # the second call ran nothing new
    assert without_validate.equals(pipeline.run_pipeline(rows, config, 0, skip=frozenset({"validate"}))[0])
    assert full.num_rows > 0


def family_rows():
    import pyarrow as pa

    return pa.table({
        "id": ["p1", "p2", "c1", "c2", "c3", "orphan", "pseudo"],
        "text": ["t"] * 7,
        "label": ["a"] * 7,
        "origin": ["original", "original", "augmented", "augmented", "augmented", "augmented", "pseudo_labeled"],
        "parent_id": [None, None, "p1", "p1", "p1", "gone", None],
    })


def test_family_weights_give_a_row_and_its_children_one_unit():
    weights = family_weights(family_rows())
    assert weights.tolist() == [0.25, 1.0, 0.25, 0.25, 0.25, 1.0, 1.0]
    assert weights.sum() == 4  # p1's family, p2, the child whose parent is gone, the pseudo-labeled row


def test_training_families_only_for_trainers_that_use_them():
    rows = family_rows()
    # a lone pseudo-labeled row of its class is a family of one (two would share one)
    assert family_keys(rows) == ["p1", "p2", "p1", "p1", "p1", "gone", "pseudo\x1fa\x1f0"]
    assert training_families(rows, HeadTrainer(), "family") == family_keys(rows)
    assert training_families(rows, HeadTrainer(), "uniform") is None
    assert training_families(rows, SetFitTrainer(), "family") is None


def test_rerunning_a_cell_replaces_all_its_records_and_keeps_other_cells(tmp_path):
    from experiments.report import merge_records

    def record(arm, seed, f1):
        return {"dataset": "d", "trainer": "head", "arm": arm, "k": 10, "seed": seed, "embedding_mode": "truncate", "macro_f1": f1}

    path = tmp_path / "experiment_d.jsonl"
    merge_records(path, [record("raw", 0, 0.5), record("curated", 0, 0.6), record("without:keyboard", 0, 0.6), record("raw", 1, 0.4)])
    merged = merge_records(path, [record("raw", 0, 0.5), record("curated", 0, 0.7)])
    assert sorted((r["arm"], r["seed"], r["macro_f1"]) for r in merged) == [("curated", 0, 0.7), ("raw", 0, 0.5), ("raw", 1, 0.4)]
