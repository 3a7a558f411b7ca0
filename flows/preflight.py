"""Checks the CLI runs before any Prefect flow (or server) starts: a bad input fails in a second.

The configuration itself is checked by `RunConfig.load`; here: every configured encoder is installed
and a usable folder (`model_hooks.encoders.resolve_encoder`), every source exists and has the
mapped columns with usable types (`stages.ingest.check_source`), every k-shot draw asks for a
positive k the labeled pool can give, and an export target is a fresh folder outside any run.
Nothing here imports Prefect.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from flows.run_folder import BOUNDARY_FILES
from experiments.sampling import SamplingError, check_classes
from flows.config import ConfigError, RunConfig
from model_hooks.encoders import encoder_spec, resolve_encoder
from stages.ingest import ColumnMapping, SourceConfig, check_source, ingest


def check_encoders(config: RunConfig) -> None:
    """Every configured encoder is installed and a usable folder (ResourceMissing naming the folder or the install command)."""
    for spec in config.embedding.models:
        resolve_encoder(encoder_spec(spec))


def check_inputs(sources: list[SourceConfig], columns: ColumnMapping) -> None:
    """Every source exists, is readable, and has the mapped columns with usable types (InputError)."""
    for source in sources:
        check_source(source, columns)


def preflight(config: RunConfig, draws: dict[str, list[int]] | None = None) -> None:
    """Check `config`'s inputs; then, if `draws` maps a setting (named as the message should name it,
    e.g. "run.yaml: labeled_per_class" or "--k") to the examples per class it draws (positive: the
    config and the command line check that), that every class has that many labeled rows after ingest
    (ConfigError)."""
    draws = draws or {}
    check_encoders(config)
    check_inputs(config.ingest.sources, config.ingest.columns)
    if draws and config.ingest.sources:
        counts = labeled_pool(config)
        for where, ks in draws.items():
            try:
                check_classes(counts, max(ks))
            except SamplingError as error:
                raise ConfigError(f"{where}: {error} (after ingest)") from None


def labeled_pool(config: RunConfig) -> dict[str, int]:
    """Labeled rows per class after ingest, over the configured label set (or every label seen)."""
    kept = ingest(config.ingest).kept
    labels = config.ingest.label_set or sorted(set(kept.column("label").drop_null().to_pylist()))
    seen = Counter(label for label, split in zip(kept.column("label").to_pylist(), kept.column("split").to_pylist())
                   if split == "labeled")
    return {label: seen.get(label, 0) for label in labels}


def run_folder_of(path: Path) -> Path | None:
    """The run folder `path` is, or lies in (a folder holding a stage's boundary file or a run's status.json), if any."""
    markers = [f"{name}.parquet" for name in BOUNDARY_FILES.values()] + ["status.json"]
    for folder in [path, *path.parents]:
        if any((folder / marker).exists() for marker in markers):
            return folder
    return None


def check_export_target(target: Path) -> None:
    """An export target must be a new or empty folder, not inside a run folder (ConfigError)."""
    target = target.resolve()
    run = run_folder_of(target)
    if run is not None:
        raise ConfigError(f"{target}: inside the run folder {run}; export to a folder outside it")
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target}: exists and is not a folder")
    if target.is_dir() and any(target.iterdir()):
        raise ConfigError(f"{target}: the folder is not empty; give a new or empty folder")
