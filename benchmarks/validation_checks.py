"""What the adversarial-validation stage sees and rejects on the demo protocol, per seed.

For each seed: draw k per class, run clean, augment and adapt, then the validate stage with the
run's settings (and, for comparison, with `looks_synthetic` also allowed on pseudo-labeled rows).
Records the discriminator's ROC-AUC overall and per origin, and the rejects by reason and op.
Writes results/validation_checks_<dataset>.jsonl.

    python benchmarks/validation_checks.py [--k 10] [--seeds 5]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter

import harness
from harness import RESULTS, ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()

    from experiments.sampling import draw_k_shot
    from flows.config import RunConfig
    from stages.adversarial_validation import validate
    from stages.ingest import ingest
    from stages.pipeline import run_pipeline

    config = RunConfig.load(ROOT / "configs" / "demo.yaml")
    rows = ingest(config.ingest).kept
    records = []
    for seed in range(args.seeds):
        adapted, _ = run_pipeline(draw_k_shot(rows, args.k, seed), config, seed, skip=frozenset({"validate"}))
        for origins in (["augmented"], ["augmented", "pseudo_labeled"]):
            settings = config.validation.model_copy(update={"looks_synthetic_origins": origins})
            result = validate(adapted, settings, seed)
            synthetic = Counter(row["origin"] for row in adapted.select(["origin", "split"]).to_pylist()
                                if row["split"] == "labeled" and row["origin"] != "original")
            rejects = Counter(f"{r['reason']}:{r['op']}" for r in result.rejected.select(["reason", "op"]).to_pylist())
            info = result.stats["checks"]["discriminator"]["info"]
            records.append({
                "dataset": config.dataset_name, "k": args.k, "seed": seed, "looks_synthetic_origins": origins,
                "synthetic_rows": dict(synthetic), "roc_auc": info["roc_auc"], "roc_auc_ci95": info["roc_auc_ci95"],
                "roc_auc_by_origin": {o: v["roc_auc"] for o, v in info["by_origin"].items()},
                "rejected_by_reason_and_op": dict(sorted(rejects.items())),
                "label_flip": result.stats["dropped_label_flip"], "label_issues_flagged": result.stats["checks"]["label_issues"]["info"]["flagged"],
            })
            print(json.dumps(records[-1]), flush=True)
    harness.rewrite_records(RESULTS / f"validation_checks_{config.dataset_name}.jsonl", records)


if __name__ == "__main__":
    main()
