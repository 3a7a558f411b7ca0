"""The curate flow: one Prefect task per stage, passing paths; contracts at every boundary."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
import time
from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from prefect import flow, task, unmapped
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE

from data_contracts.suites import (
    clean_suite, raw_suite, rejects_rules, synthetic_suite, validated_suite, with_check_scores, with_clean_checks, with_synthetic_checks,
)
from data_contracts.validate import ContractValidator
from experiments.encoder_choice import choose_encoder
from experiments.sampling import draw_k_shot
from flows.execution import run_on_runner
from flows.progress import StageProgress, StageStep
from flows.report_funnel import STAGES, funnel, funnel_row
from model_hooks.embedder import get_embedder
from model_hooks.encoders import active_spec, use_encoder
from flows.run_folder import RunFolder, atomic_write_parquet, open_run
from flows.shards import augment_shard_task, clean_shard_task, embed_shard_task, read_children, read_cleaned_shard, write_shards
from flows.config import RunConfig
from schemas.files import atomic_write_json
from schemas.rows import Split, column_values, conform_rows, empty_rows
from stages.augmenters import AUGMENTER_NAMES
from stages.cleaning import merge_shards
from stages.domain_adaptation import PSEUDO_LABEL_OP, adapt, build_domain_inputs
from stages.ingest import ingest
from stages.adversarial_validation import validate
from stages.semantic_augmentation import AugmentationInputs, augment, augmentation_parents


@lru_cache(maxsize=4)
def _validator(data_docs_dir: str) -> ContractValidator:
    return ContractValidator(Path(data_docs_dir))


def _check(folder: RunFolder, boundary: str, rows, rules: list, rejected, eval_may_be_rejected: bool = False) -> None:
    """Validate a boundary's rows and its rejects; record both reports; stop on a failure."""
    validator = _validator(str(folder.data_docs_dir))
    reports = [
        validator.validate(boundary, rows, rules),
        validator.validate(f"{boundary}.rejects", rejected, rejects_rules(eval_may_be_rejected)),
    ]
    atomic_write_json(folder.contract_path(boundary), [report.as_dict() for report in reports])
    for report in reports:
        report.raise_for_failures()


def run_labels(config: RunConfig, raw_path: Path) -> list[str]:
    """The configured label set, or every label seen in labeled and eval rows."""
    if config.ingest.label_set is not None:
        return config.ingest.label_set
    labels = pq.read_table(raw_path, columns=["label"]).column("label").drop_null().unique().to_pylist()
    return sorted(labels)


@task(name="ingest", cache_policy=NO_CACHE)
def ingest_task(config: RunConfig, run_root: str) -> str:
    folder = RunFolder(Path(run_root))
    result = ingest(config.ingest)
    path = folder.write_stage("ingest", result.kept, result.rejected, result.stats)
    labels = run_labels(config, path)
    atomic_write_json(folder.root / "labels.json", labels)
    rules = raw_suite(labels, result.stats["rows_in"], result.rejected.num_rows)
    _check(folder, "00_raw", result.kept, rules, result.rejected, eval_may_be_rejected=True)
    return str(path)


@task(name="clean", cache_policy=NO_CACHE)
def clean_task(config: RunConfig, run_root: str, raw_path: str, cleaned_shards: list[str]) -> str:
    """Merge the cleaned shards: duplicates, conflicts and leaks across all rows; write 10_clean."""
    folder = RunFolder(Path(run_root))
    raw = conform_rows(pq.read_table(raw_path))
    started = time.perf_counter()
    result = merge_shards(raw, [read_cleaned_shard(path) for path in cleaned_shards], config.cleaning, started)
    path = folder.write_stage("clean", result.kept, result.rejected, result.stats)
    labels = run_labels(config, Path(raw_path))
    checked = with_clean_checks(result.kept, raw, config.cleaning)
    _check(folder, "10_clean", checked, clean_suite(labels, config.cleaning, raw.num_rows, result.rejected.num_rows), result.rejected)
    return str(path)


@task(name="shard", cache_policy=NO_CACHE)
def shard_task(path: str, directory: str, prefix: str, shard_rows: int, non_eval_only: bool = False) -> list[str]:
    """Split a boundary file (without its eval rows if asked) into shard files for per-shard tasks."""
    table = pq.read_table(path)
    if non_eval_only:
        table = table.filter(pa.array(column_values(table, "split") != Split.EVAL.value))
    return write_shards(table, Path(directory), prefix, shard_rows)


def _results(futures, step: StageStep) -> list:
    """Each future's result in order, one step of the stage's bar per finished future."""
    results = []
    for future in futures:
        results.append(future.result())
        step.advance()
    return results


def cleaning_stage(config: RunConfig, folder: RunFolder, raw_path: str, step: StageStep) -> str:
    """Clean every raw shard on the task runner, then merge them in this process."""
    shards = shard_task(raw_path, str(folder.shards_dir), "raw", config.execution.shard_rows)
    step.expect(len(shards) + 1)
    cleaned = clean_shard_task.map(unmapped(config.cleaning), shards)
    return clean_task(config, str(folder.root), raw_path, _results(cleaned, step))


@task(name="domain-inputs", cache_policy=NO_CACHE)
def domain_task(config: RunConfig, run_root: str, clean_path: str) -> tuple[str, AugmentationInputs]:
    """Draw the k-shot rows (if configured) and mine the domain inputs (protected terms, word vectors)."""
    folder = RunFolder(Path(run_root))
    rows = pq.read_table(clean_path)
    if config.labeled_per_class is not None:
        rows = draw_k_shot(rows, config.labeled_per_class, config.seed)
    drawn_path = folder.shards_dir / "drawn.parquet"
    atomic_write_parquet(drawn_path, rows)
    domain = build_domain_inputs(rows, config.domain)
    atomic_write_json(folder.root / "domain" / "protected_terms.json", sorted(domain.protected_terms))
    return str(drawn_path), domain


@task(name="augment", cache_policy=NO_CACHE)
def augment_task(config: RunConfig, run_root: str, raw_path: str, drawn_path: str, domain: AugmentationInputs, children: list[str]) -> str:
    """Gate the children of every parent shard against all rows; write 20_augmented."""
    folder = RunFolder(Path(run_root))
    rows = pq.read_table(drawn_path)
    generated = read_children(children, config.augmentation.ops)
    result = augment(rows, config.augmentation, domain, config.seed, generated, cleaning=config.cleaning)
    path = folder.write_stage("augment", result.kept, result.rejected, result.stats)
    expected = result.stats["rows_in"] + result.stats["generated"] - result.rejected.num_rows
    checked = with_synthetic_checks(result.kept, pq.read_table(raw_path), domain.protected_terms, config.cleaning)
    rules = synthetic_suite(run_labels(config, Path(raw_path)), list(AUGMENTER_NAMES), expected, scored=False)
    _check(folder, "20_augmented", checked, rules, result.rejected)
    return str(path)


def augmentation_stage(config: RunConfig, folder: RunFolder, raw_path: str, clean_path: str, step: StageStep) -> str:
    """Make children per parent shard on the task runner, then gate them all in this process."""
    drawn_path, domain = domain_task(config, str(folder.root), clean_path)
    parents = (augmentation_parents(pq.read_table(drawn_path), config.augmentation.max_parents_per_class, config.seed)
               if config.augmentation.enabled else empty_rows())
    shards = write_shards(parents, folder.shards_dir, "parents", config.execution.parents_per_shard)
    step.expect(len(shards) + 1)
    children = augment_shard_task.map(unmapped(config.augmentation), unmapped(domain), unmapped(config.seed), shards, unmapped(active_spec()))
    return augment_task(config, str(folder.root), raw_path, drawn_path, domain, _results(children, step))


def embedding_stage(config: RunConfig, folder: RunFolder, rows_path: str, step: StageStep) -> None:
    """Embed the rows the scoring stages (adapt, validate) look at, shard by shard, into the shared cache.

    Only worth it with workers to spread over: in one process the stages embed what they need themselves.
    """
    if config.execution.runner != "dask":
        return
    modes = sorted({config.domain.embedding_mode, config.validation.embedding_mode})
    shards = shard_task(rows_path, str(folder.shards_dir), "scored", config.execution.shard_rows, non_eval_only=True)
    step.expect(len(modes) * len(shards) + 1)
    _results([embed_shard_task.submit(mode, shard, active_spec()) for mode in modes for shard in shards], step)


@task(name="adapt", cache_policy=NO_CACHE)
def adapt_task(config: RunConfig, run_root: str, raw_path: str, augmented_path: str) -> str:
    folder = RunFolder(Path(run_root))
    rows = pq.read_table(augmented_path)
    result = adapt(rows, config.domain, config.seed)
    path = folder.write_stage("adapt", result.kept, result.rejected, result.stats)
    protected = frozenset(json.loads((folder.root / "domain" / "protected_terms.json").read_text(encoding="utf-8")))
    checked = with_synthetic_checks(result.kept, pq.read_table(raw_path), protected, config.cleaning)
    known_ops = [*AUGMENTER_NAMES, PSEUDO_LABEL_OP]
    rules = synthetic_suite(run_labels(config, Path(raw_path)), known_ops, rows.num_rows - result.rejected.num_rows,
                           scored=config.domain.enabled)
    _check(folder, "30_adapted", checked, rules, result.rejected)
    return str(path)


@task(name="validate", cache_policy=NO_CACHE)
def validate_task(config: RunConfig, run_root: str, raw_path: str, adapted_path: str) -> str:
    folder = RunFolder(Path(run_root))
    rows = pq.read_table(adapted_path)
    result = validate(rows, config.validation, config.seed)
    path = folder.write_stage("validate", result.kept, result.rejected, result.stats, result.extra)
    protected = frozenset(json.loads((folder.root / "domain" / "protected_terms.json").read_text(encoding="utf-8")))
    scores = result.extra["check_scores"]
    checked = with_check_scores(with_synthetic_checks(result.kept, pq.read_table(raw_path), protected, config.cleaning), scores)
    score_columns = [name for name in scores.column_names if name != "id"]
    rules = validated_suite(run_labels(config, Path(raw_path)), [*AUGMENTER_NAMES, PSEUDO_LABEL_OP], rows.num_rows - result.rejected.num_rows, score_columns,
                            scored=config.domain.enabled)
    _check(folder, "40_validated", checked, rules, result.rejected)
    return str(path)


@task(name="report", cache_policy=NO_CACHE)
def report_task(run_root: str) -> str:
    """Write report.html; publish the rejects and the checks as Prefect table artifacts."""
    from flows.quality_report import write_report

    folder = RunFolder(Path(run_root))
    rejects = []
    for stage in STAGES:
        stats = folder.read_stats(stage) if folder.stats_path(stage).exists() else {}
        rejects += [{"stage": stage, "reason": key.removeprefix("dropped_"), "rows": value}
                    for key, value in sorted(stats.items()) if key.startswith("dropped_") and value]
    create_table_artifact(key="curate-rejects", table=rejects or [{"stage": "-", "reason": "-", "rows": 0}],
                          description=f"Rejected rows by stage and reason in {folder.root.name}")
    if folder.stats_path("validate").exists():
        checks = [{"check": name, "summary": check["summary"], "flagged": check["info"].get("flagged", ""),
                   "roc_auc": check["info"].get("roc_auc", "")} for name, check in folder.read_stats("validate")["checks"].items()]
        if checks:
            create_table_artifact(key="validation-checks", table=checks, description=f"Adversarial validation checks in {folder.root.name}")
    return str(write_report(folder.root))


def new_run_id(config: RunConfig) -> str:
    digest = hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:6]
    return f"{config.name}-{dt.datetime.now(dt.timezone.utc):%Y%m%d-%H%M%S}-{digest}"


def start_run(config: RunConfig, run_id: str | None) -> RunFolder:
    """Claim runs/<run_id>/ (flows/run_folder.py: open_run) and record the resolved configuration in it."""
    folder = open_run(Path(config.runs_dir), run_id or new_run_id(config), unique=run_id is None)
    atomic_write_json(folder.root / "config.json", config.model_dump(mode="json"))
    return folder


def _finish(folder: RunFolder, stage: str, step: StageStep) -> None:
    """Report the finished stage and record its whole wall time in its stats (`wall_seconds`)."""
    stats = folder.read_stats(stage)
    row = funnel_row(stage, stats)
    relabeled = f", {row['relabeled']} relabeled" if row["relabeled"] else ""
    detail = f"{row['rows_in']} rows in, {row['added']} added, {row['rows_out']} out, {row['rejected']} rejected{relabeled}"
    stats["wall_seconds"] = round(step.finish(detail), 3)
    atomic_write_json(folder.stats_path(stage), stats)


@flow(name="curate-stages")
def curate_stages(config: RunConfig, run_root: str) -> str:
    """Every stage of a curate run; per-shard work goes to this flow's task runner (`execution:`)."""
    folder = RunFolder(Path(run_root))
    with StageProgress("curate", STAGES) as progress:
        step = progress.stage("ingest")
        raw_path = ingest_task(config, run_root)
        _finish(folder, "ingest", step)
        step = progress.stage("clean")
        clean_path = cleaning_stage(config, folder, raw_path, step)
        _finish(folder, "clean", step)
        step = progress.stage("augment")
        augmented_path = augmentation_stage(config, folder, raw_path, clean_path, step)
        _finish(folder, "augment", step)
        step = progress.stage("adapt")  # with the shared embedding of the rows adapt and validate score
        embedding_stage(config, folder, augmented_path, step)
        adapted_path = adapt_task(config, run_root, raw_path, augmented_path)
        _finish(folder, "adapt", step)
        step = progress.stage("validate")
        final_path = validate_task(config, run_root, raw_path, adapted_path)
        _finish(folder, "validate", step)
    return final_path


def run_encoder(config: RunConfig) -> tuple[str, dict]:
    """The encoder spec a curate run embeds with, and why: the configured one, or, with several configured, the
    choice on the ingested labeled rows (experiments/encoder_choice.py)."""
    models = config.embedding.models
    if len(models) == 1:
        return models[0], {"configured": config.embedding.label}
    rows = ingest(config.ingest).kept
    if config.labeled_per_class is not None:  # the labeled rows the run keeps (before cleaning: an approximation)
        rows = draw_k_shot(rows, config.labeled_per_class, config.seed)
    labeled = rows.filter(pa.array(column_values(rows, "split") == Split.LABELED.value))
    texts, text_labels = labeled.column("text").to_pylist(), labeled.column("label").to_pylist()
    choice = choose_encoder(models, texts, text_labels, config.ingest.label_set or sorted(set(text_labels)), config.seed,
                            config.domain.embedding_mode)
    return choice.spec, {"configured": config.embedding.label, **choice.as_record()}


@flow(name="curate")
def curate_flow(config: RunConfig, run_id: str | None = None) -> dict:
    """Ingest, clean, augment, adapt and validate `config`'s sources into runs/<run_id>/ with the run's encoder; return a summary."""
    spec, why = run_encoder(config)
    with use_encoder(spec) as encoder:
        return _curate(config, run_id, {**why, "used": encoder.name})


def _curate(config: RunConfig, run_id: str | None, encoder: dict) -> dict:
    embedder = get_embedder(config.domain.embedding_mode)
    if config.execution.runner == "dask":
        embedder.embed(["pdap"])  # a user's folder is exported to ONNX here, once, not by every worker at once
    folder = start_run(config, run_id)
    final_path = run_on_runner(curate_stages, config.execution, config, str(folder.root))
    shutil.rmtree(folder.shards_dir, ignore_errors=True)
    table = funnel(folder)
    create_table_artifact(key="curate-funnel", table=table, description=f"Rows through each stage of {folder.root.name}")
    split_counts = pq.read_table(final_path, columns=["split"]).column("split").value_counts().to_pylist()
    summary = {
        "run_dir": str(folder.root),
        "output": final_path,
        "funnel": table,
        "splits": {item["values"]: item["counts"] for item in split_counts},
        "data_docs": str(folder.data_docs_dir / "index.html"),
        "eval_rows": sum(item["counts"] for item in split_counts if item["values"] == Split.EVAL.value),
        "runner": config.execution.runner,
        "embedding_backend": embedder.backend,  # PDAP_EMBEDDING_BACKEND's, or torch for an encoder only sentence-transformers runs
        "encoder": encoder,
    }
    summary["report"] = report_task(str(folder.root))
    atomic_write_json(folder.root / "summary.json", summary)
    folder.finish()
    return summary
