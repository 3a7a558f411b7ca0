"""The fp32 floor counts the bundled model's real matrix products, each distinct text once, at a measured rate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_roofline  # noqa: E402


def test_flops_match_the_bundled_models_own_linear_layers():
    import torch

    from model_hooks.embedder import sentence_model

    shape = bench_roofline.model_shape()
    encoder = sentence_model()[0].auto_model.encoder
    weights = sum(module.weight.numel() for module in encoder.modules() if isinstance(module, torch.nn.Linear))
    n = 200
    attention = 4 * n * n * shape["hidden"] * shape["layers"]
    assert bench_roofline.encoder_flops(np.array([n]), **shape)[0] == 2 * n * weights + attention


def test_each_distinct_truncated_sequence_counts_once():
    long_text = "pain " * 400
    pieces = bench_roofline.distinct_word_pieces(["the heart", "the heart", long_text, long_text + " and more words"])
    # [CLS] the heart [SEP]; the long texts share their first 256 pieces, so one sequence of 256
    assert sorted(pieces.tolist()) == [4, 256]


def test_cheapest_children_are_the_shortest_per_parent():
    children = [["one two three four five", "one", "one two"], [], ["alpha beta"]]
    pieces = bench_roofline.cheapest_children_pieces(children, per_parent=2)
    assert pieces.tolist() == [3, 4, 4]


def test_matmul_rate_is_the_fastest_of_every_library_shape_and_threading(monkeypatch):
    monkeypatch.setattr(bench_roofline, "MATMUL_SHAPES", ((64, 64, 64), (128, 96, 32)))
    rate = bench_roofline.fp32_matmul_rate(seconds=0.05, repeats=1)
    assert rate["gflops"] == max(rate["gflops_by_shape"].values()) > 0
    assert rate["gflops_by_shape"][rate["best_shape"]] == rate["gflops"]
    assert sorted(rate["gflops_by_shape"]) == sorted(
        f"{library} {shape} {mode}" for library in ("torch", "numpy") for shape in ("64x64x64", "128x96x32")
        for mode in ("one call on every core", "one call per core"))


def test_matmul_rate_restores_blas_threads():
    import torch
    from threadpoolctl import threadpool_info

    before = (torch.get_num_threads(), [pool["num_threads"] for pool in threadpool_info()])
    with bench_roofline._blas_threads("torch", 1), bench_roofline._blas_threads("numpy", 1):
        assert torch.get_num_threads() == 1
    assert (torch.get_num_threads(), [pool["num_threads"] for pool in threadpool_info()]) == before


def _augment_record(system: str, run_id: str, cpu: str, seconds: float) -> dict:
    return {"system": system, "run_id": run_id, "cpu": cpu, "seconds": seconds, "similarity_gate_seconds": seconds / 2,
            "embedding_backend": "onnx"}


def test_augment_comparison_only_uses_a_run_on_the_same_cpu(tmp_path, monkeypatch):
    records = [_augment_record("ours", "a", "AMD EPYC (avx2 fma)", 150.0), _augment_record("nlpaug_loop", "a", "AMD EPYC (avx2 fma)", 200.0),
               _augment_record("ours", "b", "Xeon (avx2 amx_bf16)", 100.0), _augment_record("nlpaug_loop", "b", "Xeon (avx2 amx_bf16)", 190.0)]
    (tmp_path / "bench_augment.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    monkeypatch.setattr(bench_roofline, "RESULTS", tmp_path)
    assert bench_roofline.latest_augment_run("AMD EPYC (avx2 fma)")["ours"]["seconds"] == 150.0
    assert bench_roofline.latest_augment_run("Other CPU") == {}
    assert bench_roofline.latest_augment_run(None) == {}

    shape = {"layers": 1, "hidden": 4, "feed_forward": 8}
    rate = {"gflops": 1e-6}  # 1,000 FLOP/s
    record = bench_roofline.gate_record(["heart"], [["heart attack"]], shape, rate, "AMD EPYC (avx2 fma)")
    flops = bench_roofline.encoder_flops(np.array([3, 4]), **shape).sum()
    assert record["floor_seconds"] == round(flops / 1000, 1)
    assert record["max_ratio_vs_nlpaug_loop"] == round(200.0 / (flops / 1000), 2)
    assert record["least_seconds_with_measured_ops"] == round(flops / 1000 + 75.0, 1)


def test_markdown_has_a_row_per_record(tmp_path):
    common = {"date": "2026-12-02", "git_commit": "abc1234", "cpu": "AMD EPYC (avx2 fma)", "machine_fp32_gflops": 150.0,
              "word_pieces": 1000, "gflop": 12.0, "floor_seconds": 2.0}
    embed = common | {"workload": "embed", "n_texts": 10, "measured_seconds": {"sentence_transformers": 3.0, "onnx": 2.5},
                      "max_ratio_vs_sentence_transformers": 1.5, "target_ratio": 2.0, "target_reachable_in_fp32": False}
    gate = common | {"workload": "augment_gate", "parents": 5, "children_at_gate": 40, "floor_seconds_8_children": 1.8,
                     "target_seconds": 120.0, "target_reachable_in_fp32": True}
    path = tmp_path / "roofline.md"
    bench_roofline.write_markdown([embed, gate], path)
    rows = [line for line in path.read_text().splitlines() if line.startswith("| 2026-12-02")]
    assert len(rows) == 2
    assert "1.50x" in rows[0] and rows[0].endswith("| no |")
    assert "5 + 40" in rows[1] and rows[1].endswith("| yes |")
