"""One cell of the experiment: draw k per class with a seed, tune, curate, train every arm, score on
the configured half of the eval rows (`test` by default; `dev` for tuning work)."""

from __future__ import annotations

import hashlib
import time

import pyarrow as pa
import pyarrow.compute as pc

from experiments.encoder_choice import cell_encoder
from experiments.metrics import classification_scores
from experiments.noise import CLEAN, WordNoiseLexicon, learn_abbreviations, noisy_copy, parse_noise
from experiments.references import NamePriorHead
from experiments.sampling import draw_k_shot
from experiments.self_tuning import Tuning, tune_pipeline, without_ops
from experiments.typo_reading import typo_reader
from model_hooks.embedder import get_embedder
from model_hooks.encoders import use_encoder
from model_hooks.trainers import choose_head_l2, make_trainer
from schemas.rows import Split, family_keys
from stages.augmenters import ADVERSARIAL_OP, wordnet_synonyms
from stages.domain_adaptation import PSEUDO_LABEL_OP
from stages.ingest import eval_part
from stages.pipeline import STAGE_NAMES, run_pipeline


def _split(rows: pa.Table, split: Split) -> pa.Table:
    return rows.filter(pc.equal(rows.column("split"), split.value))


def training_arms(drawn: pa.Table, config, seed: int, tuning: Tuning | None = None, memo: dict | None = None) -> tuple[dict[str, pa.Table], dict]:
    """Labeled training rows per arm, and the stage stats of the curated arm's pipeline run.

    `curated` is the pipeline as `tuning` chose it (every stage when there is no tuning; the raw rows
    when tuning found that no curation helps). `all_stages` is the untuned pipeline, so the effect
    of tuning shows. `without:<stage>` reruns the untuned pipeline with that stage off. `without:<op>`
    removes the rows an op contributed from the untuned rows (downstream decisions are not recomputed).
    """
    arms = {"raw": _split(drawn, Split.LABELED)}
    if not config.experiment.curated_arms:
        return arms, {}
    memo = {} if memo is None else memo  # stage prefixes shared by the arms (and with the tuning)
    full, full_stats = run_pipeline(drawn, config, seed, memo=memo)
    full = _split(full, Split.LABELED)
    stats = full_stats
    if tuning is None:
        arms["curated"] = full
    elif not tuning.curate:
        arms["curated"], stats = arms["raw"], {}
    else:
        curated, stats = run_pipeline(drawn, config, seed, skip=tuning.skip, memo=memo)
        curated = _split(curated, Split.LABELED)
        arms["curated"] = tuning.apply(curated)
    if tuning is not None:
        arms["all_stages"] = full
    if config.experiment.ablations:
        for stage in STAGE_NAMES:
            without, _ = run_pipeline(drawn, config, seed, skip=frozenset({stage}), memo=memo)
            arms[f"without:{stage}"] = _split(without, Split.LABELED)
        for op in ablated_ops(config, full):
            arms[f"without:{op}"] = without_ops(full, frozenset({op}))
    return arms, stats


def ablated_ops(config, curated: pa.Table) -> list[str]:
    """Every op the config runs and every op found in the curated rows.

    An op whose rows were all rejected in a cell still gets its arm (then identical to `curated`, and
    trained once), so every op is reported for every seed instead of only where it survived.
    """
    ops = set(curated.column("op").drop_null().to_pylist())
    if config.augmentation.enabled:
        ops |= set(config.augmentation.ops) | ({ADVERSARIAL_OP} if config.augmentation.adversarial_addback else set())
    if config.domain.enabled and config.domain.pseudo_label:
        ops.add(PSEUDO_LABEL_OP)
    return sorted(ops)


def _fingerprint(rows: pa.Table, families: list[str] | None) -> str:
    digest = hashlib.sha256()
    for text, label in zip(rows.column("text").to_pylist(), rows.column("label").to_pylist()):
        digest.update(f"{label}\x1f{text}\x1e".encode("utf-8"))
    if families is not None:
        digest.update("\x1f".join(families).encode("utf-8"))
    return digest.hexdigest()


def training_families(train: pa.Table, trainer, weighting: str) -> list[str] | None:
    """Family keys for `trainer` (None: every row counts once): with `family` weighting a labeled row
    and its augmented children count as one example, for trainers that take families."""
    if weighting == "family" and trainer.uses_families:
        return family_keys(train)
    return None


def scored_eval_rows(drawn: pa.Table, eval_split: str) -> pa.Table:
    """The eval rows an experiment reports on: the `dev` or the `test` half (`stages.ingest.eval_part`)."""
    eval_rows = _split(drawn, Split.EVAL)
    return eval_rows.filter(pa.array([eval_part(text) == eval_split for text in eval_rows.column("text").to_pylist()], pa.bool_()))


TYPO_READER_ARM = "ref:typo_reader"  # the raw rows read through the typo reader: the reader's own share


def cell_head_l2(drawn: pa.Table, labels: list[str], seed: int, settings) -> tuple[float | None, dict]:
    """The head's L2 for every arm of a cell, by cross-validation on the drawn labeled rows (None: not the head)."""
    if settings.trainer != "head" or settings.head_l2 is not None:
        return settings.head_l2, {}
    labeled = _split(drawn, Split.LABELED)
    vectors = get_embedder(settings.embedding_mode).embed(labeled.column("text").to_pylist())
    return choose_head_l2(vectors, labeled.column("label").to_pylist(), labels, seed)


def run_cell(rows: pa.Table, config, labels: list[str], k: int, seed: int) -> tuple[list[dict], dict]:
    """Records (ARCHITECTURE.md "Results files") for every arm of one (k, seed) cell, and the cell's
    report (encoder choice, tuning decisions, stage stats of the curated arm).

    With several encoders configured, the cell first picks one on its labeled rows (experiments/encoder_choice.py);
    every arm of the cell then embeds with it. Otherwise the active encoder (the flow sets it) serves.
    """
    drawn = draw_k_shot(rows, k, seed)
    spec, choice = cell_encoder(drawn, config, labels, seed)
    with use_encoder(spec) as encoder:
        records, report = _run_drawn_cell(drawn, config, labels, k, seed)
    for record in records:
        record.update({"encoder": config.embedding.label, "encoder_used": encoder.name})
    report["encoder"] = choice.as_record() if choice else {"chosen": encoder.name}
    return records, report


def _run_drawn_cell(drawn: pa.Table, config, labels: list[str], k: int, seed: int) -> tuple[list[dict], dict]:
    """Every arm of one cell on its drawn rows; arms whose training rows are identical share one training run."""
    settings = config.experiment
    head_l2, l2_scores = cell_head_l2(drawn, labels, seed, settings)
    if head_l2 is not None:
        config = config.model_copy(update={"domain": config.domain.model_copy(update={"pseudo_head_l2": head_l2})})
    make = lambda name: make_trainer(name, settings.embedding_mode, settings.setfit_max_pairs, head_l2)  # noqa: E731
    tuning, memo = None, {}  # memo: the cleaned draw, shared by the tuning and the arms
    if settings.self_tune and settings.curated_arms:
        # decisions about the data are made with the head whatever the trainer: it is the one cheap enough to refit per fold
        tuning = tune_pipeline(drawn, config, labels, seed, make("head"), settings.inner_folds, memo)
    eval_rows = scored_eval_rows(drawn, settings.eval_split)
    eval_texts, eval_labels = eval_rows.column("text").to_pylist(), eval_rows.column("label").to_pylist()
    eval_sets = noisy_eval_sets(drawn, eval_texts, settings.noise, seed)
    every_eval_text = [text for texts in eval_sets.values() for text in texts]
    arms, stage_stats = training_arms(drawn, config, seed, tuning, memo)
    reader = typo_reader(drawn, config)
    # every model trained on pipeline output reads its texts (training and eval) through the typo reader, if any
    runs = [(arm, train, make(settings.trainer), None if arm == "raw" else reader) for arm, train in arms.items()]
    raw = arms["raw"]
    for reference in settings.reference_arms:
        if reference == "setfit" and k > settings.setfit_max_k:
            continue
        runs.append((f"ref:{reference}", raw, NamePriorHead(make("head")) if reference == "name_prior" else make(reference), None))
    if reader is not None:
        runs.append((TYPO_READER_ARM, raw, make(settings.trainer), reader))
    read_eval_texts = [reader.repair(text) for text in every_eval_text] if reader is not None else None

    records, done = [], {}
    shared = {"dataset": config.dataset_name, "trainer": settings.trainer, "k": k, "seed": seed, "eval_split": settings.eval_split,
              "n_eval": eval_rows.num_rows, "embedding_mode": settings.embedding_mode, "embedding_backend": get_embedder(settings.embedding_mode).backend,
              "head_l2": head_l2}
    for arm, train, trainer, read in runs:
        families = training_families(train, trainer, settings.sample_weighting)
        key = (trainer.name, read is not None, _fingerprint(train, families))
        started = time.perf_counter()
        if key not in done:
            # one fit, scored on the clean eval rows and every noisy copy of them
            train_texts = train.column("text").to_pylist()
            if read is not None:
                train_texts = [read.repair(text) for text in train_texts]
            predicted = trainer.fit_predict(train_texts, train.column("label").to_pylist(), every_eval_text if read is None else read_eval_texts,
                                            labels, seed, families)
            done[key] = predicted, ({"name_temperature": trainer.temperature} if isinstance(trainer, NamePriorHead) else {})
        predicted, extra = done[key]
        weighting = "uniform" if families is None else settings.sample_weighting
        if read is not None:
            extra = {**extra, "typo_reader": True}
        clean = _record(shared, arm, train, trainer.name, predicted[: len(eval_texts)], eval_labels, labels, started, weighting=weighting, **extra)
        records.append(clean)
        for position, (noise, texts) in enumerate(list(eval_sets.items())[1:], start=1):
            scores = classification_scores(eval_labels, predicted[position * len(eval_texts): (position + 1) * len(eval_texts)], labels)
            records.append({**{name: clean[name] for name in (*shared, "arm", "n_train", "model", "weighting") + (("typo_reader",) if read else ())},
                            "noise": noise,
                            "macro_f1": round(scores["macro_f1"], 6), "accuracy": round(scores["accuracy"], 6),
                            "clean_macro_f1": clean["macro_f1"], "drop_from_clean": round((clean["macro_f1"] - scores["macro_f1"]) * 100, 4)})
    report = {"k": k, "seed": seed, "head_l2": head_l2, "head_l2_scores": {str(l2): score for l2, score in l2_scores.items()},
              "stages": stage_stats, "n_train": {arm: train.num_rows for arm, train in arms.items()}}
    if reader is not None:
        changed = [read != text for read, text in zip(read_eval_texts, every_eval_text)]
        report["typo_reader"] = {"vocabulary": len(reader.vocabulary), "eval_texts": len(eval_texts),
                                 "eval_texts_changed": {noise: sum(changed[position * len(eval_texts): (position + 1) * len(eval_texts)])
                                                        for position, noise in enumerate(eval_sets)}}
    if tuning is not None:
        decisions = [decision.as_record() for decision in tuning.decisions]
        report.update({"decisions": decisions, "decision_lines": [d.describe() for d in tuning.decisions], "inner_rows": tuning.inner_rows,
                       "pseudo_cap": tuning.pseudo_cap})
        for record in records:
            if record["arm"] == "curated":
                record["decisions"] = decisions
    return records, report


def noisy_eval_sets(drawn: pa.Table, eval_texts: list[str], noise_names: list[str], seed: int) -> dict[str, list[str]]:
    """The clean eval texts (`none`) and, per configured noise, their noisy copies for this seed.

    Word noise abbreviates or expands what the run's own training and unlabeled texts define as
    abbreviations (never the eval texts), then swaps WordNet synonyms. Only eval texts are copied:
    training rows are never touched.
    """
    sets = {CLEAN: eval_texts}
    if not noise_names or not eval_texts:
        return sets
    noises = [parse_noise(name) for name in noise_names]
    lexicon = None
    if any(noise.kind == "word" for noise in noises):
        training = drawn.filter(pc.not_equal(drawn.column("split"), Split.EVAL.value))
        lexicon = WordNoiseLexicon(learn_abbreviations(training.column("text").to_pylist()), wordnet_synonyms)
    for noise in noises:
        sets[noise.name] = [noisy_copy(text, noise, seed, lexicon) for text in eval_texts]
    return sets


def _record(shared: dict, arm: str, train: pa.Table, model: str, predicted: list[str], eval_labels: list[str], labels: list[str],
            started: float, **extra) -> dict:
    scores = classification_scores(eval_labels, predicted, labels)
    return {
        **shared,
        "arm": arm,
        "noise": CLEAN,
        "macro_f1": round(scores["macro_f1"], 6),
        "accuracy": round(scores["accuracy"], 6),
        "per_class_f1": {label: round(value, 6) for label, value in scores["per_class_f1"].items()},
        "n_train": train.num_rows,
        "model": model,
        "train_seconds": round(time.perf_counter() - started, 2),
        **extra,
    }
