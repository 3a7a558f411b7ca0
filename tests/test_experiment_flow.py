"""A real Prefect run of the experiment flow on a tiny data file, as `pdap experiment --data` builds it."""

import csv
import json

import pytest

from experiments.sampling import SamplingError
from flows.experiment import experiment_flow
from flows.config import RunConfig
from stages.augmenters import AUGMENTER_NAMES

pytestmark = pytest.mark.slow

TOPICS = {
    "sport": "football tennis match goal team race runner stadium coach league",
    "cooking": "sauce garlic bake bread oven butter soup recipe onion pepper",
    "finance": "bank interest stock market bond profit inflation loan investor price",
}


def write_topics_csv(path):
    """A CSV of 3 topics x 14 rows (columns sentence, topic), each row six of its topic's ten words."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "topic"])
        for label, words in TOPICS.items():
            vocabulary = words.split()
            for i in range(14):
                writer.writerow([f"Item {i}: " + " ".join(vocabulary[(i + j) % 10] for j in range(6)) + ".", label])
    return path


@pytest.fixture
def data_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return write_topics_csv(tmp_path / "topics.csv")


def test_experiment_flow_writes_paired_records_for_every_arm(data_file, tmp_path):
    overrides = {"experiment": {"ks": [2], "seeds": [0, 1], "results_dir": str(tmp_path / "results")}}
    config = RunConfig.from_data_file(data_file, "sentence", "topic", overrides)
    summary = experiment_flow(config, run_id="exp")
    records = [json.loads(line) for line in (tmp_path / "results" / "experiment_topics.jsonl").read_text().splitlines()]
    arms = {(r["arm"], r["seed"]) for r in records}
    stage_arms = ("raw", "curated", "all_stages", "without:clean", "without:augment", "without:adapt", "without:validate",
                  "ref:tuned_lr", "ref:tfidf_lr", "ref:name_prior")
    assert arms >= {(arm, seed) for arm in stage_arms for seed in (0, 1)}
    op_arms = {f"without:{op}" for op in AUGMENTER_NAMES} | {"without:pseudo_label"}
    assert arms >= {(arm, seed) for arm in op_arms for seed in (0, 1)}, "every configured op is ablated in every cell"
    for seed in (0, 1):
        untuned = next(r for r in records if r["arm"] == "all_stages" and r["seed"] == seed)
        smaller = [r for r in records if r["arm"] in op_arms and r["seed"] == seed and r["n_train"] < untuned["n_train"]]
        assert smaller, "the untuned pipeline's rows hold augmented rows, so some op arms train on fewer rows"
        assert all(r["n_train"] <= untuned["n_train"] for r in records if r["arm"] in op_arms and r["seed"] == seed)
        curated = next(r for r in records if r["arm"] == "curated" and r["seed"] == seed)
        assert [d["name"] for d in curated["decisions"]][-1] == "curation"
        cell = json.loads((tmp_path / "runs" / "exp" / "cells" / f"k2-seed{seed}.json").read_text())
        assert cell["decisions"] == curated["decisions"] and cell["head_l2"] == curated["head_l2"]
        assert len(cell["decision_lines"]) == len(cell["decisions"])
    report = (tmp_path / "runs" / "exp" / "report.html").read_text()
    assert "tuning decisions" in report and "curation: " in report
    clean = {(r["arm"], r["seed"]): r for r in records if r["noise"] == "none"}
    noisy = [r for r in records if r["noise"] != "none"]
    assert sorted({r["noise"] for r in noisy}) == ["char@0.05", "char@0.10", "char@0.20", "word@0.10"]
    assert len(noisy) == 4 * len(clean), "every arm of every cell is scored on every noisy copy"
    for record in noisy:
        assert record["clean_macro_f1"] == clean[(record["arm"], record["seed"])]["macro_f1"]
        assert record["drop_from_clean"] == pytest.approx((record["clean_macro_f1"] - record["macro_f1"]) * 100, abs=1e-3)
    for record in records:
        assert record["eval_split"] == "test" and record["git_commit"] and record["embedding_backend"]
        assert record["dataset"] == "topics" and record["trainer"] == "head" and record["k"] == 2
        assert 0.0 <= record["macro_f1"] <= 1.0 and (record["noise"] != "none" or set(record["per_class_f1"]) == set(TOPICS))
        assert record["n_train"] == 6 or record["arm"] != "raw"
        assert record["weighting"] == ("uniform" if record["arm"].startswith("ref:") and record["arm"] != "ref:name_prior" else "family")
    assert (tmp_path / "results" / "experiment_topics.md").read_text().count("| test | head | truncate | curated | 2 | 2 |") == 1
    assert (tmp_path / "results" / "experiment_topics.png").read_bytes()[:4] == b"\x89PNG"
    assert {u["arm"] for u in summary["uplifts"] if u["against"] == "raw"} == {arm for arm, _ in arms} - {"raw"}
    assert {u["against"] for u in summary["uplifts"]} - {"raw"} <= {"ref:tuned_lr", "ref:tfidf_lr", "ref:name_prior"}
    wall = [json.loads(line) for line in (tmp_path / "results" / "experiment_wall_time.jsonl").read_text().splitlines()]
    assert len(wall) == 1 and wall[0]["dataset"] == "topics" and wall[0]["ks"] == [2] and wall[0]["seeds"] == 2
    assert wall[0]["seconds"] > 0 and isinstance(wall[0]["texts_embedded"], int)  # 0 once the disk cache holds every text

    too_many = RunConfig.from_data_file(data_file, "sentence", "topic", {"experiment": {"ks": [40], "results_dir": str(tmp_path)}})
    with pytest.raises(SamplingError, match="k=40"):
        experiment_flow(too_many, run_id="exp-too-many")


def test_robustness_flow_attacks_raw_and_curated_models_on_the_same_eval_rows(data_file, tmp_path):
    from flows.robustness import robustness_flow

    overrides = {"experiment": {"results_dir": str(tmp_path / "results"),
                                "robustness": {"ks": [2], "seeds": [0], "sample": 3, "query_budget": 40,
                                                              "recipes": ["deepwordbug"], "adversarial_addback": False}}}
    config = RunConfig.from_data_file(data_file, "sentence", "topic", overrides)
    summary = robustness_flow(config, run_id="robust")
    records = [json.loads(line) for line in (tmp_path / "results" / "robustness_topics.jsonl").read_text().splitlines()]
    assert sorted(r["model"] for r in records) == ["curated", "raw"]
    for record in records:
        assert record["recipe"] == "deepwordbug" and record["n"] == 3 and record["k"] == 2
        assert record["succeeded"] + record["failed"] + record["skipped"] == 3
        assert record["n_train"] >= 6
    assert "| deepwordbug | 2 | curated | 1 |" in (tmp_path / "results" / "robustness_topics.md").read_text()
    assert "deepwordbug" in summary["table"]
