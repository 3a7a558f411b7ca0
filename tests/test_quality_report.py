"""The data-quality report: every section, inert HTML from data, rendered by headless Chromium."""

import csv
import json
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flows.curate import curate_flow
from flows.quality_report import SECTIONS, build_report
from flows.report_diff import word_diff
from flows.report_run import BACKEND_NOTE
from flows.config import RunConfig
from stages.validation_checks import CheckFailed

pytestmark = pytest.mark.slow

OUTPUTS = Path(__file__).resolve().parents[1] / "test-outputs"
PAYLOAD = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"
LONG_LABEL = "Neoplasms and other diseases of the digestive system, with a class name longer than any chart tick"
ROWS = [
    (f"Patients with chronic heart failure were randomised to exercise training. {PAYLOAD}", "cardio"),
    ("Coronary angioplasty after acute myocardial infarction lowered mortality at thirty days.", "cardio"),
    ("Endoscopic findings in ulcerative colitis were compared with biopsies of the same segments.", LONG_LABEL),
    ("Gastric ulcer healing with proton pump inhibitors was faster than with antacids alone.", LONG_LABEL),
    ("Migraine frequency fell after prophylactic treatment with a beta blocker in adults.", "neuro"),
    ("Epileptic seizures in children were controlled with a new anticonvulsant drug.", "neuro"),
    ("x", "neuro"),
]
MARKUP_ONLY = "<p><br/>&nbsp;</p>"
EVAL_DUPLICATE = "Stroke patients received thrombolysis within three hours of symptom onset."
EVAL_ROWS = [
    (MARKUP_ONLY, "neuro"),
    (EVAL_DUPLICATE, "neuro"),
    (EVAL_DUPLICATE.upper().replace(".", "!"), "neuro"),  # the same text up to case and punctuation
    ("Statins lowered cholesterol in adults with a history of coronary disease.", "cardio"),
]


def write_csv(path: Path, rows, extra=()) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["abstract", "condition"])
        writer.writerows([*rows, *extra])


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    write_csv(root / "rows.csv", ROWS, [(f"An abstract about {PAYLOAD} colitis and ulcers in adults treated early.", "<b>digestive</b>")])
    write_csv(root / "eval.csv", EVAL_ROWS)
    (root / "run.yaml").write_text(
        "name: report\nruns_dir: runs\n"
        "ingest:\n  sources:\n    - path: rows.csv\n    - path: eval.csv\n      split: eval\n"
        "  columns: {text: abstract, label: condition}\n"
        f"  labels: [cardio, '{LONG_LABEL}', neuro]\n",
        encoding="utf-8",
    )
    summary = curate_flow(RunConfig.load(root / "run.yaml"), run_id="r")
    assert Path(summary["report"]) == root / "runs" / "r" / "report.html"
    return root / "runs" / "r"


@pytest.fixture(scope="module")
def failed_run(tmp_path_factory) -> Path:
    """A real run that stops in its last stage: the outlier check needs three original rows, it gets two."""
    root = tmp_path_factory.mktemp("failed")
    write_csv(root / "rows.csv", ROWS[1:3])
    (root / "run.yaml").write_text(
        "name: failed\nruns_dir: runs\n"
        "ingest:\n  sources:\n    - path: rows.csv\n  columns: {text: abstract, label: condition}\n"
        "augmentation: {enabled: false}\ndomain: {pseudo_label: false, word_vectors: false}\nvalidation: {checks: [outlier]}\n",
        encoding="utf-8",
    )
    with pytest.raises(CheckFailed, match="outlier"):
        curate_flow(RunConfig.load(root / "run.yaml"), run_id="f")
    return root / "runs" / "f"


def section(page: str, name: str) -> str:
    return page.split(f'<section id="{name}">')[1].split("</section>")[0]


def test_report_has_every_section_and_escapes_data(run_folder):
    page = (run_folder / "report.html").read_text(encoding="utf-8")
    for name in SECTIONS:
        assert f'<section id="{name}">' in page, name
    assert "<script" not in page.lower()  # the report itself has no script, and data cannot add one
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in page
    assert "onerror=alert(1)>" not in page and "&lt;b&gt;digestive&lt;/b&gt;" in page  # the unknown label's rejects row
    assert "unknown_label" in page and "too_short" in page  # rejects by reason, with examples
    assert "Great Expectations Data Docs" in page and "passed" in page
    assert "discriminator" in page
    assert 'id="failure"' not in page and "This run failed" not in page
    assert not re.search(r'src="(?!data:image/png;base64,)', page), "images are inline"
    # same folder, same bytes; once summary.json holds the run's embedding backend, the report names it as the run's
    assert build_report(run_folder) == page.replace(f" {BACKEND_NOTE}", "")


def test_run_metadata(run_folder):
    run = section((run_folder / "report.html").read_text(encoding="utf-8"), "run")
    for field in ("started", "inputs", "embedding backend", "code commit", "runner"):
        assert f"<th>{field}</th>" in run, field
    inputs = run_folder.parents[1].resolve()
    assert f"<td>{inputs / 'rows.csv'}; {inputs / 'eval.csv'} (split: eval)</td>" in run
    backend = json.loads((run_folder / "summary.json").read_text(encoding="utf-8"))["embedding_backend"]
    assert f"<td>{backend} {BACKEND_NOTE}</td>" in run and f"<td>{backend}</td>" in build_report(run_folder)
    status = json.loads((run_folder / "status.json").read_text(encoding="utf-8"))
    assert f"<td>{status['git_commit'] or 'unknown'}" in run and "(as the run started)</td>" in run  # the commit recorded at the start
    splits = pq.read_table(run_folder / "40_validated.parquet", columns=["split"]).column("split").to_pylist()
    assert f'<tr><td>eval</td><td class="num">{splits.count("eval")}</td>' in run  # eval rows are all originals
    assert "<details><summary>Configuration (config.json)</summary>" in run and "min_similarity" in run


def test_label_balance_splits_origins_and_keeps_long_class_names_whole(run_folder):
    labels = section((run_folder / "report.html").read_text(encoding="utf-8"), "labels")
    for header in ("raw", "curated: original", "curated: augmented", "curated: pseudo_labeled"):
        assert f"<th>{header}</th>" in labels
    rows = pq.read_table(run_folder / "40_validated.parquet", columns=["label", "split", "origin"]).to_pylist()
    augmented = sum(1 for r in rows if r["label"] == "cardio" and r["split"] == "labeled" and r["origin"] == "augmented")
    assert re.search(rf'<tr><td>cardio</td><td class="num">2</td><td class="num">2</td><td class="num">{augmented}</td>', labels)
    assert f"<td>{LONG_LABEL}</td>" in labels  # the whole name, not a cut-off prefix


def test_score_histograms_mark_their_thresholds(run_folder):
    scores = section((run_folder / "report.html").read_text(encoding="utf-8"), "scores")
    config = json.loads((run_folder / "config.json").read_text(encoding="utf-8"))
    adapt = json.loads((run_folder / "stats" / "adapt.json").read_text(encoding="utf-8"))
    validate = json.loads((run_folder / "stats" / "validate.json").read_text(encoding="utf-8"))
    assert f'data-threshold="{config["augmentation"]["min_similarity"]}"' in scores
    assert f'data-threshold="{config["augmentation"]["max_similarity"]}"' in scores
    assert f'data-threshold="{adapt["relevance_floor"]}"' in scores
    assert f'data-threshold="{validate["checks"]["discriminator"]["info"]["threshold"]}"' in scores
    assert f'data-threshold="{config["validation"]["min_label_probability"]}"' in scores
    for name in ("similarity", "domain_score", "synthetic_p", "label_agreement"):
        assert f'data-score="{name}"' in scores


def test_word_diff_marks_the_changed_word_and_escapes():
    parent, child = word_diff("Patients with <b>heart</b> failure were treated.", "Patients with <b>bosom</b> failure were treated.")
    assert parent == "Patients with &lt;b&gt;<del>heart</del>&lt;/b&gt; failure were treated."
    assert child == "Patients with &lt;b&gt;<ins>bosom</ins>&lt;/b&gt; failure were treated."


def test_augmented_rows_show_their_augmenter_and_parent_with_the_changes_marked(run_folder):
    augmented = section((run_folder / "report.html").read_text(encoding="utf-8"), "augmented")
    rows = [r for r in pq.read_table(run_folder / "40_validated.parquet").to_pylist() if r["origin"] == "augmented"]
    parents = {r["id"]: r["text"] for r in pq.read_table(run_folder / "10_clean.parquet").to_pylist()}
    first = rows[0]
    old, new = word_diff(parents[first["parent_id"]], first["text"])
    assert f"<td>{first['op']}</td>" in augmented and f"<td>{old}</td><td>{new}</td>" in augmented
    assert "<del>" in old and "<ins>" in new  # a kept child differs from its parent


def test_augmented_rows_are_counted_per_purpose_from_the_stage_stats(run_folder):
    augmented = section((run_folder / "report.html").read_text(encoding="utf-8"), "augmented")
    stats = json.loads((run_folder / "stats" / "augment.json").read_text(encoding="utf-8"))
    rejected = json.loads((run_folder / "stats" / "validate.json").read_text(encoding="utf-8"))["rejected_by_op"]
    final = pq.read_table(run_folder / "40_validated.parquet", columns=["origin", "op"]).to_pylist()
    off_domain = pq.read_table(run_folder / "rejects" / "adapt.parquet", columns=["op"]).column("op").to_pylist()
    assert stats["generated_by_op"], "the fixture's run makes children"
    for purpose in sorted({stats["purpose_by_op"][op] for op in stats["generated_by_op"]}):
        ops = sorted(op for op, of in stats["purpose_by_op"].items() if of == purpose)
        generated = sum(stats["generated_by_op"].get(op, 0) for op in ops)
        kept = sum(1 for r in final if r["origin"] == "augmented" and r["op"] in ops)
        at_adapt = sum(1 for op in off_domain if op in ops)
        at_validate = sum(n for op in ops for n in rejected.get(op, {}).get("rejected", {}).values())
        line = re.search(rf'<p class="purpose" data-purpose="{purpose}">{purpose} \({", ".join(ops)}\): (.*?)</p>', augmented).group(1)
        passed = sum(stats["kept_by_op"].get(op, 0) for op in ops)
        assert line.startswith(f"{generated} generated, {passed} passed the augment gates, {at_adapt} rejected by adaptation")
        assert f" {at_validate} rejected by validation" in line and line.endswith(f", {kept} in the final rows")
        assert passed - at_adapt - at_validate == kept  # every child that passed the augment gates is accounted for


def test_reject_details_name_the_duplicated_row(run_folder):
    rejects = section((run_folder / "report.html").read_text(encoding="utf-8"), "rejects")
    duplicates = [r for r in pq.read_table(run_folder / "rejects" / "augment.parquet").to_pylist() if r["reason"] == "duplicate_candidate"]
    assert duplicates, "the fixture's eda child differs from its parent in case only"
    original = {r["id"]: r["text"] for r in pq.read_table(run_folder / "10_clean.parquet").to_pylist()}[duplicates[0]["detail"].removeprefix("duplicate of ")]
    assert f"duplicate of {duplicates[0]['detail'].removeprefix('duplicate of ')}: “{original}”" in rejects


def test_eval_split_problems_are_reported_and_the_eval_rows_kept(run_folder):
    problems = section((run_folder / "report.html").read_text(encoding="utf-8"), "eval")
    assert "4 eval rows; markup-only: 1; groups of duplicates: 1." in problems
    assert "&lt;p&gt;&lt;br/&gt;&amp;nbsp;&lt;/p&gt;" in problems
    assert EVAL_DUPLICATE in problems and EVAL_DUPLICATE.upper().replace(".", "!") in problems and "<td>exact</td>" in problems
    evals = [r["text"] for r in pq.read_table(run_folder / "40_validated.parquet").to_pylist() if r["split"] == "eval"]
    assert sorted(evals) == sorted(text for text, _ in EVAL_ROWS)  # reported, not fixed


def test_a_failed_run_shows_a_banner_and_no_curated_rows(failed_run):
    page = build_report(failed_run)
    assert '<div class="banner" id="failure" role="alert"><strong>This run failed:</strong>' in page
    assert "the run stopped after adapt: validate did not finish" in page
    assert "curated 0" not in page and "curated:" not in page and "curated (n=" not in page
    assert "30_adapted (last written)" in page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (make test installs it)")
def test_report_renders_in_headless_chromium_with_the_payload_inert(run_folder):
    OUTPUTS.mkdir(exist_ok=True)
    screenshot = OUTPUTS / "report.png"
    screenshot.unlink(missing_ok=True)
    browser = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,4000"]
    url = (run_folder / "report.html").as_uri()
    dom = subprocess.run([*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert "pdap data-quality report" in dom and "pwned" not in dom.split("<title>")[1].split("</title>")[0]
    for name in SECTIONS:
        assert f'id="{name}"' in dom
    subprocess.run([*browser, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True)
    assert screenshot.read_bytes()[:4] == b"\x89PNG" and screenshot.stat().st_size > 50_000
