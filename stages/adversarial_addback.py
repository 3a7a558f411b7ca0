"""Adversarial add-back: training rows rewritten by an attack until the model misreads them, kept with
their parent's label (`op = adversarial`, purpose robustness).

The model is the `head` trained on the run's labeled rows (family weights, as the experiment trains
it); each augmentation parent it classifies correctly is attacked with a TextAttack recipe
(model_hooks/robustness.py) and a successful attack's text becomes a candidate child. Candidates go
through the augmentation gates like every other child. Opt-in (`augmentation.adversarial_addback`):
an attack costs a few hundred model queries per parent.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from schemas.rows import Origin, Split, conform_rows, content_id, empty_rows, family_weights
from stages.augmenters import ADVERSARIAL_OP


def adversarial_children(rows: pa.Table, parents: pa.Table, recipe: str, query_budget: int, head_l2: float | None, seed: int,
                         embedding_mode: str = "truncate") -> pa.Table:
    """Candidate children of `parents`: each successful attack's text on the head trained on `rows`' labeled rows."""
    from model_hooks.embedder import get_embedder
    from model_hooks.robustness import SharedEmbeddings, attack_texts
    from model_hooks.trainers import HeadTrainer, linear_probabilities

    labeled = rows.filter(pc.equal(rows.column("split"), Split.LABELED.value))
    labels = sorted(set(labeled.column("label").to_pylist()))
    if parents.num_rows == 0 or len(labels) < 2:
        return empty_rows()
    vectors = get_embedder(embedding_mode).embed(labeled.column("text").to_pylist())
    weight, bias = HeadTrainer(embedding_mode=embedding_mode, l2=head_l2).fit_weights(
        vectors, labeled.column("label").to_pylist(), labels, seed, family_weights(labeled))
    embed = SharedEmbeddings.of(get_embedder(embedding_mode, cache_dir=None))
    texts, parent_labels = parents.column("text").to_pylist(), parents.column("label").to_pylist()
    attacked = attack_texts(lambda batch: linear_probabilities(embed(batch), weight, bias), texts,
                            [labels.index(label) for label in parent_labels], recipe, query_budget, seed)
    found = [(parent_id, text, label) for parent_id, text, label in zip(parents.column("id").to_pylist(), attacked, parent_labels) if text]
    return conform_rows(pa.table({
        "id": pa.array([content_id(parent_id, ADVERSARIAL_OP, text) for parent_id, text, _ in found], pa.string()),
        "text": pa.array([text for _, text, _ in found], pa.string()),
        "label": pa.array([label for *_, label in found], pa.string()),
        "parent_id": pa.array([parent_id for parent_id, *_ in found], pa.string()),
        "op": pa.array([ADVERSARIAL_OP] * len(found), pa.string()),
        "split": pa.array([Split.LABELED.value] * len(found), pa.string()),
        "origin": pa.array([Origin.AUGMENTED.value] * len(found), pa.string()),
    }))
