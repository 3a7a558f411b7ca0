"""Benchmark of the embedder against sentence-transformers' default encode: speed, memory, quality.

Both systems embed the same texts, the distinct abstracts of the ingested demo data, in one run:
`sentence_transformers` is `SentenceTransformer(path, device="cpu").encode(texts)` with its default
batch size; `ours` is `Embedder(cache_dir=None)` with its default backend. Each runs in its own
spawned worker process, so its peak RSS is its own; the texts go to the workers in chunks, in
alternating order (ABBA), so load from other users of the shared cores falls on both alike.
Quality: 1 - cosine between the two vectors of each text, and the macro-F1 of the frozen-embedding
logistic-regression reference arm (`frozen_lr`, as the experiment runs it) at k = 10, 25, 100 over
5 seeds on each system's vectors. Target: ours at least 2x the docs/s, macro-F1 within 0.5 point.
One record per system, sharing a `run_id`, is appended to results/bench_embed.jsonl;
results/bench_embed.md and bench_embed.png are rewritten.

    python benchmarks/bench_embed.py [--n-docs N] [--chunk 256]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SYSTEMS = ("sentence_transformers", "ours")
KS = (10, 25, 100)
SEEDS = (0, 1, 2, 3, 4)
TARGET_RATIO = 2.0
TARGET_F1_POINTS = 0.5
for _name, _value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
    os.environ.setdefault(_name, _value)

# --- the worker processes (this module's top level stays light: spawned workers import it) ----

_encode = None
_load_seconds = 0.0


def _load(system: str) -> None:
    """Worker initialiser: load the system and embed one text once (start-up costs count as load)."""
    global _encode, _load_seconds
    started = time.perf_counter()
    if system == "sentence_transformers":
        from sentence_transformers import SentenceTransformer

        from model_hooks.embedder import model_path

        _encode = SentenceTransformer(str(model_path()), device="cpu").encode
    else:
        from model_hooks.embedder import Embedder

        _encode = Embedder(cache_dir=None).embed
    _encode(["warm-up"])
    _load_seconds = time.perf_counter() - started


def _embed_chunk(texts: list[str]):
    started = time.perf_counter()
    vectors = _encode(texts)
    return time.perf_counter() - started, vectors


def _worker_cost() -> dict:
    return {"load_seconds": _load_seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def embed_side_by_side(texts: list[str], chunk: int) -> dict[str, dict]:
    """Per system: embedding seconds (summed over chunks), vectors, load seconds and peak RSS."""
    import numpy as np

    context = multiprocessing.get_context("spawn")
    pools = {system: ProcessPoolExecutor(1, mp_context=context, initializer=_load, initargs=(system,)) for system in SYSTEMS}
    try:
        results = {system: {"seconds": 0.0, "vectors": []} for system in SYSTEMS}
        for system in SYSTEMS:  # start both workers before timing
            pools[system].submit(_worker_cost).result()
        for index, start in enumerate(range(0, len(texts), chunk)):
            for system in SYSTEMS if index % 2 == 0 else SYSTEMS[::-1]:
                seconds, vectors = pools[system].submit(_embed_chunk, texts[start : start + chunk]).result()
                results[system]["seconds"] += seconds
                results[system]["vectors"].append(np.asarray(vectors, dtype=np.float32))
        for system in SYSTEMS:
            results[system].update(pools[system].submit(_worker_cost).result())
            results[system]["vectors"] = np.concatenate(results[system]["vectors"])
        return results
    finally:
        for pool in pools.values():
            pool.shutdown()


# --- quality -------------------------------------------------------------------------------------


def frozen_lr_f1(rows, labels: list[str], vector_of: dict) -> dict[int, list[float]]:
    """Macro-F1 of the `frozen_lr` reference arm per k (one value per seed), from given vectors."""
    import numpy as np
    import pyarrow.compute as pc

    from experiments.metrics import classification_scores
    from experiments.sampling import draw_k_shot
    from model_hooks.trainers import FrozenLogisticRegression

    def split(table, name):
        part = table.filter(pc.equal(table.column("split"), name))
        return np.stack([vector_of[text] for text in part.column("text").to_pylist()]), part.column("label").to_pylist()

    scores = {}
    for k in KS:
        scores[k] = []
        for seed in SEEDS:
            drawn = draw_k_shot(rows, k, seed)
            (train_x, train_y), (eval_x, eval_y) = split(drawn, "labeled"), split(drawn, "eval")
            predicted = FrozenLogisticRegression().fit_predict_vectors(train_x, train_y, eval_x, labels, seed)
            scores[k].append(classification_scores(eval_y, predicted, labels)["macro_f1"])
    return scores


# --- records and reports -------------------------------------------------------------------------


def build_records(texts: list[str], measured: dict[str, dict], f1: dict[str, dict[int, list[float]]]) -> list[dict]:
    import numpy as np
    import onnxruntime
    import sentence_transformers
    import torch
    from bench_clean import run_fields

    from model_hooks.embedder import DEFAULT_BACKEND
    from model_hooks.onnx_encoder import available_cores

    shared = run_fields(uuid.uuid4().hex[:12])
    records = {}
    for system in SYSTEMS:
        cost = measured[system]
        records[system] = {
            "bench": "embed", "system": system, **shared, "n_docs": len(texts),
            "seconds": round(cost["seconds"], 2), "docs_per_s": round(len(texts) / cost["seconds"], 2),
            "load_seconds": round(cost["load_seconds"], 2), "peak_rss_mb": round(cost["peak_rss_mb"], 1),
            "macro_f1_by_k": {str(k): round(float(np.mean(values)), 4) for k, values in f1[system].items()},
        }
    records["sentence_transformers"].update({"batch_size": 32, "torch": torch.__version__, "sentence_transformers_version": sentence_transformers.__version__})
    ours, peer = records["ours"], records["sentence_transformers"]
    cosine_gap = 1.0 - (measured["ours"]["vectors"] * measured["sentence_transformers"]["vectors"]).sum(axis=1)
    f1_diff = {k: 100 * float(np.mean(np.subtract(f1["ours"][k], f1["sentence_transformers"][k]))) for k in KS}
    ours.update({
        "backend": DEFAULT_BACKEND, "onnxruntime": onnxruntime.__version__, "parallel_texts": available_cores(),
        "docs_per_s_ratio_vs_sentence_transformers": round(ours["docs_per_s"] / peer["docs_per_s"], 2),
        "cosine_diff_max": float(np.abs(cosine_gap).max()), "cosine_diff_mean": float(np.abs(cosine_gap).mean()),
        "macro_f1_diff_points_by_k": {str(k): round(v, 3) for k, v in f1_diff.items()},
        "macro_f1_diff_points": round(float(np.mean(list(f1_diff.values()))), 3),
        "macro_f1_diff_points_max_abs_cell": round(100 * float(max(
            abs(a - b) for k in KS for a, b in zip(f1["ours"][k], f1["sentence_transformers"][k]))), 3),
    })
    ours["meets_target"] = ours["docs_per_s_ratio_vs_sentence_transformers"] >= TARGET_RATIO and max(abs(v) for v in f1_diff.values()) <= TARGET_F1_POINTS
    return [peer, ours]


def write_markdown(records: list[dict], path: Path) -> None:
    runs = [r for r in records if r["system"] == "ours"]
    peers = {r["run_id"]: r for r in records if r["system"] == "sentence_transformers"}
    lines = [
        "# Embedding throughput: our embedder vs sentence-transformers' default encode",
        "",
        f"Target: ours at least {TARGET_RATIO:.0f}x the docs/s, frozen_lr macro-F1 within {TARGET_F1_POINTS} point "
        f"at every k (mean over seeds {SEEDS[0]}-{SEEDS[-1]}). Same texts, one run, cores shared.",
        "",
        "| date | commit | system | n docs | seconds | docs/s | peak RSS MB | ratio | 1-cos max / mean | F1 diff (points) k=10 / 25 / 100 | meets target |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for ours in runs:
        peer = peers[ours["run_id"]]
        diff = " / ".join(f"{ours['macro_f1_diff_points_by_k'][str(k)]:+.2f}" for k in KS)
        cosine = f"{ours['cosine_diff_max']:.1e} / {ours['cosine_diff_mean']:.1e}"
        verdict = "yes" if ours["meets_target"] else "no"
        for r, extra in ((peer, ("1.00", "-", "-", "-")), (ours, (f"{ours['docs_per_s_ratio_vs_sentence_transformers']:.2f}", cosine, diff, verdict))):
            name = f"{r['system']} ({r['backend']})" if r is ours else r["system"]
            lines.append(f"| {r['date']} | {r['git_commit']} | {name} | {r['n_docs']:,} | {r['seconds']:.1f} | "
                         f"{r['docs_per_s']:.1f} | {r['peak_rss_mb']:,.0f} | " + " | ".join(extra) + " |")
    latest = runs[-1]
    lines += ["", f"frozen_lr macro-F1 by k, latest run ({latest['run_id']}):", "", "| system | " + " | ".join(f"k={k}" for k in KS) + " |",
              "|---|" + "---:|" * len(KS)]
    for r in (peers[latest["run_id"]], latest):
        lines.append(f"| {r['system']} | " + " | ".join(f"{r['macro_f1_by_k'][str(k)]:.4f}" for k in KS) + " |")
    path.write_text("\n".join(lines) + "\n")


def plot(records: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    latest = [r for r in records if r["run_id"] == records[-1]["run_id"]]
    figure, (speed, quality) = plt.subplots(1, 2, figsize=(10, 4))
    speed.bar([r["system"] for r in latest], [r["docs_per_s"] for r in latest], color=["tab:gray", "tab:blue"])
    speed.set_ylabel(f"docs/s ({latest[0]['n_docs']} abstracts, {latest[0]['cpu_count']} cores)")
    speed.set_title("embedding throughput")
    for r in latest:
        quality.plot(KS, [r["macro_f1_by_k"][str(k)] for k in KS], marker="o", label=r["system"])
    quality.set_xscale("log")
    quality.set_xticks(KS, [str(k) for k in KS])
    quality.set_xlabel("labeled examples per class (k)")
    quality.set_ylabel(f"frozen_lr macro-F1 (mean of {len(SEEDS)} seeds)")
    quality.set_title("quality on each system's vectors")
    quality.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110, metadata={"Software": None})
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-docs", type=int, default=None, help="smoke run: time the first N distinct texts, no F1, nothing recorded")
    parser.add_argument("--chunk", type=int, default=256, help="texts per alternating chunk")
    args = parser.parse_args()

    from schemas.config import RunConfig
    from stages.ingest import ingest

    config = RunConfig.load(ROOT / "configs" / "demo.yaml")
    rows = ingest(config.ingest).kept
    texts = list(dict.fromkeys(rows.column("text").to_pylist()))[: args.n_docs]
    labels = config.ingest.label_set or sorted(set(rows.column("label").drop_null().to_pylist()))
    measured = embed_side_by_side(texts, args.chunk)
    for system in SYSTEMS:
        print(f"{system}: {len(texts) / measured[system]['seconds']:.1f} docs/s", flush=True)
    if args.n_docs is not None:
        return  # a smoke run: the F1 check needs every text, and nothing is recorded
    f1 = {system: frozen_lr_f1(rows, labels, dict(zip(texts, measured[system]["vectors"]))) for system in SYSTEMS}
    records = build_records(texts, measured, f1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bench_embed.jsonl"
    with out.open("a") as handle:
        handle.writelines(json.dumps(record, sort_keys=True) + "\n" for record in records)
    history = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    write_markdown(history, RESULTS / "bench_embed.md")
    plot(history, RESULTS / "bench_embed.png")
    print(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
