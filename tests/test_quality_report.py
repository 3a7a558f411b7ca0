"""The data-quality report: every section, inert HTML from data, rendered by headless Chromium."""

import csv
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from flows.curate import curate_flow
from flows.quality_report import SECTIONS, build_report
from schemas.config import RunConfig

pytestmark = pytest.mark.slow

OUTPUTS = Path(__file__).resolve().parents[1] / "test-outputs"
PAYLOAD = "<script>document.title='pwned'</script><img src=x onerror=alert(1)>"
ROWS = [
    (f"Patients with chronic heart failure were randomised to exercise training. {PAYLOAD}", "cardio"),
    ("Coronary angioplasty after acute myocardial infarction lowered mortality at thirty days.", "cardio"),
    ("Endoscopic findings in ulcerative colitis were compared with biopsies of the same segments.", "digestive"),
    ("Gastric ulcer healing with proton pump inhibitors was faster than with antacids alone.", "digestive"),
    ("Migraine frequency fell after prophylactic treatment with a beta blocker in adults.", "neuro"),
    ("Epileptic seizures in children were controlled with a new anticonvulsant drug.", "neuro"),
    ("x", "neuro"),
]


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("report")
    with (root / "rows.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["abstract", "condition"])
        writer.writerows(ROWS)
        writer.writerow([f"An abstract about {PAYLOAD} colitis and ulcers in adults treated early.", "<b>digestive</b>"])
    (root / "run.yaml").write_text(
        "name: report\nruns_dir: runs\n"
        "ingest:\n  sources:\n    - path: rows.csv\n  columns: {text: abstract, label: condition}\n"
        "  labels: [cardio, digestive, neuro]\n",
        encoding="utf-8",
    )
    summary = curate_flow(RunConfig.load(root / "run.yaml"), run_id="r")
    assert Path(summary["report"]) == root / "runs" / "r" / "report.html"
    return root / "runs" / "r"


def test_report_has_every_section_and_escapes_data(run_folder):
    page = (run_folder / "report.html").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert f'<section id="{section}">' in page, section
    assert "<script" not in page.lower()  # the report itself has no script, and data cannot add one
    assert "&lt;script&gt;document.title=&#x27;pwned&#x27;&lt;/script&gt;" in page
    assert "onerror=alert(1)>" not in page and "&lt;b&gt;digestive&lt;/b&gt;" in page  # the unknown label's rejects row
    assert "unknown_label" in page and "too_short" in page  # rejects by reason, with examples
    assert "Great Expectations Data Docs" in page and "passed" in page
    assert "discriminator" in page
    assert not re.search(r'src="(?!data:image/png;base64,)', page), "images are inline"
    assert build_report(run_folder) == page  # same folder, same bytes


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (make test installs it)")
def test_report_renders_in_headless_chromium_with_the_payload_inert(run_folder):
    OUTPUTS.mkdir(exist_ok=True)
    screenshot = OUTPUTS / "report.png"
    screenshot.unlink(missing_ok=True)
    browser = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,4000"]
    url = (run_folder / "report.html").as_uri()
    dom = subprocess.run([*browser, "--dump-dom", url], capture_output=True, text=True, timeout=120).stdout
    assert "pdap data-quality report" in dom and "pwned" not in dom.split("<title>")[1].split("</title>")[0]
    for section in SECTIONS:
        assert f'id="{section}"' in dom
    subprocess.run([*browser, f"--screenshot={screenshot}", url], capture_output=True, timeout=120, check=True)
    assert screenshot.read_bytes()[:4] == b"\x89PNG" and screenshot.stat().st_size > 50_000
