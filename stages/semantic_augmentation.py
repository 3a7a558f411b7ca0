"""Stage 2, semantic augmentation: new labeled rows that keep their parent's meaning and label.

Every labeled original row is a parent. Each configured op (stages/augmenters.py) makes
`per_example` children per parent. Children pass four gates, in order:
`protected_term_lost` (a domain term of the parent is missing: the one place protected terms
are enforced for all augmenters), `duplicates_eval_row` (an exact or near duplicate of an eval
row, as cleaning and the data contract define it), `duplicate_candidate` (the same text exists
already), and the embedding-similarity gate: below `min_similarity` the meaning changed
(`too_dissimilar`), above `max_similarity` the child is a near copy that teaches nothing (`near_copy`).
Children of `robustness` ops (typos, OCR errors: stages.augmenters.OP_PURPOSES) move an embedding
further than a rewrite of the same meaning does, so their floor is `robustness_min_similarity`.

Row accounting for a stage that adds rows: rows_in + generated = rows_out + rows rejected.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator

from schemas.minhash import eval_duplicate_of, signed_keys
from schemas.rows import Origin, Split, conform_rows, content_id, empty_rows
from schemas.strict import StrictModel
from schemas.text_keys import duplicate_keys, key_hashes, repaired_keys
from schemas.text_normalization import dedup_key_column
from schemas.words import keeps_protected_terms
from stages.adversarial_addback import adversarial_children
from stages.augmenters import ADVERSARIAL_OP, AUGMENTER_NAMES, ROBUSTNESS, build_augmenter, op_purpose
from stages.base import ReasonLedger, StageResult
from stages.cleaning import CleaningConfig

STAGE = "augment"
REASONS = ["protected_term_lost", "duplicates_eval_row", "duplicate_candidate", "too_dissimilar", "near_copy"]


class AugmentationConfig(StrictModel):
    """Which augmenters run, how many children each makes per parent, how strong, and the gate."""

    enabled: bool = True
    ops: list[str] = Field(default_factory=lambda: list(AUGMENTER_NAMES))
    per_example: int = Field(1, ge=1, le=32, description="children per parent and op")
    max_parents_per_class: int | None = Field(
        10, ge=1, description="augment at most this many labeled rows per class, drawn by seed (null: all)"
    )
    strength: float = Field(0.1, gt=0.0, le=1.0, description="share of words, characters or sentences changed")
    min_similarity: float = Field(0.85, ge=-1.0, le=1.0, description="cosine below this: too_dissimilar")
    robustness_min_similarity: float = Field(
        0.7, ge=-1.0, le=1.0, description="the floor for children of robustness ops (typos move an embedding more than a "
        "rewrite of the same meaning does): below it their meaning is gone (too_dissimilar)")
    max_similarity: float = Field(0.995, ge=-1.0, le=1.0, description="cosine above this: near_copy")
    embedding_mode: str = Field("truncate", pattern="^(truncate|chunk_mean)$")
    adversarial_addback: bool = Field(
        False, description="also attack each parent on the head trained on the labeled rows and keep successful attack texts "
        "as children (op adversarial, purpose robustness); costs a few hundred model queries per parent")
    adversarial_recipe: Literal["deepwordbug", "pruthi"] = "deepwordbug"
    adversarial_query_budget: int = Field(300, ge=10, description="model queries per attacked parent")
    goal: Literal["accuracy", "robustness"] = Field(
        "accuracy", description="what an experiment's self-tuning keeps stages and ops for: accuracy on clean held-out rows, "
        "or robustness: clean held-out rows and their noisy copies (char@0.10) together")

    @field_validator("ops")
    @classmethod
    def _known_ops(cls, ops: list[str]) -> list[str]:
        unknown = sorted(set(ops) - set(AUGMENTER_NAMES))
        if unknown:
            raise ValueError(f"unknown augmentation ops {unknown}; choose from {list(AUGMENTER_NAMES)}")
        return ops


@dataclass(frozen=True)
class AugmentationInputs:
    """What augmentation needs from the domain: terms to protect and in-domain word vectors."""

    protected_terms: frozenset[str] = frozenset()
    vectors: object | None = None


def _child_seed(seed: int, parent_id: str, op: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{parent_id}:{op}".encode()).digest()[:4], "big")


# Children of one parent text by one op, seed and inputs, kept per process: an experiment's inner
# cross-validation folds augment the same parents again with the same resources.
_CHILDREN: dict[tuple, list[str]] = {}
_CHILDREN_LIMIT = 200_000


def _children_of(augmenter, op: str, text: str, seed: int, parent_id: str, config: AugmentationConfig, inputs: AugmentationInputs, inputs_key: str) -> list[str]:
    key = (op, text, _child_seed(seed, parent_id, op), config.per_example, config.strength, inputs_key)
    if key not in _CHILDREN:
        if len(_CHILDREN) >= _CHILDREN_LIMIT:
            _CHILDREN.clear()
        _CHILDREN[key] = augmenter().augment(text, config.per_example, key[2], inputs.protected_terms)
    return _CHILDREN[key]


def _inputs_fingerprint(inputs: AugmentationInputs) -> str:
    """What the children depend on besides parent, op and seed: the protected terms and the word vectors."""
    digest = hashlib.sha256("\x1f".join(sorted(inputs.protected_terms)).encode("utf-8"))
    if inputs.vectors is not None:
        digest.update(np.ascontiguousarray(inputs.vectors.vectors).tobytes())
        digest.update("\x1f".join(inputs.vectors.index_to_key).encode("utf-8"))
    return digest.hexdigest()


def generate_children(parents: pa.Table, config: AugmentationConfig, inputs: AugmentationInputs, seed: int) -> tuple[pa.Table, dict, dict]:
    """Candidate rows from every op for every parent, a note per op that could not run, seconds per op."""
    ids, texts, labels = (parents.column(name).to_pylist() for name in ("id", "text", "label"))
    rows = {"id": [], "text": [], "label": [], "parent_id": [], "op": []}
    not_run, seconds = {}, {}
    inputs_key = _inputs_fingerprint(inputs)
    for op in config.ops:
        op_started = time.perf_counter()
        if op == "word_vector" and inputs.vectors is None:
            not_run[op] = "no in-domain word vectors (needs unlabeled or labeled in-domain text)"
            continue
        built = []

        def augmenter(op=op):  # built only when a child is not cached
            if not built:
                built.append(build_augmenter(op, config.strength, vectors=inputs.vectors))
            return built[0]

        for parent_id, text, label in zip(ids, texts, labels):
            for child in _children_of(augmenter, op, text, seed, parent_id, config, inputs, inputs_key):
                rows["id"].append(content_id(parent_id, op, child))
                rows["text"].append(child)
                rows["label"].append(label)
                rows["parent_id"].append(parent_id)
                rows["op"].append(op)
        seconds[op] = round(time.perf_counter() - op_started, 3)
    n = len(rows["id"])
    table = pa.table(
        {
            **{name: pa.array(values, pa.string()) for name, values in rows.items()},
            "split": pa.array([Split.LABELED.value] * n, pa.string()),
            "origin": pa.array([Origin.AUGMENTED.value] * n, pa.string()),
        }
    )
    return conform_rows(table), not_run, seconds


def _cosine_to_parent(children: pa.Table, parent_text: dict[str, str], mode: str) -> np.ndarray:
    from model_hooks.embedder import get_embedder

    child_texts = children.column("text").to_pylist()
    # one call: a child whose first word pieces (as many as the encoder reads) equal its parent's shares the parent's vector
    vectors = get_embedder(mode).embed(child_texts + [parent_text[p] for p in children.column("parent_id").to_pylist()])
    return (vectors[: len(child_texts)] * vectors[len(child_texts):]).sum(axis=1)


@dataclass
class GeneratedChildren:
    """Candidate children, a note per op that could not run, and seconds spent per op."""

    table: pa.Table
    not_run: dict[str, str]
    seconds_by_op: dict[str, float]

    @classmethod
    def merge(cls, parts: list["GeneratedChildren"], ops: list[str]) -> "GeneratedChildren":
        """Join the children of consecutive parent shards in the order one process makes them (op-major)."""
        table = pa.concat_tables([part.table for part in parts]) if parts else empty_rows()
        rank = {op: index for index, op in enumerate(ops)}
        order = np.argsort(np.asarray([rank[op] for op in table.column("op").to_pylist()], dtype=np.int64), kind="stable")
        seconds: dict[str, float] = {}
        for part in parts:
            for op, value in part.seconds_by_op.items():
                seconds[op] = round(seconds.get(op, 0.0) + value, 3)
        not_run = {op: note for part in parts for op, note in part.not_run.items()}
        return cls(table.take(pa.array(order, pa.int64())), not_run, seconds)


def augmentation_parents(rows: pa.Table, max_per_class: int | None = None, seed: int = 0) -> pa.Table:
    """The rows augmentation makes children of: labeled originals, at most `max_per_class` per label.

    Which rows of a larger class are picked depends only on the seed and each row's id, so adding
    rows to a class does not change which of the old ones are picked unless they are outranked.
    """
    is_parent = (pl.Series(rows.column("split").combine_chunks()) == Split.LABELED.value) & (
        pl.Series(rows.column("origin").combine_chunks()) == Origin.ORIGINAL.value
    )
    parents = rows.filter(pa.array(is_parent.to_numpy()))
    if max_per_class is None or parents.num_rows == 0:
        return parents
    ids, labels = parents.column("id").to_pylist(), parents.column("label").to_pylist()
    rank = [hashlib.sha256(f"{seed}:parent:{row_id}".encode()).hexdigest() for row_id in ids]
    picked = (
        pl.DataFrame({"row": range(len(ids)), "label": labels, "rank": rank})
        .filter(pl.col("rank").rank("ordinal").over("label") <= max_per_class)["row"]
        .sort()
    )
    return parents.take(pa.array(picked.to_numpy()))


def generate(parents: pa.Table, config: AugmentationConfig, inputs: AugmentationInputs, seed: int) -> GeneratedChildren:
    """Every op's children of `parents` (children of a parent do not depend on the other parents)."""
    if not config.enabled:
        return GeneratedChildren(empty_rows(), {}, {})
    return GeneratedChildren(*generate_children(parents, config, inputs, seed))


def eval_duplicates(rows: pa.Table, texts: pa.Array, cleaning: CleaningConfig) -> list[str | None]:
    """Per text: the id of the eval row of `rows` it is an exact or near duplicate of, else None.

    The test of the augmented contract (data_contracts.suites.duplicates_eval_column), in one batched
    call: texts keyed as they are, eval texts (unchanged raw text) repaired first as cleaning repairs them.
    """
    evals = rows.filter(pc.equal(rows.column("split"), Split.EVAL.value))
    if len(texts) == 0 or evals.num_rows == 0:
        return [None] * len(texts)
    keys = pl.concat([duplicate_keys(pl.Series(texts).cast(pl.String)),
                      repaired_keys(pl.Series(evals.column("text").combine_chunks()).cast(pl.String), cleaning)])
    params = cleaning.minhash if cleaning.near_duplicates else None
    side = np.r_[np.zeros(len(texts), dtype=bool), np.ones(evals.num_rows, dtype=bool)]
    found = eval_duplicate_of(key_hashes(keys), side, params, signed_keys(keys, params) if params else None)[: len(texts)]
    eval_ids = evals.column("id").to_pylist()
    return [eval_ids[position - len(texts)] if position >= 0 else None for position in found.tolist()]


def pre_gate_ledger(rows: pa.Table, children: pa.Table, parent_text: dict[str, str], protected_terms: frozenset[str],
                    cleaning: CleaningConfig = CleaningConfig()) -> ReasonLedger:
    """The children's ledger after the gates that need no embedding: `protected_term_lost`, `duplicates_eval_row`
    (an eval row's exact or near duplicate, by `cleaning`'s keys), then `duplicate_candidate` (the text of a row
    in `rows` or of an earlier child). The children it keeps go to the similarity gate."""
    ledger = ReasonLedger(children.num_rows, REASONS)
    child_texts = children.column("text").to_pylist()
    lineage = zip(children.column("parent_id").to_pylist(), children.column("op").to_pylist(), child_texts)
    lost = [(i, parent_text[parent], op, text) for i, (parent, op, text) in enumerate(lineage)
            if not keeps_protected_terms(parent_text[parent], text, protected_terms, op)]
    ledger.reject(np.asarray([i for i, *_ in lost], dtype=np.int64), "protected_term_lost",
                  ["lost " + ", ".join(_lost_terms(parent, text, protected_terms, op)) for _, parent, op, text in lost])

    alive = np.flatnonzero(ledger.kept_mask)
    duplicated = eval_duplicates(rows, children.column("text").take(pa.array(alive, pa.int64())).combine_chunks(), cleaning)
    leaks = [(row, eval_id) for row, eval_id in zip(alive.tolist(), duplicated) if eval_id is not None]
    ledger.reject(np.asarray([row for row, _ in leaks], dtype=np.int64), "duplicates_eval_row",
                  [f"duplicate of eval row {eval_id}" for _, eval_id in leaks])

    existing = dict(zip(dedup_key_column(pl.Series(rows.column("text").combine_chunks())).to_list(), rows.column("id").to_pylist()))
    keys = dedup_key_column(pl.Series(child_texts, dtype=pl.String)).to_list() if child_texts else []
    repeated = []
    for index, (key, child_id) in enumerate(zip(keys, children.column("id").to_pylist())):
        if ledger.codes[index] == 0 and key in existing:
            repeated.append((index, existing[key]))
        existing.setdefault(key, child_id)
    ledger.reject(np.asarray([index for index, _ in repeated], dtype=np.int64), "duplicate_candidate",
                  [f"duplicate of {row_id}" for _, row_id in repeated])
    return ledger


def _lost_terms(parent: str, child: str, protected_terms: frozenset[str], op: str) -> list[str]:
    """The protected terms of `parent` that `child` lost (the detail of a `protected_term_lost` reject)."""
    lowered = parent.lower()
    return [term for term in sorted(protected_terms)
            if term.lower() in lowered and not keeps_protected_terms(parent, child, frozenset({term}), op)]


def augment(rows: pa.Table, config: AugmentationConfig, inputs: AugmentationInputs, seed: int,
            generated: GeneratedChildren | None = None, cleaning: CleaningConfig = CleaningConfig()) -> StageResult:
    """Return the input rows plus the children that pass every gate; rejected children with reasons.

    `generated` holds children made elsewhere (parent shards on workers); by default they are made here.
    `cleaning` is the run's cleaning config: its duplicate keys decide which children duplicate an eval row.
    """
    started = time.perf_counter()
    rows = conform_rows(rows)
    parents = augmentation_parents(rows, config.max_parents_per_class, seed)
    if generated is None:
        generated = generate(parents, config, inputs, seed)
    children, not_run, op_seconds = generated.table, generated.not_run, generated.seconds_by_op
    if config.enabled and config.adversarial_addback:
        addback_started = time.perf_counter()
        children = pa.concat_tables([children, adversarial_children(rows, parents, config.adversarial_recipe, config.adversarial_query_budget,
                                                                    None, seed, config.embedding_mode)])
        op_seconds = {**op_seconds, ADVERSARIAL_OP: round(time.perf_counter() - addback_started, 3)}
    parent_text = dict(zip(parents.column("id").to_pylist(), parents.column("text").to_pylist()))
    ledger = pre_gate_ledger(rows, children, parent_text, inputs.protected_terms, cleaning)

    gate_started = time.perf_counter()
    similarity = np.full(children.num_rows, np.nan)
    alive = np.flatnonzero(ledger.kept_mask)
    if len(alive):
        similarity[alive] = _cosine_to_parent(children.take(pa.array(alive)), parent_text, config.embedding_mode)
        floor = np.where([op_purpose(op) == ROBUSTNESS for op in children.column("op").to_pylist()],
                         config.robustness_min_similarity, config.min_similarity)
        low = alive[similarity[alive] < floor[alive]]
        ledger.reject(low, "too_dissimilar", [f"similarity {similarity[i]:.3f} < {floor[i]:.2f}" for i in low])
        high = alive[similarity[alive] > config.max_similarity]
        ledger.reject(high, "near_copy", [f"similarity {similarity[i]:.3f}" for i in high])
    gate_seconds = time.perf_counter() - gate_started
    children = children.set_column(
        children.schema.get_field_index("similarity"), children.schema.field("similarity"), pa.array(similarity, pa.float64(), from_pandas=True)
    )
    kept_children = children.filter(pa.array(ledger.kept_mask))
    by_op = pl.DataFrame({"op": children.column("op").to_pylist(), "kept": ledger.kept_mask}) if children.num_rows else None
    stats = {
        "rows_in": rows.num_rows,
        "generated": children.num_rows,
        "rows_out": rows.num_rows + kept_children.num_rows,
        **ledger.counts(),
        "kept_by_op": {} if by_op is None else {r["op"]: int(r["kept"]) for r in by_op.group_by("op").agg(pl.col("kept").sum()).iter_rows(named=True)},
        "generated_by_op": {} if by_op is None else {r["op"]: int(r["len"]) for r in by_op.group_by("op").len().iter_rows(named=True)},
        "purpose_by_op": {op: op_purpose(op) for op in [*config.ops, *([ADVERSARIAL_OP] if config.adversarial_addback else [])]},
        "ops_not_run": not_run,
        "protected_terms": len(inputs.protected_terms),
        "seconds_by_op": op_seconds,
        "similarity_gate_seconds": round(gate_seconds, 3),
        "seconds": round(time.perf_counter() - started, 3),
    }
    return StageResult(kept=pa.concat_tables([rows, kept_children]), rejected=ledger.rejects_table(children, STAGE), stats=stats)
