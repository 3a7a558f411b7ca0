"""The benchmark suite: `pdap experiment` on several public data sets exactly as a user runs it, test rows.

Each data set runs through the CLI (`pdap experiment --config ... --k ... --no-ablations --results-dir
benchmarks/results/suite`), so the defaults are what is measured. The records of every data set are
gathered into `benchmarks/results/suite.jsonl` and summarised in `suite.md`: per data set and k, raw, each
reference arm, curated, and curated's paired uplift against raw and against the best reference of the
cell, with 95% t-intervals over seeds.

    python benchmarks/suite.py [--datasets medical_abstracts banking77 wordnet_glosses] [--seeds 5] [--k 10]
        [--eval-split test|dev] [--summary-only]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import harness  # noqa: E402
from experiments.metrics import mean_confidence_interval  # noqa: E402
from experiments.report import summarize  # noqa: E402
from harness import RESULTS  # noqa: E402

# data set -> (config, ks); k=25 only where every class of the pool has enough rows for it
DATASETS = {
    "medical_abstracts": ("configs/demo.yaml", [5, 10, 25]),
    "banking77": ("configs/banking77.yaml", [5, 10]),
    "wordnet_glosses": ("configs/wordnet_glosses.yaml", [5, 10, 25]),
}


def run_dataset(name: str, seeds: int, eval_split: str, only_ks: list[int] | None = None, encoder: str = "minilm",
                noise: list[str] | None = None) -> dict:
    """Run one data set's experiment through the CLI; return its wall-time record, with the embedding work it did."""
    config, ks = DATASETS[name]
    ks = [k for k in ks if not only_ks or k in only_ks]
    command = [str(ROOT / ".venv" / "bin" / "pdap"), "experiment", "--config", config, "--seeds", str(seeds), "--no-ablations",
               "--eval-split", eval_split, "--results-dir", str(suite_dir(eval_split)), "--encoder", encoder]
    for k in ks:
        command += ["--k", str(k)]
    for name_of_noise in noise or []:
        command += ["--noise", name_of_noise]
    with harness.timed() as timing:
        subprocess.run(command, cwd=ROOT, check=True, env=os.environ.copy())
    experiment = harness.read_records(suite_dir(eval_split) / "experiment_wall_time.jsonl")[-1]
    return {"bench": "suite_wall", "dataset": name, "encoder": encoder, "eval_split": eval_split, "ks": ks, "seeds": seeds,
            "seconds": round(timing.seconds, 1), "embedding": experiment.get("embedding", {}),
            "embedding_minutes": round(sum(work["seconds"] for work in experiment.get("embedding", {}).values()) / 60, 1)}


def suite_dir(eval_split: str) -> Path:
    """Where the per-data-set results go: suite/ for test rows, suite_dev/ for the dev rows that tuning work reads."""
    return RESULTS / ("suite" if eval_split == "test" else "suite_dev")


def gather(names: list[str], eval_split: str) -> list[dict]:
    """The records of every suite data set on `eval_split`, as in `<suite dir>/experiment_<name>.jsonl`."""
    records = []
    for name in names:
        records += [r for r in harness.read_records(suite_dir(eval_split) / f"experiment_{name}.jsonl") if r.get("eval_split") == eval_split]
    return records


def _points(value: float) -> str:
    return "n/a" if value != value else f"{value * 100:+.1f}"


def _f1(row: dict | None) -> str:
    return "" if row is None else f"{row['mean']:.3f}"


def summary_table(records: list[dict]) -> str:
    """Markdown: one line per data set and k, and the mean uplift over data sets per k."""
    references = sorted({r["arm"] for r in records if r["arm"].startswith("ref:")})
    header = ["data set", "encoder", "k", "seeds", "raw", *[r[4:] for r in references], "curated", "curated - raw [95% CI]",
              "best reference", "curated - best ref [95% CI]"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    by_k: dict[tuple[str, int], list[float]] = {}
    for dataset, encoder in sorted({(r["dataset"], r.get("encoder", "minilm")) for r in records}):
        arms, uplifts = summarize([r for r in records if r["dataset"] == dataset and r.get("encoder", "minilm") == encoder])
        for k in sorted({row["k"] for row in arms}):
            mean = {row["arm"]: row for row in arms if row["k"] == k}
            against = {row["against"]: row for row in uplifts if row["k"] == k and row["arm"] == "curated"}
            best = next((name for name in against if name != "raw"), None)
            vs_raw, vs_best = against.get("raw"), against.get(best)
            if vs_raw:
                by_k.setdefault((encoder, k), []).append(vs_raw["mean"])
            cells = [dataset, encoder, str(k), str(mean["raw"]["n"]), _f1(mean.get("raw")), *[_f1(mean.get(r)) for r in references], _f1(mean.get("curated")),
                     "" if not vs_raw else f"{_points(vs_raw['mean'])} [{_points(vs_raw['ci_low'])}, {_points(vs_raw['ci_high'])}]",
                     "" if best is None else best[4:],
                     "" if not vs_best else f"{_points(vs_best['mean'])} [{_points(vs_best['ci_low'])}, {_points(vs_best['ci_high'])}]"]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Mean over data sets of curated - raw (points), per encoder and k: "
              + ", ".join(f"{encoder} k={k}: {_points(mean_confidence_interval(values)['mean'])} ({len(values)} data sets)"
                          for (encoder, k), values in sorted(by_k.items()))]
    return "\n".join(lines) + "\n"


def cost_table(walls: list[dict]) -> str:
    """Markdown: the latest suite run of each data set and encoder, with its wall and embedding minutes."""
    latest = {}
    for wall in walls:
        latest[(wall["dataset"], wall.get("encoder", "minilm"), wall["eval_split"])] = wall
    lines = ["| data set | encoder | split | ks | seeds | wall minutes | embedding minutes | texts embedded |", "|---|---|---|---|---:|---:|---:|---:|"]
    for (dataset, encoder, split), wall in sorted(latest.items()):
        embedded = sum(work["texts"] for work in wall.get("embedding", {}).values())
        minutes = wall.get("embedding_minutes")
        lines.append(f"| {dataset} | {encoder} | {split} | {', '.join(map(str, wall['ks']))} | {wall['seeds']} | {wall['seconds'] / 60:.1f} | "
                     f"{'n/a' if minutes is None else f'{minutes:.1f}'} | {embedded if 'embedding' in wall else 'n/a'} |")
    notes = [f"- {dataset}, {encoder}: {wall['note']}" for (dataset, encoder, _), wall in sorted(latest.items()) if wall.get("note")]
    return "\n".join(lines + ([""] + notes if notes else [])) + "\n"


def decisions_table(records: list[dict]) -> str:
    """Markdown: per data set, encoder and k, in how many seeds self-tuning switched each option on."""
    counts: dict[tuple[str, str, int], dict[str, int]] = {}
    seeds: dict[tuple[str, str, int], int] = {}
    for record in records:
        if record["arm"] != "curated" or "decisions" not in record:
            continue
        key = (record["dataset"], record.get("encoder", "minilm"), record["k"])
        seeds[key] = seeds.get(key, 0) + 1
        for decision in record["decisions"]:
            counts.setdefault(key, {}).setdefault(decision["name"], 0)
            counts[key][decision["name"]] += int(decision["on"])
    names = ["curation", "adapt", "augment", "validate"]
    lines = ["| data set | encoder | k | seeds | " + " | ".join(names) + " |", "|" + "---|" * (len(names) + 4)]
    for key in sorted(counts):
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {seeds[key]} | " + " | ".join(f"{counts[key].get(name, 0)}/{seeds[key]}" for name in names) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--k", type=int, action="append", help="only these k (of each data set's own)")
    parser.add_argument("--eval-split", choices=["test", "dev"], default="test", help="dev: for tuning work (results in suite_dev*)")
    parser.add_argument("--summary-only", action="store_true", help="rebuild the suite's .jsonl and .md from the records")
    parser.add_argument("--encoder", default="minilm", help="minilm (default) or mpnet (make encoder-mpnet)")
    parser.add_argument("--noise", action="append", help="passed to pdap experiment (default: its own); 'none' for clean rows only")
    args = parser.parse_args()
    for name in [] if args.summary_only else args.datasets:
        harness.write_records(RESULTS / "suite_wall_time.jsonl", [run_dataset(name, args.seeds, args.eval_split, args.k, args.encoder, args.noise)])
    records = gather(list(DATASETS), args.eval_split)
    stem = "suite" if args.eval_split == "test" else "suite_dev"
    harness.rewrite_records(RESULTS / f"{stem}.jsonl", records)
    title = f"# Benchmark suite: pdap experiment on public data sets, {args.eval_split} rows\n\n"
    intro = ("Head trainer, self-tuned (the head's L2 and the stages by inner cross-validation on the training rows); macro-F1 "
             f"means over seeds on the {args.eval_split} half of the eval rows; uplifts are paired by seed, in points, with 95% t-intervals. "
             f"Records: {stem}.jsonl; per data set: {suite_dir(args.eval_split).name}/experiment_<name>.md.\n\n")
    decisions = ("\nSelf-tuning's choices: in how many seeds each option was on in the curated arm (inner cross-validation "
                 "on the training rows; the decisions and their figures are in each curated record).\n\n" + decisions_table(records))
    cost = ("\nWhat each data set's latest run cost, per encoder (embedding minutes: time this run spent embedding; n/a: "
            "recorded before embedding time was).\n\n" + cost_table(harness.read_records(RESULTS / "suite_wall_time.jsonl")))
    harness.write_text(RESULTS / f"{stem}.md", title + intro + summary_table(records) + decisions + cost)
    print((RESULTS / f"{stem}.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
