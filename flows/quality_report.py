"""The data-quality report of a run folder: one static, self-contained `report.html`.

Sections: rows through each stage (funnel chart), rejects by reason with example rows, label
balance before and after, text lengths, score histograms (similarity, domain, synthetic),
the discriminator's AUC and the other checks, contract results with a link to the Great
Expectations Data Docs, and, when an experiment ran in the folder, its uplift table and an
F1-against-k chart. Images are inline PNGs; every piece of text that comes from data is
HTML-escaped, so a `<script>` in the input stays text.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq

from flows.run_folder import BOUNDARY_FILES, RunFolder, atomic_write_bytes

SECTIONS = ("funnel", "rejects", "labels", "lengths", "scores", "checks", "contracts", "experiment")
EXAMPLES_PER_REASON = 3
_EXCERPT = 200
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #17702a; font-weight: 600; } .fail { color: #b00020; font-weight: 600; }
.muted { color: #666; } img { max-width: 100%; }
"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _png(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return f'<img alt="chart" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode("ascii")}">'


def _figure(width: float = 7.0, height: float = 3.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def _table(headers: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f'<td class="num">{_e(v)}</td>' if i in numeric else f"<td>{_e(v)}</td>" for i, v in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _excerpt(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _stages(folder: RunFolder) -> list[str]:
    return [stage for stage in BOUNDARY_FILES if folder.stats_path(stage).exists()]


def funnel_section(folder: RunFolder) -> str:
    from flows.curate import funnel

    rows = [[r["stage"], r["rows_in"], r["added"], r["rows_out"], r["rejected"], r["seconds"]] for r in funnel(folder)]
    figure, axes = _figure()
    axes.bar([r[0] for r in rows], [r[3] for r in rows], color="#4c78a8", label="rows out")
    axes.bar([r[0] for r in rows], [r[4] for r in rows], bottom=[r[3] for r in rows], color="#e45756", label="rejected")
    axes.set_ylabel("rows")
    axes.legend()
    return _table(["stage", "rows in", "added", "rows out", "rejected", "seconds"], rows, {1, 2, 3, 4, 5}) + _png(figure)


def rejects_section(folder: RunFolder) -> str:
    parts = []
    for stage in _stages(folder):
        path = folder.rejects_path(stage)
        if not path.exists():
            continue
        rejects = pq.read_table(path, columns=["id", "text", "label", "reason", "detail"]).to_pylist()
        if not rejects:
            continue
        by_reason = Counter(r["reason"] for r in rejects)
        for reason, count in sorted(by_reason.items()):
            examples = [r for r in rejects if r["reason"] == reason][:EXAMPLES_PER_REASON]
            parts.append(f"<h3>{_e(stage)}: {_e(reason)} ({count})</h3>")
            parts.append(_table(["id", "label", "detail", "text"], [[r["id"], r["label"] or "", r["detail"] or "", _excerpt(r["text"])] for r in examples]))
    return "".join(parts) or '<p class="muted">No row was rejected.</p>'


def _final_path(folder: RunFolder) -> Path | None:
    for stage in reversed(list(BOUNDARY_FILES)):
        if folder.boundary_path(stage).exists():
            return folder.boundary_path(stage)
    return None


def labels_section(folder: RunFolder) -> str:
    raw, final = folder.boundary_path("ingest"), _final_path(folder)
    if final is None or not raw.exists():
        return '<p class="muted">No rows yet.</p>'

    def labeled_counts(path: Path) -> Counter:
        table = pq.read_table(path, columns=["label", "split", "origin"]).to_pylist()
        return Counter(r["label"] for r in table if r["split"] == "labeled")

    before, after = labeled_counts(raw), labeled_counts(final)
    labels = sorted(set(before) | set(after))
    figure, axes = _figure()
    positions = range(len(labels))
    axes.bar([p - 0.2 for p in positions], [before[label] for label in labels], width=0.4, label="raw", color="#9ecae9")
    axes.bar([p + 0.2 for p in positions], [after[label] for label in labels], width=0.4, label="curated", color="#4c78a8")
    axes.set_xticks(list(positions), [label[:18] for label in labels], rotation=20, ha="right")
    axes.legend()
    rows = [[label, before[label], after[label]] for label in labels]
    return _table(["label", "labeled rows, raw", "labeled rows, curated"], rows, {1, 2}) + _png(figure)


def lengths_section(folder: RunFolder) -> str:
    raw, final = folder.boundary_path("ingest"), _final_path(folder)
    if final is None or not raw.exists():
        return '<p class="muted">No rows yet.</p>'
    figure, axes = _figure()
    for path, name in ((raw, "raw"), (final, "curated")):
        lengths = [len((t or "").split()) for t in pq.read_table(path, columns=["text"]).column("text").to_pylist()]
        axes.hist(lengths, bins=40, alpha=0.55, label=f"{name} (n={len(lengths)})")
    axes.set_xlabel("words per text")
    axes.legend()
    return _png(figure)


def scores_section(folder: RunFolder) -> str:
    final = _final_path(folder)
    if final is None:
        return '<p class="muted">No rows yet.</p>'
    table = pq.read_table(final, columns=["similarity", "domain_score", "synthetic_p", "label_agreement"])
    parts = []
    for name in table.column_names:
        values = [v for v in table.column(name).to_pylist() if v is not None and v == v]
        if not values:
            parts.append(f'<p class="muted">{_e(name)}: no scores in this run.</p>')
            continue
        figure, axes = _figure(5.5, 2.6)
        axes.hist(values, bins=30, color="#72b7b2")
        axes.set_title(f"{name} (n={len(values)})")
        parts.append(_png(figure))
    return "".join(parts)


def checks_section(folder: RunFolder) -> str:
    if not folder.stats_path("validate").exists():
        return '<p class="muted">Adversarial validation did not run.</p>'
    checks = folder.read_stats("validate").get("checks", {})
    if not checks:
        return '<p class="muted">No check was enabled.</p>'
    rows = []
    for name, check in checks.items():
        info = check["info"]
        headline = ""
        if "roc_auc" in info and info["roc_auc"] is not None:
            headline = f"discriminator ROC-AUC {info['roc_auc']:.3f} (95% CI {info['roc_auc_ci95'][0]:.3f}-{info['roc_auc_ci95'][1]:.3f})"
        rows.append([name, f"{check['summary']:.3f}", info.get("flagged", ""), headline])
    parts = [_table(["check", "summary (1 = nothing wrong)", "flagged", "detail"], rows, {1, 2})]
    for name, check in checks.items():
        examples = check["info"].get("examples") or []
        if examples:
            keys = [k for k in examples[0] if k != "text"] + ["text"]
            parts.append(f"<h3>{_e(name)}: examples</h3>" + _table(keys, [[example.get(k, "") for k in keys] for example in examples]))
    return "".join(parts)


def contracts_section(folder: RunFolder) -> str:
    rows = []
    for path in sorted((folder.root / "contracts").glob("*.json")):
        for report in json.loads(path.read_text(encoding="utf-8")):
            failed = [rule["rule"] for rule in report["rules"] if not rule["success"]]
            rows.append((report["boundary"], report["success"], len(report["rules"]), ", ".join(failed)))
    if not rows:
        return '<p class="muted">No contract ran.</p>'
    body = "".join(
        f"<tr><td>{_e(b)}</td><td class=\"{'ok' if ok else 'fail'}\">{'passed' if ok else 'FAILED'}</td>"
        f"<td class=\"num\">{n}</td><td>{_e(failed)}</td></tr>"
        for b, ok, n, failed in rows
    )
    docs = folder.data_docs_dir / "index.html"
    link = f'<p><a href="{_e(docs.relative_to(folder.root).as_posix())}">Great Expectations Data Docs</a></p>' if docs.exists() else ""
    return f"<table><thead><tr><th>boundary</th><th>result</th><th>rules</th><th>failed rules</th></tr></thead><tbody>{body}</tbody></table>{link}"


def experiment_section(folder: RunFolder) -> str:
    path = folder.root / "experiment_summary.json"
    if not path.exists():
        return '<p class="muted">No experiment ran in this run folder (<code>pdap experiment</code> writes one).</p>'
    summary = json.loads(path.read_text(encoding="utf-8"))
    fmt = lambda v: "n/a" if v is None or v != v else f"{v * 100:+.2f}"  # noqa: E731
    uplift_rows = [[u.get("eval_split", "all"), u["trainer"], u["arm"], u.get("against", "raw"), u["k"], u["n"], fmt(u["mean"]),
                    f"[{fmt(u['ci_low'])}, {fmt(u['ci_high'])}]"] for u in summary["uplifts"]]
    figure, axes = _figure()
    by_arm: dict[str, list[tuple[int, float]]] = {}
    for arm in summary["arms"]:
        if not arm["arm"].startswith("without:"):
            by_arm.setdefault(f"{arm['trainer']} {arm['arm']}", []).append((arm["k"], arm["mean"]))
    for name, points in sorted(by_arm.items()):
        points.sort()
        axes.plot([k for k, _ in points], [f1 for _, f1 in points], marker="o", label=name)
    axes.set_xscale("log")
    axes.set_xlabel("labeled examples per class (k)")
    axes.set_ylabel("macro-F1")
    axes.legend(fontsize=7)
    return (_table(["split", "trainer", "arm", "against", "k", "seeds", "uplift (points)", "95% CI"], uplift_rows, {4, 5, 6}) + _png(figure)
            + cells_section(folder))


def cells_section(folder: RunFolder) -> str:
    """Per cell (k, seed): the head's L2, each tuning decision with its inner figure, and the curated arm's stage stats."""
    paths = sorted((folder.root / "cells").glob("k*-seed*.json"), key=lambda p: tuple(int(x) for x in p.stem[1:].split("-seed")))
    if not paths:
        return ""
    rows = []
    for path in paths:
        cell = json.loads(path.read_text(encoding="utf-8"))
        stages = "; ".join(f"{name}: {stats.get('rows_in')} in, {stats.get('rows_out')} out"
                           + "".join(f", {key[8:]} {value}" for key, value in sorted(stats.items()) if key.startswith("dropped_") and value)
                           + (f", pseudo-labeled {stats['pseudo_labeled']}" if stats.get("pseudo_labeled") else "")
                           for name, stats in cell.get("stages", {}).items()) or "none (curated = raw)"
        rows.append([cell["k"], cell["seed"], cell.get("head_l2"), "; ".join(cell.get("decision_lines", [])) or "not tuned", stages])
    return ("<h3>Per cell: tuning decisions and the curated arm's stages</h3>"
            "<p class=\"muted\">Decisions come from inner cross-validation on the training rows only (change of the held-out log-loss and macro-F1 with the option on, "
            "95% bootstrap interval); eval rows are never read.</p>"
            + _table(["k", "seed", "head L2", "decisions", "curated arm: stages"], rows, {0, 1, 2}))


def build_report(run_root: Path) -> str:
    """The report of `run_root` as one HTML string."""
    folder = RunFolder(Path(run_root))
    builders = {
        "funnel": ("Rows through each stage", funnel_section),
        "rejects": ("Rejects by reason, with examples", rejects_section),
        "labels": ("Label balance before and after", labels_section),
        "lengths": ("Text lengths", lengths_section),
        "scores": ("Similarity, domain and synthetic scores", scores_section),
        "checks": ("Adversarial validation checks", checks_section),
        "contracts": ("Data contracts", contracts_section),
        "experiment": ("Few-shot experiment", experiment_section),
    }
    body = "".join(f'<section id="{key}"><h2>{_e(title)}</h2>{build(folder)}</section>' for key, (title, build) in builders.items())
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>pdap report: {_e(folder.root.name)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>pdap data-quality report: {_e(folder.root.name)}</h1>{body}</body></html>")


def write_report(run_root: Path) -> Path:
    """Write `report.html` into the run folder (atomically) and return its path."""
    path = Path(run_root) / "report.html"
    atomic_write_bytes(path, build_report(Path(run_root)).encode("utf-8"))
    return path
