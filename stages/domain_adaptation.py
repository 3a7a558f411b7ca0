"""Stage 3, domain adaptation: keep the data in the target domain and add pseudo-labeled rows.

Domain resources come from the in-domain text of the run (labeled and unlabeled rows, never
eval): a lexicon of domain terms (protected from augmenters) and word vectors (domain
synonyms for the `word_vector` augmenter). The stage itself:

- relevance: every non-eval row gets `domain_score`, the cosine between its embedding and the
  centroid of the original in-domain rows; an augmented row scoring below the
  `relevance_quantile` of the original rows is rejected as `off_domain`;
- pseudo-labeling: unlabeled rows predicted with at least `pseudo_min_confidence` (default:
  twice the chance level, 2 / classes, at most 0.9) become labeled rows with
  `origin = pseudo_labeled`, at most `pseudo_per_class` per class (default: `pseudo_cap_multiple`
  times the class's labeled originals), and with `balance` equally many per class. With
  `label_name_prior`, the labeling head's probabilities are multiplied by a zero-shot prior from
  each row's similarity to the class names (`stages.label_names`; its temperature is fitted on the
  labeled originals, and names that do not fit them significantly better than chance are not
  used). With several rounds, predictions are cross-fitted: the unlabeled rows are split in two
  folds by id, and a fold is labeled by a model trained only on the labeled rows and the other
  fold's pseudo-labels, so no row's label comes from a model that saw the row.
"""

from __future__ import annotations

import hashlib
import time
from functools import lru_cache

import numpy as np
import pyarrow as pa
from pydantic import Field

from schemas.rows import Origin, Split, column_values, conform_rows, family_keys, weights_of_families
from schemas.strict import StrictModel
from stages.base import ReasonLedger, StageResult
from stages.semantic_augmentation import AugmentationInputs

STAGE = "adapt"
REASONS = ["off_domain"]
PSEUDO_LABEL_OP = "pseudo_label"


class DomainConfig(StrictModel):
    enabled: bool = True
    protect_terms: bool = True
    lexicon_size: int = Field(200, ge=0)
    word_vectors: bool = True
    # The vectors belong to the in-domain text, not to a run's seed: cells of an experiment with other
    # seeds share the same pool, so they share one trained model instead of retraining it per seed.
    word_vector_seed: int = 0
    relevance_filter: bool = True
    relevance_quantile: float = Field(0.02, ge=0.0, lt=1.0)
    pseudo_label: bool = True
    pseudo_min_confidence: float | None = Field(None, gt=0.0, le=1.0, description="default: min(0.9, 2 / number of classes)")
    pseudo_per_class: int | None = Field(None, ge=0, description="default: pseudo_cap_multiple x the class's labeled originals")
    pseudo_cap_multiple: float = Field(5.0, gt=0.0)
    # the head trainer weighs classes by their counts, so unequal pseudo-label counts do not skew it
    balance: bool = False
    pseudo_rounds: int = Field(1, ge=1, le=5)
    label_name_prior: bool = Field(True, description="weigh the labeling head's predictions by the rows' similarity to the class names")
    pseudo_head_l2: float | None = Field(None, gt=0.0, description="the labeling head's L2 (1/C); null: chosen by cross-validation on the labeled originals")
    embedding_mode: str = Field("truncate", pattern="^(truncate|chunk_mean)$")


def in_domain_texts(rows: pa.Table) -> list[str]:
    """Original labeled and unlabeled texts: the in-domain text the run may learn from."""
    keep = (column_values(rows, "split") != Split.EVAL.value) & (column_values(rows, "origin") == Origin.ORIGINAL.value)
    return [text for text, chosen in zip(rows.column("text").to_pylist(), keep) if chosen]


def build_domain_inputs(rows: pa.Table, config: DomainConfig) -> AugmentationInputs:
    """Protected terms and word vectors mined from the run's in-domain text (eval excluded)."""
    texts = in_domain_texts(rows)
    if not config.enabled or not texts:
        return AugmentationInputs()
    digest = hashlib.sha256("\x1e".join(texts).encode("utf-8")).hexdigest()
    return _domain_inputs(digest, tuple(texts), config)


@lru_cache(maxsize=4)
def _domain_inputs(digest: str, texts: tuple[str, ...], config: DomainConfig) -> AugmentationInputs:
    """Cached per process: experiment cells share one pool, so they share one lexicon and one model."""
    del digest  # part of the cache key only; hashing a tuple of long texts is slower
    terms = frozenset()
    if config.protect_terms and config.lexicon_size:
        from stages.domain_lexicon import mine_domain_terms

        terms = frozenset(term for term, _ in mine_domain_terms(list(texts), top_n=config.lexicon_size))
    vectors = None
    if config.word_vectors:
        from model_hooks.word_vectors import train_word_vectors

        try:
            vectors = train_word_vectors(list(texts), seed=config.word_vector_seed)
        except ValueError:
            vectors = None  # too little in-domain text; the word_vector op then reports it did not run
    return AugmentationInputs(protected_terms=terms, vectors=vectors)


def _fold(row_id: str) -> int:
    return hashlib.sha256(row_id.encode()).digest()[0] % 2


def adapt(rows: pa.Table, config: DomainConfig, seed: int) -> StageResult:
    """Score domain relevance, reject off-domain synthetic rows, add pseudo-labeled rows."""
    from model_hooks.embedder import get_embedder

    started = time.perf_counter()
    rows = conform_rows(rows)
    ledger = ReasonLedger(rows.num_rows, REASONS)
    stats = {"rows_in": rows.num_rows}
    if not config.enabled:
        return StageResult(rows, ledger.rejects_table(rows, STAGE), {**stats, "rows_out": rows.num_rows, **ledger.counts(), "seconds": 0.0})
    split, origin = column_values(rows, "split"), column_values(rows, "origin")
    non_eval = split != Split.EVAL.value
    original = non_eval & (origin == Origin.ORIGINAL.value)
    embedder = get_embedder(config.embedding_mode)
    vectors = np.zeros((rows.num_rows, embedder.dimensions), dtype=np.float32)
    vectors[non_eval] = embedder.embed([t for t, keep in zip(rows.column("text").to_pylist(), non_eval) if keep])

    centroid = vectors[original].mean(axis=0)
    centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
    score = np.where(non_eval, vectors @ centroid, np.nan)
    rows = rows.set_column(rows.schema.get_field_index("domain_score"), rows.schema.field("domain_score"), pa.array(score, pa.float64(), from_pandas=True))
    if config.relevance_filter and original.any():
        floor = float(np.quantile(score[original], config.relevance_quantile))
        off = np.flatnonzero(non_eval & ~original & (score < floor))
        ledger.reject(off, "off_domain", [f"domain score {score[i]:.3f} < {floor:.3f}" for i in off])
        stats["relevance_floor"] = round(floor, 6)

    if config.pseudo_label:
        rows, pseudo_stats = _pseudo_label(rows, vectors, ledger.kept_mask, config, seed, embedder.embed)
        stats.update(pseudo_stats)
    kept = rows.filter(pa.array(ledger.kept_mask))
    stats.update({"rows_out": kept.num_rows, **ledger.counts(), "seconds": round(time.perf_counter() - started, 3)})
    return StageResult(kept=kept, rejected=ledger.rejects_table(rows, STAGE), stats=stats)


def _label_name_prior(vectors: np.ndarray, labeled_originals: np.ndarray, labels: np.ndarray, classes: list[str], embed) -> tuple[np.ndarray | None, dict]:
    """Per-row class probabilities from the class names (None if the names tell nothing), and its stats."""
    from stages.label_names import name_prior, name_text

    names = embed([name_text(label) for label in classes])
    targets = np.asarray([classes.index(label) for label in labels[labeled_originals]], dtype=int)
    prior, temperature = name_prior(vectors, vectors[labeled_originals], targets, names)
    accuracy = float(((vectors[labeled_originals] @ names.T).argmax(axis=1) == targets).mean()) if len(targets) else 0.0
    return prior, {"label_name_temperature": temperature, "label_name_accuracy": round(accuracy, 4)}


def default_min_confidence(n_classes: int) -> float:
    """Twice the chance level, at most 0.9: the pseudo-label threshold unless `pseudo_min_confidence` is set."""
    return min(0.9, 2.0 / n_classes)


def _pseudo_label(rows: pa.Table, vectors: np.ndarray, alive: np.ndarray, config: DomainConfig, seed: int, embed) -> tuple[pa.Table, dict]:
    """Turn confidently predicted unlabeled rows into labeled `pseudo_labeled` rows.

    The labeling head counts a labeled row and its augmented children as one example (family
    weights), as the experiment's trainers do, and each pseudo-labeled row as one.
    """
    from model_hooks.trainers import HeadTrainer, choose_head_l2

    split, labels_column = column_values(rows, "split"), column_values(rows, "label")
    labeled = np.flatnonzero(alive & (split == Split.LABELED.value))
    families = np.asarray(family_keys(rows), dtype=object)
    labeled_weights = weights_of_families(families[labeled].tolist()) if len(labeled) else np.zeros(0)
    unlabeled = np.flatnonzero(alive & (split == Split.UNLABELED.value))
    classes = sorted(set(labels_column[labeled]))
    if len(classes) < 2 or len(unlabeled) == 0:
        return rows, {"pseudo_labeled": 0}
    originals = column_values(rows, "origin")[labeled] == Origin.ORIGINAL.value
    cap = {c: config.pseudo_per_class if config.pseudo_per_class is not None
           else int(config.pseudo_cap_multiple * (labels_column[labeled][originals] == c).sum()) for c in classes}
    threshold = config.pseudo_min_confidence if config.pseudo_min_confidence is not None else default_min_confidence(len(classes))
    folds = np.asarray([_fold(i) for i in column_values(rows, "id")[unlabeled]])
    prior, stats = None, {}
    if config.label_name_prior:
        prior, stats = _label_name_prior(vectors, labeled[originals], labels_column, classes, embed)
    chosen: dict[int, tuple[str, float]] = {}
    l2 = config.pseudo_head_l2
    if l2 is None:
        l2 = choose_head_l2(vectors[labeled[originals]], labels_column[labeled[originals]].tolist(), classes, seed)[0]
    trainer = HeadTrainer(l2=l2)
    for _ in range(config.pseudo_rounds):
        proposals: dict[int, tuple[str, float]] = {}
        for fold in (0, 1):
            train_rows = list(labeled) + [row for row in chosen if folds[np.searchsorted(unlabeled, row)] != fold]
            train_labels = [labels_column[row] if row not in chosen else chosen[row][0] for row in train_rows]
            targets = unlabeled[folds == fold]
            if len(targets) == 0:
                continue
            weights = np.concatenate([labeled_weights, np.ones(len(train_rows) - len(labeled))])
            probabilities = trainer.fit_predict_proba_vectors(vectors[train_rows], train_labels, vectors[targets], classes, seed, weights)
            if prior is not None:
                probabilities = probabilities * prior[targets]
                probabilities /= probabilities.sum(axis=1, keepdims=True)
            for row, p in zip(targets, probabilities):
                proposals[int(row)] = (classes[int(p.argmax())], float(p.max()))
        chosen = select_pseudo_labels(proposals, cap, threshold, config.balance)
    rows = _promote(rows, chosen)
    per_class = {c: sum(1 for label, _ in chosen.values() if label == c) for c in classes}
    return rows, {"pseudo_labeled": len(chosen), "pseudo_labeled_by_class": per_class, "pseudo_head_l2": l2, **stats}


def select_pseudo_labels(proposals: dict[int, tuple[str, float]], cap: dict[str, int], threshold: float, balance: bool) -> dict[int, tuple[str, float]]:
    """The most confident proposals per class at or above the threshold, capped, optionally balanced."""
    by_class: dict[str, list[tuple[float, int]]] = {c: [] for c in cap}
    for row, (label, confidence) in proposals.items():
        if confidence >= threshold:
            by_class[label].append((confidence, row))
    for label in by_class:
        by_class[label].sort(key=lambda item: (-item[0], item[1]))
    counts = {label: min(cap[label], len(items)) for label, items in by_class.items()}
    if balance:
        nonzero = [count for count in counts.values() if count]
        level = min(nonzero) if nonzero else 0
        counts = {label: min(count, level) for label, count in counts.items()}
    return {row: (label, confidence) for label, items in by_class.items() for confidence, row in items[: counts[label]]}


def limit_pseudo_labels(rows: pa.Table, multiple: float) -> pa.Table:
    """`rows` with at most `multiple` x (the class's labeled originals) pseudo-labeled rows per class: the
    most confident ones (`label_agreement`, ties by id). Other rows are unchanged."""
    origin, labels = column_values(rows, "origin"), column_values(rows, "label")
    split = column_values(rows, "split")
    originals = (origin == Origin.ORIGINAL.value) & (split == Split.LABELED.value)
    pseudo = np.flatnonzero(origin == Origin.PSEUDO_LABELED.value)
    confidence, ids = column_values(rows, "label_agreement"), column_values(rows, "id")
    keep = np.ones(rows.num_rows, dtype=bool)
    for label in set(labels[pseudo].tolist()):
        members = sorted(pseudo[labels[pseudo] == label], key=lambda row: (-float(confidence[row]), ids[row]))
        cap = int(multiple * int((originals & (labels == label)).sum()))
        keep[members[cap:]] = False
    return rows if keep.all() else rows.filter(pa.array(keep))


def _promote(rows: pa.Table, chosen: dict[int, tuple[str, float]]) -> pa.Table:
    """Mark the chosen unlabeled rows as labeled, pseudo-labeled, with their label and confidence."""
    columns = {name: rows.column(name).to_pylist() for name in ("split", "origin", "op", "label", "label_agreement")}
    for row, (label, confidence) in chosen.items():
        columns["split"][row] = Split.LABELED.value
        columns["origin"][row] = Origin.PSEUDO_LABELED.value
        columns["op"][row] = PSEUDO_LABEL_OP
        columns["label"][row] = label
        columns["label_agreement"][row] = confidence
    for name, values in columns.items():
        field = rows.schema.field(name)
        rows = rows.set_column(rows.schema.get_field_index(name), field, pa.array(values, field.type))
    return rows
