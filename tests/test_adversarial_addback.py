"""Adversarial add-back: successful attack texts on the training rows become robustness children."""

import numpy as np
import pyarrow.compute as pc

from model_hooks.embedder import get_embedder
from model_hooks.trainers import HeadTrainer, linear_probabilities
from schemas.rows import family_weights
from stages.adversarial_addback import adversarial_children
from stages.augmenters import op_purpose
from stages.semantic_augmentation import AugmentationConfig, AugmentationInputs, augment, augmentation_parents
from test_adversarial_validation import stage_rows


def originals():
    rows, _ = stage_rows()
    return rows.filter(pc.equal(rows.column("origin"), "original"))


def test_children_are_attack_texts_that_fool_the_model_and_keep_their_parents_label():
    rows = originals()
    parents = augmentation_parents(rows, None, seed=0)
    children = adversarial_children(rows, parents, "deepwordbug", 200, 1.0, seed=0)
    assert children.num_rows > 0
    by_id = {row["id"]: row for row in parents.to_pylist()}
    labeled = rows.filter(pc.equal(rows.column("split"), "labeled"))
    labels = sorted(set(labeled.column("label").to_pylist()))
    embedder = get_embedder("truncate")
    weight, bias = HeadTrainer(l2=1.0).fit_weights(embedder.embed(labeled.column("text").to_pylist()), labeled.column("label").to_pylist(),
                                                  labels, 0, family_weights(labeled))
    predicted = linear_probabilities(get_embedder("truncate", cache_dir=None).embed(children.column("text").to_pylist()), weight, bias).argmax(axis=1)
    for child, guess in zip(children.to_pylist(), predicted):
        parent = by_id[child["parent_id"]]
        assert child["op"] == "adversarial" and op_purpose(child["op"]) == "robustness" and child["origin"] == "augmented"
        assert child["label"] == parent["label"] and child["text"] != parent["text"]
        assert labels[guess] != child["label"], "an add-back text is one the model misread"
    again = adversarial_children(rows, parents, "deepwordbug", 200, 1.0, seed=0)
    assert again.equals(children)


def test_the_augment_stage_gates_add_back_children_and_counts_them_by_purpose():
    rows = originals()
    config = AugmentationConfig(ops=[], adversarial_addback=True, adversarial_query_budget=200, max_parents_per_class=None)
    result = augment(rows, config, AugmentationInputs(), seed=0)
    stats = result.stats
    assert stats["generated_by_op"].get("adversarial", 0) > 0 and stats["purpose_by_op"] == {"adversarial": "robustness"}
    assert stats["rows_in"] + stats["generated"] == stats["rows_out"] + result.rejected.num_rows
    kept = result.kept.filter(pc.equal(result.kept.column("origin"), "augmented"))
    assert set(kept.column("op").to_pylist()) <= {"adversarial"}
    assert np.all(np.asarray(kept.column("similarity").to_pylist()) >= config.robustness_min_similarity)
