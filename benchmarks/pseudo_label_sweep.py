"""The pseudo-labelling defaults, checked on dev rows of several data sets: cap, threshold rule, name prior.

Clean + pseudo-labels only (no augmentation, no validation), the experiment protocol (k-shot draw,
eval rows untouched), the head with its L2 chosen per cell by cross-validation on the labeled rows
(as the experiment does), scored on the **dev** half of the eval rows: defaults are tuned here, never
on the test rows the published figures use. Paired uplift over raw, 5 seeds, 95% t-interval.
Writes results/pseudo_label_sweep.jsonl and .md (one line per data set, k and setting).

    python benchmarks/pseudo_label_sweep.py [--configs configs/demo.yaml configs/banking77.yaml]
        [--k 10] [--caps 1 3 5 10] [--confidences default 0.5] [--prior true false] [--seeds 5]
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import pyarrow.compute as pc

import harness
from harness import RESULTS, ROOT

NAME = "pseudo_label_sweep"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["configs/demo.yaml", "configs/banking77.yaml", "configs/wordnet_glosses.yaml"])
    parser.add_argument("--k", type=int, action="append")
    parser.add_argument("--caps", type=float, nargs="+", default=[1, 3, 5, 10], help="pseudo_cap_multiple values (x the class's labeled rows)")
    parser.add_argument("--confidences", nargs="+", default=["default", "0.5"], help="pseudo_min_confidence: default (2/classes) or a number")
    parser.add_argument("--prior", choices=["true", "false"], nargs="+", default=["true", "false"], help="label_name_prior")
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()

    from experiments.metrics import classification_scores, mean_confidence_interval
    from experiments.runner import cell_head_l2, scored_eval_rows
    from experiments.sampling import draw_k_shot
    from model_hooks.trainers import make_trainer
    from flows.config import RunConfig
    from stages.ingest import ingest
    from stages.pipeline import run_pipeline

    records = []
    for config_path in args.configs:
        base = RunConfig.load(ROOT / config_path)
        rows = ingest(base.ingest).kept
        labels = sorted(set(rows.column("label").drop_null().to_pylist()))
        grid = [(k, cap, confidence, prior == "true") for k in args.k or [10] for cap in args.caps for confidence in args.confidences
                for prior in args.prior]
        for k, cap, confidence, prior in grid:
            domain = {"pseudo_cap_multiple": cap, "label_name_prior": prior,
                      "pseudo_min_confidence": None if confidence == "default" else float(confidence)}
            uplifts = []
            for seed in range(args.seeds):
                drawn = draw_k_shot(rows, k, seed)
                head_l2, _ = cell_head_l2(drawn, labels, seed, base.experiment)
                config = RunConfig.load(ROOT / config_path, {"augmentation": {"enabled": False}, "validation": {"enabled": False},
                                                             "domain": {**domain, "pseudo_head_l2": head_l2}})
                dev = scored_eval_rows(drawn, "dev")
                scores = {}
                for arm, table in (("raw", drawn), ("pseudo", run_pipeline(drawn, config, seed, skip=frozenset({"augment", "validate"}))[0])):
                    train = table.filter(pc.equal(table.column("split"), "labeled"))
                    predicted = make_trainer("head", head_l2=head_l2).fit_predict(
                        train.column("text").to_pylist(), train.column("label").to_pylist(), dev.column("text").to_pylist(), labels, seed)
                    scores[arm] = classification_scores(dev.column("label").to_pylist(), predicted, labels)["macro_f1"]
                uplifts.append(scores["pseudo"] - scores["raw"])
                records.append({"dataset": base.dataset_name, "eval_split": "dev", "k": k, "cap_multiple": cap, "min_confidence": confidence,
                                "name_prior": prior, "seed": seed, "head_l2": head_l2,
                                "raw_macro_f1": round(scores["raw"], 6), "pseudo_macro_f1": round(scores["pseudo"], 6)})
            summary = mean_confidence_interval([u * 100 for u in uplifts])
            print(f"{base.dataset_name} k={k} cap={cap}x confidence={confidence} prior={prior}: uplift {summary['mean']:+.2f} "
                  f"[{summary['ci_low']:+.2f}, {summary['ci_high']:+.2f}]", flush=True)
    harness.rewrite_records(RESULTS / f"{NAME}.jsonl", records)
    write_markdown(records, RESULTS / f"{NAME}.md")


def write_markdown(records: list[dict], path: Path) -> None:
    from experiments.metrics import mean_confidence_interval

    groups = defaultdict(list)
    for r in records:
        groups[(r["dataset"], r["k"], r["cap_multiple"], r["min_confidence"], r["name_prior"])].append(r)
    lines = ["# Pseudo-labelling defaults on dev rows (head with tuned L2, clean + pseudo-labels only)", "",
             "| data set | k | cap (x labeled) | min confidence | name prior | seeds | raw | with pseudo-labels | uplift, points [95% CI] |",
             "|---|---:|---:|---|---|---:|---:|---:|---|"]
    for (dataset, k, cap, confidence, prior), group in sorted(groups.items(), key=lambda item: tuple(str(v) for v in item[0])):
        raw = mean_confidence_interval([r["raw_macro_f1"] for r in group])
        pseudo = mean_confidence_interval([r["pseudo_macro_f1"] for r in group])
        uplift = mean_confidence_interval([(r["pseudo_macro_f1"] - r["raw_macro_f1"]) * 100 for r in group])
        lines.append(f"| {dataset} | {k} | {cap:g} | {confidence} | {'yes' if prior else 'no'} | {len(group)} | {raw['mean']:.3f} | "
                     f"{pseudo['mean']:.3f} | {uplift['mean']:+.2f} [{uplift['ci_low']:+.2f}, {uplift['ci_high']:+.2f}] |")
    harness.write_lines(path, lines)


if __name__ == "__main__":
    main()
