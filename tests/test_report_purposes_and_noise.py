"""The report's per-purpose augmentation lines and its F1-against-noise table, on hand-written run folders
(stats and experiment summaries as the stages and the experiment flow write them, and as older runs wrote them)."""

import html
import re
from pathlib import Path

import pyarrow as pa
import pytest
from row_fixtures import make_rows

from flows.experiment import experiment_summary
from flows.quality_report import ReportRun, augmented_section, build_report, char_noise_lines, experiment_section
from flows.report_run import RunStatus
from flows.run_folder import RunFolder, atomic_write_parquet
from schemas.files import atomic_write_json
from schemas.rows import conform_rows, make_rejects

PARENTS = make_rows(
    ("Patients with chronic heart failure were randomised to exercise training.", "cardio", "labeled"),
    ("Migraine frequency fell after prophylactic treatment with a beta blocker.", "neuro", "labeled"),
)
# op -> children in the final rows; with the counts below: kept at the augment gates minus those adaptation
# (one ocr child, adapt_rejects) and validation rejected
FINAL_CHILDREN = {"eda": 2, "keyboard": 2}
OLD_AUGMENT = {"generated_by_op": {"eda": 5, "keyboard": 4, "ocr": 3}, "kept_by_op": {"eda": 3, "keyboard": 3, "ocr": 3}}
NEW_AUGMENT = {
    **OLD_AUGMENT,
    "purpose_by_op": {"eda": "variety", "keyboard": "robustness", "ocr": "robustness", "wordnet_synonym": "variety"},
}
NEW_VALIDATE = {"rejected_by_op": {
    "eda": {"purpose": "variety", "rejected": {"looks_synthetic": 1}},
    "keyboard": {"purpose": "robustness", "rejected": {"label_flip": 1}},
    "ocr": {"purpose": "robustness", "rejected": {"outlier": 1, "label_flip": 1}},
}}


def final_rows() -> pa.Table:
    """The parents plus their kept children (each child: its parent's text with one word more)."""
    ids, texts = PARENTS.column("id").to_pylist(), PARENTS.column("text").to_pylist()
    children = [{"id": f"{op}-{n}", "text": texts[n % 2] + " again", "label": PARENTS.column("label")[n % 2].as_py(), "split": "labeled",
                 "origin": "augmented", "parent_id": ids[n % 2], "op": op, "similarity": 0.9}
                for op, count in FINAL_CHILDREN.items() for n in range(count)]
    return pa.concat_tables([PARENTS, conform_rows(pa.Table.from_pylist(children))])


def adapt_rejects() -> pa.Table:
    """Adaptation's rejects: an ocr child and an original, both off domain."""
    child = {"id": "ocr-x", "text": "Patlents with heart fai1ure.", "label": "cardio", "split": "labeled", "origin": "augmented",
             "parent_id": PARENTS.column("id")[0].as_py(), "op": "ocr"}
    rows = pa.concat_tables([conform_rows(pa.Table.from_pylist([child])), make_rows(("Stock prices rose.", "cardio", "labeled"))])
    return make_rejects(rows, "adapt", ["off_domain", "off_domain"])


def write_run(root: Path, augment: dict, validate: dict, summary: dict | None = None) -> ReportRun:
    """A finished run folder: every stage's stats (augment and validate as given), the clean and final rows,
    adaptation's rejects and, with `summary`, an experiment's experiment_summary.json."""
    folder = RunFolder(root)
    for stage, stats in (("ingest", {}), ("clean", {}), ("augment", augment), ("adapt", {}), ("validate", validate)):
        atomic_write_json(folder.stats_path(stage), {"rows_in": 2, "rows_out": 2, "seconds": 0.1, **stats})
    for stage, rows in (("ingest", PARENTS), ("clean", PARENTS), ("validate", final_rows())):
        atomic_write_parquet(folder.boundary_path(stage), rows)
    atomic_write_parquet(folder.rejects_path("adapt"), adapt_rejects())
    if summary is not None:
        atomic_write_json(root / "experiment_summary.json", summary)
    return ReportRun(folder, RunStatus(None, "validate"))


def records() -> list[dict]:
    """Experiment records as run_cell writes them: per seed and arm, a clean record and one per noise."""
    found = []
    for k, base in ((10, 0.70), (25, 0.80)):
        for seed, drop in zip((0, 1, 2), (0.04, 0.05, 0.06)):
            for arm, offset in (("raw", 0.0), ("curated", 0.02), ("without:augment", 0.01), ("ref:tuned_lr", -0.01)):
                shared = {"dataset": "toy", "eval_split": "test", "trainer": "head", "embedding_mode": "truncate", "k": k, "seed": seed, "arm": arm}
                clean = round(base + offset, 6)
                found.append({**shared, "noise": "none", "macro_f1": clean})
                for noise, scale in (("char@0.05", 0.5), ("char@0.10", 1.0), ("char@0.20", 2.0), ("word@0.10", 0.4)):
                    noisy = round(clean - drop * scale, 6)
                    found.append({**shared, "noise": noise, "macro_f1": noisy, "clean_macro_f1": clean,
                                  "drop_from_clean": round((clean - noisy) * 100, 4)})
    return found


def purpose_lines(section: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", line)) for line in re.findall(r'<p class="purpose"[^>]*>.*?</p>', section)]


def test_each_purpose_has_one_line_from_generated_to_the_final_rows(tmp_path):
    section = augmented_section(write_run(tmp_path, NEW_AUGMENT, NEW_VALIDATE))
    assert purpose_lines(section) == [
        "variety (eda, wordnet_synonym): 5 generated, 3 passed the augment gates, 0 rejected by adaptation, "
        "1 rejected by validation (looks_synthetic 1), 2 in the final rows",
        "robustness (keyboard, ocr): 7 generated, 6 passed the augment gates, 1 rejected by adaptation (off_domain 1), "
        "3 rejected by validation (label_flip 2, outlier 1), 2 in the final rows",
    ]


def test_the_per_op_table_names_each_ops_purpose(tmp_path):
    section = augmented_section(write_run(tmp_path, NEW_AUGMENT, NEW_VALIDATE))
    assert "<th>augmenter</th><th>purpose</th><th>generated</th>" in section
    number = lambda n: f'<td class="num">{n}</td>'  # noqa: E731
    assert f"<tr><td>keyboard</td><td>robustness</td>{number(4)}{number(3)}{number(2)}</tr>" in section
    assert f"<tr><td>ocr</td><td>robustness</td>{number(3)}{number(3)}{number(0)}</tr>" in section
    assert f"<tr><td>wordnet_synonym</td><td>variety</td>{number(0)}{number(0)}{number(0)}</tr>" in section  # configured, made nothing


def test_a_run_before_purposes_still_renders_with_todays_purposes(tmp_path):
    run = write_run(tmp_path, OLD_AUGMENT, {"checks": {}})
    section = augmented_section(run)
    assert "<tr><td>eda</td><td>variety</td>" in section and "<tr><td>ocr</td><td>robustness</td>" in section
    assert purpose_lines(section) == [  # per-op counts summed per purpose; validation did not count its rejects per op then
        "variety (eda): 5 generated, 3 passed the augment gates, 0 rejected by adaptation, 2 in the final rows",
        "robustness (keyboard, ocr): 7 generated, 6 passed the augment gates, 1 rejected by adaptation (off_domain 1), 2 in the final rows",
    ]
    summary = experiment_summary([r for r in records() if r["noise"] == "none"])
    del summary["noise"]  # experiment_summary.json before noisy scoring
    atomic_write_json(tmp_path / "experiment_summary.json", summary)
    page = build_report(tmp_path)
    assert "F1 against noise" not in page and "uplift (points)" in page
    assert section in page


def test_f1_against_noise_per_k_and_arm(tmp_path):
    summary = experiment_summary(records())
    assert {row["noise"] for row in summary["noise"]} == {"char@0.05", "char@0.10", "char@0.20", "word@0.10"}
    assert {arm["arm"]: arm["mean"] for arm in summary["arms"] if arm["k"] == 10}["curated"] == pytest.approx(0.72)  # clean rows only
    section = experiment_section(write_run(tmp_path, NEW_AUGMENT, NEW_VALIDATE, summary))
    noise = section.split("<h3>F1 against noise</h3>")[1]
    assert "<th>clean</th><th>char@0.05</th><th>char@0.10</th><th>char@0.20</th><th>word@0.10</th>" in noise
    # curated at k=10: clean 0.72; char@0.10 drops 4, 5 and 6 points over the seeds: mean 5, 95% t interval 5 -/+ 4.303 / sqrt(3)
    row = re.search(r"<tr><td>test</td><td>head</td><td class=\"num\">10</td><td>curated</td>.*?</tr>", noise).group(0)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    assert cells[4:] == ["0.720", "0.695 (drop +2.50 [+1.26, +3.74])", "0.670 (drop +5.00 [+2.52, +7.48])",
                         "0.620 (drop +10.00 [+5.03, +14.97])", "0.700 (drop +2.00 [+1.01, +2.99])"]
    assert "<td>without:augment</td>" in noise  # the table lists every arm
    assert noise.count('<img alt="chart"') == 2  # one chart per k


def test_the_char_noise_chart_has_one_line_per_arm_but_the_ablations(tmp_path):
    summary = experiment_summary(records())
    clean = {(a["eval_split"], a["trainer"], a["embedding_mode"], a["k"], a["arm"]): a["mean"] for a in summary["arms"]}
    by_arm = {}
    for row in summary["noise"]:
        by_arm.setdefault((row["eval_split"], row["trainer"], row["embedding_mode"], row["k"], row["arm"]), {})[row["noise"]] = row
    lines = char_noise_lines(clean, by_arm)
    assert sorted(lines) == [("test", "head", "truncate", 10), ("test", "head", "truncate", 25)]
    assert sorted(lines[("test", "head", "truncate", 25)]) == ["curated", "raw", "ref:tuned_lr"]
    rates, f1 = zip(*lines[("test", "head", "truncate", 25)]["raw"])
    assert rates == (0.0, 0.05, 0.10, 0.20)  # the clean F1 at 0, no word noise
    assert f1 == pytest.approx((0.80, 0.775, 0.75, 0.70))
