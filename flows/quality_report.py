"""The data-quality report of a run folder: one static, self-contained `report.html`.

A banner first when the run failed or stopped early. Sections: the run's metadata (start time,
inputs, rows per split, embedding backend, code commit, the configuration collapsed), rows through
each stage (funnel chart), rejects by reason with example rows and their details, label balance
(raw against the original, augmented and pseudo-labeled rows kept), augmented rows per op and per
purpose (variety or robustness: generated, passed the gates, rejected later, kept) with
examples beside their parents and the changed words marked, text lengths, score histograms with the
thresholds they are cut at, problems of the eval split, the adversarial-validation checks, contract
results with a link to the Great Expectations Data Docs, and, when an experiment ran in the folder,
its uplift table, an F1-against-k chart and, for experiments scored on noisy eval rows, F1 against
noise. Images are inline PNGs; every piece of text that comes from data is HTML-escaped, so a
`<script>` in the input stays text. The report only reads the run folder; it imports no flow.
"""

from __future__ import annotations

import json
import re
import textwrap
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from experiments.noise import parse_noise
from flows.report_diff import word_diff
from flows.report_eval import eval_problems
from flows.report_funnel import STAGES, funnel
from flows.report_html import collapsed, e, figure, png, table
from flows.report_run import RunStatus, final_name, run_metadata, run_status
from flows.run_folder import RunFolder
from schemas.files import atomic_write_bytes
from schemas.rows import ORIGINS
from stages.augmenters import PURPOSES, op_purpose
from stages.cleaning import CleaningConfig

EXAMPLES_PER_REASON = 3
EXAMPLES_PER_OP = 2
EVAL_EXAMPLES = 20
_EXCERPT = 200
_DETAIL_EXCERPT = 90
_DUPLICATE_OF = re.compile(r"^duplicate of (?:eval row )?(\S+)$")
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; padding: 0 1rem; color: #222; }
h1 { font-size: 1.6rem; overflow-wrap: anywhere; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .9rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; overflow-wrap: break-word; }
td { max-width: 36rem; } th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.ok { color: #17702a; font-weight: 600; } .fail { color: #b00020; font-weight: 600; }
.muted { color: #666; } img { max-width: 100%; }
.banner { background: #fde8ea; border: 2px solid #b00020; color: #5c0011; padding: .75rem 1rem; border-radius: 4px; }
.banner strong { color: #b00020; }
del { background: #fbd3d3; color: #7a0010; } ins { background: #cdeccf; color: #0b4d17; text-decoration: none; }
.scores { display: grid; grid-template-columns: repeat(auto-fill, minmax(32rem, 1fr)); gap: 1rem 2rem; }
.cuts { font-size: .85rem; margin: .1rem 0 0; } .cut { margin-right: 1rem; } table.meta th { width: 11rem; }
.cut::before { content: ""; display: inline-block; width: 1.2rem; border-top: 2px dashed #b00020; vertical-align: middle; margin-right: .3rem; }
details pre { background: #f7f7f7; padding: .5rem; overflow-x: auto; font-size: .8rem; }
summary { cursor: pointer; }
table.wide { width: 100%; table-layout: fixed; } table.wide td, table.wide th { max-width: none; overflow-wrap: anywhere; }
"""


@dataclass
class ReportRun:
    """What every section reads: the folder, how the run ended, its configuration, its last rows."""

    folder: RunFolder
    status: RunStatus

    @cached_property
    def config(self) -> dict:
        path = self.folder.root / "config.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}

    @property
    def final_path(self) -> Path | None:
        return self.folder.boundary_path(self.status.last_stage) if self.status.last_stage else None

    @property
    def final_name(self) -> str:
        return final_name(self.status.last_stage)

    def stats(self, stage: str) -> dict:
        return self.folder.read_stats(stage) if self.folder.stats_path(stage).exists() else {}


def _excerpt(text: str | None) -> str:
    text = text or ""
    return text if len(text) <= _EXCERPT else text[: _EXCERPT - 1] + "…"


def _texts_of(folder: RunFolder, ids: set[str]) -> dict[str, str]:
    """id -> text for `ids`, from the rows of the run: cleaned text first (what augmenters and duplicate
    checks saw), then augmented rows, augment rejects and, for rows cleaning dropped, the ingested text."""
    found: dict[str, str] = {}
    paths = [folder.boundary_path("clean"), folder.boundary_path("augment"), folder.rejects_path("augment"), folder.boundary_path("ingest")]
    for path in paths:
        wanted = ids - found.keys()
        if not wanted or not path.exists():
            continue
        rows = pq.read_table(path, columns=["id", "text"])
        rows = rows.filter(pc.is_in(rows.column("id"), value_set=pa.array(sorted(wanted), pa.string())))
        found.update(zip(rows.column("id").to_pylist(), rows.column("text").to_pylist()))
    return found


def banner(run: ReportRun) -> str:
    if not run.status.failed:
        return ""
    shown = f"the rows below are those of {run.final_name}" if run.status.last_stage else "no rows were written"
    return (f'<div class="banner" id="failure" role="alert"><strong>This run failed:</strong> {e(run.status.problem)}. '
            f"It has no curated output; {e(shown)}. The flow's log holds the error.</div>")


def run_section(run: ReportRun) -> str:
    fields = "".join(f"<tr><th>{e(name)}</th><td>{e(value)}</td></tr>" for name, value in run_metadata(run.folder))
    parts = [f'<table class="meta"><tbody>{fields}</tbody></table>']
    if run.final_path is not None:
        rows = pq.read_table(run.final_path, columns=["split", "origin"]).to_pylist()
        counts = Counter((r["split"], r["origin"]) for r in rows)
        splits = sorted({split for split, _ in counts})
        body = [[split, *(counts[(split, origin)] for origin in ORIGINS), sum(counts[(split, o)] for o in ORIGINS)] for split in splits]
        parts.append(f"<h3>Rows per split, {e(run.final_name)}</h3>"
                     + table(["split", *ORIGINS, "total"], body, set(range(1, len(ORIGINS) + 2))))
    if run.config:
        parts.append(collapsed("Configuration (config.json)", f"<pre>{e(json.dumps(run.config, indent=2, sort_keys=True))}</pre>"))
    return "".join(parts)


def funnel_section(run: ReportRun) -> str:
    rows = [[r["stage"], r["rows_in"], r["added"], r["relabeled"], r["rows_out"], r["rejected"], r["seconds"]] for r in funnel(run.folder)]
    if not rows:
        return '<p class="muted">No stage wrote its stats.</p>'
    chart, axes = figure()
    axes.bar([r[0] for r in rows], [r[4] for r in rows], color="#4c78a8", label="rows out")
    axes.bar([r[0] for r in rows], [r[5] for r in rows], bottom=[r[4] for r in rows], color="#e45756", label="rejected")
    axes.set_ylabel("rows")
    axes.legend()
    return table(["stage", "rows in", "added", "relabeled", "rows out", "rejected", "seconds"], rows, {1, 2, 3, 4, 5, 6}) + png(chart)


def _detail(reject: dict, texts: dict[str, str]) -> str:
    """The reject's detail; for a duplicate, with the text of the row it duplicates."""
    detail = reject["detail"] or ""
    match = _DUPLICATE_OF.match(detail)
    if match and match.group(1) in texts:
        text = texts[match.group(1)]
        return f"{detail}: “{text if len(text) <= _DETAIL_EXCERPT else text[: _DETAIL_EXCERPT - 1] + '…'}”"
    return detail


def rejects_section(run: ReportRun) -> str:
    folder, parts = run.folder, []
    for stage in STAGES:
        path = folder.rejects_path(stage)
        if not path.exists():
            continue
        rejects = pq.read_table(path, columns=["id", "text", "label", "parent_id", "op", "reason", "detail"]).to_pylist()
        examples = {reason: [r for r in rejects if r["reason"] == reason][:EXAMPLES_PER_REASON] for reason in sorted({r["reason"] for r in rejects})}
        shown = [r for rows in examples.values() for r in rows]
        wanted = {r["parent_id"] for r in shown if r["parent_id"]} | {m.group(1) for r in shown if (m := _DUPLICATE_OF.match(r["detail"] or ""))}
        texts = _texts_of(folder, wanted)
        counts = Counter(r["reason"] for r in rejects)
        for reason, rows in examples.items():
            parts.append(f"<h3>{e(stage)}: {e(reason)} ({counts[reason]})</h3>")
            if stage == "augment":
                diffs = [word_diff(texts.get(r["parent_id"], ""), r["text"]) for r in rows]
                parts.append(table(["id", "augmenter", "label", "detail", "parent", "candidate"],
                                   [[e(r["id"]), e(r["op"]), e(r["label"] or ""), e(_detail(r, texts)), *diff] for r, diff in zip(rows, diffs)],
                                   markup={0, 1, 2, 3, 4, 5}, widths=[14, 12, 10, 14, 25, 25]))
            else:
                parts.append(table(["id", "label", "detail", "text"], [[r["id"], r["label"] or "", _detail(r, texts), _excerpt(r["text"])] for r in rows]))
    return "".join(parts) or '<p class="muted">No row was rejected.</p>'


def labels_section(run: ReportRun) -> str:
    raw, final = run.folder.boundary_path("ingest"), run.final_path
    if final is None or not raw.exists():
        return '<p class="muted">No rows yet.</p>'
    before = Counter(r["label"] for r in pq.read_table(raw, columns=["label", "split"]).to_pylist() if r["split"] == "labeled")
    after = Counter((r["label"], r["origin"]) for r in pq.read_table(final, columns=["label", "split", "origin"]).to_pylist() if r["split"] == "labeled")
    labels = sorted(set(before) | {label for label, _ in after})
    if not labels:
        return '<p class="muted">No labeled rows.</p>'
    name = run.final_name
    chart, axes = figure(8.0, 0.9 + 0.55 * len(labels))
    positions = list(range(len(labels)))
    axes.barh([p - 0.2 for p in positions], [before[label] for label in labels], height=0.4, color="#bbbbbb", label="raw")
    left = [0] * len(labels)
    for origin, color in zip(ORIGINS, ("#4c78a8", "#f58518", "#54a24b")):
        counts = [after[(label, origin)] for label in labels]
        axes.barh([p + 0.2 for p in positions], counts, height=0.4, left=left, color=color, label=f"{name}: {origin}")
        left = [a + b for a, b in zip(left, counts)]
    axes.set_yticks(positions, [textwrap.fill(label, 28) for label in labels], fontsize=9)
    axes.invert_yaxis()
    axes.set_xlabel("labeled rows")
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    rows = [[label, before[label], *(after[(label, origin)] for origin in ORIGINS), sum(after[(label, o)] for o in ORIGINS)] for label in labels]
    headers = ["label", "raw", *(f"{name}: {origin}" for origin in ORIGINS), f"{name}: total"]
    return table(headers, rows, set(range(1, len(ORIGINS) + 3))) + png(chart)


def _purpose_of(stats: dict, op: str) -> str | None:
    """An op's purpose as the augment stats recorded it; runs before purposes: `stages.augmenters.op_purpose`."""
    return stats.get("purpose_by_op", {}).get(op) or op_purpose(op)


def _per_purpose(stats: dict, name: str, ops: list[str]) -> int | None:
    """The augment stats' `<name>_by_op` summed over a purpose's ops; None when the stats lack them."""
    if f"{name}_by_op" in stats:
        return sum(stats[f"{name}_by_op"].get(op, 0) for op in ops)
    return None


def _rejected(stage: str, reasons: Counter) -> str:
    """'N rejected by <stage> (reason n, ...)'."""
    detail = f" ({', '.join(f'{reason} {n}' for reason, n in sorted(reasons.items()))})" if reasons else ""
    return f"{sum(reasons.values())} rejected by {stage}{detail}"


def _rejected_at_adapt(run: ReportRun, ops: list[str]) -> str | None:
    """The children of `ops` that adaptation rejected (its rejects file; its stats do not count per op); None without the file."""
    path = run.folder.rejects_path("adapt")
    if not path.exists():
        return None
    return _rejected("adaptation", Counter(r["reason"] for r in pq.read_table(path, columns=["op", "reason"]).to_pylist() if r["op"] in ops))


def _rejected_by_validation(validate: dict, ops: list[str]) -> str | None:
    """The children of `ops` that validation rejected, per reason; None when the validate stats do not count them."""
    if "rejected_by_op" not in validate:
        return None
    reasons = Counter()
    for op in ops:
        reasons.update(validate["rejected_by_op"].get(op, {}).get("rejected", {}))
    return _rejected("validation", reasons)


def purpose_lines(run: ReportRun, ops: list[str], in_final: Counter) -> str:
    """Per purpose of the augmentation ops: children generated, past the augment gates, rejected by adaptation and
    by validation, and kept."""
    stats, validate = run.stats("augment"), run.stats("validate")
    lines = []
    for purpose in PURPOSES:
        members = [op for op in ops if _purpose_of(stats, op) == purpose]
        if not members:
            continue
        generated, kept = _per_purpose(stats, "generated", members), _per_purpose(stats, "kept", members)
        counts = [None if generated is None else f"{generated} generated", None if kept is None else f"{kept} passed the augment gates",
                  _rejected_at_adapt(run, members), _rejected_by_validation(validate, members), f"{sum(in_final[op] for op in members)} in the final rows"]
        text = f"{purpose} ({', '.join(members)}): {', '.join(count for count in counts if count is not None)}"
        lines.append(f'<p class="purpose" data-purpose="{e(purpose)}">{e(text)}</p>')
    return "".join(lines)


def augmented_section(run: ReportRun) -> str:
    stats, final = run.stats("augment"), run.final_path
    if not stats:
        return '<p class="muted">Augmentation did not run.</p>'
    generated, kept = stats.get("generated_by_op", {}), stats.get("kept_by_op", {})
    rows = []
    if final is not None:
        rows = [r for r in pq.read_table(final, columns=["id", "text", "label", "origin", "parent_id", "op", "similarity"]).to_pylist() if r["origin"] == "augmented"]
    in_final = Counter(r["op"] for r in rows)
    ops = sorted(set(generated) | set(in_final) | set(stats.get("purpose_by_op", {})) | set(run.stats("validate").get("rejected_by_op", {})))
    counts = table(["augmenter", "purpose", "generated", "passed the augment gates", f"in {run.final_name}"],
                   [[op, _purpose_of(stats, op) or "", generated.get(op, 0), kept.get(op, 0), in_final[op]] for op in ops], {2, 3, 4})
    counts += purpose_lines(run, ops, in_final)
    not_run = "".join(f"<li>{e(op)}: {e(why)}</li>" for op, why in sorted(stats.get("ops_not_run", {}).items()))
    examples = [r for op in ops for r in [row for row in rows if row["op"] == op][:EXAMPLES_PER_OP]]
    if not examples:
        return counts + (f"<p>Not run:</p><ul>{not_run}</ul>" if not_run else "") + '<p class="muted">No augmented row was kept.</p>'
    texts = _texts_of(run.folder, {r["parent_id"] for r in examples})
    body = [[e(r["op"]), e(r["label"] or ""), e("" if r["similarity"] is None else f"{r['similarity']:.3f}"),
             *word_diff(texts.get(r["parent_id"], ""), r["text"])] for r in examples]
    legend = '<p class="muted">Words only in the parent are <del>struck</del>, words only in the augmented row <ins>marked</ins>.</p>'
    return (counts + (f"<p>Not run:</p><ul>{not_run}</ul>" if not_run else "") + legend
            + table(["augmenter", "label", "similarity", "parent", "augmented row"], body, {2}, markup={0, 1, 2, 3, 4}, widths=[13, 13, 10, 32, 32]))


def lengths_section(run: ReportRun) -> str:
    raw, final = run.folder.boundary_path("ingest"), run.final_path
    if final is None or not raw.exists():
        return '<p class="muted">No rows yet.</p>'
    chart, axes = figure()
    for path, name in ((raw, "raw"), (final, run.final_name)):
        lengths = [len((t or "").split()) for t in pq.read_table(path, columns=["text"]).column("text").to_pylist()]
        axes.hist(lengths, bins=40, alpha=0.55, label=f"{name} (n={len(lengths)})")
    axes.set_xlabel("words per text")
    axes.legend()
    return png(chart)


def score_cuts(run: ReportRun) -> dict[str, tuple[str, list[str], list[tuple[str, float, str]]]]:
    """Per score column: the stage that cuts on it, its reject reasons, and its thresholds (name, value, what it does)."""
    from stages.domain_adaptation import default_min_confidence

    config, cuts = run.config, {}
    augmentation, adapt = config.get("augmentation", {}), run.stats("adapt")
    checks = run.stats("validate").get("checks", {})
    if augmentation.get("enabled") and run.stats("augment"):
        cuts["similarity"] = ("augment", ["too_dissimilar", "near_copy"], [
            ("min_similarity", augmentation["min_similarity"], "below: too_dissimilar"),
            ("max_similarity", augmentation["max_similarity"], "above: near_copy")])
    if "relevance_floor" in adapt:
        quantile = config.get("domain", {}).get("relevance_quantile")
        cuts["domain_score"] = ("adapt", ["off_domain"], [
            ("relevance floor", adapt["relevance_floor"], f"the originals' {quantile} quantile; synthetic rows below: off_domain")])
    discriminator = checks.get("discriminator", {}).get("info", {})
    if discriminator.get("threshold") is not None:
        applied = "" if discriminator.get("distinguishable") else "; not applied in this run: the discriminator could not tell synthetic rows from originals"
        cuts["synthetic_p"] = ("validate", ["looks_synthetic"], [("discriminator threshold", discriminator["threshold"], "synthetic rows above: looks_synthetic" + applied)])
    if "label_consistency" in checks:
        cuts["label_agreement"] = ("validate", ["label_flip"], [
            ("min_label_probability", config["validation"]["min_label_probability"], "synthetic rows below: label_flip")])
    elif adapt.get("pseudo_labeled"):
        labels_path = run.folder.root / "labels.json"
        configured = config.get("domain", {}).get("pseudo_min_confidence")
        threshold = configured or default_min_confidence(len(json.loads(labels_path.read_text(encoding="utf-8"))))
        cuts["label_agreement"] = ("adapt", [], [("pseudo-label min confidence", threshold, "unlabeled rows at or above it were pseudo-labeled")])
    return cuts


def _numbers(values: list) -> list[float]:
    return [v for v in values if v is not None and v == v]


def scores_section(run: ReportRun) -> str:
    final = run.final_path
    if final is None:
        return '<p class="muted">No rows yet.</p>'
    kept_scores = pq.read_table(final, columns=["similarity", "domain_score", "synthetic_p", "label_agreement"])
    cuts, parts = score_cuts(run), []
    for name in kept_scores.column_names:
        kept = _numbers(kept_scores.column(name).to_pylist())
        stage, reasons, thresholds = cuts.get(name, (None, [], []))
        rejected = []
        if stage and reasons and run.folder.rejects_path(stage).exists():
            rejects = pq.read_table(run.folder.rejects_path(stage), columns=[name, "reason"]).to_pylist()
            rejected = _numbers([r[name] for r in rejects if r["reason"] in reasons])
        if not kept and not rejected:
            parts.append(f'<p class="muted">{e(name)}: no scores in this run.</p>')
            continue
        chart, axes = figure(5.6, 2.6)
        values = kept + rejected + [value for _, value, _ in thresholds]
        bins = [min(values) + (max(values) - min(values)) * i / 30 for i in range(31)] if max(values) > min(values) else 30
        axes.hist([kept, rejected], bins=bins, stacked=True, color=["#72b7b2", "#e45756"],
                  label=[f"{run.final_name} (n={len(kept)})", f"rejected at {stage} (n={len(rejected)})"])
        for (label, value, _), style in zip(thresholds, ("--", ":")):
            axes.axvline(value, color="#b00020", linestyle=style, linewidth=1.5, label=f"{label} {value:.3g}")
        axes.set_title(name)
        axes.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.15), ncol=2, frameon=False)
        marks = "".join(f'<span class="cut" data-threshold="{value}">{e(label)} = {e(f"{value:.4g}")} ({e(what)})</span>' for label, value, what in thresholds)
        caption = f'<p class="cuts" data-score="{e(name)}">cut at: {marks}</p>' if thresholds else '<p class="cuts muted">no threshold cuts on this score</p>'
        parts.append(f'<div class="score">{png(chart)}{caption}</div>')
    return f'<div class="scores">{"".join(parts)}</div>'


def eval_section(run: ReportRun) -> str:
    if run.final_path is None:
        return '<p class="muted">No rows yet.</p>'
    cleaning = CleaningConfig(**run.config["cleaning"]) if "cleaning" in run.config else CleaningConfig()
    problems = eval_problems(pq.read_table(run.final_path, columns=["id", "text", "split"]), cleaning)
    if problems.eval_rows == 0:
        return '<p class="muted">This run has no eval rows.</p>'
    intro = (f"<p>{problems.eval_rows} eval rows; markup-only: {len(problems.markup_only)}; groups of duplicates: {len(problems.duplicate_groups)}. "
             "Reported only: stages never change or drop eval rows, so fix these in the input.</p>")
    parts = [intro]
    if problems.markup_only:
        parts.append("<h3>Markup-only eval rows (no words once tags and entities are removed)</h3>"
                     + table(["id", "text"], [[r["id"], _excerpt(r["text"])] for r in problems.markup_only[:EVAL_EXAMPLES]]))
    if problems.duplicate_groups:
        rows = [[number, group["kind"], row["id"], _excerpt(row["text"])]
                for number, group in enumerate(problems.duplicate_groups[:EVAL_EXAMPLES], 1) for row in group["rows"]]
        parts.append("<h3>Eval rows that duplicate each other (cleaning's keys)</h3>" + table(["group", "kind", "id", "text"], rows, {0}))
    if max(len(problems.markup_only), len(problems.duplicate_groups)) > EVAL_EXAMPLES:
        parts.append(f'<p class="muted">The first {EVAL_EXAMPLES} of each are listed.</p>')
    return "".join(parts)


def checks_section(run: ReportRun) -> str:
    if not run.stats("validate"):
        return '<p class="muted">Adversarial validation did not run.</p>'
    checks = run.stats("validate").get("checks", {})
    if not checks:
        return '<p class="muted">No check was enabled.</p>'
    rows = []
    for name, check in checks.items():
        info = check["info"]
        headline = ""
        if "roc_auc" in info and info["roc_auc"] is not None:
            headline = f"discriminator ROC-AUC {info['roc_auc']:.3f} (95% CI {info['roc_auc_ci95'][0]:.3f}-{info['roc_auc_ci95'][1]:.3f})"
        rows.append([name, f"{check['summary']:.3f}", info.get("flagged", ""), headline])
    parts = [table(["check", "summary (1 = nothing wrong)", "flagged", "detail"], rows, {1, 2})]
    for name, check in checks.items():
        examples = check["info"].get("examples") or []
        if examples:
            keys = [k for k in examples[0] if k != "text"] + ["text"]
            parts.append(f"<h3>{e(name)}: examples</h3>" + table(keys, [[example.get(k, "") for k in keys] for example in examples]))
    return "".join(parts)


def contracts_section(run: ReportRun) -> str:
    folder, rows = run.folder, []
    for path in sorted((folder.root / "contracts").glob("*.json")):
        for report in json.loads(path.read_text(encoding="utf-8")):
            failed = [rule["rule"] for rule in report["rules"] if not rule["success"]]
            rows.append((report["boundary"], report["success"], len(report["rules"]), ", ".join(failed)))
    if not rows:
        return '<p class="muted">No contract ran.</p>'
    body = "".join(
        f"<tr><td>{e(b)}</td><td class=\"{'ok' if ok else 'fail'}\">{'passed' if ok else 'FAILED'}</td>"
        f"<td class=\"num\">{n}</td><td>{e(failed)}</td></tr>"
        for b, ok, n, failed in rows
    )
    docs = folder.data_docs_dir / "index.html"
    link = f'<p><a href="{e(docs.relative_to(folder.root).as_posix())}">Great Expectations Data Docs</a></p>' if docs.exists() else ""
    return f"<table><thead><tr><th>boundary</th><th>result</th><th>rules</th><th>failed rules</th></tr></thead><tbody>{body}</tbody></table>{link}"


def experiment_section(run: ReportRun) -> str:
    path = run.folder.root / "experiment_summary.json"
    if not path.exists():
        return '<p class="muted">No experiment ran in this run folder (<code>pdap experiment</code> writes one).</p>'
    summary = json.loads(path.read_text(encoding="utf-8"))
    fmt = lambda v: "n/a" if v is None or v != v else f"{v * 100:+.2f}"  # noqa: E731
    uplift_rows = [[u.get("eval_split", "all"), u["trainer"], u["arm"], u.get("against", "raw"), u["k"], u["n"], fmt(u["mean"]),
                    f"[{fmt(u['ci_low'])}, {fmt(u['ci_high'])}]"] for u in summary["uplifts"]]
    chart, axes = figure()
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
    return (table(["split", "trainer", "arm", "against", "k", "seeds", "uplift (points)", "95% CI"], uplift_rows, {4, 5, 6}) + png(chart)
            + noise_section(summary) + cells_section(run.folder))


def _arm_key(row: dict) -> tuple:
    return row["eval_split"], row["trainer"], row.get("embedding_mode", "truncate"), row["k"], row["arm"]


def _noise_cell(row: dict | None) -> str:
    """'F1 (drop +d [lo, hi])': the mean macro-F1 under a noise and its drop from clean in points, with its 95% interval."""
    if row is None:
        return ""
    points = lambda v: "n/a" if v is None or v != v else f"{v:+.2f}"  # noqa: E731
    drop = row["drop_points"]
    return f"{row['macro_f1']['mean']:.3f} (drop {points(drop['mean'])} [{points(drop['ci_low'])}, {points(drop['ci_high'])}])"


def noise_section(summary: dict) -> str:
    """F1 against noise per k and arm, and a chart of F1 against the char-noise rate; "" for summaries before noisy scoring."""
    rows = summary.get("noise") or []
    if not rows:
        return ""
    clean = {_arm_key(arm): arm["mean"] for arm in summary["arms"]}
    by_arm: dict[tuple, dict[str, dict]] = {}
    for row in rows:
        by_arm.setdefault(_arm_key(row), {})[row["noise"]] = row
    noises = sorted({row["noise"] for row in rows})
    body = [[key[0], key[1], key[3], key[4], "n/a" if key not in clean else f"{clean[key]:.3f}", *(_noise_cell(found.get(noise)) for noise in noises)]
            for key, found in sorted(by_arm.items())]
    caption = ('<p class="muted">Macro-F1 (mean over seeds) on noisy copies of the same eval rows (<code>char@r</code>: one character error in a share r '
               "of the words; <code>word@r</code>: abbreviations and synonyms), and the drop from the same seed's clean macro-F1 in points "
               "(positive: the noise costs F1) with its 95% t interval.</p>")
    return ("<h3>F1 against noise</h3>" + caption
            + table(["split", "trainer", "k", "arm", "clean", *noises], body, {2, *range(4, 5 + len(noises))})
            + char_noise_charts(clean, by_arm))


def char_noise_lines(clean: dict[tuple, float], by_arm: dict[tuple, dict[str, dict]]) -> dict[tuple, dict[str, list[tuple[float, float]]]]:
    """Per (split, trainer, mode, k), per arm but the ablations: (char-noise rate, mean macro-F1) points, rate 0 the clean F1."""
    groups: dict[tuple, dict[str, list[tuple[float, float]]]] = {}
    for key, found in by_arm.items():
        points = [(noise.rate, row["macro_f1"]["mean"]) for row in found.values() if (noise := parse_noise(row["noise"])).kind == "char"]
        if points and key in clean and not key[-1].startswith("without:"):
            groups.setdefault(key[:-1], {})[key[-1]] = sorted([(0.0, clean[key]), *points])
    return groups


def char_noise_charts(clean: dict[tuple, float], by_arm: dict[tuple, dict[str, dict]]) -> str:
    """One small chart per (split, trainer, mode, k): macro-F1 against the char-noise rate, one line per arm."""
    charts = []
    for (split, trainer, _, k), lines in sorted(char_noise_lines(clean, by_arm).items()):
        chart, axes = figure(5.0, 2.8)
        for arm, points in sorted(lines.items()):
            axes.plot([rate for rate, _ in points], [f1 for _, f1 in points], marker="o", label=arm)
        axes.set_xticks(sorted({rate for points in lines.values() for rate, _ in points}))
        axes.set_title(f"{split}, {trainer}, k = {k}", fontsize=9)
        axes.set_xlabel("char-noise rate (share of words with a typo)")
        axes.set_ylabel("macro-F1")
        axes.legend(fontsize=7)
        charts.append(png(chart))
    return "".join(charts)


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
            + table(["k", "seed", "head L2", "decisions", "curated arm: stages"], rows, {0, 1, 2}))


BUILDERS = {
    "run": ("Run", run_section),
    "funnel": ("Rows through each stage", funnel_section),
    "rejects": ("Rejects by reason, with examples", rejects_section),
    "labels": ("Label balance: raw against original, augmented and pseudo-labeled rows", labels_section),
    "augmented": ("Augmented rows beside their parents", augmented_section),
    "lengths": ("Text lengths", lengths_section),
    "scores": ("Similarity, domain and synthetic scores, with the thresholds they are cut at", scores_section),
    "eval": ("Problems in the eval split (reported, not fixed)", eval_section),
    "checks": ("Adversarial validation checks", checks_section),
    "contracts": ("Data contracts", contracts_section),
    "experiment": ("Few-shot experiment", experiment_section),
}
SECTIONS = tuple(BUILDERS)


def build_report(run_root: Path) -> str:
    """The report of `run_root` as one HTML string."""
    folder = RunFolder(Path(run_root))
    run = ReportRun(folder, run_status(folder))
    body = "".join(f'<section id="{key}"><h2>{e(title)}</h2>{build(run)}</section>' for key, (title, build) in BUILDERS.items())
    return (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>pdap report: {e(folder.root.name)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>pdap data-quality report: {e(folder.root.name)}</h1>{banner(run)}{body}</body></html>")


def write_report(run_root: Path) -> Path:
    """Write `report.html` into the run folder (atomically) and return its path."""
    path = Path(run_root) / "report.html"
    atomic_write_bytes(path, build_report(Path(run_root)).encode("utf-8"))
    return path
