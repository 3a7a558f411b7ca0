"""How much pseudo-labeling helps the `head` trainer, by how many pseudo-labels and rounds.

Clean + pseudo-labels only (no augmentation, no validation), the experiment protocol (k-shot
draw, eval split untouched), 5 seeds; paired uplift over raw with a 95% t-interval. Appends to
results/pseudo_label_sweep.jsonl and rewrites results/pseudo_label_sweep.md.

    python benchmarks/pseudo_label_sweep.py [--k 10 --k 25] [--caps 1 3 5] [--rounds 1 3]
        [--confidences 0.5] [--balance true false] [--out pseudo_label_sweep]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, action="append")
    parser.add_argument("--caps", type=int, nargs="+", default=[1, 3, 5], help="pseudo-labels per class, as multiples of k")
    parser.add_argument("--rounds", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--confidences", type=float, nargs="+", default=[0.5], help="pseudo_min_confidence values")
    parser.add_argument("--balance", choices=["true", "false"], nargs="+", default=["true"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", default="pseudo_label_sweep", help="results file name, without extension")
    args = parser.parse_args()

    from experiments.metrics import classification_scores, mean_confidence_interval
    from experiments.sampling import draw_k_shot
    from model_hooks.trainers import HeadTrainer
    from schemas.config import RunConfig
    from stages.ingest import ingest
    from stages.pipeline import run_pipeline

    base = RunConfig.load(ROOT / "configs" / "demo.yaml")
    rows = ingest(base.ingest).kept
    labels = sorted(set(rows.column("label").drop_null().to_pylist()))
    records = []
    grid = [(k, cap, rounds, confidence, balance == "true") for k in args.k or [10, 25] for cap in args.caps
            for rounds in args.rounds for confidence in args.confidences for balance in args.balance]
    for k, cap, rounds, confidence, balance in grid:
        overrides = {"augmentation": {"enabled": False}, "validation": {"enabled": False},
                     "domain": {"pseudo_per_class": cap * k, "pseudo_rounds": rounds, "pseudo_min_confidence": confidence, "balance": balance}}
        config = RunConfig.load(ROOT / "configs" / "demo.yaml", overrides)
        uplifts = []
        for seed in range(args.seeds):
            drawn = draw_k_shot(rows, k, seed)
            eval_rows = drawn.filter(pc.equal(drawn.column("split"), "eval"))
            scores = {}
            for arm, table in (("raw", drawn), ("pseudo", run_pipeline(drawn, config, seed, skip=frozenset({"augment", "validate"}))[0])):
                train = table.filter(pc.equal(table.column("split"), "labeled"))
                predicted = HeadTrainer().fit_predict(train.column("text").to_pylist(), train.column("label").to_pylist(),
                                                      eval_rows.column("text").to_pylist(), labels, seed)
                scores[arm] = classification_scores(eval_rows.column("label").to_pylist(), predicted, labels)["macro_f1"]
            uplifts.append(scores["pseudo"] - scores["raw"])
            records.append({"k": k, "cap_per_class": cap * k, "rounds": rounds, "min_confidence": confidence, "balance": balance, "seed": seed,
                            "raw_macro_f1": round(scores["raw"], 6), "pseudo_macro_f1": round(scores["pseudo"], 6)})
        summary = mean_confidence_interval([u * 100 for u in uplifts])
        print(f"k={k} cap={cap}k rounds={rounds} confidence={confidence} balance={balance}: uplift {summary['mean']:+.2f} [{summary['ci_low']:+.2f}, {summary['ci_high']:+.2f}]", flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{args.out}.jsonl"
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    write_markdown(records, RESULTS / f"{args.out}.md")


def write_markdown(records: list[dict], path: Path) -> None:
    from collections import defaultdict

    from experiments.metrics import mean_confidence_interval

    groups = defaultdict(list)
    for r in records:
        groups[(r["k"], r["cap_per_class"], r["rounds"], r.get("min_confidence", 0.5), r.get("balance", True))].append(r)
    lines = ["# Pseudo-labeling sweep (`head` trainer, clean + pseudo-labels only)", "",
             "| k | pseudo-labels per class (cap) | rounds | min confidence | balanced | seeds | raw | with pseudo-labels | uplift, points [95% CI] |",
             "|---:|---:|---:|---:|---|---:|---:|---:|---|"]
    for (k, cap, rounds, confidence, balance), group in sorted(groups.items()):
        raw = mean_confidence_interval([r["raw_macro_f1"] for r in group])
        pseudo = mean_confidence_interval([r["pseudo_macro_f1"] for r in group])
        uplift = mean_confidence_interval([(r["pseudo_macro_f1"] - r["raw_macro_f1"]) * 100 for r in group])
        lines.append(f"| {k} | {cap} | {rounds} | {confidence} | {'yes' if balance else 'no'} | {len(group)} | {raw['mean']:.3f} | {pseudo['mean']:.3f} | "
                     f"{uplift['mean']:+.2f} [{uplift['ci_low']:+.2f}, {uplift['ci_high']:+.2f}] |")
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
