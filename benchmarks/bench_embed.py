"""Benchmark of the embedder against sentence-transformers' default encode: speed, memory, quality, per encoder.

The arms embed the same texts, the distinct abstracts of the ingested demo data, in one run:
`sentence_transformers` is `SentenceTransformer(path, device="cpu").encode(texts)` with its default
batch size; `ours` is `Embedder(cache_dir=None, backend=...)` with the fp32 `onnx` backend, the
opt-in `onnx_int8` one and, on CPUs with AMX-BF16 (where it is the default), `torch_bf16`. Each arm runs in its own spawned worker process, so its peak
RSS is its own; the texts go to the workers in chunks, in alternating order (ABC CBA), so load
from other users of the shared cores falls on all alike.
Quality: 1 - cosine between each arm's vector of a text and sentence-transformers' (and, for int8,
fp32's), and the macro-F1 of the frozen-embedding logistic-regression reference arm (`frozen_lr`,
as the experiment runs it) at k = 10, 25, 100 over 5 seeds on each arm's vectors. Target: ours at
least 2x the docs/s, macro-F1 within 0.5 point at every k. For int8 and bf16, also the share of
augmentation-gate decisions (too_dissimilar / kept / near_copy at the default 0.85 and 0.995) that
differ from fp32's, on the children every op but word_vector (no word vectors here) makes of a k-shot
draw of parents, embedded untimed after the throughput run.
`--encoder` picks the encoder every arm runs (minilm, the default; mpnet after `make encoder-mpnet`).
One record per arm, sharing a `run_id`, is appended to results/bench_embed.jsonl;
results/bench_embed.md and bench_embed.png are rewritten.

    python benchmarks/bench_embed.py [--encoder minilm|mpnet] [--n-docs N] [--chunk 256] [--gate-parents-per-class 12]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import harness
from harness import RESULTS, ROOT
from model_hooks.bf16_encoder import native_bf16_cpu

# all but the first are `ours` with that backend; bf16 only where the CPU multiplies bf16 in hardware
ARMS = ("sentence_transformers", "onnx", "onnx_int8") + (("torch_bf16",) if native_bf16_cpu() else ())
OURS = ARMS[1:]
REDUCED_PRECISION = tuple(arm for arm in OURS if arm != "onnx")  # compared with fp32 `onnx` too
KS = (10, 25, 100)
SEEDS = (0, 1, 2, 3, 4)
TARGET_RATIO = 2.0
TARGET_F1_POINTS = 0.5
for _name, _value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
    os.environ.setdefault(_name, _value)

# --- the worker processes (this module's top level stays light: spawned workers import it) ----

_encode = None
_load_seconds = 0.0


def _load(arm: str, encoder_name: str) -> None:
    """Worker initialiser: load the arm and embed one text once (start-up costs count as load)."""
    global _encode, _load_seconds
    from model_hooks.encoders import resolve_encoder

    encoder = resolve_encoder(encoder_name)
    with harness.timed() as loading:
        if arm == "sentence_transformers":
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(str(encoder.folder), device="cpu")
            model.max_seq_length = encoder.max_tokens
            _encode = model.encode
        else:
            from model_hooks.embedder import Embedder

            _encode = Embedder(cache_dir=None, backend=arm, encoder=encoder).embed
        _encode(["warm-up"])
    _load_seconds = loading.seconds


def _embed_chunk(texts: list[str]):
    with harness.timed() as timing:
        vectors = _encode(texts)
    return timing.seconds, vectors


def _worker_cost() -> dict:
    return {"load_seconds": _load_seconds, "peak_rss_mb": harness.peak_rss_mb()}


def embed_side_by_side(texts: list[str], chunk: int, untimed: list[str] = (), encoder: str = "minilm") -> dict[str, dict]:
    """Per arm: embedding seconds (summed over chunks), vectors, load seconds and peak RSS; then,
    after the timing, our backends' vectors of the `untimed` texts (the gate sample)."""
    import numpy as np

    context = multiprocessing.get_context("spawn")
    pools = {arm: ProcessPoolExecutor(1, mp_context=context, initializer=_load, initargs=(arm, encoder)) for arm in ARMS}
    try:
        results = {arm: {"seconds": 0.0, "vectors": []} for arm in ARMS}
        for arm in ARMS:  # start every worker before timing
            pools[arm].submit(_worker_cost).result()
        for index, start in enumerate(range(0, len(texts), chunk)):
            for arm in ARMS if index % 2 == 0 else ARMS[::-1]:
                seconds, vectors = pools[arm].submit(_embed_chunk, texts[start : start + chunk]).result()
                results[arm]["seconds"] += seconds
                results[arm]["vectors"].append(np.asarray(vectors, dtype=np.float32))
        for arm in ARMS:
            results[arm].update(pools[arm].submit(_worker_cost).result())
            results[arm]["vectors"] = np.concatenate(results[arm]["vectors"])
        for arm in OURS if untimed else ():
            results[arm]["untimed_vectors"] = np.asarray(pools[arm].submit(_embed_chunk, list(untimed)).result()[1], dtype=np.float32)
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


def gate_sample(rows, parents_per_class: int) -> tuple[list[str], list[str], list[str]]:
    """(child texts, their parents' texts, ops): every op's children of a k-shot draw of parents
    (seed 0, default augmentation settings; word_vector is skipped, it needs in-domain word vectors)."""
    from experiments.sampling import draw_k_shot
    from stages.semantic_augmentation import AugmentationConfig, AugmentationInputs, augmentation_parents, generate

    parents = augmentation_parents(draw_k_shot(rows, parents_per_class, 0))
    children = generate(parents, AugmentationConfig(), AugmentationInputs(), 0).table
    parent_text = dict(zip(parents.column("id").to_pylist(), parents.column("text").to_pylist()))
    return (children.column("text").to_pylist(), [parent_text[p] for p in children.column("parent_id").to_pylist()],
            children.column("op").to_pylist())


def gate_flips(sample: tuple[list[str], list[str], list[str]], measured: dict[str, dict]) -> dict[str, dict]:
    """Per reduced-precision arm: how many of the gate's decisions on the sample it changes against fp32, and which."""
    import numpy as np

    from stages.semantic_augmentation import AugmentationConfig

    config = AugmentationConfig()
    children, parents, ops = sample
    decisions = {}
    for arm in OURS:
        vector_of = dict(zip(list(dict.fromkeys(children + parents)), measured[arm]["untimed_vectors"]))
        similarity = np.asarray([float(vector_of[c] @ vector_of[p]) for c, p in zip(children, parents)])
        decisions[arm] = np.where(similarity < config.min_similarity, "too_dissimilar",
                                  np.where(similarity > config.max_similarity, "near_copy", "kept"))
    return {arm: _flips(decisions["onnx"], decisions[arm], ops, config) for arm in REDUCED_PRECISION}


def _flips(fp32, other, ops: list[str], config) -> dict:
    changed = fp32 != other
    transitions: dict[str, int] = {}
    for before, after in zip(fp32[changed], other[changed]):
        transitions[f"{before}->{after}"] = transitions.get(f"{before}->{after}", 0) + 1
    by_op: dict[str, list[int]] = {}
    for op, flag in zip(ops, changed):
        by_op.setdefault(op, [0, 0])[0] += int(flag)
        by_op[op][1] += 1
    return {
        "gate_pairs": len(ops), "gate_decisions_changed": int(changed.sum()),
        "gate_decisions_changed_share": round(float(changed.mean()), 4) if len(ops) else None,
        "gate_changes_by_transition": dict(sorted(transitions.items())),
        "gate_changes_by_op": {op: f"{flips}/{n}" for op, (flips, n) in sorted(by_op.items())},
        "gate_decisions_fp32": {d: int((fp32 == d).sum()) for d in ("too_dissimilar", "kept", "near_copy")},
        "gate_thresholds": [config.min_similarity, config.max_similarity],
    }


# --- records and reports -------------------------------------------------------------------------


def build_records(texts: list[str], measured: dict[str, dict], f1: dict[str, dict[int, list[float]]], gate: dict[str, dict] | None,
                  encoder: str = "minilm") -> list[dict]:
    import numpy as np
    import onnxruntime
    import sentence_transformers
    import torch

    from model_hooks.per_text import available_cores

    def gap(a: str, b: str):
        return np.abs(1.0 - (measured[a]["vectors"] * measured[b]["vectors"]).sum(axis=1))

    shared = harness.provenance()
    records = {}
    for arm in ARMS:
        cost = measured[arm]
        records[arm] = {
            "bench": "embed", "system": "ours" if arm in OURS else arm, "encoder": encoder, **shared, "n_docs": len(texts),
            "seconds": round(cost["seconds"], 2), "docs_per_s": round(len(texts) / cost["seconds"], 2),
            "load_seconds": round(cost["load_seconds"], 2), "peak_rss_mb": round(cost["peak_rss_mb"], 1),
            "macro_f1_by_k": {str(k): round(float(np.mean(values)), 4) for k, values in f1[arm].items()},
        }
    peer = records["sentence_transformers"]
    peer.update({"batch_size": 32, "torch": torch.__version__, "sentence_transformers_version": sentence_transformers.__version__})
    for arm in OURS:
        ours, cosine_gap = records[arm], gap(arm, "sentence_transformers")
        f1_diff = {k: 100 * float(np.mean(np.subtract(f1[arm][k], f1["sentence_transformers"][k]))) for k in KS}
        ours.update({
            "backend": arm, "onnxruntime": onnxruntime.__version__, "parallel_texts": available_cores(),
            "docs_per_s_ratio_vs_sentence_transformers": round(ours["docs_per_s"] / peer["docs_per_s"], 2),
            "cosine_diff_max": float(cosine_gap.max()), "cosine_diff_mean": float(cosine_gap.mean()),
            "macro_f1_diff_points_by_k": {str(k): round(v, 3) for k, v in f1_diff.items()},
            "macro_f1_diff_points": round(float(np.mean(list(f1_diff.values()))), 3),
            "macro_f1_diff_points_max_abs_cell": round(100 * float(max(
                abs(a - b) for k in KS for a, b in zip(f1[arm][k], f1["sentence_transformers"][k]))), 3),
        })
        ours["meets_target"] = ours["docs_per_s_ratio_vs_sentence_transformers"] >= TARGET_RATIO and max(abs(v) for v in f1_diff.values()) <= TARGET_F1_POINTS
    for arm in REDUCED_PRECISION:
        fp32_gap = gap(arm, "onnx")
        records[arm].update({"cosine_diff_vs_onnx_max": float(fp32_gap.max()), "cosine_diff_vs_onnx_mean": float(fp32_gap.mean()),
                             "docs_per_s_ratio_vs_onnx": round(records[arm]["docs_per_s"] / records["onnx"]["docs_per_s"], 2),
                             **(gate or {}).get(arm, {})})
    return [records[arm] for arm in ARMS]


def _name(record: dict) -> str:
    return f"{record['system']} ({record['backend']})" if record["system"] == "ours" else record["system"]


def _verdict(ours: dict) -> str:
    misses = []
    if ours["docs_per_s_ratio_vs_sentence_transformers"] < TARGET_RATIO:
        misses.append(f"ratio < {TARGET_RATIO:.0f}")
    if max(abs(v) for v in ours["macro_f1_diff_points_by_k"].values()) > TARGET_F1_POINTS:
        misses.append(f"F1 moved > {TARGET_F1_POINTS} point")
    return "yes" if not misses else "no (" + ", ".join(misses) + ")"


def write_markdown(records: list[dict], path: Path) -> None:
    run_ids = list(dict.fromkeys(r["run_id"] for r in records))
    lines = [
        "# Embedding throughput: our embedder vs sentence-transformers' default encode",
        "",
        f"Target: ours at least {TARGET_RATIO:.0f}x the docs/s, frozen_lr macro-F1 within {TARGET_F1_POINTS} point "
        f"at every k (mean over seeds {SEEDS[0]}-{SEEDS[-1]}). Same texts, one run, cores shared. `onnx` is the "
        "fp32 backend (the default on CPUs without AMX-BF16), `onnx_int8` the opt-in int8 one, `torch_bf16` "
        "bf16 matrix products on AMX (the default where the CPU has AMX-BF16; measured only there).",
        "",
        "| date | commit | CPU (where recorded) | encoder | system | n docs | seconds | docs/s | peak RSS MB | ratio | 1-cos max / mean | F1 diff (points) k=10 / 25 / 100 | meets target |",
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for run_id in run_ids:
        for r in (r for r in records if r["run_id"] == run_id):
            if r["system"] == "ours":
                diff = " / ".join(f"{r['macro_f1_diff_points_by_k'][str(k)]:+.2f}" for k in KS)
                extra = (f"{r['docs_per_s_ratio_vs_sentence_transformers']:.2f}", f"{r['cosine_diff_max']:.1e} / {r['cosine_diff_mean']:.1e}", diff, _verdict(r))
            else:
                extra = ("1.00", "-", "-", "-")
            lines.append(f"| {r['date']} | {r['git_commit']} | {r.get('cpu') or '-'} | {r.get('encoder', 'minilm')} | {_name(r)} | {r['n_docs']:,} | {r['seconds']:.1f} | "
                         f"{r['docs_per_s']:.1f} | {r['peak_rss_mb']:,.0f} | " + " | ".join(extra) + " |")
    for encoder in dict.fromkeys(r.get("encoder", "minilm") for r in records):
        lines += _latest_run_lines([r for r in records if r.get("encoder", "minilm") == encoder], encoder)
    harness.write_lines(path, lines)


def _latest_run_lines(records: list[dict], encoder: str) -> list[str]:
    """frozen_lr F1 per k and the reduced-precision comparisons of an encoder's latest run."""
    run_id = records[-1]["run_id"]
    latest = [r for r in records if r["run_id"] == run_id]
    lines = ["", f"{encoder}: frozen_lr macro-F1 by k, latest run ({run_id}):", "", "| system | " + " | ".join(f"k={k}" for k in KS) + " |",
             "|---|" + "---:|" * len(KS)]
    for r in latest:
        lines.append(f"| {_name(r)} | " + " | ".join(f"{r['macro_f1_by_k'][str(k)]:.4f}" for k in KS) + " |")
    for r in (r for r in latest if "cosine_diff_vs_onnx_mean" in r):
        lines += ["", f"`{r['backend']}` against fp32 `onnx` in this run: {r['docs_per_s_ratio_vs_onnx']:.2f}x the docs/s, "
                  f"1-cos max {r['cosine_diff_vs_onnx_max']:.1e} / mean {r['cosine_diff_vs_onnx_mean']:.1e}."]
        if r.get("gate_pairs"):
            lines[-1] += (f" Augmentation gate (cosine {r['gate_thresholds'][0]} / {r['gate_thresholds'][1]}) on {r['gate_pairs']:,} "
                          f"child/parent pairs: decisions changed {r['gate_decisions_changed']} ({100 * r['gate_decisions_changed_share']:.1f}%"
                          + "".join(f", {k} {v}" for k, v in r["gate_changes_by_transition"].items())
                          + ").")
    return lines


def plot(records: list[dict], path: Path) -> None:
    latest = [r for r in records if r["run_id"] == records[-1]["run_id"]]
    figure, (speed, quality) = harness.pyplot().subplots(1, 2, figsize=(11, 4))
    speed.bar([_name(r) for r in latest], [r["docs_per_s"] for r in latest], color=["tab:gray", "tab:blue", "tab:orange", "tab:green"][: len(latest)])
    speed.set_ylabel(f"docs/s ({latest[0]['n_docs']} abstracts, {latest[0]['cpu_count']} cores)")
    speed.set_title(f"embedding throughput ({latest[0].get('encoder', 'minilm')})")
    for r in latest:
        quality.plot(KS, [r["macro_f1_by_k"][str(k)] for k in KS], marker="o", label=_name(r))
    quality.set_xscale("log")
    quality.set_xticks(KS, [str(k) for k in KS])
    quality.set_xlabel("labeled examples per class (k)")
    quality.set_ylabel(f"frozen_lr macro-F1 (mean of {len(SEEDS)} seeds)")
    quality.set_title("quality on each arm's vectors")
    quality.legend()
    figure.tight_layout()
    harness.save_figure(figure, path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-docs", type=int, default=None, help="smoke run: time the first N distinct texts, no F1, nothing recorded")
    parser.add_argument("--chunk", type=int, default=256, help="texts per alternating chunk")
    parser.add_argument("--encoder", default="minilm", choices=["minilm", "mpnet"], help="the encoder every arm runs")
    parser.add_argument("--gate-parents-per-class", type=int, default=12, help="parents per class of the gate sample (0: none)")
    args = parser.parse_args()

    from flows.config import RunConfig
    from stages.ingest import ingest

    config = RunConfig.load(ROOT / "configs" / "demo.yaml")
    rows = ingest(config.ingest).kept
    texts = list(dict.fromkeys(rows.column("text").to_pylist()))[: args.n_docs]
    labels = config.ingest.label_set or sorted(set(rows.column("label").drop_null().to_pylist()))
    sample = None
    if args.gate_parents_per_class:  # in its own process: the workers' peak RSS starts from this one's (fork + exec)
        sample = harness.in_fresh_process(gate_sample, rows, args.gate_parents_per_class)
    measured = embed_side_by_side(texts, args.chunk, list(dict.fromkeys(sample[0] + sample[1])) if sample else (), args.encoder)
    for arm in ARMS:
        print(f"{arm}: {len(texts) / measured[arm]['seconds']:.1f} docs/s", flush=True)
    gate = gate_flips(sample, measured) if sample else None
    if gate:
        for arm, flips in gate.items():
            print(f"gate: {flips['gate_decisions_changed']} of {flips['gate_pairs']} decisions change with {arm}", flush=True)
    if args.n_docs is not None:
        return  # a smoke run: the F1 check needs every text, and nothing is recorded
    f1 = {arm: frozen_lr_f1(rows, labels, dict(zip(texts, measured[arm]["vectors"]))) for arm in ARMS}
    records = build_records(texts, measured, f1, gate, args.encoder)
    history = harness.write_records(RESULTS / "bench_embed.jsonl", records)
    write_markdown(history, RESULTS / "bench_embed.md")
    plot(history, RESULTS / "bench_embed.png")
    print(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
