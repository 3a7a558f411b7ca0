"""The fp32 floor: the fewest seconds any fp32 backend of the bundled sentence model can take on this machine.

An encoder's work is mostly matrix products whose size follows from the model's shape and each
text's word pieces: per layer, 2n(4d^2 + 2df) FLOPs for the attention projections and the
feed-forward block and 4n^2d for attention itself (n word pieces, d hidden size, f feed-forward
size). Embeddings, layer norms, softmax, GELU and pooling are left out, so the count is a lower
bound on the work. Divided by the fastest fp32 matrix-multiply rate measured here (the model's own
shapes and large square ones, with torch and with numpy's OpenBLAS, one call on every core or one
single-threaded call per core at once), it gives a floor on the seconds of any fp32 backend at that
rate: to go below it, a backend would have to multiply matrices faster than either BLAS did here. It
is not the chip's theoretical peak, which a virtual machine does not reveal (its clock is unknown).

Workloads (one record each, sharing a `run_id`):
- `embed`: the distinct demo abstracts that bench_embed embeds, also embedded here by
  sentence-transformers and by our fp32 `onnx` backend: the most any fp32 backend can be faster than
  sentence-transformers is its seconds over the floor (issue 7's target: 2x).
- `augment_gate`: the texts the similarity gate embeds in bench_augment (its 500 parents, every
  default op, the same seed), made here without embedding them: the floor against issue 4's 120 s,
  against the latest bench_augment run of the same work on this CPU, and for 8 children per parent
  (each parent's 8 cheapest children: a lower bound for any 8 of the default ops).
Reduced precision (bf16 on AMX, int8) is outside the floor: its rates and its effect on the gate are
measured by bench_embed.

Appends to results/bench_roofline.jsonl and rewrites results/bench_roofline.md.

    python benchmarks/bench_roofline.py [--n-texts N]
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import harness
from bench_augment import TARGET_CHILDREN_PER_PARENT, TARGET_PEER_RATIO
from bench_augment import TARGET_SECONDS as TARGET_GATE_SECONDS
from bench_embed import TARGET_RATIO as TARGET_EMBED_RATIO
from harness import RESULTS, ROOT

# (rows, inner, columns) of the products timed: the model's projections and feed-forward blocks at
# its longest input, and large square products (where a BLAS comes closest to the chip's peak; a
# backend that batches texts multiplies such large matrices)
MATMUL_SHAPES = ((256, 384, 384), (256, 384, 1536), (256, 1536, 384), (2048, 2048, 2048), (4096, 4096, 4096))
LIBRARIES = ("torch", "numpy")  # torch's BLAS and numpy's OpenBLAS: the faster of the two counts


def encoder_flops(word_pieces: np.ndarray, layers: int, hidden: int, feed_forward: int) -> np.ndarray:
    """Matrix-product FLOPs of one encoder pass per text of `word_pieces` pieces (a lower bound on its work)."""
    n = np.asarray(word_pieces, dtype=np.float64)
    return layers * (2 * n * (4 * hidden**2 + 2 * hidden * feed_forward) + 4 * n**2 * hidden)


def model_shape() -> dict:
    """Layers, hidden size and feed-forward size of the bundled model, from its config file."""
    from model_hooks.locations import model_path

    config = json.loads((model_path() / "config.json").read_text())
    return {"layers": config["num_hidden_layers"], "hidden": config["hidden_size"], "feed_forward": config["intermediate_size"]}


def _sequences(texts: list[str]) -> list[tuple[int, ...]]:
    """Each text's word pieces as the embedder runs them: truncated to the model's length, with [CLS] and [SEP]."""
    from model_hooks.embedder import tokenizer
    from model_hooks.encoders import resolve_encoder

    minilm = resolve_encoder("minilm")  # the roofline models MiniLM's layers (model_shape)
    return [tuple(ids) for ids in tokenizer(minilm)(texts, truncation=True, max_length=minilm.max_tokens, verbose=False)["input_ids"]] if texts else []


def distinct_word_pieces(texts: list[str]) -> np.ndarray:
    """Word pieces per distinct truncated piece sequence of `texts`, as the embedder runs them (once each)."""
    return np.asarray([len(sequence) for sequence in dict.fromkeys(_sequences(texts))], dtype=np.int64)


def _product(library: str, shape: tuple[int, int, int], seed: int):
    """A function multiplying two fixed random fp32 matrices of `shape` with `library`'s BLAS (torch or numpy)."""
    rows, inner, columns = shape
    if library == "torch":
        import torch

        generator = torch.Generator().manual_seed(seed)
        left, right = torch.rand(rows, inner, generator=generator), torch.rand(inner, columns, generator=generator)
        return lambda: torch.mm(left, right)
    generator = np.random.default_rng(seed)
    left, right = generator.random((rows, inner), dtype=np.float32), generator.random((inner, columns), dtype=np.float32)
    return lambda: np.matmul(left, right)


@contextmanager
def _blas_threads(library: str, count: int):
    """Within the block, `library` multiplies on `count` threads per call."""
    if library == "torch":
        import torch

        saved = torch.get_num_threads()
        torch.set_num_threads(count)
        try:
            yield
        finally:
            torch.set_num_threads(saved)
    else:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(limits=count, user_api="blas"):
            yield


def _time_products(library: str, shape: tuple[int, int, int], threads: int, seconds: float, min_products: int = 3) -> float:
    """GFLOP/s of `threads` Python threads at once, each multiplying fp32 matrices of `shape` for at least
    `seconds` and `min_products` products, timed on its own: the sum of the threads' rates."""
    products = [_product(library, shape, seed) for seed in range(threads)]
    start = threading.Barrier(threads, timeout=300)  # a thread that fails before it breaks the barrier for the others

    def run(index: int) -> float:
        products[index]()  # warm-up
        start.wait()
        count, started = 0, time.perf_counter()
        while count < min_products or time.perf_counter() - started < seconds:
            products[index]()
            count += 1
        return count / (time.perf_counter() - started)

    with ThreadPoolExecutor(threads) as pool:
        per_second = list(pool.map(run, range(threads)))
    rows, inner, columns = shape
    return 2 * rows * inner * columns * sum(per_second) / 1e9


def fp32_matmul_rate(seconds: float = 1.0, repeats: int = 3, libraries: tuple[str, ...] = LIBRARIES) -> dict:
    """The fastest fp32 matrix-multiply rate found: each library, every shape, as one call on every core and
    as one single-threaded call per core at once (how the per-text backends run), best of `repeats`."""
    from importlib.metadata import version

    from model_hooks.per_text import available_cores

    cores = available_cores()
    rates = {}
    for library in libraries:
        for shape in MATMUL_SHAPES:
            for threads, per_call in ((1, cores), (cores, 1)):
                name = f"{library} {'x'.join(map(str, shape))} {'one call on every core' if threads == 1 else 'one call per core'}"
                with _blas_threads(library, per_call):
                    rates[name] = round(max(_time_products(library, shape, threads, seconds) for _ in range(repeats)), 1)
    best = max(rates, key=rates.get)
    return {"gflops": rates[best], "best_shape": best, "gflops_by_shape": rates, "cores": cores,
            "versions": {library: version(library) for library in libraries}}


def embed_texts(n_texts: int | None) -> list[str]:
    """The distinct ingested demo abstracts, as bench_embed takes them (the first `n_texts`)."""
    from flows.config import RunConfig
    from stages.ingest import ingest

    rows = ingest(RunConfig.load(ROOT / "configs" / "demo.yaml").ingest).kept
    return list(dict.fromkeys(rows.column("text").to_pylist()))[:n_texts]


def seconds_to_embed(texts: list[str], arm: str) -> float:
    """Wall seconds for sentence-transformers' default encode or our embedder (no cache) on `texts`, after a warm-up."""
    if arm == "sentence_transformers":
        from sentence_transformers import SentenceTransformer

        from model_hooks.locations import model_path

        encode = SentenceTransformer(str(model_path()), device="cpu").encode
    else:
        from model_hooks.embedder import Embedder

        encode = Embedder(cache_dir=None, backend=arm).embed
    encode(["warm-up"])
    with harness.timed() as timing:
        encode(texts)
    return timing.seconds


def gate_texts(seed: int = 0, n_labeled: int = 500) -> dict[str, list[str]]:
    """Each parent of bench_augment's run that the similarity gate embeds, with its children that reach the gate.

    Built with bench_augment's own draw and settings (every default op once, the same seed and domain
    inputs), with the gate's two embedding-free checks applied, and nothing embedded. A parent none of
    whose children reach the gate is not embedded, so it is not listed.
    """
    from bench_augment import bench_parents, bench_settings
    from schemas.rows import conform_rows
    from stages.semantic_augmentation import augmentation_parents, generate, pre_gate_ledger

    drawn, _, inputs, _ = bench_parents(n_labeled, seed)
    drawn = conform_rows(drawn)  # as the augment stage takes its rows
    parents = augmentation_parents(drawn, None, seed)
    children = generate(parents, bench_settings(1), inputs, seed).table
    parent_text = dict(zip(parents.column("id").to_pylist(), parents.column("text").to_pylist()))
    alive = pre_gate_ledger(drawn, children, parent_text, inputs.protected_terms).kept_mask
    by_parent: dict[str, list[str]] = {}
    for parent_id, text, kept in zip(children.column("parent_id").to_pylist(), children.column("text").to_pylist(), alive):
        if kept:
            by_parent.setdefault(parent_text[parent_id], []).append(text)
    return by_parent


def cheapest_children_pieces(children_of: dict[str, list[str]], per_parent: int) -> np.ndarray:
    """Word pieces of the children the gate must run for `per_parent` children per parent, chosen as cheaply as possible.

    A child whose truncated pieces equal a parent's or another child's costs nothing (the embedder runs each
    distinct sequence once), and of the rest each parent's shortest come first: a lower bound on the work of
    any `per_parent` of its children.
    """
    parents = set(_sequences(list(children_of)))
    sequences = {parent: _sequences(children) for parent, children in children_of.items()}
    repeats = Counter(sequence for per_parent_sequences in sequences.values() for sequence in per_parent_sequences)
    pieces = []
    for per_parent_sequences in sequences.values():
        costs = sorted(0 if sequence in parents or repeats[sequence] > 1 else len(sequence) for sequence in per_parent_sequences)
        pieces.extend(cost for cost in costs[:per_parent] if cost)
    return np.asarray(pieces, dtype=np.int64)


def latest_augment_run(cpu: str | None, parents: int, children_at_gate: int) -> dict[str, dict]:
    """The records (by system) of the latest bench_augment run with a peer on the CPU `cpu` that gated the same
    work: `parents` parents, one child per op, and `children_at_gate` children past the embedding-free checks; {} if none."""
    records = harness.read_records(RESULTS / "bench_augment.jsonl")

    def same_work(ours: dict) -> bool:
        dropped = ours.get("rejected_by_reason", {})
        at_gate = ours.get("generated", 0) - dropped.get("protected_term_lost", 0) - dropped.get("duplicate_candidate", 0)
        return ours.get("parents") == parents and ours.get("per_example") == 1 and at_gate == children_at_gate

    peered = {r["run_id"] for r in records if r["system"] == "nlpaug_loop"}
    runs = [r["run_id"] for r in records
            if r["system"] == "ours" and r.get("run_id") in peered and cpu is not None and r.get("cpu") == cpu and same_work(r)]
    return {r["system"]: r for r in records if runs and r.get("run_id") == runs[-1]}


def embed_record(texts: list[str], shape: dict, rate: dict, measured: dict[str, float]) -> dict:
    """The embed workload: its FLOPs, floor, and the most any fp32 backend can beat sentence-transformers by."""
    pieces = distinct_word_pieces(texts)
    flops = float(encoder_flops(pieces, **shape).sum())
    floor = flops / (rate["gflops"] * 1e9)
    peer = measured["sentence_transformers"]
    return {
        "workload": "embed", "n_texts": len(texts), "n_sequences": len(pieces), "word_pieces": int(pieces.sum()),
        "gflop": round(flops / 1e9, 1), "floor_seconds": round(floor, 1),
        "measured_seconds": {arm: round(seconds, 1) for arm, seconds in measured.items()},
        "onnx_fraction_of_fastest_rate": round(floor / measured["onnx"], 3),
        "max_ratio_vs_sentence_transformers": round(peer / floor, 2), "target_ratio": TARGET_EMBED_RATIO,
        "target_reachable_at_measured_rate": peer / floor >= TARGET_EMBED_RATIO,
    }


def gate_record(children_of: dict[str, list[str]], shape: dict, rate: dict, cpu: str | None) -> dict:
    """The augmentation-gate workload: its FLOPs and floor, with every child and with TARGET_CHILDREN_PER_PARENT per
    parent, against issue 4's seconds and (from the latest matching bench_augment run) the nlpaug loop."""
    per_second = rate["gflops"] * 1e9
    parents = list(children_of)
    children = [text for texts in children_of.values() for text in texts]
    pieces = distinct_word_pieces(parents + children)
    flops = float(encoder_flops(pieces, **shape).sum())
    at_target = np.concatenate([distinct_word_pieces(parents), cheapest_children_pieces(children_of, TARGET_CHILDREN_PER_PARENT)])
    floor_at_target = float(encoder_flops(at_target, **shape).sum()) / per_second
    record = {
        "workload": "augment_gate", "parents": len(parents), "children_at_gate": len(children),
        "n_sequences": len(pieces), "word_pieces": int(pieces.sum()), "gflop": round(flops / 1e9, 1),
        "floor_seconds": round(flops / per_second, 1), "children_per_parent_at_target": TARGET_CHILDREN_PER_PARENT,
        "floor_seconds_at_target": round(floor_at_target, 1), "target_seconds": TARGET_GATE_SECONDS,
        "gflops_needed_for_target": round(floor_at_target * rate["gflops"] / TARGET_GATE_SECONDS, 1),
        "target_reachable_at_measured_rate": floor_at_target < TARGET_GATE_SECONDS,
    }
    run = latest_augment_run(cpu, len(parents), len(children))
    if run:
        ours, loop = run["ours"], run["nlpaug_loop"]
        record.update({
            "augment_run_id": ours["run_id"], "ours_seconds": ours["seconds"], "ours_gate_seconds": ours["similarity_gate_seconds"],
            "ours_embedding_backend": ours["embedding_backend"], "nlpaug_loop_seconds": loop["seconds"],
            # the loop makes 8 children per parent: ours, held to as many, at the floor and with no time for the ops
            "max_ratio_vs_nlpaug_loop": round(loop["seconds"] / floor_at_target, 2), "target_ratio": TARGET_PEER_RATIO,
        })
    return record


def write_markdown(records: list[dict], path: Path) -> None:
    """The roofline records as a Markdown table, one row per workload and run."""
    lines = [
        "# The fp32 floor: least seconds for the bundled model's matrix products at the fastest fp32 rate measured here",
        "",
        "Written by `benchmarks/bench_roofline.py`. FLOPs count only the encoder's matrix products for each distinct "
        "truncated text (a lower bound on its work); the rate is the fastest fp32 matrix product measured on the machine "
        "in the same run (not the chip's theoretical peak). `max ratio`: the peer's measured seconds over the floor, the "
        "most an fp32 backend of this model could beat the peer by at that rate (for the gate: with 8 children per parent, "
        "as the loop makes, and no time for the ops). `reachable`: whether the target fits at the measured rate.",
        "",
        "| date | commit | cpu | workload | texts | word pieces | GFLOP | fp32 GFLOP/s | floor s | measured s | max ratio | target | reachable |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for r in records:
        if r["workload"] == "embed":
            measured = ", ".join(f"{arm} {seconds}" for arm, seconds in r["measured_seconds"].items())
            ratio, target, texts = f"{r['max_ratio_vs_sentence_transformers']:.2f}x", f">= {r['target_ratio']:.0f}x sentence-transformers", r["n_texts"]
        else:
            measured = f"ours {r['ours_seconds']} (gate {r['ours_gate_seconds']}), nlpaug loop {r['nlpaug_loop_seconds']}" if "ours_seconds" in r else "-"
            ratio = f"{r['max_ratio_vs_nlpaug_loop']:.2f}x" if "max_ratio_vs_nlpaug_loop" in r else "-"
            target = (f"< {r['target_seconds']:.0f} s with {r['children_per_parent_at_target']} children per parent "
                      f"(floor {r['floor_seconds_at_target']} s; needs {r['gflops_needed_for_target']} GFLOP/s)"
                      + (f"; >= {r['target_ratio']:.0f}x the loop" if "target_ratio" in r else ""))
            texts = f"{r['parents']} + {r['children_at_gate']}"
        lines.append(f"| {r['date']} | {r['git_commit']} | {r['cpu']} | {r['workload']} | {texts} | {r['word_pieces']:,} | {r['gflop']:,} | "
                     f"{r['fastest_fp32_gflops']} | {r['floor_seconds']} | {measured} | {ratio} | {target} | "
                     f"{'yes' if r['target_reachable_at_measured_rate'] else 'no'} |")
    harness.write_lines(path, lines)


def main() -> None:
    """Measure the rate and both workloads; append the records and rewrite the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-texts", type=int, default=1000, help="abstracts of the embed workload (the first N distinct)")
    args = parser.parse_args()
    for name, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(name, value)
    shared = {"bench": "roofline", "system": "fp32_floor", **harness.provenance()}
    shape = model_shape()
    rate = fp32_matmul_rate()
    print(json.dumps(rate, indent=2), flush=True)
    texts = embed_texts(args.n_texts)
    measured = {arm: seconds_to_embed(texts, arm) for arm in ("sentence_transformers", "onnx")}
    rate_fields = {"fastest_fp32_gflops": rate["gflops"], "fp32_rates": rate, "model_shape": shape}
    records = [{**shared, **rate_fields, **embed_record(texts, shape, rate, measured)},
               {**shared, **rate_fields, **gate_record(gate_texts(), shape, rate, shared["cpu"])}]
    write_markdown(harness.write_records(RESULTS / "bench_roofline.jsonl", records), RESULTS / "bench_roofline.md")
    print(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
