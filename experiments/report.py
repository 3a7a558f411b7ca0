"""Results files of an experiment: JSON Lines records, a Markdown summary and an F1-against-k plot."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from experiments.metrics import mean_confidence_interval
from experiments.noise import CLEAN
from schemas.files import atomic_write_bytes

RECORD_KEY = ("dataset", "eval_split", "trainer", "encoder", "arm", "k", "seed", "embedding_mode", "noise")
# A rerun of a cell replaces every record of the cell: an arm it no longer has (an op that made
# no children this time) must not survive from an older run.
CELL_KEY = ("dataset", "eval_split", "trainer", "encoder", "k", "seed", "embedding_mode")
# What records written before a field existed meant by its absence.
RECORD_DEFAULTS = {"encoder": "minilm"}


def merge_records(path: Path, new: list[dict], key: tuple[str, ...] = RECORD_KEY, replace: tuple[str, ...] = CELL_KEY) -> list[dict]:
    """Existing records of `path` minus those sharing a `replace` group with `new`, plus `new`;
    written back sorted by `key`."""
    old = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()] if path.exists() else []
    values = lambda record, fields: tuple(record.get(field, RECORD_DEFAULTS.get(field)) for field in fields)  # noqa: E731
    replaced = {values(record, replace) for record in new}
    kept = [record for record in old if values(record, replace) not in replaced]
    order = lambda record: tuple((0, v, "") if isinstance(v, (int, float)) else (1, 0, str(v)) for v in values(record, key))  # noqa: E731
    merged = sorted(kept + new, key=order)
    atomic_write_bytes(path, "".join(json.dumps(record, sort_keys=True) + "\n" for record in merged).encode("utf-8"))
    return merged


def _split_name(record: dict) -> str:
    return record.get("eval_split") or "all"  # records before the dev/test protocol scored every eval row


def embedding_of(record: dict) -> str:
    """The tables' embedding column: the mode (`truncate`, `chunk_mean`), after the encoder's name unless it is MiniLM."""
    mode, encoder = record.get("embedding_mode", "truncate"), record.get("encoder", "minilm")
    return mode if encoder == "minilm" else f"{encoder} {mode}"


def noise_of(record: dict) -> str:
    """The noise a record was scored under (`none`: the clean eval rows; records before noisy scoring had none)."""
    return record.get("noise") or CLEAN


def summarize(records: list[dict], noise: str = CLEAN) -> tuple[list[dict], list[dict]]:
    """Per (eval split, trainer, mode, k, arm): mean/std/CI of macro-F1 under `noise` (default: clean rows); and
    the paired uplift of every arm over raw (`against: raw`) and over the cell's best reference arm by mean
    (`against: ref:<name>`)."""
    cells = defaultdict(dict)
    for record in records:
        if noise_of(record) != noise:
            continue
        group = (_split_name(record), record["trainer"], embedding_of(record), record["k"])
        cells[group].setdefault(record["arm"], {})[record["seed"]] = record["macro_f1"]
    arms, uplifts = [], []
    for (split, trainer, mode, k), by_arm in sorted(cells.items()):
        common = {"eval_split": split, "trainer": trainer, "embedding_mode": mode, "k": k}
        references = [arm for arm in by_arm if arm.startswith("ref:")]
        best_reference = max(references, key=lambda arm: sum(by_arm[arm].values()) / len(by_arm[arm]), default=None)
        for arm, scores in sorted(by_arm.items()):
            arms.append({**common, "arm": arm, **mean_confidence_interval(list(scores.values()))})
            for baseline in ("raw", best_reference):
                if baseline is None or arm == baseline or (baseline != "raw" and arm.startswith("ref:")):
                    continue
                paired = [scores[seed] - by_arm[baseline][seed] for seed in sorted(scores) if seed in by_arm[baseline]]
                if paired:
                    uplifts.append({**common, "arm": arm, "against": baseline, **mean_confidence_interval(paired)})
    return arms, uplifts


def noise_summary(records: list[dict]) -> list[dict]:
    """Per (eval split, trainer, mode, k, arm, noise): macro-F1 under the noise and its drop from the same
    seed's clean F1, in points (positive: the noise costs F1), each with mean, spread and 95% interval."""
    cells = defaultdict(list)
    for record in records:
        if noise_of(record) != CLEAN and "drop_from_clean" in record:
            cells[(_split_name(record), record["trainer"], embedding_of(record), record["k"], record["arm"],
                   noise_of(record))].append(record)
    rows = []
    for (split, trainer, mode, k, arm, noise), found in sorted(cells.items()):
        f1, drop = mean_confidence_interval([r["macro_f1"] for r in found]), mean_confidence_interval([r["drop_from_clean"] for r in found])
        rows.append({"eval_split": split, "trainer": trainer, "embedding_mode": mode, "k": k, "arm": arm, "noise": noise, "n": f1["n"],
                     "macro_f1": f1, "drop_points": drop})
    return rows


def noise_table(records: list[dict]) -> list[str]:
    """Markdown lines: F1 against noise per arm (mean over seeds) and the drop from clean in points [95% CI]."""
    rows = noise_summary(records)
    if not rows:
        return []
    lines = ["", "Macro-F1 on noisy copies of the same eval rows (experiments/noise.py; `char@r`: one character error in a",
             "share r of the words; `word@r`: abbreviations and synonyms for a share r of the words), and the drop from",
             "the clean F1 of the same seed, in points (positive: the noise costs F1).", "",
             "| split | trainer | embedding | arm | k | noise | n | macro-F1 | drop (points) | 95% CI |", "|---|---|---|---|---:|---|---:|---:|---:|---|"]
    for row in rows:
        drop = row["drop_points"]
        lines.append(f"| {row['eval_split']} | {row['trainer']} | {row['embedding_mode']} | {row['arm']} | {row['k']} | {row['noise']} | {row['n']} | "
                     f"{_number(row['macro_f1']['mean'])} | {drop['mean']:+.2f} | [{drop['ci_low']:+.2f}, {drop['ci_high']:+.2f}] |")
    return lines


def _number(value: float, scale: float = 1.0) -> str:
    return "n/a" if value != value else f"{value * scale:.3f}"


def write_markdown(records: list[dict], path: Path, title: str) -> None:
    arms, uplifts = summarize(records)
    lines = [f"# {title}", "", "Macro-F1 on the eval rows of the split named (test: published figures; dev: tuning; all: records made",
             "before the dev/test protocol), mean ± standard deviation over seeds (n), 95% t-interval.", ""]
    lines += ["| split | trainer | embedding | arm | k | n | macro-F1 mean | std | 95% CI |", "|---|---|---|---|---:|---:|---:|---:|---|"]
    for row in arms:
        lines.append(
            f"| {row['eval_split']} | {row['trainer']} | {row['embedding_mode']} | {row['arm']} | {row['k']} | {row['n']} | {_number(row['mean'])} | "
            f"{_number(row['std'])} | [{_number(row['ci_low'])}, {_number(row['ci_high'])}] |"
        )
    lines += ["", "Paired uplift (same trainer, seed and k) in macro-F1 points, against the raw k-shot data and against the",
              "cell's best reference arm (highest mean).", ""]
    lines += ["| split | trainer | embedding | arm | against | k | n | uplift mean | std | 95% CI |", "|---|---|---|---|---|---:|---:|---:|---:|---|"]
    for row in uplifts:
        lines.append(
            f"| {row['eval_split']} | {row['trainer']} | {row['embedding_mode']} | {row['arm']} | {row['against']} | {row['k']} | {row['n']} | "
            f"{_number(row['mean'], 100)} | {_number(row['std'], 100)} | [{_number(row['ci_low'], 100)}, {_number(row['ci_high'], 100)}] |"
        )
    lines += noise_table(records)
    atomic_write_bytes(path, ("\n".join(lines) + "\n").encode("utf-8"))


def plot_f1_against_k(records: list[dict], path: Path, title: str) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms, _ = summarize(records)
    series = defaultdict(list)
    for row in arms:
        if not row["arm"].startswith("without:"):  # ablations are in the Markdown tables; the plot stays readable
            series[(row["trainer"], row["embedding_mode"], row["arm"])].append(row)
    figure, axis = plt.subplots(figsize=(8, 5))
    for (trainer, mode, arm), rows in sorted(series.items()):
        rows.sort(key=lambda r: r["k"])
        ks = [r["k"] for r in rows]
        axis.errorbar(ks, [r["mean"] for r in rows], yerr=[0 if r["std"] != r["std"] else r["std"] for r in rows], marker="o", capsize=3, label=f"{trainer}/{mode}: {arm}")
    axis.set_xscale("log")
    axis.set_xlabel("labeled examples per class (k)")
    axis.set_ylabel("macro-F1 on eval (mean ± std over seeds)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="lower right")
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110, metadata={"Software": None})
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())
