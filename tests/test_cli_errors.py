"""`pdap` failures: one stderr line naming the file, column or key; documented exit codes; no traceback.

Every probe here fails in the pre-flight checks, before a Prefect flow or server starts, so the
tests run in seconds. Most use typer's CliRunner (stdout and stderr kept apart); a few run the
installed `pdap` script.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from flows.cli import app
from flows.cli_errors import BUG, exit_code, one_line
from flows.run_folder import RunFolder
from flows.config import RunConfig
from schemas.rows import conform_rows, empty_rejects

PDAP = str(Path(sys.executable).with_name("pdap"))
TEXTS = [f"patient {i} reported a new symptom at the clinic visit" for i in range(12)]
LABELS = ["a", "b"] * 6  # 6 labeled rows per class


def pdap(*args) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(arg) for arg in args], env={"COLUMNS": "250"})  # help lines unwrapped
    return result.exit_code, result.stdout, result.stderr


def fails(*args, code: int = 2) -> str:
    """Run `pdap *args`; check it failed with `code`, one `error:` line on stderr and no traceback."""
    status, out, err = pdap(*args)
    assert status == code, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in out + err
    return lines[0]


def config(tmp_path: Path, source: str, extra: str = "") -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(f"name: t\nruns_dir: runs\n{extra}ingest:\n  sources:\n    - path: {source}\n", encoding="utf-8")
    return path


def write_csv(path: Path, texts, labels=LABELS) -> Path:
    path.write_text("text,label\n" + "".join(f"{text},{label}\n" for text, label in zip(texts, labels)), encoding="utf-8")
    return path


# ---------------------------------------------------------------- data files


def test_a_list_label_column_is_named(tmp_path):
    pq.write_table(pa.table({"text": TEXTS, "label": pa.array([[1, 2]] * 12, pa.list_(pa.int64()))}), tmp_path / "in.parquet")
    line = fails("curate", "-c", config(tmp_path, "in.parquet"))
    assert str(tmp_path / "in.parquet") in line and "column 'label'" in line and "list<" in line
    assert "one string or number per row" in line


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl", "hf"])
def test_a_number_text_column_is_refused(tmp_path, fmt):
    path = tmp_path / f"in.{fmt}"
    if fmt == "hf":
        datasets.Dataset.from_dict({"text": list(range(12)), "label": LABELS}).save_to_disk(str(path))
    elif fmt == "parquet":
        pq.write_table(pa.table({"text": pa.array(range(12), pa.int64()), "label": LABELS}), path)
    elif fmt == "csv":
        write_csv(path, range(12))
    else:
        path.write_text("".join(json.dumps({"text": i, "label": label}) + "\n" for i, label in enumerate(LABELS)), encoding="utf-8")
    line = fails("curate", "-c", config(tmp_path, path.name))
    assert line == f"error: {path}: column 'text' has type int64; the text column must be a string column"


def test_a_missing_source_and_a_missing_config_are_named(tmp_path):
    assert fails("curate", "-c", config(tmp_path, "nowhere.csv")) == f"error: {tmp_path / 'nowhere.csv'}: no such file or folder"
    assert fails("curate", "-c", tmp_path / "none.yaml") == f"error: {tmp_path / 'none.yaml'}: config file not found"


def test_a_missing_column_is_named_with_the_columns_present(tmp_path):
    write_csv(tmp_path / "in.csv", TEXTS)
    line = fails("experiment", "--data", tmp_path / "in.csv", "--label-column", "category")
    assert "'category'" in line and "columns present" in line and str(tmp_path / "in.csv") in line


# ---------------------------------------------------------------- draws the pool cannot give


def test_labeled_per_class_beyond_the_pool_names_the_key_and_the_largest_value(tmp_path):
    write_csv(tmp_path / "in.csv", TEXTS)
    line = fails("curate", "-c", config(tmp_path, "in.csv", "labeled_per_class: 30\n"))
    assert line.startswith(f"error: {tmp_path / 'run.yaml'}: labeled_per_class: k=30 examples per class requested")
    assert line.endswith("the largest feasible k is 6 (after ingest)")


def test_experiment_ks_beyond_the_pool_name_the_key(tmp_path):
    write_csv(tmp_path / "in.csv", TEXTS)
    run = config(tmp_path, "in.csv", "experiment:\n  ks: [2, 9]\n")
    assert fails("experiment", "-c", run).startswith(f"error: {run}: experiment.ks: k=9 examples per class requested")
    assert fails("experiment", "-c", run, "--k", 7).startswith("error: --k: k=7 examples per class")


@pytest.mark.slow
def test_labeled_per_class_beyond_the_cleaned_pool_names_the_key(tmp_path):
    """The pre-flight passes (6 rows of 'a' after ingest); cleaning drops two duplicates, so the draw fails in the flow."""
    a = ["The patient reported chest pain after climbing the stairs at home."] * 3 + [
        "Blood pressure stayed high despite two weeks of medication changes.",
        "An irregular heartbeat was recorded during the overnight monitoring session.",
        "Swelling of both ankles worsened over the course of the summer."]
    b = ["Severe headaches returned every morning for nearly a month.", "Numbness in the left hand spread slowly toward the elbow.",
         "Short episodes of memory loss worried the family of the retired teacher.", "Tremor in the right hand made writing letters very difficult.",
         "Dizziness and blurred vision followed a fall from a bicycle.", "Seizures stopped after the dose of the new drug was increased."]
    write_csv(tmp_path / "in.csv", a + b, ["a"] * 6 + ["b"] * 6)
    run = config(tmp_path, "in.csv", "labeled_per_class: 5\n")
    done = subprocess.run([PDAP, "curate", "-c", str(run)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr[-2000:]
    assert (f"error: {run}: labeled_per_class: k=5 examples per class requested, but in the pool 'a' has 4; "
            "the largest feasible k is 4") in done.stderr.splitlines()


@pytest.mark.parametrize("k", ["0", "-1", "two"])
def test_k_must_be_a_positive_integer(tmp_path, k):
    write_csv(tmp_path / "in.csv", TEXTS)
    line = fails("experiment", "--data", tmp_path / "in.csv", "--k", k)
    assert "'--k'" in line


def test_ks_in_the_config_must_be_positive(tmp_path):
    write_csv(tmp_path / "in.csv", TEXTS)
    run = config(tmp_path, "in.csv", "experiment:\n  ks: [0]\n")
    assert fails("experiment", "-c", run) == f"error: {run}: experiment.ks.0: Input should be greater than 0 (got 0)"


# ---------------------------------------------------------------- strict config types


def test_a_quoted_number_is_not_a_number(tmp_path):
    write_csv(tmp_path / "in.csv", TEXTS)
    run = config(tmp_path, "in.csv", 'augmentation:\n  min_similarity: "0.7"\n')
    assert fails("curate", "-c", run) == f"error: {run}: augmentation.min_similarity: expected a number, got the string '0.7'"


def test_booleans_and_numbers_do_not_stand_in_for_each_other(tmp_path):
    write_csv(tmp_path / "in.csv", TEXTS)
    run = config(tmp_path, "in.csv", "augmentation:\n  enabled: 1\n  per_example: true\n  strength: false\n")
    line = fails("curate", "-c", run)
    assert "augmentation.enabled: expected true or false, got the number 1" in line
    assert "augmentation.per_example: expected an integer, got the boolean true" in line
    assert "augmentation.strength: expected a number, got the boolean false" in line


def test_an_integer_is_still_a_float_and_paths_and_choices_are_strings(tmp_path):
    write_csv(tmp_path / "in.csv", TEXTS)
    loaded = RunConfig.load(config(tmp_path, "in.csv", "augmentation:\n  min_similarity: 1\nexperiment:\n  trainer: head\n"))
    assert loaded.augmentation.min_similarity == 1.0 and isinstance(loaded.augmentation.min_similarity, float)
    assert loaded.ingest.sources[0].path == tmp_path / "in.csv" and loaded.experiment.trainer == "head"


# ---------------------------------------------------------------- the command line itself


def test_debug_prints_the_traceback_and_keeps_the_exit_code(tmp_path):
    status, _, err = pdap("--debug", "curate", "-c", tmp_path / "none.yaml")
    assert status == 2 and "Traceback" in err and err.strip().splitlines()[-1] == f"error: {tmp_path / 'none.yaml'}: config file not found"


def test_an_unexpected_error_is_a_bug_with_its_own_code():
    error = ZeroDivisionError("division by zero")
    assert exit_code(error) == BUG not in (0, 1, 2, 3)
    assert one_line(error) == ("error: internal error (ZeroDivisionError: division by zero); "
                               "rerun with --debug for the traceback and report it")


def test_run_id_has_help_wherever_it_exists():
    for command in ("curate", "experiment", "robustness"):
        status, out, _ = pdap(command, "--help")
        assert status == 0 and "name of the run folder" in out, command


def test_the_installed_script_prints_its_version_and_fails_before_prefect(tmp_path):
    done = subprocess.run([PDAP, "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip().startswith("pdap ") and done.stdout.strip() != "pdap "
    run = config(tmp_path, "in.csv", 'augmentation:\n  strength: "0.2"\n')
    write_csv(tmp_path / "in.csv", TEXTS)
    code = ("import sys\nfrom flows.cli import app\ntry:\n    app(['curate', '-c', sys.argv[1]])\n"
            "except SystemExit as end:\n    print('prefect' in sys.modules, end.code)\n")
    probe = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, timeout=120,
                           cwd=Path(__file__).resolve().parents[1])
    assert probe.stdout.split() == ["False", "2"], probe.stderr  # refused without importing Prefect
    assert probe.stderr.strip() == f"error: {run}: augmentation.strength: expected a number, got the string '0.2'"


# ---------------------------------------------------------------- export


@pytest.fixture
def run_folder(tmp_path) -> Path:
    """A finished run's last boundary: two labeled originals and an augmented child of the first."""
    originals = conform_rows(pa.table({"id": ["p1", "p2"], "text": TEXTS[:2], "label": ["a", "b"],
                                       "split": ["labeled", "labeled"], "origin": ["original", "original"]}))
    child = {**originals.to_pylist()[0], "id": "c1", "text": "patient 0 reported a fresh symptom at the clinic visit",
             "origin": "augmented", "op": "synonym", "parent_id": "p1"}
    rows = pa.concat_tables([originals, pa.Table.from_pylist([child], schema=originals.schema)])
    folder = RunFolder(tmp_path / "runs" / "r1")
    folder.write_stage("validate", rows, empty_rejects(), {"rows_in": 3, "rows_out": 3})
    (folder.root / "labels.json").write_text(json.dumps(["a", "b"]))
    return folder.root


def test_export_carries_split_origin_op_and_parent(run_folder, tmp_path):
    status, out, err = pdap("export", run_folder, tmp_path / "out")
    assert status == 0, err
    exported = datasets.load_from_disk(str(tmp_path / "out"))
    rows = {row["id"]: row for row in exported}
    assert rows["c1"]["parent_id"] == "p1" and rows["c1"]["op"] == "synonym" and rows["c1"]["origin"] == "augmented"
    assert rows["p1"]["parent_id"] is None and rows["p1"]["origin"] == "original"
    assert {row["split"] for row in exported} == {"labeled"}
    assert rows["c1"]["sample_weight"] == rows["p1"]["sample_weight"] == 0.5


def test_export_refuses_a_target_inside_a_run_folder(run_folder):
    for target in (run_folder, run_folder / "export", run_folder / "stats" / "x"):
        assert fails("export", run_folder, target) == f"error: {target}: inside the run folder {run_folder}; export to a folder outside it"


def test_a_folder_that_merely_has_a_stats_folder_is_not_a_run_folder(run_folder, tmp_path):
    (tmp_path / "project" / "stats").mkdir(parents=True)
    status, _, err = pdap("export", run_folder, tmp_path / "project" / "out")
    assert status == 0, err


def test_export_refuses_a_non_empty_folder_and_an_unfinished_run(run_folder, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("keep me")
    assert fails("export", run_folder, tmp_path / "busy").endswith("the folder is not empty; give a new or empty folder")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "keep me"
    line = fails("export", tmp_path / "busy", tmp_path / "out")
    assert line.startswith(f"error: {tmp_path / 'busy'}: not a finished curate run")


@pytest.mark.slow
def test_a_failure_inside_a_running_flow_ends_as_one_line_without_prefect_tracebacks(tmp_path):
    """The outlier check needs three original rows and gets two: the flow fails in its last stage. Prefect's
    console may log the failure, but no traceback; pdap's line comes last, with the input exit code."""
    write_csv(tmp_path / "in.csv", TEXTS[:2], LABELS[:2])
    run = config(tmp_path, "in.csv", "augmentation: {enabled: false}\ndomain: {pseudo_label: false, word_vectors: false}\n"
                 "validation: {checks: [outlier]}\n")
    result = subprocess.run([PDAP, "curate", "-c", str(run)], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: ") and "outlier" in result.stderr.strip().splitlines()[-1]
    debug = subprocess.run([PDAP, "--debug", "curate", "-c", str(run), "--run-id", "again"], capture_output=True, text=True,
                           timeout=600, cwd=tmp_path)
    assert debug.returncode == 2 and "Traceback" in debug.stderr  # --debug keeps them
