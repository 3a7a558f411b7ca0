"""A real Prefect run (temporary local server) of the curate flow on a tiny CSV."""

import json
import os
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from row_fixtures import write_tiny_run

from flows.curate import curate_flow
from flows.config import RunConfig

pytestmark = pytest.mark.slow

ROWS = [
    ("Patients with chronic heart failure were randomised to exercise training or usual care.", "cardio"),
    ("Patients with chronic heart failure were randomised to exercise training or usual care.", "neuro"),
    ("Endoscopic findings in ulcerative colitis were compared with biopsies of the same segments.", "digestive"),
    ("Migraine frequency fell after prophylactic treatment with a beta blocker in adults.", "neuro"),
    ("Epileptic seizures in children were controlled with a new anticonvulsant drug.", "neuro"),
    ("Contact the trial office at office@example.org about the colitis biopsy protocol today.", "digestive"),
    ("", "neuro"),
]


@pytest.fixture
def config_file(tmp_path):
    return write_tiny_run(tmp_path, ROWS)


def test_curate_flow_writes_the_run_folder_and_is_deterministic(config_file):
    config = RunConfig.load(config_file)
    first = curate_flow(config, run_id="one")
    second = curate_flow(config, run_id="two")
    run = config_file.parent / "runs" / "one"
    for name in ("00_raw.parquet", "10_clean.parquet", "20_augmented.parquet", "30_adapted.parquet", "40_validated.parquet",
                 "40_validated.check_scores.parquet",
                 "rejects/ingest.parquet", "rejects/clean.parquet", "rejects/augment.parquet", "rejects/adapt.parquet", "rejects/validate.parquet",
                 "stats/ingest.json", "stats/clean.json", "stats/augment.json", "stats/adapt.json", "stats/validate.json",
                 "contracts/00_raw.json", "contracts/10_clean.json", "contracts/20_augmented.json", "contracts/30_adapted.json",
                 "contracts/40_validated.json",
                 "domain/protected_terms.json", "data_docs/index.html", "config.json", "summary.json"):
        assert (run / name).is_file(), name
    for name in ("00_raw.parquet", "10_clean.parquet", "20_augmented.parquet", "30_adapted.parquet", "40_validated.parquet",
                 "40_validated.check_scores.parquet", "rejects/augment.parquet", "rejects/validate.parquet"):
        assert (run / name).read_bytes() == (config_file.parent / "runs" / "two" / name).read_bytes(), name

    ingest_stats = json.loads((run / "stats/ingest.json").read_text())
    clean_stats = json.loads((run / "stats/clean.json").read_text())
    assert ingest_stats["rows_in"] == 7 and ingest_stats["dropped_missing_text"] == 1
    assert clean_stats["rows_in"] == 6 and clean_stats["dropped_label_conflict"] == 2
    assert clean_stats["masked_EMAIL"] == 1
    curated = pq.read_table(run / "10_clean.parquet")
    assert curated.num_rows == 4 and "<EMAIL>" in " ".join(curated.column("text").to_pylist())
    assert [row["stage"] for row in first["funnel"]] == ["ingest", "clean", "augment", "adapt", "validate"]
    augment_stats = json.loads((run / "stats/augment.json").read_text())
    assert augment_stats["rows_in"] + augment_stats["generated"] == augment_stats["rows_out"] + sum(
        value for key, value in augment_stats.items() if key.startswith("dropped_")
    )
    assert augment_stats["ops_not_run"] == {"word_vector": "no in-domain word vectors (needs unlabeled or labeled in-domain text)"}
    final = pq.read_table(run / "40_validated.parquet")
    originals = [row for row in final.to_pylist() if row["origin"] == "original"]
    assert len(originals) == 4 and second["splits"]["labeled"] == final.num_rows
    assert all(row["synthetic_p"] is not None and row["label_agreement"] is not None for row in final.to_pylist())
    validate_stats = json.loads((run / "stats/validate.json").read_text())
    assert set(validate_stats["checks"]) == {"discriminator", "label_consistency", "label_issues"}
    assert validate_stats["rows_in"] == validate_stats["rows_out"] + pq.read_table(run / "rejects/validate.parquet").num_rows

    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["curate-funnel"])))
    ours = [artifact for artifact in artifacts if artifact.description.endswith(f" of {run.name}")]  # the Prefect home may hold other runs
    assert ours and "label_conflict=2" in str(ours[0].data)


def test_cli_summary_and_one_line_errors(config_file, tmp_path):
    pdap = [sys.executable, "-m", "flows.cli"]
    wide = {**os.environ, "COLUMNS": "200"}  # keep the summary table on one line per stage
    done = subprocess.run([*pdap, "curate", "--config", str(config_file), "--run-id", "cli"], capture_output=True, text=True, env=wide)
    assert done.returncode == 0, done.stderr
    assert "label_conflict=2" in done.stdout and "data docs:" in done.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text("ingest:\n  sources: [{path: rows.csv}]\ncleaning:\n  min_words: many\n  colour: blue\n", encoding="utf-8")
    failed = subprocess.run([*pdap, "curate", "--config", str(bad)], capture_output=True, text=True)
    assert failed.returncode == 2
    assert "cleaning.min_words" in failed.stderr and "unknown key 'cleaning.colour'" in failed.stderr
    assert "Traceback" not in failed.stdout + failed.stderr


def test_a_run_without_the_domain_stage_passes_its_contracts(config_file):
    """With `domain: {enabled: false}` no row gets a domain score, and the later contracts do not ask for one."""
    config_file.write_text(config_file.read_text(encoding="utf-8") + "domain:\n  enabled: false\n", encoding="utf-8")
    summary = curate_flow(RunConfig.load(config_file), run_id="no-domain")
    run = config_file.parent / "runs" / "no-domain"
    for boundary in ("30_adapted", "40_validated"):
        reports = json.loads((run / "contracts" / f"{boundary}.json").read_text(encoding="utf-8"))
        assert reports and all(report["success"] for report in reports), boundary
    adapted = pq.read_table(run / "30_adapted.parquet")
    assert adapted.column("domain_score").null_count == adapted.num_rows
    assert summary["output"]
