"""Stages 2 and 3 on small real data: the gates, the accounting, pseudo-label cross-fitting."""

import collections

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from model_hooks.trainers import HeadTrainer
from row_fixtures import make_rows
from stages.domain_adaptation import DomainConfig, adapt
from stages.semantic_augmentation import AugmentationConfig, AugmentationInputs, augment, pre_gate_ledger

CARDIO = [
    "Patients with acute myocardial infarction received aspirin and early coronary angioplasty. Mortality at thirty days was lower than with thrombolysis alone. Bleeding complications were rare in both groups.",
    "Chronic heart failure patients were randomised to exercise training or usual care. Exercise capacity improved after twelve weeks of training. Hospital admissions for heart failure fell in the trained group.",
    "Hypertension was treated with a new beta blocker in elderly patients. Blood pressure fell within four weeks of treatment. Side effects were mild and rarely led to withdrawal from the trial.",
]
NEURO = [
    "Migraine frequency fell after prophylactic treatment in adults with chronic headache. Attacks were shorter and less severe during the treatment period. Sleep quality improved in most of the patients.",
    "Epileptic seizures were controlled with a new anticonvulsant drug in children. Seizure frequency fell by half in two thirds of the children. Drowsiness was the commonest side effect of the drug.",
    "Stroke patients received early rehabilitation on a dedicated neurology ward. Motor function recovered faster than on general wards. Fewer patients needed nursing home care at six months.",
]


def labeled_rows(extra=()):
    rows = [(text, "cardio", "labeled") for text in CARDIO] + [(text, "neuro", "labeled") for text in NEURO]
    rows += [("Eval abstract about coronary stents and restenosis in diabetic patients after angioplasty.", "cardio", "eval")]
    return make_rows(*rows, *extra)


def test_children_carry_parent_op_label_and_similarity_and_rows_are_accounted():
    rows = labeled_rows()
    config = AugmentationConfig(ops=["random_swap", "sentence_shuffle"], per_example=2, min_similarity=0.0, max_similarity=1.0)
    result = augment(rows, config, AugmentationInputs(), seed=0)
    stats = result.stats
    assert stats["rows_in"] + stats["generated"] == stats["rows_out"] + result.rejected.num_rows
    children = result.kept.filter(pc.equal(result.kept.column("origin"), "augmented"))
    assert children.num_rows > 0
    parents = {row["id"]: row for row in rows.to_pylist()}
    for child in children.to_pylist():
        parent = parents[child["parent_id"]]
        assert parent["split"] == "labeled" and child["label"] == parent["label"]
        assert child["op"] in {"random_swap", "sentence_shuffle"} and child["split"] == "labeled"
        assert -1.0 <= child["similarity"] <= 1.0 and child["text"] != parent["text"]
    assert result.kept.slice(0, rows.num_rows).equals(rows)  # every input row passes through unchanged
    again = augment(rows, config, AugmentationInputs(), seed=0)
    assert again.kept.equals(result.kept)


@pytest.mark.parametrize(
    ("min_similarity", "max_similarity", "reason"),
    [(0.9999, 1.0, "too_dissimilar"), (-1.0, -0.5, "near_copy")],
)
def test_similarity_gate_reasons(min_similarity, max_similarity, reason):
    config = AugmentationConfig(ops=["random_delete"], per_example=1, min_similarity=min_similarity, max_similarity=max_similarity)
    result = augment(labeled_rows(), config, AugmentationInputs(), seed=1)
    assert result.rejected.num_rows == result.stats["generated"] > 0
    assert set(result.rejected.column("reason").to_pylist()) == {reason}
    assert all(detail.startswith("similarity ") for detail in result.rejected.column("detail").to_pylist())


def test_protected_terms_are_enforced_for_every_augmenter():
    protected = frozenset({"myocardial", "infarction", "aspirin", "coronary", "angioplasty", "migraine", "seizures", "stroke"})
    config = AugmentationConfig(ops=["eda", "random_delete", "keyboard"], per_example=3, strength=0.5, min_similarity=-1.0, max_similarity=1.0)
    result = augment(labeled_rows(), config, AugmentationInputs(protected_terms=protected), seed=2)
    from schemas.words import keeps_protected_terms

    parents = {row["id"]: row["text"] for row in labeled_rows().to_pylist()}
    children = result.kept.filter(pc.equal(result.kept.column("origin"), "augmented")).to_pylist()
    assert children and all(keeps_protected_terms(parents[c["parent_id"]], c["text"], protected) for c in children)
    lost = [r for r in result.rejected.to_pylist() if r["reason"] == "protected_term_lost"]
    assert all(not keeps_protected_terms(parents[r["parent_id"]], r["text"], protected) for r in lost)


def test_pre_gate_checks_reject_lost_terms_and_repeated_texts_without_embedding():
    rows = labeled_rows()
    parent = rows.to_pylist()[0]
    candidates = [
        parent["text"].replace("aspirin", "a drug"),  # loses a protected term
        "  " + parent["text"].upper() + " ",  # the parent's text again, up to case and spacing
        CARDIO[0].replace("thirty", "30"),  # new
        CARDIO[0].replace("thirty", "30"),  # the child before it again
    ]
    children = pa.Table.from_pylist([{**parent, "id": f"child-{i}", "text": text, "origin": "augmented", "op": "eda", "parent_id": parent["id"]}
                                     for i, text in enumerate(candidates)], schema=rows.schema)
    ledger = pre_gate_ledger(rows, children, {parent["id"]: parent["text"]}, frozenset({"aspirin"}))
    rejects = ledger.rejects_table(children, "augment")
    assert ledger.kept_mask.tolist() == [False, False, True, False]
    assert rejects.column("reason").to_pylist() == ["protected_term_lost", "duplicate_candidate", "duplicate_candidate"]
    assert rejects.column("detail").to_pylist() == ["lost aspirin", f"duplicate of {parent['id']}", "duplicate of child-2"]


def test_off_domain_synthetic_rows_are_rejected():
    recipe = ("Whisk the eggs with sugar, fold in the flour and bake the sponge for twenty minutes. "
              "Serve the cake with cream and fresh strawberries.")
    rows = labeled_rows(extra=[(f"{text} Unlabeled copy {i}.", None, "unlabeled") for i, text in enumerate(CARDIO + NEURO)])
    synthetic = make_rows((recipe, "cardio", "labeled")).to_pylist()[0]
    table = rows.to_pylist() + [{**synthetic, "origin": "augmented", "op": "eda", "parent_id": rows.column("id")[0].as_py()}]
    import pyarrow as pa

    result = adapt(pa.Table.from_pylist(table, schema=rows.schema), DomainConfig(pseudo_label=False, relevance_quantile=0.0), seed=0)
    assert result.rejected.column("reason").to_pylist() == ["off_domain"]
    assert result.rejected.column("text")[0].as_py() == recipe
    scores = result.kept.filter(pc.equal(result.kept.column("split"), "labeled")).column("domain_score").to_pylist()
    assert all(score is not None for score in scores)


def test_pseudo_labels_never_come_from_a_model_that_saw_the_row(monkeypatch):
    unlabeled = [(f"{text} Follow-up report {i}.", None, "unlabeled") for i, text in enumerate(CARDIO * 3 + NEURO * 3)]
    rows = labeled_rows(extra=unlabeled)
    seen = []
    real = HeadTrainer.fit_predict_proba_vectors

    def spy(self, train_x, train_labels, test_x, labels, seed, weights=None):
        seen.append((np.asarray(train_x).copy(), np.asarray(test_x).copy()))
        return real(self, train_x, train_labels, test_x, labels, seed, weights)

    monkeypatch.setattr(HeadTrainer, "fit_predict_proba_vectors", spy)
    config = DomainConfig(relevance_filter=False, pseudo_min_confidence=0.5, pseudo_rounds=3, balance=False, pseudo_per_class=10)
    result = adapt(rows, config, seed=0)
    assert len(seen) == 6  # two folds per round
    for train_x, test_x in seen:
        for vector in test_x:
            assert not np.any(np.all(np.isclose(train_x, vector), axis=1)), "a row was labeled by a model trained on it"
    pseudo = result.kept.filter(pc.equal(result.kept.column("origin"), "pseudo_labeled")).to_pylist()
    assert pseudo and all(r["split"] == "labeled" and r["op"] == "pseudo_label" and r["label_agreement"] >= 0.5 for r in pseudo)
    assert result.stats["rows_in"] == result.kept.num_rows + result.rejected.num_rows


def test_pseudo_labeler_counts_a_parent_and_its_children_as_one_example(monkeypatch):
    import pyarrow as pa

    unlabeled = [(f"{text} Follow-up report {i}.", None, "unlabeled") for i, text in enumerate(CARDIO * 2 + NEURO * 2)]
    rows = labeled_rows(extra=unlabeled)
    parent = rows.to_pylist()[0]
    children = [{**parent, "id": f"child{i}", "text": f"{parent['text']} Variant {i}.", "origin": "augmented",
                 "op": "eda", "parent_id": parent["id"]} for i in range(2)]
    rows = pa.Table.from_pylist(rows.to_pylist() + children, schema=rows.schema)
    originals = sum(1 for r in rows.to_pylist() if r["split"] == "labeled") - len(children)
    weights_seen = []
    real = HeadTrainer.fit_predict_proba_vectors

    def spy(self, train_x, train_labels, test_x, labels, seed, weights=None):
        weights_seen.append(np.asarray(weights))
        return real(self, train_x, train_labels, test_x, labels, seed, weights)

    monkeypatch.setattr(HeadTrainer, "fit_predict_proba_vectors", spy)
    adapt(rows, DomainConfig(relevance_filter=False, pseudo_min_confidence=0.5), seed=0)
    first = weights_seen[0]  # round one: labeled rows only
    assert sorted(first.tolist()).count(1 / 3) == 3 and first.sum() == pytest.approx(originals)


def test_pseudo_label_cap_and_balance():
    unlabeled = [(f"{text} Follow-up report {i}.", None, "unlabeled") for i, text in enumerate(CARDIO * 4 + NEURO * 2)]
    rows = labeled_rows(extra=unlabeled)
    result = adapt(rows, DomainConfig(relevance_filter=False, pseudo_min_confidence=0.3, pseudo_per_class=5, balance=True), seed=0)
    counts = collections.Counter(r["label"] for r in result.kept.to_pylist() if r["origin"] == "pseudo_labeled")
    assert counts and max(counts.values()) <= 5 and len(set(counts.values())) == 1


def test_default_pseudo_label_threshold_is_twice_chance_and_cap_a_multiple_of_the_labeled_count():
    unlabeled = [(f"{text} Follow-up report {i}.", None, "unlabeled") for i, text in enumerate(CARDIO * 4 + NEURO * 4)]
    rows = labeled_rows(extra=unlabeled)
    head_only = {"relevance_filter": False, "label_name_prior": False, "pseudo_head_l2": 1.0}
    lenient = adapt(rows, DomainConfig(**head_only, pseudo_min_confidence=0.6), seed=0)
    confidences = [r["label_agreement"] for r in lenient.kept.to_pylist() if r["origin"] == "pseudo_labeled"]
    assert confidences and max(confidences) < 0.9  # this tiny model is never 90% sure...
    default = adapt(rows, DomainConfig(**head_only), seed=0)
    assert default.stats["pseudo_labeled"] == 0  # ...and two classes need min(0.9, 2 / 2)
    capped = adapt(rows, DomainConfig(**head_only, pseudo_min_confidence=0.01, pseudo_cap_multiple=1.0), seed=0)
    counts = collections.Counter(r["label"] for r in capped.kept.to_pylist() if r["origin"] == "pseudo_labeled")
    assert counts and max(counts.values()) == 3  # three labeled originals per class
    assert len(confidences) > 6  # the default cap (5 x 3 per class) let more through


def test_the_labeling_heads_l2_is_chosen_by_cross_validation_unless_given():
    from model_hooks.trainers import L2_GRID

    unlabeled = [(f"{text} Follow-up report {i}.", None, "unlabeled") for i, text in enumerate(CARDIO + NEURO)]
    rows = labeled_rows(extra=unlabeled)
    tuned = adapt(rows, DomainConfig(relevance_filter=False, label_name_prior=False), seed=0)
    assert tuned.stats["pseudo_head_l2"] in L2_GRID
    fixed = adapt(rows, DomainConfig(relevance_filter=False, label_name_prior=False, pseudo_head_l2=0.5), seed=0)
    assert fixed.stats["pseudo_head_l2"] == 0.5


def test_parent_cap_augments_at_most_that_many_rows_per_class_drawn_by_seed():
    config = AugmentationConfig(ops=["sentence_shuffle"], per_example=1, min_similarity=-1.0, max_similarity=1.0, max_parents_per_class=2)
    rows = labeled_rows()

    def parents_of_children(seed, settings=config):
        kept = augment(rows, settings, AugmentationInputs(), seed=seed).kept
        return set(kept.filter(pc.equal(kept.column("origin"), "augmented")).column("parent_id").to_pylist())

    label_of = dict(zip(rows.column("id").to_pylist(), rows.column("label").to_pylist()))
    picked = parents_of_children(0)
    assert collections.Counter(label_of[parent] for parent in picked) == {"cardio": 2, "neuro": 2}
    assert parents_of_children(0) == picked
    assert {frozenset(parents_of_children(seed)) for seed in range(6)} != {frozenset(picked)}
    assert len(parents_of_children(0, config.model_copy(update={"max_parents_per_class": None}))) == 6


def _pool_rows(cardio_name, neuro_name):
    unlabeled = [(f"{text} Follow-up report {i}.", None, "unlabeled") for i, text in enumerate(CARDIO * 4 + NEURO * 4)]
    rows = labeled_rows(extra=unlabeled).to_pylist()
    names = {"cardio": cardio_name, "neuro": neuro_name}
    for row in rows:
        row["label"] = names.get(row["label"], row["label"])
    return pa.Table.from_pylist(rows, schema=labeled_rows().schema)


def _pseudo_labels(result):
    return {r["text"]: (r["label"], r["label_agreement"]) for r in result.kept.to_pylist() if r["origin"] == "pseudo_labeled"}


def test_class_names_that_fit_the_rows_sharpen_the_pseudo_labels():
    rows = _pool_rows("heart disease", "brain and nerve disease")
    with_names = adapt(rows, DomainConfig(relevance_filter=False), seed=0)
    head_only = adapt(rows, DomainConfig(relevance_filter=False, label_name_prior=False), seed=0)
    assert with_names.stats["label_name_accuracy"] == 1.0 and with_names.stats["label_name_temperature"] is not None
    assert head_only.stats["pseudo_labeled"] == 0  # the head alone never reaches the default 2 / 2 classes
    labels = _pseudo_labels(with_names)
    assert len(labels) == 24  # every pool row (12 per class, under the cap of 5 x 3 labeled originals)
    for text, (label, confidence) in labels.items():
        assert label == ("heart disease" if any(text.startswith(t) for t in CARDIO) else "brain and nerve disease")
        assert confidence >= 0.9


def test_class_names_that_contradict_the_rows_leave_the_pseudo_labels_as_the_head_makes_them():
    rows = _pool_rows("brain and nerve disease", "heart disease")  # each class named after the other one
    config = {"relevance_filter": False, "pseudo_min_confidence": 0.55}
    with_names = adapt(rows, DomainConfig(**config), seed=0)
    head_only = adapt(rows, DomainConfig(**config, label_name_prior=False), seed=0)
    assert with_names.stats["label_name_accuracy"] == 0.0 and with_names.stats["label_name_temperature"] is None
    assert _pseudo_labels(with_names) == _pseudo_labels(head_only) != {}


def test_name_temperature_is_fitted_only_when_the_names_beat_a_flat_prior_significantly(monkeypatch):
    import stages.label_names as label_names

    targets = np.repeat(np.arange(4), 10)
    informative = np.random.default_rng(0).normal(0.2, 0.03, (40, 4))
    informative[np.arange(40), targets] += 0.1
    assert label_names.fit_temperature(informative, targets) is not None
    noise = np.random.default_rng(6).normal(0.2, 0.03, (40, 4))  # no relation between similarities and classes
    assert label_names.fit_temperature(noise, targets) is None
    assert label_names.fit_temperature(noise[:0], targets[:0]) is None
    monkeypatch.setattr(label_names, "LIKELIHOOD_RATIO_CRITICAL", 0.0)
    assert label_names.fit_temperature(noise, targets) is not None  # by chance, some temperature fits this noise a little


EVAL_TEXT = "Eval abstract about coronary stents and restenosis in diabetic patients after angioplasty."


def test_children_that_duplicate_an_eval_row_are_rejected_and_the_augmented_contract_passes(monkeypatch, tmp_path):
    import stages.semantic_augmentation as semantic_augmentation
    from data_contracts.suites import synthetic_suite, with_synthetic_checks
    from data_contracts.validate import ContractValidator
    from stages.augmenters import AUGMENTER_NAMES
    from stages.cleaning import CleaningConfig

    class LeakyAugmenter:  # an augmenter whose children copy or nearly copy the eval row
        def augment(self, text, n, seed, protected):
            return [f"  {EVAL_TEXT.upper()} ", EVAL_TEXT.replace("angioplasty.", "angioplasty today."), text.replace("thirty", "30")]

    monkeypatch.setattr(semantic_augmentation, "build_augmenter", lambda op, strength, vectors=None: LeakyAugmenter())
    rows = make_rows((CARDIO[0], "cardio", "labeled"), (EVAL_TEXT, "cardio", "eval"))
    eval_id = rows.column("id")[1].as_py()
    config = AugmentationConfig(ops=["random_swap"], min_similarity=-1.0, max_similarity=1.0)
    result = augment(rows, config, AugmentationInputs(), seed=0, cleaning=CleaningConfig())

    leaks = [r for r in result.rejected.to_pylist() if r["reason"] == "duplicates_eval_row"]
    assert len(leaks) == 2 and {r["detail"] for r in leaks} == {f"duplicate of eval row {eval_id}"}
    kept_children = [r["text"] for r in result.kept.to_pylist() if r["origin"] == "augmented"]
    assert kept_children == [CARDIO[0].replace("thirty", "30")]
    stats = result.stats
    assert stats["dropped_duplicates_eval_row"] == 2
    assert stats["rows_in"] + stats["generated"] == stats["rows_out"] + result.rejected.num_rows
    expected = stats["rows_in"] + stats["generated"] - result.rejected.num_rows
    checked = with_synthetic_checks(result.kept, rows, frozenset(), CleaningConfig())
    report = ContractValidator(tmp_path / "data_docs").validate(
        "20_augmented", checked, synthetic_suite(["cardio", "neuro"], list(AUGMENTER_NAMES), expected, scored=False))
    assert report.success, [r for r in report.rules if not r["success"]]
