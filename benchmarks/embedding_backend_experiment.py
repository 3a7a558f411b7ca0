"""The whole experiment under two embedding backends: how far the bf16 default moves macro-F1.

Issue 7's embedding target asks for macro-F1 "changed by at most 0.5 point in the experiment".
`make bench-embed-experiment` runs the default experiment (configs/demo.yaml, the `head` trainer,
k = 10 / 25 / 100, 5 seeds, every arm) once with `PDAP_EMBEDDING_BACKEND=onnx` (fp32) and once with
`torch_bf16`, each into its own folder under benchmarks/results/embedding_backends/; this script
pairs their records by (trainer, arm, k, seed) and writes
benchmarks/results/embedding_backends/comparison.md: per arm and k the mean macro-F1 of each
backend, the mean paired difference in points and the largest per-seed difference.

    python benchmarks/embedding_backend_experiment.py [--baseline onnx] [--candidate torch_bf16]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import harness
from harness import RESULTS

FOLDER = RESULTS / "embedding_backends"
DATASET = "medical_abstracts"
TARGET_POINTS = 0.5


def read_records(backend: str, folder: Path = FOLDER, dataset: str = DATASET) -> list[dict]:
    path = folder / backend / f"experiment_{dataset}.jsonl"
    if not path.is_file():
        raise SystemExit(f"no results for backend {backend!r} at {path}; run: make bench-embed-experiment")
    return harness.read_records(path)


def paired_differences(baseline: list[dict], candidate: list[dict]) -> list[dict]:
    """Per (trainer, arm, k): both backends' mean macro-F1 over the seeds both ran, the mean paired
    difference (candidate - baseline) and the largest absolute per-seed difference, in points."""
    key = lambda record: (record["trainer"], record["arm"], record["k"], record["seed"])  # noqa: E731
    base = {key(record): record["macro_f1"] for record in baseline}
    cells: dict[tuple, list[tuple[float, float]]] = {}
    for record in candidate:
        if key(record) in base:
            cells.setdefault(key(record)[:3], []).append((base[key(record)], record["macro_f1"]))
    rows = []
    for (trainer, arm, k), pairs in sorted(cells.items(), key=lambda item: (item[0][0], item[0][2], item[0][1])):
        differences = [100 * (after - before) for before, after in pairs]
        rows.append({
            "trainer": trainer, "arm": arm, "k": k, "seeds": len(pairs),
            "baseline_macro_f1": sum(before for before, _ in pairs) / len(pairs),
            "candidate_macro_f1": sum(after for _, after in pairs) / len(pairs),
            "diff_points": sum(differences) / len(differences),
            "max_abs_seed_diff_points": max(abs(value) for value in differences),
        })
    return rows


def write_markdown(rows: list[dict], baseline: str, candidate: str, path: Path) -> None:
    worst = max((abs(row["diff_points"]) for row in rows), default=0.0)
    lines = [
        f"# The experiment under `{baseline}` and `{candidate}` embeddings",
        "",
        f"Same config (configs/demo.yaml), draws and seeds; each backend's records in `{baseline}/` and `{candidate}/`. "
        f"Target (issue 7): macro-F1 changed by at most {TARGET_POINTS} point. Largest change of a mean: "
        f"{worst:.2f} points, {'within' if worst <= TARGET_POINTS else 'outside'} the target.",
        "",
        f"| trainer | k | arm | seeds | {baseline} | {candidate} | diff (points) | largest seed diff |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        lines.append(f"| {row['trainer']} | {row['k']} | {row['arm']} | {row['seeds']} | {row['baseline_macro_f1']:.4f} | "
                     f"{row['candidate_macro_f1']:.4f} | {row['diff_points']:+.2f} | {row['max_abs_seed_diff_points']:.2f} |")
    harness.write_lines(path, lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="onnx")
    parser.add_argument("--candidate", default="torch_bf16")
    args = parser.parse_args()
    rows = paired_differences(read_records(args.baseline), read_records(args.candidate))
    if not rows:
        raise SystemExit("the two backends' records share no (trainer, arm, k, seed) cell")
    write_markdown(rows, args.baseline, args.candidate, FOLDER / "comparison.md")
    print((FOLDER / "comparison.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
