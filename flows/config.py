"""The typed configuration of a whole run, loaded from YAML or TOML and validated up front."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from experiments.config import ExperimentConfig
from model_hooks.encoders import BUNDLED, encoder_spec, resolve_encoder
from schemas.strict import StrictModel, validate_document
from stages.cleaning import CleaningConfig
from stages.domain_adaptation import DomainConfig
from stages.ingest import IngestConfig
from stages.semantic_augmentation import AugmentationConfig
from stages.validation_checks import ValidationConfig


class RefreshConfig(StrictModel):
    """The `refresh:` section: which folder to watch and where the refresh state lives."""

    input_dir: Path = Field(description="folder of input files (csv, tsv, jsonl, parquet); relative to the config file")
    patterns: list[str] = Field(["*"], min_length=1, description="file name patterns (glob) of input files to take")
    state_dir: Path | None = Field(None, description="default: <runs_dir>/<name>-refresh")
    lock_wait_seconds: float = Field(0.0, ge=0.0, description="how long a second refresh waits for the first")
    curate: bool = Field(True, description="run augment, adapt and validate on the merged rows when anything changed")


class ScheduleConfig(StrictModel):
    """The `schedule:` section read by `pdap serve`: when the flows run."""

    interval_seconds: float | None = Field(None, gt=0)
    cron: str | None = None
    flows: list[Literal["refresh", "curate", "experiment"]] = Field(["refresh"], min_length=1)

    @model_validator(mode="after")
    def _one_schedule(self):
        if (self.interval_seconds is None) == (self.cron is None):
            raise ValueError("give exactly one of interval_seconds and cron")
        return self


class ExecutionConfig(StrictModel):
    """The `execution:` section: where the curate flow's per-shard work (cleaning, augmentation, embedding) runs."""

    runner: Literal["local", "dask"] = Field("local", description="local: shards one after another in this process")
    workers: int = Field(2, ge=1, description="dask: worker processes of the local cluster started for the run")
    address: str | None = Field(
        None, description="dask: address of an existing scheduler (tcp://host:8786); its workers must see runs_dir"
    )
    shard_rows: int = Field(50_000, ge=1, description="rows per cleaning and embedding shard")
    parents_per_shard: int = Field(100, ge=1, description="labeled parents per augmentation shard")

    @model_validator(mode="after")
    def _address_needs_dask(self):
        if self.address is not None and self.runner != "dask":
            raise ValueError("address is only used with runner: dask")
        return self


class EmbeddingConfig(StrictModel):
    """The `embedding:` section: the sentence encoder every stage and trainer embeds with (model_hooks/encoders.py)."""

    model: str | list[str] = Field(
        "minilm", description="minilm (bundled, the default), mpnet (make encoder-mpnet) or the path of a local "
        "sentence-transformers folder; a list of them: each (k, seed) cell, or a curate run, picks one by inner "
        "cross-validation of the head on its labeled rows (experiments/encoder_choice.py)")

    @field_validator("model")
    @classmethod
    def _named(cls, model: str | list[str]) -> str | list[str]:
        models = [model] if isinstance(model, str) else model
        if not models or any(not name.strip() for name in models):
            raise ValueError("give an encoder name or folder path, or a list of them")
        if len(set(models)) != len(models):
            raise ValueError("an encoder is listed more than once")
        return model

    @property
    def models(self) -> list[str]:
        return [self.model] if isinstance(self.model, str) else list(self.model)

    @property
    def label(self) -> str:
        """How results files name the setting: `minilm`, `mpnet`, a folder's name and digest, or `minilm|mpnet` for a choice."""
        return "|".join(name if name in BUNDLED else resolve_encoder(encoder_spec(name)).name for name in self.models)


class ConfigError(ValueError):
    """The configuration file is unreadable or invalid; the message names the file and the key."""


class RunConfig(StrictModel):
    """Everything a curate run needs. Relative paths are relative to the config file."""

    name: str = Field("pdap", pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = 0
    runs_dir: Path = Path("runs")
    labeled_per_class: int | None = Field(
        None, ge=1, description="curate runs: keep this many labeled rows per class after cleaning, the rest become unlabeled"
    )
    ingest: IngestConfig
    cleaning: CleaningConfig = CleaningConfig()
    augmentation: AugmentationConfig = AugmentationConfig()
    domain: DomainConfig = DomainConfig()
    validation: ValidationConfig = ValidationConfig()
    embedding: EmbeddingConfig = EmbeddingConfig()
    experiment: ExperimentConfig = ExperimentConfig()
    refresh: RefreshConfig | None = None
    schedule: ScheduleConfig | None = None
    execution: ExecutionConfig = ExecutionConfig()

    @model_validator(mode="after")
    def _has_input(self):
        if not self.ingest.sources and self.refresh is None:
            raise ValueError("ingest.sources: give at least one source (or a refresh: section with an input_dir)")
        return self

    @classmethod
    def load(cls, path: str | Path, overrides: dict | None = None) -> "RunConfig":
        """Read and validate a YAML or TOML config; raise ConfigError with one line per problem."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            text = path.read_text(encoding="utf-8")
            raw = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
        except (yaml.YAMLError, tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{path}: cannot parse ({str(error).splitlines()[0]})") from None
        except OSError as error:
            raise ConfigError(f"{path}: cannot read ({error.strerror or error})") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of settings")
        raw = _merge(raw, overrides or {})
        try:
            config = validate_document(cls, raw)
        except ValidationError as error:
            raise ConfigError(f"{path}: " + "; ".join(_describe(problem) for problem in error.errors())) from None
        config = config.resolve_paths(path.parent)
        if len(set(config.embedding.models)) != len(config.embedding.models):
            raise ConfigError(f"{path}: embedding.model: an encoder folder is listed more than once")
        return config

    @classmethod
    def from_data_file(cls, path: Path, text_column: str, label_column: str, overrides: dict | None = None) -> "RunConfig":
        """A run config for one data file with the fixed eval rule (SHA-256 of the text is even)."""
        path = Path(path).resolve()
        raw = _merge(
            {
                "name": "".join(c if c.isalnum() or c in "_.-" else "_" for c in path.stem) or "data",
                "runs_dir": str(Path.cwd() / "runs"),
                "ingest": {"sources": [{"path": str(path)}], "columns": {"text": text_column, "label": label_column}, "eval_rule": "sha256_even"},
                "experiment": {"results_dir": str(Path.cwd() / "benchmarks" / "results")},
            },
            overrides or {},
        )
        try:
            return validate_document(cls, raw)
        except ValidationError as error:
            raise ConfigError(f"{path}: " + "; ".join(_describe(problem) for problem in error.errors())) from None

    def resolve_paths(self, base: Path) -> "RunConfig":
        """Return a copy with relative source, run and results paths made absolute against `base`."""
        sources = [s.model_copy(update={"path": _absolute(s.path, base)}) for s in self.ingest.sources]
        experiment = self.experiment.model_copy(update={"results_dir": _absolute(self.experiment.results_dir, base)})
        refresh = self.refresh and self.refresh.model_copy(update={
            "input_dir": _absolute(self.refresh.input_dir, base),
            "state_dir": self.refresh.state_dir and _absolute(self.refresh.state_dir, base),
        })
        models = [name if name in BUNDLED else str(_absolute(Path(name).expanduser(), base)) for name in self.embedding.models]
        embedding = self.embedding.model_copy(update={"model": models[0] if isinstance(self.embedding.model, str) else models})
        return self.model_copy(
            update={
                "embedding": embedding,
                "runs_dir": _absolute(self.runs_dir, base),
                "ingest": self.ingest.model_copy(update={"sources": sources}),
                "experiment": experiment,
                "refresh": refresh,
            }
        )

    @property
    def dataset_name(self) -> str:
        return self.experiment.dataset or self.name


def _absolute(path: Path, base: Path) -> Path:
    return path if path.is_absolute() else (base / path).resolve()


def _merge(base: dict, overrides: dict) -> dict:
    merged = dict(base)
    for key, value in overrides.items():
        merged[key] = _merge(merged.get(key, {}), value) if isinstance(value, dict) else value
    return merged


EXPECTED = {"float_type": "a number", "int_type": "an integer", "bool_type": "true or false", "string_type": "a string"}


def _describe(problem: dict) -> str:
    location = ".".join(str(part) for part in problem["loc"]) or "(top level)"
    if problem["type"] == "extra_forbidden":
        return f"unknown key {location!r}"
    if problem["type"] in EXPECTED:
        return f"{location}: expected {EXPECTED[problem['type']]}, got {_kind(problem.get('input'))}"
    return f"{location}: {problem['msg']} (got {problem.get('input')!r})"


def _kind(value) -> str:
    """How a YAML value reads: the string '0.7', the boolean true, the number 2.5, a list."""
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return "null" if value is None else repr(value)
