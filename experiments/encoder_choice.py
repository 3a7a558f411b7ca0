"""Choosing a sentence encoder per data set from its labeled rows alone (`embedding.model` lists several).

Each candidate embeds the labeled rows; the head's out-of-fold macro-F1 at its best L2
(`model_hooks.trainers.choose_head_l2`, the cross-validation that already picks the head's L2 per
cell) scores it. The best score wins; a tie, or rows too few to fold (no class with 2 rows), goes
to the first listed. No eval row is read, so the choice is as honest as any other tuning step.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from model_hooks.embedder import get_embedder
from model_hooks.encoders import encoder_spec, resolve_encoder, use_encoder
from model_hooks.trainers import choose_head_l2
from schemas.rows import Split


@dataclass(frozen=True)
class EncoderChoice:
    """The chosen encoder's spec and name, and every candidate's inner score (out-of-fold macro-F1, None: not scored)."""

    spec: str
    name: str
    scores: dict[str, float | None]

    def as_record(self) -> dict:
        return {"chosen": self.name, "inner_macro_f1": self.scores,
                "rule": "best out-of-fold macro-F1 of the head on the labeled rows; ties to the first listed"}


def choose_encoder(specs: list[str], texts: list[str], text_labels: list[str], labels: list[str], seed: int,
                   embedding_mode: str = "truncate") -> EncoderChoice:
    """The encoder of `specs` whose embeddings give the head the best cross-validated macro-F1 on these rows."""
    names = [resolve_encoder(encoder_spec(spec)).name for spec in specs]
    scores: dict[str, float | None] = dict.fromkeys(names)
    for spec, name in zip(specs, names) if texts else ():
        with use_encoder(spec):
            vectors = get_embedder(embedding_mode).embed(texts)
        by_l2 = choose_head_l2(vectors, list(text_labels), list(labels), seed)[1]
        scores[name] = max(by_l2.values()) if by_l2 else None
    # max() keeps the first of equal scores; an unscored candidate ranks below every scored one
    best = max(range(len(specs)), key=lambda i: -1.0 if scores[names[i]] is None else scores[names[i]])
    return EncoderChoice(spec=specs[best], name=names[best], scores=scores)


def cell_encoder(drawn: pa.Table, config, labels: list[str], seed: int) -> tuple[str, EncoderChoice | None]:
    """The encoder spec a (k, seed) cell embeds with: the configured one, or the choice on its drawn labeled rows."""
    models = config.embedding.models
    if len(models) == 1:
        return models[0], None
    labeled = drawn.filter(pc.equal(drawn.column("split"), Split.LABELED.value))
    choice = choose_encoder(models, labeled.column("text").to_pylist(), labeled.column("label").to_pylist(), labels, seed,
                            config.experiment.embedding_mode)
    return choice.spec, choice
