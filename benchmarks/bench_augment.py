"""Benchmark of the augmentation stage: 500 labeled abstracts, every default op, the full gate.

The target (issue 4): 500 labeled examples with 8 augmentations each, including the similarity
gate, in under 2 minutes on 2 cores. The run uses a fresh embedding cache, so every child and
parent is embedded (a project's second run would find the parents cached). Domain inputs (the
lexicon and word vectors, mined from the rest of the pool) are built first and timed apart.
Appends one record to results/bench_augment.jsonl and rewrites results/bench_augment.md.

    python benchmarks/bench_augment.py [--n-labeled 500] [--per-example 1]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TARGET_SECONDS = 120.0
TARGET_CHILDREN_PER_PARENT = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-labeled", type=int, default=500)
    parser.add_argument("--per-example", type=int, default=1, help="children per parent and op")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    # a fresh cache: nothing embedded before counts in our favour
    os.environ["PDAP_CACHE_DIR"] = tempfile.mkdtemp(prefix="pdap-bench-augment-")

    from experiments.sampling import draw_k_shot
    from schemas.config import RunConfig
    from stages.cleaning import clean
    from stages.domain_adaptation import build_domain_inputs
    from stages.ingest import ingest
    from stages.semantic_augmentation import AugmentationConfig, augment

    config = RunConfig.load(ROOT / "configs" / "demo.yaml")
    rows = clean(ingest(config.ingest).kept, config.cleaning).kept
    labels = sorted(set(rows.column("label").drop_null().to_pylist()))
    drawn = draw_k_shot(rows, args.n_labeled // len(labels), args.seed)
    started = time.perf_counter()
    inputs = build_domain_inputs(drawn, config.domain, args.seed)
    domain_seconds = time.perf_counter() - started

    settings = AugmentationConfig(per_example=args.per_example)
    started = time.perf_counter()
    result = augment(drawn, settings, inputs, args.seed)
    seconds = time.perf_counter() - started
    stats = result.stats
    print(json.dumps(stats, indent=2, default=str), flush=True)
    parents = (len(labels) * (args.n_labeled // len(labels)))
    record = {
        "bench": "augment",
        "system": "ours",
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "parents": parents,
        "ops": settings.ops,
        "per_example": args.per_example,
        "generated": stats["generated"],
        "children_per_parent": round(stats["generated"] / parents, 2),
        "kept": stats["rows_out"] - stats["rows_in"],
        "rejected_by_reason": {reason: stats[f"dropped_{reason}"] for reason in ("protected_term_lost", "duplicate_candidate", "too_dissimilar", "near_copy")},
        "generated_by_op": stats["generated_by_op"],
        "kept_by_op": stats["kept_by_op"],
        "seconds_by_op": stats["seconds_by_op"],
        "similarity_gate_seconds": round(stats["similarity_gate_seconds"], 1),
        "seconds": round(seconds, 1),
        "children_per_s": round(stats["generated"] / seconds, 1),
        "domain_inputs_seconds": round(domain_seconds, 1),
        "target_seconds": TARGET_SECONDS,
        "meets_target": seconds < TARGET_SECONDS and stats["generated"] / parents >= TARGET_CHILDREN_PER_PARENT,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    with (RESULTS / "bench_augment.jsonl").open("a") as out:
        out.write(json.dumps(record, sort_keys=True) + "\n")
    write_markdown(RESULTS / "bench_augment.jsonl", RESULTS / "bench_augment.md")
    print(json.dumps(record, indent=2))


def write_markdown(records_path: Path, markdown_path: Path) -> None:
    records = [json.loads(line) for line in records_path.read_text().splitlines() if line.strip()]
    lines = [
        "# Augmentation throughput (500 parents, every default op, with the similarity gate)",
        "",
        f"Target: {TARGET_CHILDREN_PER_PARENT} children per parent in under {TARGET_SECONDS:.0f} s on 2 cores, cold embedding cache.",
        "",
        "| date | machine | parents | children/parent | generated | kept | seconds | children/s | meets target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in records:
        lines.append(f"| {r['date']} | {r['machine']} | {r['parents']} | {r['children_per_parent']} | {r['generated']} | "
                     f"{r['kept']} | {r['seconds']} | {r['children_per_s']} | {'yes' if r['meets_target'] else 'no'} |")
    markdown_path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
