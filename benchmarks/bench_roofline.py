"""The fp32 floor: the fewest seconds any fp32 backend of the bundled sentence model can take on this machine.

An encoder's work is mostly matrix products whose size follows from the model's shape and each
text's word pieces: per layer, 2n(4d^2 + 2df) FLOPs for the attention projections and the
feed-forward block and 4n^2d for attention itself (n word pieces, d hidden size, f feed-forward
size). Embeddings, layer norms, softmax, GELU and pooling are left out, so the count is a lower
bound on the work. Divided by the fastest fp32 matrix-multiply rate measured here (the model's own
shapes and large square ones, with torch and with numpy's OpenBLAS, one call on every core or one
single-threaded call per core at once), it gives a floor on the seconds of any fp32 backend: to go
below it, a backend would have to multiply matrices faster than either BLAS does on this machine.

Workloads (one record each, sharing a `run_id`):
- `embed`: the distinct demo abstracts that bench_embed embeds, also embedded here by
  sentence-transformers and by our fp32 `onnx` backend: the most any fp32 backend can be faster than
  sentence-transformers is its seconds over the floor (issue 7's target: 2x).
- `augment_gate`: the texts the similarity gate embeds in bench_augment (its 500 parents, every
  default op, the same seed), made here without embedding them: the floor against issue 4's 120 s,
  against the latest bench_augment run on this CPU, and for 8 children per parent (each parent's
  8 cheapest children: a lower bound for any 8 of the default ops).
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
import uuid
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
TARGET_GATE_SECONDS = 120.0
TARGET_CHILDREN_PER_PARENT = 8
TARGET_EMBED_RATIO = 2.0
TARGET_AUGMENT_RATIO = 5.0
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
    from model_hooks.embedder import model_path

    config = json.loads((model_path() / "config.json").read_text())
    return {"layers": config["num_hidden_layers"], "hidden": config["hidden_size"], "feed_forward": config["intermediate_size"]}


def distinct_word_pieces(texts: list[str]) -> np.ndarray:
    """Word pieces per distinct truncated piece sequence of `texts`, as the embedder runs them (once each)."""
    from model_hooks.embedder import MAX_TOKENS, tokenizer

    ids = tokenizer()(texts, truncation=True, max_length=MAX_TOKENS, verbose=False)["input_ids"] if texts else []
    return np.asarray([len(piece) for piece in dict.fromkeys(tuple(piece) for piece in ids)], dtype=np.int64)


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


def _time_products(library: str, shape: tuple[int, int, int], threads: int, seconds: float) -> float:
    """GFLOP/s of `threads` Python threads each multiplying fp32 matrices of `shape` for about `seconds`."""
    products = [_product(library, shape, seed) for seed in range(threads)]
    counts = [0] * threads
    barrier = threading.Barrier(threads + 1)
    stop = threading.Event()

    def run(index: int) -> None:
        products[index]()  # warm-up
        barrier.wait()
        while not stop.is_set():
            products[index]()
            counts[index] += 1

    workers = [threading.Thread(target=run, args=(index,)) for index in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started  # products still running at the stop are counted and waited for
    rows, inner, columns = shape
    return 2 * rows * inner * columns * sum(counts) / elapsed / 1e9


def fp32_matmul_rate(seconds: float = 1.0, repeats: int = 3, libraries: tuple[str, ...] = LIBRARIES) -> dict:
    """The fastest fp32 matrix-multiply rate found: each library, every shape, as one call on every core and
    as one single-threaded call per core at once (how the per-text backends run), best of `repeats`."""
    import torch

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
    return {"gflops": rates[best], "best_shape": best, "gflops_by_shape": rates, "cores": cores, "torch": torch.__version__,
            "numpy": np.__version__}


def embed_texts(n_texts: int | None) -> list[str]:
    """The distinct ingested demo abstracts, as bench_embed takes them (the first `n_texts`)."""
    from schemas.config import RunConfig
    from stages.ingest import ingest

    rows = ingest(RunConfig.load(ROOT / "configs" / "demo.yaml").ingest).kept
    return list(dict.fromkeys(rows.column("text").to_pylist()))[:n_texts]


def seconds_to_embed(texts: list[str], arm: str) -> float:
    """Wall seconds for sentence-transformers' default encode or our embedder (no cache) on `texts`, after a warm-up."""
    if arm == "sentence_transformers":
        from sentence_transformers import SentenceTransformer

        from model_hooks.embedder import model_path

        encode = SentenceTransformer(str(model_path()), device="cpu").encode
    else:
        from model_hooks.embedder import Embedder

        encode = Embedder(cache_dir=None, backend=arm).embed
    encode(["warm-up"])
    started = time.perf_counter()
    encode(texts)
    return time.perf_counter() - started


def gate_texts(seed: int = 0, n_labeled: int = 500) -> tuple[list[str], list[list[str]]]:
    """The parents of bench_augment's run and, per parent, the children that reach its similarity gate.

    Built as bench_augment builds them (the demo config, cleaned, `n_labeled` parents, every default op
    once, the same seed and domain inputs), with the gate's two embedding-free checks applied, and
    nothing embedded.
    """
    from experiments.sampling import draw_k_shot
    from schemas.config import RunConfig
    from schemas.rows import conform_rows
    from stages.cleaning import clean
    from stages.domain_adaptation import build_domain_inputs
    from stages.ingest import ingest
    from stages.semantic_augmentation import AugmentationConfig, augmentation_parents, generate, pre_gate_ledger

    config = RunConfig.load(ROOT / "configs" / "demo.yaml")
    rows = clean(ingest(config.ingest).kept, config.cleaning).kept
    labels = sorted(set(rows.column("label").drop_null().to_pylist()))
    drawn = conform_rows(draw_k_shot(rows, n_labeled // len(labels), seed))
    inputs = build_domain_inputs(drawn, config.domain)
    settings = AugmentationConfig(max_parents_per_class=None)
    parents = augmentation_parents(drawn, None, seed)
    children = generate(parents, settings, inputs, seed).table
    parent_text = dict(zip(parents.column("id").to_pylist(), parents.column("text").to_pylist()))
    alive = pre_gate_ledger(drawn, children, parent_text, inputs.protected_terms).kept_mask
    by_parent: dict[str, list[str]] = {parent_id: [] for parent_id in parent_text}
    for parent_id, text, kept in zip(children.column("parent_id").to_pylist(), children.column("text").to_pylist(), alive):
        if kept:
            by_parent[parent_id].append(text)
    return list(parent_text.values()), list(by_parent.values())


def cheapest_children_pieces(children: list[list[str]], per_parent: int) -> np.ndarray:
    """Word pieces of each parent's `per_parent` shortest children (in pieces): the least work of any choice of that many."""
    from model_hooks.embedder import MAX_TOKENS, tokenizer

    pieces = []
    for texts in children:
        if texts:
            lengths = sorted(len(ids) for ids in tokenizer()(texts, truncation=True, max_length=MAX_TOKENS, verbose=False)["input_ids"])
            pieces.extend(lengths[:per_parent])
    return np.asarray(pieces, dtype=np.int64)


def latest_augment_run(cpu: str | None) -> dict[str, dict]:
    """The records (by system) of the latest bench_augment run with a peer on the CPU `cpu`; {} if none."""
    path = RESULTS / "bench_augment.jsonl"
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []
    runs = [r["run_id"] for r in records if r["system"] == "nlpaug_loop" and cpu is not None and r.get("cpu") == cpu]
    return {r["system"]: r for r in records if runs and r.get("run_id") == runs[-1]}


def embed_record(texts: list[str], shape: dict, rate: dict, measured: dict[str, float]) -> dict:
    pieces = distinct_word_pieces(texts)
    floor = float(encoder_flops(pieces, **shape).sum()) / (rate["gflops"] * 1e9)
    st = measured["sentence_transformers"]
    return {
        "workload": "embed", "n_texts": len(texts), "n_sequences": len(pieces), "word_pieces": int(pieces.sum()),
        "gflop": round(float(encoder_flops(pieces, **shape).sum()) / 1e9, 1), "floor_seconds": round(floor, 1),
        "measured_seconds": {arm: round(seconds, 1) for arm, seconds in measured.items()},
        "onnx_share_of_machine_rate": round(floor / measured["onnx"], 3),
        "max_ratio_vs_sentence_transformers": round(st / floor, 2), "target_ratio": TARGET_EMBED_RATIO,
        "target_reachable_in_fp32": st / floor >= TARGET_EMBED_RATIO,
    }


def gate_record(parents: list[str], children: list[list[str]], shape: dict, rate: dict, cpu: str | None) -> dict:
    gflops = rate["gflops"] * 1e9
    pieces = distinct_word_pieces(parents + [text for texts in children for text in texts])
    floor = float(encoder_flops(pieces, **shape).sum()) / gflops
    eight = np.concatenate([distinct_word_pieces(parents), cheapest_children_pieces(children, TARGET_CHILDREN_PER_PARENT)])
    floor_eight = float(encoder_flops(eight, **shape).sum()) / gflops
    record = {
        "workload": "augment_gate", "parents": len(parents), "children_at_gate": sum(map(len, children)),
        "n_sequences": len(pieces), "word_pieces": int(pieces.sum()),
        "gflop": round(float(encoder_flops(pieces, **shape).sum()) / 1e9, 1), "floor_seconds": round(floor, 1),
        "floor_seconds_8_children": round(floor_eight, 1), "target_seconds": TARGET_GATE_SECONDS,
        "target_reachable_in_fp32": floor_eight < TARGET_GATE_SECONDS,
    }
    run = latest_augment_run(cpu)
    if run:
        ours, loop = run["ours"], run["nlpaug_loop"]
        ops_seconds = ours["seconds"] - ours["similarity_gate_seconds"]
        record.update({
            "augment_run_id": ours["run_id"], "ours_seconds": ours["seconds"], "ours_gate_seconds": ours["similarity_gate_seconds"],
            "ours_embedding_backend": ours["embedding_backend"],
            "least_seconds_with_measured_ops": round(floor + ops_seconds, 1), "nlpaug_loop_seconds": loop["seconds"],
            "max_ratio_vs_nlpaug_loop": round(loop["seconds"] / floor, 2), "target_ratio": TARGET_AUGMENT_RATIO,
        })
    return record


def write_markdown(records: list[dict], path: Path) -> None:
    lines = [
        "# The fp32 floor: least seconds for the bundled model's matrix products at this machine's fastest fp32 rate",
        "",
        "Written by `benchmarks/bench_roofline.py`. FLOPs count only the encoder's matrix products for each distinct "
        "truncated text (a lower bound on its work); the rate is the fastest fp32 matrix product measured on the machine. "
        "`max ratio` is the peer's measured seconds over the floor: no fp32 backend of this model can beat the peer by more.",
        "",
        "| date | commit | cpu | workload | texts | word pieces | GFLOP | fp32 GFLOP/s | floor s | measured s | max ratio | target | reachable in fp32 |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---|---:|---|---|",
    ]
    for r in records:
        if r["workload"] == "embed":
            measured = ", ".join(f"{arm} {seconds}" for arm, seconds in r["measured_seconds"].items())
            ratio, target, texts = f"{r['max_ratio_vs_sentence_transformers']:.2f}x", f">= {r['target_ratio']:.0f}x sentence-transformers", r["n_texts"]
        else:
            measured = f"ours {r['ours_seconds']} (gate {r['ours_gate_seconds']}), nlpaug loop {r['nlpaug_loop_seconds']}" if "ours_seconds" in r else "-"
            ratio = f"{r['max_ratio_vs_nlpaug_loop']:.2f}x" if "max_ratio_vs_nlpaug_loop" in r else "-"
            target = (f"< {r['target_seconds']:.0f} s with 8 children per parent (floor {r['floor_seconds_8_children']} s)"
                      + (f"; >= {r['target_ratio']:.0f}x the loop" if "target_ratio" in r else ""))
            texts = f"{r['parents']} + {r['children_at_gate']}"
        lines.append(f"| {r['date']} | {r['git_commit']} | {r['cpu']} | {r['workload']} | {texts} | {r['word_pieces']:,} | {r['gflop']:,} | "
                     f"{r['machine_fp32_gflops']} | {r['floor_seconds']} | {measured} | {ratio} | {target} | {'yes' if r['target_reachable_in_fp32'] else 'no'} |")
    path.write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-texts", type=int, default=1000, help="abstracts of the embed workload (the first N distinct)")
    args = parser.parse_args()
    for name, value in (("HF_HUB_OFFLINE", "1"), ("TRANSFORMERS_OFFLINE", "1"), ("TOKENIZERS_PARALLELISM", "false")):
        os.environ.setdefault(name, value)
    from experiments.provenance import run_fields

    shared = {"bench": "roofline", "system": "fp32_floor", **run_fields(uuid.uuid4().hex[:12])}
    shape = model_shape()
    rate = fp32_matmul_rate()
    print(json.dumps(rate, indent=2), flush=True)
    texts = embed_texts(args.n_texts)
    measured = {arm: seconds_to_embed(texts, arm) for arm in ("sentence_transformers", "onnx")}
    parents, children = gate_texts()
    machine = {"machine_fp32_gflops": rate["gflops"], "machine_rate": rate, "model_shape": shape}
    records = [{**shared, **machine, **embed_record(texts, shape, rate, measured)},
               {**shared, **machine, **gate_record(parents, children, shape, rate, shared["cpu"])}]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bench_roofline.jsonl"
    with out.open("a") as handle:
        handle.writelines(json.dumps(record, sort_keys=True) + "\n" for record in records)
    write_markdown([json.loads(line) for line in out.read_text().splitlines() if line.strip()], RESULTS / "bench_roofline.md")
    print(json.dumps(records, indent=2))


if __name__ == "__main__":
    main()
