"""How far pseudo-labels could take the `finetune` trainer: the k-shot draw plus every pool row with its true label.

Issue 4 asks `finetune` on curated data at 100 per class for macro-F1 >= 0.63. The curated set
adds pseudo-labeled pool rows; this benchmark trains the same trainer on the k labeled rows plus
*every* unlabeled pool row with its true label (held back from every stage), which bounds what any
pseudo-labeler can give it on this pool. Scored on the eval split, which nothing here trains on.
The table sets each oracle score beside the same cell's `raw` and `curated` arms from the
experiment's records (same draw: `draw_k_shot` depends only on the ids, labels, k and seed).

Records go to results/finetune_oracle.jsonl (one per k and seed, replaced on rerun) and .md (per
seed, then the mean with a 95% t-interval per k; `--replot` only rewrites the .md).

    python benchmarks/finetune_oracle.py [--k 100] [--seeds 0 1 2] [--config configs/finetune_curated.yaml] [--replot]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

import harness
from harness import RESULTS, ROOT

NAME = "finetune_oracle"
EXPERIMENT = RESULTS / "experiment_medical_abstracts.jsonl"
CELL = ("k", "seed")  # one oracle record per cell; a rerun replaces it


def oracle_record(rows, labels: list[str], k: int, seed: int, settings) -> dict:
    """Train `finetune` (with the experiment `settings` of the arms it is compared with) on the draw's
    labeled rows plus every pool row with its true label; score on eval."""
    from experiments.metrics import classification_scores
    from experiments.sampling import draw_k_shot
    from model_hooks.trainers import make_trainer
    from schemas.rows import Split

    true_label = dict(zip(rows.column("id").to_pylist(), rows.column("label").to_pylist()))
    drawn = draw_k_shot(rows, k, seed)
    split = np.asarray(drawn.column("split").to_pylist())
    texts, ids = drawn.column("text").to_pylist(), drawn.column("id").to_pylist()
    train = np.flatnonzero((split == Split.LABELED.value) | (split == Split.UNLABELED.value))
    evaluation = np.flatnonzero(split == Split.EVAL.value)
    trainer = make_trainer("finetune", settings.embedding_mode, settings.setfit_max_pairs)
    fields = harness.provenance(f"{NAME}-{k}-{seed}")
    with harness.timed() as training:
        predicted = trainer.fit_predict([texts[i] for i in train], [true_label[ids[i]] for i in train],
                                        [texts[i] for i in evaluation], labels, seed)
        scores = classification_scores([true_label[ids[i]] for i in evaluation], predicted, labels)
    return {"trainer": "finetune", "arm": "oracle", "k": k, "seed": seed, "n_train": int(len(train)),
            "labeled": int((split == Split.LABELED.value).sum()), "macro_f1": round(scores["macro_f1"], 6),
            "accuracy": round(scores["accuracy"], 6), "train_seconds": round(training.seconds, 1),
            **fields}


def experiment_scores() -> dict[tuple[int, int], dict[str, float]]:
    """(k, seed) -> macro-F1 of the experiment's `finetune` arms (raw, curated) in that cell, where recorded."""
    found = {}
    for record in harness.read_records(EXPERIMENT):
        if record.get("trainer") == "finetune" and record["arm"] in ("raw", "curated"):
            found.setdefault((record["k"], record["seed"]), {})[record["arm"]] = record["macro_f1"]
    return found


def _score(value: float | None) -> str:
    """A macro-F1 to three places, or '-' where the experiment has no record."""
    return "-" if value is None else f"{value:.3f}"


def write_markdown(records: list[dict], path: Path) -> None:
    """The oracle records as a Markdown table, each beside its cell's raw and curated arms, and their mean per k."""
    from experiments.metrics import mean_confidence_interval

    lines = [
        "# `finetune` with every pool label (the pseudo-labeling bound)", "",
        "Written by `benchmarks/finetune_oracle.py`. `oracle`: the k-shot draw plus every unlabeled pool row with"
        " its true label; `raw` and `curated`: the same cell's arms in `experiment_medical_abstracts.jsonl`."
        " Macro-F1 on the eval split.", "",
        "| date | commit | k | seed | training rows | raw | curated | oracle | oracle - raw (points) | train seconds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    ordered = sorted(records, key=lambda r: (r["k"], r["seed"]))
    experiment = experiment_scores()
    for r in ordered:
        arms = experiment.get((r["k"], r["seed"]), {})
        raw, curated = arms.get("raw"), arms.get("curated")
        gain = f"{(r['macro_f1'] - raw) * 100:+.2f}" if raw is not None else "-"
        lines.append(f"| {r['date']} | {r['git_commit']} | {r['k']} | {r['seed']} | {r['n_train']:,} "
                     f"| {_score(raw)} | {_score(curated)} | {r['macro_f1']:.3f} | {gain} | {r['train_seconds']:,.0f} |")
    lines += ["", "| k | seeds | oracle macro-F1 mean | std | 95% CI |", "|---:|---:|---:|---:|---|"]
    for k in sorted({r["k"] for r in ordered}):
        summary = mean_confidence_interval([r["macro_f1"] for r in ordered if r["k"] == k])
        spread = "n/a | n/a" if summary["n"] < 2 else f"{summary['std']:.3f} | [{summary['ci_low']:.3f}, {summary['ci_high']:.3f}]"
        lines.append(f"| {k} | {summary['n']} | {summary['mean']:.3f} | {spread} |")
    harness.write_lines(path, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "finetune_curated.yaml")
    parser.add_argument("--replot", action="store_true", help="train nothing: rewrite the table from the records")
    args = parser.parse_args()
    log = RESULTS / f"{NAME}.jsonl"
    if args.replot:
        records = harness.read_records(log)
        if not records:
            raise SystemExit(f"{log}: no records to report")
        write_markdown(records, RESULTS / f"{NAME}.md")
        return

    from flows.config import RunConfig
    from stages.ingest import ingest

    config = RunConfig.load(args.config)
    rows = ingest(config.ingest).kept
    labels = sorted(set(rows.column("label").drop_null().to_pylist()))
    for seed in args.seeds:
        record = oracle_record(rows, labels, args.k, seed, config.experiment)
        write_markdown(harness.write_records(log, [record], key=CELL), RESULTS / f"{NAME}.md")
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
