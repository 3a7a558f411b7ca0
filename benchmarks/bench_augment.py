"""Benchmark of the augmentation stage: 500 labeled abstracts, every default op, the full gate.

The target (issue 4): 500 labeled examples with 8 augmentations each, including the similarity
gate, in under 2 minutes on 2 cores. The run uses a fresh embedding cache, so every child and
parent is embedded (a project's second run would find the parents cached). Domain inputs (the
lexicon and word vectors, mined from the rest of the pool) are built first and timed apart.

In the same run, the same parents go through the peer `nlpaug_loop` (benchmarks/peers/
nlpaug_loop.py: eight nlpaug augmenters called once per text, children gated with one
sentence-transformers encode call per parent). Target (issue 7): ours at least 5x its docs/s
(parents per second). Each system runs in its own spawned process, so its peak RSS is its own.
Appends one record per system, sharing a `run_id`, to results/bench_augment.jsonl and rewrites
results/bench_augment.md and bench_augment.png (`--replot`: only rewrites them from the records).

    python benchmarks/bench_augment.py [--n-labeled 500] [--per-example 1] [--skip-peer] [--replot]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

import harness
from harness import RESULTS, ROOT

TARGET_SECONDS = 120.0
TARGET_CHILDREN_PER_PARENT = 8
TARGET_PEER_RATIO = 5.0


def measure_ours(drawn, settings, inputs, seed: int) -> dict:
    """The augment stage on the drawn rows (run in a fresh process): stats, seconds, peak RSS."""
    from model_hooks.embedder import DEFAULT_BACKEND
    from stages.semantic_augmentation import augment

    load = os.getloadavg()[0]
    with harness.timed() as timing:
        result = augment(drawn, settings, inputs, seed)
    return {"stats": result.stats, "seconds": timing.seconds, "peak_rss_mb": harness.peak_rss_mb(), "backend": DEFAULT_BACKEND, "load": load}


def measure_peer(parents: list[str], settings, seed: int) -> dict:
    """The nlpaug loop on the same parent texts (run in a fresh process), with its peak RSS."""
    from peers.nlpaug_loop import augment_and_gate

    load = os.getloadavg()[0]
    result = augment_and_gate(parents, settings.strength, settings.min_similarity, settings.max_similarity, seed)
    return {**result, "peak_rss_mb": harness.peak_rss_mb(), "load": load}


def bench_parents(n_labeled: int, seed: int):
    """The cleaned demo data's k-shot draw with `n_labeled` // classes labeled rows per class (the parents), the
    labels, the draw's domain inputs (lexicon, word vectors) and the seconds those took."""
    from experiments.sampling import draw_k_shot
    from flows.config import RunConfig
    from stages.cleaning import clean
    from stages.domain_adaptation import build_domain_inputs
    from stages.ingest import ingest

    config = RunConfig.load(ROOT / "configs" / "demo.yaml")
    rows = clean(ingest(config.ingest).kept, config.cleaning).kept
    labels = sorted(set(rows.column("label").drop_null().to_pylist()))
    drawn = draw_k_shot(rows, n_labeled // len(labels), seed)
    with harness.timed() as timing:
        inputs = build_domain_inputs(drawn, config.domain)
    return drawn, labels, inputs, timing.seconds


def bench_settings(per_example: int):
    """Every default op, `per_example` children each, every parent (the target counts 500)."""
    from stages.semantic_augmentation import AugmentationConfig

    return AugmentationConfig(per_example=per_example, max_parents_per_class=None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-labeled", type=int, default=500)
    parser.add_argument("--per-example", type=int, default=1, help="children per parent and op")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-peer", action="store_true", help="only ours: no nlpaug loop")
    parser.add_argument("--replot", action="store_true", help="measure nothing: rewrite the table and plot from the records")
    args = parser.parse_args()
    if args.replot:
        write_report()
        return
    # a fresh cache: nothing embedded before counts in our favour
    os.environ["PDAP_CACHE_DIR"] = tempfile.mkdtemp(prefix="pdap-bench-augment-")

    drawn, labels, inputs, domain_seconds = bench_parents(args.n_labeled, args.seed)
    settings = bench_settings(args.per_example)
    ours = harness.in_fresh_process(measure_ours, drawn, settings, inputs, args.seed)
    print(json.dumps(ours["stats"], indent=2, default=str), flush=True)
    shared = {**harness.provenance(), "machine": f"{platform.machine()}, {os.cpu_count()} cores"}
    parents = (len(labels) * (args.n_labeled // len(labels)))
    records = [ours_record(ours, shared, settings, parents, args.per_example, domain_seconds)]
    if not args.skip_peer:
        records.append(peer_record(harness.in_fresh_process(measure_peer, drawn_parents(drawn), settings, args.seed), shared, parents))
        records[0].update(versus_peer(records[0], records[1]))
    harness.write_records(RESULTS / "bench_augment.jsonl", records)
    write_report()
    print(json.dumps(records, indent=2))


def ours_record(ours: dict, shared: dict, settings, parents: int, per_example: int, domain_seconds: float) -> dict:
    from stages.semantic_augmentation import REASONS

    stats, seconds = ours["stats"], ours["seconds"]
    return {
        "bench": "augment",
        "system": "ours",
        **shared,
        "load_average_1m": round(ours["load"], 2),
        "embedding_backend": ours["backend"],
        "parents": parents,
        "n_docs": parents,
        "ops": settings.ops,
        "per_example": per_example,
        "generated": stats["generated"],
        "children_per_parent": round(stats["generated"] / parents, 2),
        "kept": stats["rows_out"] - stats["rows_in"],
        "rejected_by_reason": {reason: stats[f"dropped_{reason}"] for reason in REASONS},
        "generated_by_op": stats["generated_by_op"],
        "kept_by_op": stats["kept_by_op"],
        "seconds_by_op": stats["seconds_by_op"],
        "similarity_gate_seconds": round(stats["similarity_gate_seconds"], 1),
        "seconds": round(seconds, 1),
        "children_per_s": round(stats["generated"] / seconds, 1),
        "docs_per_s": round(parents / seconds, 2),
        "peak_rss_mb": round(ours["peak_rss_mb"], 1),
        "domain_inputs_seconds": round(domain_seconds, 1),
        "target_seconds": TARGET_SECONDS,
        "meets_target": seconds < TARGET_SECONDS and stats["generated"] / parents >= TARGET_CHILDREN_PER_PARENT,
    }


def peer_record(peer: dict, shared: dict, parents: int) -> dict:
    return {
        "bench": "augment", "system": "nlpaug_loop", **shared, "load_average_1m": round(peer["load"], 2),
        "embedding_backend": "torch (sentence-transformers encode per parent)",
        "parents": parents, "n_docs": parents, "ops": peer["ops"], "per_example": 1,
        "generated": peer["generated"], "children_per_parent": round(peer["generated"] / parents, 2), "kept": peer["kept"],
        "rejected_by_reason": peer["rejected_by_reason"], "similarity_gate_seconds": round(peer["similarity_gate_seconds"], 1),
        "seconds": round(peer["seconds"], 1), "children_per_s": round(peer["generated"] / peer["seconds"], 1),
        "docs_per_s": round(parents / peer["seconds"], 2), "peak_rss_mb": round(peer["peak_rss_mb"], 1),
    }


def versus_peer(ours: dict, peer: dict) -> dict:
    ratio = round(ours["docs_per_s"] / peer["docs_per_s"], 2)
    return {
        "docs_per_s_ratio_vs_nlpaug_loop": ratio,
        "children_per_s_ratio_vs_nlpaug_loop": round(ours["children_per_s"] / peer["children_per_s"], 2),
        "meets_peer_target": ratio >= TARGET_PEER_RATIO,
    }


def drawn_parents(drawn) -> list[str]:
    """The texts the augment stage treats as parents: labeled original rows."""
    import pyarrow.compute as pc

    parents = drawn.filter(pc.and_(pc.equal(drawn.column("split"), "labeled"), pc.equal(drawn.column("origin"), "original")))
    return parents.column("text").to_pylist()


def write_report() -> None:
    """Rewrite results/bench_augment.md and .png from results/bench_augment.jsonl."""
    records_path = RESULTS / "bench_augment.jsonl"
    records = harness.read_records(records_path)
    if not records:
        raise SystemExit(f"{records_path}: no records to report")
    write_markdown(records, RESULTS / "bench_augment.md")
    write_plot(records, RESULTS / "bench_augment.png")


def write_plot(records: list[dict], png_path: Path) -> None:
    """Seconds per system in the latest run with a peer, split into the similarity gate and the rest."""
    peer_runs = {r["run_id"] for r in records if r["system"] == "nlpaug_loop"}
    paired = [r for r in records if r.get("run_id") in peer_runs]
    if not paired:
        return
    latest = [r for r in paired if r["run_id"] == paired[-1]["run_id"]]
    names = [r["system"] for r in latest]
    gate = [r["similarity_gate_seconds"] for r in latest]
    rest = [r["seconds"] - r["similarity_gate_seconds"] for r in latest]
    figure, axis = harness.pyplot().subplots(figsize=(6, 4))
    axis.bar(names, gate, color="tab:orange", label="similarity gate (embedding)")
    axis.bar(names, rest, bottom=gate, color="tab:blue", label="augmenting, loading models")
    axis.axhline(TARGET_SECONDS, color="grey", linestyle="--", label=f"issue 4 target for ours: {TARGET_SECONDS:.0f} s")
    ours = next((r for r in latest if r["system"] == "ours"), None)
    ratio = f", ours {ours['docs_per_s_ratio_vs_nlpaug_loop']:.2f}x the loop's docs/s" if ours and "docs_per_s_ratio_vs_nlpaug_loop" in ours else ""
    axis.set(ylabel="seconds", title=f"{latest[0]['parents']} parents, {latest[0]['date']}{ratio}")
    axis.legend(fontsize=8)
    figure.tight_layout()
    harness.save_figure(figure, png_path, dpi=110)


def write_markdown(records: list[dict], markdown_path: Path) -> None:
    lines = [
        "# Augmentation throughput (500 parents, every default op, with the similarity gate)",
        "",
        f"Target: {TARGET_CHILDREN_PER_PARENT} children per parent in under {TARGET_SECONDS:.0f} s on 2 cores, cold embedding cache.",
        "",
        "| date | commit | machine (CPU where recorded) | embedding | parents | children/parent | generated | kept | seconds | children/s | meets target |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in (r for r in records if r["system"] == "ours"):
        lines.append(f"| {r['date']} | {r.get('git_commit', '-')} | {r.get('cpu') or r['machine']} | {r.get('embedding_backend', '-')} | {r['parents']} | "
                     f"{r['children_per_parent']} | {r['generated']} | "
                     f"{r['kept']} | {r['seconds']} | {r['children_per_s']} | {'yes' if r['meets_target'] else 'no'} |")
    peers = {r["run_id"]: r for r in records if r["system"] == "nlpaug_loop"}
    lines += [
        "",
        "## Side by side with a plain nlpaug loop",
        "",
        f"Target: ours >= {TARGET_PEER_RATIO:.0f}x the loop's docs/s (parents per second). Same parents and cores in one run; "
        "the loop calls eight nlpaug augmenters once per text and gates each parent's children with one "
        "sentence-transformers encode call (benchmarks/peers/nlpaug_loop.py). Seconds include loading models.",
        "",
        "| date | commit | system | embedding | parents | generated | kept | seconds | gate seconds | docs/s | children/s | peak RSS MB | docs/s ratio | target met |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for ours in (r for r in records if r["system"] == "ours" and r.get("run_id") in peers):
        peer = peers[ours["run_id"]]
        for r, tail in ((ours, f"{ours['docs_per_s_ratio_vs_nlpaug_loop']:.2f}x | {'yes' if ours['meets_peer_target'] else 'no'}"), (peer, " | ")):
            lines.append(f"| {r['date']} | {r['git_commit']} | {r['system']} | {r['embedding_backend']} | {r['parents']} | {r['generated']} | {r['kept']} | "
                         f"{r['seconds']} | {r['similarity_gate_seconds']} | {r['docs_per_s']} | {r['children_per_s']} | {r['peak_rss_mb']:,.0f} | {tail} |")
    harness.write_lines(markdown_path, lines)


if __name__ == "__main__":
    main()
