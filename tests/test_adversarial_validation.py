"""Stage 4: the discriminator, the label gate, cleanlab label issues, the check registry, the stage."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from sklearn.metrics import roc_auc_score

from model_hooks.discriminator import family_folds, roc_auc_with_ci
from row_fixtures import make_rows
from schemas.rows import conform_rows, content_id
from stages.adversarial_validation import validate
from stages.validation_checks import CHECKS, CheckFailed, CheckInputs, ValidationConfig, register_check, run_check

CLASSES = ["a", "b", "c"]


def clustered_inputs(n_per_class=30, n_synthetic_per_class=30, synthetic_shift=0.0, flip=0, mislabel=0, seed=0) -> CheckInputs:
    """Originals and synthetic rows as points around three class centres (no embedding model needed).

    `synthetic_shift` moves every synthetic row along a direction no original uses; `flip` synthetic
    rows get the next class's label; `mislabel` originals get the next class's label.
    """
    rng = np.random.default_rng(seed)
    dims = 16
    centres = np.eye(dims)[:3] * 4.0
    vectors, labels, synthetic, ids = [], [], [], []
    for c, label in enumerate(CLASSES):
        for i in range(n_per_class):
            vectors.append(centres[c] + rng.normal(size=dims))
            labels.append(label)
            synthetic.append(False)
            ids.append(f"o-{label}-{i}")
        for i in range(n_synthetic_per_class):
            point = centres[c] + rng.normal(size=dims)
            point[dims - 1] += synthetic_shift
            vectors.append(point)
            labels.append(label)
            synthetic.append(True)
            ids.append(f"s-{label}-{i}")
    labels = np.asarray(labels, dtype=object)
    synthetic = np.asarray(synthetic)
    synthetic_rows = np.flatnonzero(synthetic)
    flipped = synthetic_rows[rng.choice(len(synthetic_rows), flip, replace=False)] if flip else np.array([], int)
    original_rows = np.flatnonzero(~synthetic)
    mislabeled = original_rows[rng.choice(len(original_rows), mislabel, replace=False)] if mislabel else np.array([], int)
    for row in [*flipped, *mislabeled]:
        labels[row] = CLASSES[(CLASSES.index(labels[row]) + 1) % 3]
    inputs = CheckInputs(
        ids=ids, texts=[f"text {i}" for i in ids], labels=labels.tolist(), is_synthetic=synthetic,
        origins=["augmented" if s else "original" for s in synthetic],
        vectors=np.asarray(vectors, dtype=np.float32), folds=family_folds(ids, 5), classes=CLASSES,
        vocabulary=frozenset({"text"}), seed=seed, settings=ValidationConfig(),
    )
    inputs.planted = set(flipped.tolist()) | set(mislabeled.tolist())
    return inputs


def test_roc_auc_matches_sklearn_and_has_an_interval():
    rng = np.random.default_rng(0)
    positive = rng.random(200) < 0.4
    scores = np.round(rng.random(200) + positive * 0.3, 2)  # with ties
    auc, low, high = roc_auc_with_ci(scores, positive)
    assert auc == pytest.approx(roc_auc_score(positive, scores))
    assert low < auc < high
    assert np.isnan(roc_auc_with_ci(scores, np.zeros(200, bool))[0])


def test_discriminator_auc_is_near_half_for_one_distribution_and_near_one_for_different_ones():
    same = run_check("discriminator", clustered_inputs(synthetic_shift=0.0, seed=1))
    assert 0.35 < same.info["roc_auc"] < 0.65
    assert same.info["roc_auc_ci95"][0] < 0.5 < same.info["roc_auc_ci95"][1]
    assert not same.info["distinguishable"] and same.flags.sum() == 0  # indistinguishable: nothing looks synthetic
    different = run_check("discriminator", clustered_inputs(synthetic_shift=6.0))
    assert different.info["roc_auc"] > 0.95 and different.info["distinguishable"]
    assert different.flags.sum() > 0 and different.summary < 0.2
    assert not different.flags[~clustered_inputs().is_synthetic].any()  # originals are never flagged
    assert different.info["by_origin"]["augmented"]["roc_auc"] > 0.95


def test_pseudo_labeled_rows_are_real_text_and_not_rejected_as_looking_synthetic_by_default():
    inputs = clustered_inputs(synthetic_shift=6.0)
    inputs.origins = ["pseudo_labeled" if s else "original" for s in inputs.is_synthetic]
    assert run_check("discriminator", inputs).flags.sum() == 0
    inputs.settings = ValidationConfig(looks_synthetic_origins=["augmented", "pseudo_labeled"])
    assert run_check("discriminator", inputs).flags.sum() > 0


def test_a_robustness_child_is_not_rejected_for_looking_noisy_but_a_variety_child_is():
    inputs = clustered_inputs(synthetic_shift=6.0)
    n_synthetic = int(inputs.is_synthetic.sum())
    # half the synthetic rows are typo children (robustness), half rewrites (variety), all equally far from the originals
    inputs.purposes = [None if not s else ("robustness" if i % 2 else "variety") for i, s in enumerate(inputs.is_synthetic)]
    result = run_check("discriminator", inputs)
    robustness = np.asarray([p == "robustness" for p in inputs.purposes])
    assert not result.flags[robustness].any() and not np.isnan(result.scores).any()
    assert result.scores[robustness].mean() > result.scores[~inputs.is_synthetic].mean(), "scored: they do look synthetic"
    assert result.flags[~robustness].sum() > 0 and result.info["not_judged"] == robustness.sum() == n_synthetic // 2
    assert result.info["synthetic"] == n_synthetic - n_synthetic // 2


def test_stage_counts_rejected_children_per_op_and_purpose_and_keeps_noisy_robustness_children():
    rows, planted = stage_rows()
    ops = ["keyboard" if i % 2 else "wordnet_synonym" for i in range(rows.num_rows)]
    rows = rows.set_column(rows.schema.get_field_index("op"), "op", pa.array(
        [op if origin == "augmented" else None for op, origin in zip(ops, rows.column("origin").to_pylist())], pa.string()))
    result = validate(rows, ValidationConfig(folds=3, min_label_probability=0.5, synthetic_quantile=0.5), seed=0)
    rejected = result.rejected.to_pylist()
    assert not [r for r in rejected if r["op"] == "keyboard" and r["reason"] == "looks_synthetic"]
    by_op = result.stats["rejected_by_op"]
    for op, entry in by_op.items():
        assert entry["purpose"] == {"keyboard": "robustness", "wordnet_synonym": "variety"}[op]
        assert entry["rejected"] == {reason: sum(1 for r in rejected if r["op"] == op and r["reason"] == reason)
                                     for reason in {r["reason"] for r in rejected if r["op"] == op}}
    assert sum(n for entry in by_op.values() for n in entry["rejected"].values()) == result.rejected.num_rows


def test_label_gate_catches_planted_label_flips():
    inputs = clustered_inputs(flip=9, seed=1)
    result = run_check("label_consistency", inputs)
    flagged = set(np.flatnonzero(result.flags).tolist())
    assert inputs.planted <= flagged
    assert len(flagged - inputs.planted) <= 2  # correct synthetic rows pass
    assert result.reason == "label_flip" and 0.0 <= result.summary < 1.0
    assert all(example["label"] != example["predicted"] for example in result.info["examples"])


def test_cleanlab_flags_planted_label_errors_in_the_originals():
    inputs = clustered_inputs(n_synthetic_per_class=5, mislabel=6, seed=2)
    result = run_check("label_issues", inputs)
    flagged = set(np.flatnonzero(result.flags).tolist())
    assert len(inputs.planted & flagged) >= 5
    assert not result.flags[inputs.is_synthetic].any()
    assert result.info["flagged"] == len(flagged) and result.info["examples"]


def test_outlier_check_is_registered_but_opt_in():
    assert "outlier" in CHECKS and "outlier" not in ValidationConfig().checks
    far = clustered_inputs(synthetic_shift=25.0)
    result = run_check("outlier", far)
    assert result.flags[far.is_synthetic].mean() > 0.9


def test_a_check_that_fails_to_run_fails_loudly_with_its_name():
    @register_check("always_broken")
    def broken(inputs):
        raise ZeroDivisionError("boom")

    try:
        with pytest.raises(CheckFailed, match="always_broken.*ZeroDivisionError: boom"):
            run_check("always_broken", clustered_inputs())
        with pytest.raises(ValueError, match="registered already"):
            register_check("always_broken")(broken)
    finally:
        del CHECKS["always_broken"]
    with pytest.raises(ValueError, match="unknown checks"):
        ValidationConfig(checks=["discriminator", "no_such_check"])


def test_family_folds_keep_a_family_together_balance_labels_and_are_stable():
    families = ["p1", "p1", "p2", "p3"] * 3
    folds = family_folds(families, 5)
    assert folds[0] == folds[1] and len(set(folds[::4])) == 1
    assert (family_folds(families, 5) == folds).all()
    # three classes, one original each, three folds: every fold holds one class, so each fold's
    # complement still holds two classes
    by_label = family_folds(["a1", "b1", "c1"], 3, strata=["a", "b", "c"])
    assert sorted(by_label.tolist()) == [0, 1, 2]
    many = family_folds([f"f{i}" for i in range(20)], 5, strata=["x"] * 10 + ["y"] * 10)
    assert all(sorted(many[:10].tolist()).count(fold) == 2 for fold in range(5))


# --- the stage on real rows and real embeddings ---------------------------------------------------

CARDIO = [
    "Patients with acute myocardial infarction received aspirin and early coronary angioplasty.",
    "Chronic heart failure patients were randomised to exercise training or usual care.",
    "Hypertension was treated with a new beta blocker in elderly patients with high blood pressure.",
    "Atrial fibrillation was managed with anticoagulation and rate control in the cardiology clinic.",
    "Coronary artery bypass grafting improved survival in patients with three-vessel disease.",
    "Cardiac arrest survivors received an implantable defibrillator after ventricular tachycardia.",
]
NEURO = [
    "Migraine frequency fell after prophylactic treatment in adults with chronic headache.",
    "Epileptic seizures were controlled with a new anticonvulsant drug in children.",
    "Stroke patients received early rehabilitation on a dedicated neurology ward.",
    "Parkinson disease symptoms improved with levodopa in most of the patients studied.",
    "Multiple sclerosis relapses were fewer with interferon treatment over two years.",
    "Alzheimer dementia progression was slowed by a cholinesterase inhibitor in a small trial.",
]


def stage_rows() -> tuple[pa.Table, set[str]]:
    """Twelve originals, one child each (two with a flipped label), an eval and an unlabeled row;
    and the ids of the flipped children."""
    rows = make_rows(*[(t, "cardio", "labeled") for t in CARDIO], *[(t, "neuro", "labeled") for t in NEURO],
                     ("An eval abstract on coronary stents.", "cardio", "eval"), ("Unlabeled text on seizures.", None, "unlabeled"))
    parents = rows.filter(pc.equal(rows.column("split"), "labeled")).to_pylist()
    children, planted = [], set()
    for index, parent in enumerate(parents):
        text = parent["text"].replace("patients", "people").replace(" in ", " among ")
        label = parent["label"]
        if index in (0, 6):  # planted: a child whose label flipped
            label = "neuro" if label == "cardio" else "cardio"
            planted.add(content_id(parent["id"], "child"))
        children.append({**parent, "id": content_id(parent["id"], "child"), "text": text, "label": label,
                         "origin": "augmented", "op": "wordnet_synonym", "parent_id": parent["id"], "similarity": 0.95})
    return conform_rows(pa.concat_tables([rows, conform_rows(pa.Table.from_pylist(children, schema=rows.schema))])), planted


def test_stage_scores_every_labeled_row_rejects_only_synthetic_rows_and_accounts_for_every_row():
    """Plumbing on real embeddings (twelve originals are too few for a reliable label model: the
    gates' behaviour is tested above on clustered points)."""
    rows, _ = stage_rows()
    result = validate(rows, ValidationConfig(folds=3, min_label_probability=0.5), seed=0)
    assert result.stats["rows_in"] == result.kept.num_rows + result.rejected.num_rows
    assert result.rejected.num_rows > 0
    assert set(result.rejected.column("reason").to_pylist()) <= {"looks_synthetic", "label_flip"}
    assert set(result.rejected.column("origin").to_pylist()) == {"augmented"}
    for row in result.rejected.to_pylist():
        score = row["synthetic_p"] if row["reason"] == "looks_synthetic" else row["label_agreement"]
        assert row["detail"].endswith(f"{score:.3f}")
    labeled = result.kept.filter(pc.equal(result.kept.column("split"), "labeled"))
    assert pc.all(pc.is_valid(labeled.column("synthetic_p"))).as_py()
    assert pc.all(pc.is_valid(labeled.column("label_agreement"))).as_py()
    eval_row = result.kept.filter(pc.equal(result.kept.column("split"), "eval")).to_pylist()[0]
    assert eval_row["synthetic_p"] is None  # eval rows are never scored
    scores = result.extra["check_scores"]
    assert scores.column_names == ["id", "score_discriminator", "score_label_consistency", "score_label_issues"]
    assert scores.column("id").to_pylist() == result.kept.column("id").to_pylist()
    assert set(result.stats["checks"]) == {"discriminator", "label_consistency", "label_issues"}
    assert all(0.0 <= check["summary"] <= 1.0 for check in result.stats["checks"].values())
    again = validate(rows, ValidationConfig(folds=3, min_label_probability=0.5), seed=0)
    assert again.kept.equals(result.kept) and again.rejected.equals(result.rejected)


def test_disabled_stage_passes_rows_through():
    rows, _ = stage_rows()
    result = validate(rows, ValidationConfig(enabled=False), seed=0)
    assert result.kept.equals(rows) and result.rejected.num_rows == 0


def test_dropping_label_issues_also_drops_their_children():
    rows, _ = stage_rows()
    result = validate(rows, ValidationConfig(folds=3, drop_label_issues=True, checks=["label_issues"]), seed=0)
    rejected = result.rejected.to_pylist()
    issue_ids = {row["id"] for row in rejected if row["reason"] == "label_issue"}
    for row in rejected:
        if row["reason"] == "parent_label_issue":
            assert row["parent_id"] in issue_ids
    children_of_issues = {row["id"] for row in rows.to_pylist() if row["parent_id"] in issue_ids}
    assert children_of_issues <= {row["id"] for row in rejected}


# --- the robustness probe ----------------------------------------------------------------------


def keyword_model(texts: list[str]) -> np.ndarray:
    """A tiny sentiment model: P(positive) from counts of a few whole words."""
    positive, negative = {"delicious", "wonderful", "superb"}, {"terrible", "disgusting", "dreadful"}
    out = []
    for text in texts:
        words = text.lower().split()
        logit = 2.0 * (sum(w in positive for w in words) - sum(w in negative for w in words))
        p = 1.0 / (1.0 + np.exp(-logit))
        out.append([1.0 - p, p])
    return np.asarray(out)


def test_deepwordbug_attack_runs_offline_on_a_tiny_model_and_repeats_itself():
    from model_hooks.robustness import probe

    texts = ["the food was delicious", "a terrible experience", "delicious and wonderful and superb", "dreadful"]
    result = probe(keyword_model, texts, [1, 0, 1, 0], "deepwordbug", query_budget=200, seed=0)
    assert result.n == 4 and result.skipped == 0
    assert result.succeeded >= 2  # one misspelt keyword flips a one-keyword text
    assert result.failed >= 1  # three keywords take more edits than the budget allows here
    assert 0.0 < result.attack_success_rate < 1.0 and result.avg_words_perturbed >= 1 and result.avg_queries > 0
    assert probe(keyword_model, texts, [1, 0, 1, 0], "deepwordbug", query_budget=200, seed=0) == result
    skipped = probe(keyword_model, ["the food was delicious"], [0], "deepwordbug", query_budget=200, seed=0)
    assert skipped.skipped == 1 and np.isnan(skipped.attack_success_rate)  # already wrong: not attacked
    with pytest.raises(ValueError, match="offline recipes"):
        probe(keyword_model, texts, [1, 0, 1, 0], "textfooler")


def test_a_class_with_one_original_is_judged_by_the_model_on_all_originals_and_reported():
    inputs = clustered_inputs(n_per_class=6, n_synthetic_per_class=3, seed=3)
    lonely = [i for i, (label, synthetic) in enumerate(zip(inputs.labels, inputs.is_synthetic)) if label == "c" and not synthetic]
    keep = np.ones(len(inputs.ids), dtype=bool)
    keep[lonely[1:]] = False
    rows = np.flatnonzero(keep)
    small = CheckInputs(ids=[inputs.ids[i] for i in rows], texts=[inputs.texts[i] for i in rows], labels=[inputs.labels[i] for i in rows],
                        is_synthetic=inputs.is_synthetic[rows], origins=[inputs.origins[i] for i in rows], vectors=inputs.vectors[rows], folds=family_folds([inputs.ids[i] for i in rows], 3),
                        classes=CLASSES, vocabulary=inputs.vocabulary, seed=0)
    result = run_check("label_consistency", small)
    assert result.info["uncrossed_classes"] == ["c"]
    assert not np.isnan(result.scores).any()
