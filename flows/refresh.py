"""The incremental refresh flow: process only new or changed input files, merge, curate.

A refresh lists the input folder, compares content hashes with the current generation's
manifest, ingests only new or changed files (rows of changed or removed files are withdrawn),
and cleans the previous clean rows together with the new rows, so duplicates, label conflicts
and eval leakage are still checked against everything (previous rows come first: a new
duplicate of an old row is the one rejected). When anything changed it runs the contract-checked
curate flow on the merged clean rows. With nothing new it returns in seconds and writes nothing.
"""

from __future__ import annotations

import fnmatch
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.refresh_state import Generation, RefreshLocked, RefreshState, file_digest
from flows.config import RunConfig
from schemas.rows import REJECT_SCHEMA, conform_rows, content_id
from stages.cleaning import clean
from stages.ingest import ColumnMapping, SourceConfig, ingest

SUPPORTED_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".parquet")


def input_files(folder: Path, patterns: list[str]) -> dict[str, Path]:
    """Supported files directly in `folder` whose names match a pattern, by name, in name order."""
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: the refresh input folder does not exist")
    return {path.name: path for path in sorted(folder.iterdir())
            if path.is_file() and path.suffix.lower() in SUPPORTED_SUFFIXES and any(fnmatch.fnmatch(path.name, p) for p in patterns)}


def _with_file_ids(table: pa.Table, name: str) -> pa.Table:
    """Ids unique across files: the same row in two files is two rows (cleaning then sees duplicates)."""
    ids = [content_id(name, row_id) for row_id in table.column("id").to_pylist()]
    return table.set_column(table.schema.get_field_index("id"), "id", pa.array(ids, pa.string()))


def state_for(config: RunConfig) -> RefreshState:
    return RefreshState(config.refresh.state_dir or Path(config.runs_dir) / f"{config.name}-refresh")


def pending_changes(config: RunConfig, previous: Generation | None = None) -> tuple[dict[str, str], dict[str, Path], list[str]]:
    """(manifest of the input folder now, new or changed files, removed file names)."""
    previous = previous or state_for(config).current()
    files = input_files(config.refresh.input_dir, config.refresh.patterns)
    manifest = {name: file_digest(path) for name, path in files.items()}
    changed = {name: path for name, path in files.items() if previous.manifest.get(name) != manifest[name]}
    return manifest, changed, sorted(set(previous.manifest) - set(manifest))


def _sources(ids: list[str], name: str) -> pa.Table:
    return pa.table({"id": pa.array(ids, pa.string()), "file": pa.array([name] * len(ids), pa.string())})


@task(name="refresh: ingest and clean", cache_policy=NO_CACHE)
def merge_task(config: RunConfig, previous: Generation, changed: dict[str, Path], withdrawn: set[str], manifest: dict[str, str]) -> Generation:
    """The next generation: previous rows of unchanged files plus the changed files, cleaned together."""
    keep_ids = pc.invert(pc.is_in(previous.sources.column("file"), pa.array(sorted(withdrawn), pa.string())))
    kept_sources = previous.sources.filter(keep_ids)
    alive = pa.array(sorted(kept_sources.column("id").to_pylist()), pa.string())
    previous_clean = previous.clean.filter(pc.is_in(previous.clean.column("id"), alive))
    previous_rejects = previous.rejects.filter(pc.is_in(previous.rejects.column("id"), alive))
    # ingest rejects stay; rows cleaning rejected are cleaned again, since the rows they
    # duplicated or conflicted with may be gone (cleaning is idempotent, so this equals a full clean)
    by_ingest = pc.equal(previous_rejects.column("stage"), "ingest")
    ingest_rejects = previous_rejects.filter(by_ingest)
    reconsidered = conform_rows(previous_rejects.filter(pc.invert(by_ingest)).drop_columns(["stage", "reason", "detail"]))

    new_rows, new_rejects, new_sources = [], [], []
    for name, path in changed.items():
        result = ingest(config.ingest.model_copy(update={"sources": [SourceConfig(path=path)]}))
        new_rows.append(_with_file_ids(result.kept, name))
        new_rejects.append(_with_file_ids(result.rejected, name))
        new_sources.append(_sources(new_rows[-1].column("id").to_pylist() + new_rejects[-1].column("id").to_pylist(), name))
    merged = pa.concat_tables([conform_rows(previous_clean), reconsidered, *[conform_rows(t) for t in new_rows]])
    cleaned = clean(merged, config.cleaning)
    rejects = pa.concat_tables([ingest_rejects, *[t.cast(REJECT_SCHEMA) for t in new_rejects], cleaned.rejected.cast(REJECT_SCHEMA)])
    return Generation(previous.number + 1, manifest, cleaned.kept, rejects, pa.concat_tables([kept_sources, *new_sources]))


def curate_config(config, clean_path: Path, run_dir: Path):
    """A run config that curates the refreshed clean rows (already ingested: their columns map 1:1)."""
    ingest = config.ingest.model_copy(update={
        "sources": [SourceConfig(path=clean_path)],
        "columns": ColumnMapping(text="text", label="label", id="id", split="split"),
        "label_names": None,
        "labels": config.ingest.label_set,
        "eval_rule": "none",
    })
    return config.model_copy(update={"ingest": ingest, "runs_dir": run_dir, "refresh": None})


@flow(name="refresh")
def refresh_flow(config: RunConfig) -> dict:
    """Process new or changed files of `config.refresh.input_dir`; curate the merged rows.

    Returns a summary whose `status` is `refreshed`, `unchanged`, or `busy` (another refresh of
    the same state folder holds the lock; `message` says which).
    """
    started = time.perf_counter()
    settings = config.refresh
    state = state_for(config)
    try:
        with state.lock(settings.lock_wait_seconds):
            return _refresh(config, state, started)
    except RefreshLocked as busy:
        return {"state_dir": str(state.root), "status": "busy", "message": str(busy)}


def _refresh(config, state: RefreshState, started: float) -> dict:
    from flows.curate import curate_flow

    settings = config.refresh
    state.remove_leftovers()
    previous = state.current()
    manifest, changed, removed = pending_changes(config, previous)
    withdrawn = set(removed) | set(changed)
    summary = {"state_dir": str(state.root), "files": len(manifest), "new_or_changed": sorted(changed), "removed": removed}
    if not changed and not removed:
        return {**summary, "status": "unchanged", "generation": previous.number, "seconds": round(time.perf_counter() - started, 3)}
    generation = merge_task(config, previous, changed, withdrawn, manifest)
    folder = state.write(generation)
    if settings.curate and generation.clean.num_rows:
        curate_flow(curate_config(config, folder / "clean.parquet", folder), run_id="run")
    state.publish(generation.number)
    total_rows = generation.clean.num_rows + generation.rejects.num_rows
    return {**summary, "status": "refreshed", "generation": generation.number, "clean_rows": generation.clean.num_rows,
            "rejected_rows": generation.rejects.num_rows, "rows_accounted": total_rows,
            "seconds": round(time.perf_counter() - started, 3)}
