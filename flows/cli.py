"""`pdap`: the command line in front of every flow."""

from __future__ import annotations

import os

# Before Prefect is imported: no telemetry, and no hub downloads from any library.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The temporary server needs more than the default 20 s to start on a busy 2-core machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
for _offline in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_offline, "1")

import sys  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Optional  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

app = typer.Typer(help="pdap: curate, augment and measure few-shot text classification data, offline.", no_args_is_help=True)
console = Console()


def _fail(error: Exception, code: int = 2) -> None:
    console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _known_errors():
    from data_contracts.validate import ContractViolation
    from model_hooks.resources import ResourceMissing
    from schemas.config import ConfigError
    from stages.ingest import InputError
    from stages.validation_checks import CheckFailed

    return ConfigError, InputError, ResourceMissing, ContractViolation, CheckFailed


@app.command()
def curate(
    config: Path = typer.Option(..., "--config", "-c", help="YAML or TOML run configuration"),
    run_id: Optional[str] = typer.Option(None, help="name of the run folder (default: <name>-<time>-<hash>)"),
):
    """Run the curate flow (ingest, clean, augment, adapt, validate) and print where the outputs are."""
    from schemas.config import RunConfig

    try:
        run_config = RunConfig.load(config)
        from flows.curate import curate_flow

        summary = curate_flow(run_config, run_id)
    except _known_errors() as error:
        _fail(error, 1 if type(error).__name__ == "ContractViolation" else 2)
    print_summary(summary)


def print_summary(summary: dict) -> None:
    table = Table(title="pdap curate: rows through each stage")
    for column in ("stage", "rows in", "added", "rows out", "rejected", "by reason", "seconds"):
        table.add_column(column, overflow="fold")
    for row in summary["funnel"]:
        table.add_row(
            row["stage"], str(row["rows_in"]), str(row["added"]), str(row["rows_out"]), str(row["rejected"]),
            row["rejected_by_reason"], f"{row['seconds']:.1f}",
        )
    console.print(table)
    splits = ", ".join(f"{name}={count}" for name, count in sorted(summary["splits"].items()))
    console.print(f"curated rows by split: {splits}")
    console.print(f"run folder:  {summary['run_dir']}")
    console.print(f"curated:     {summary['output']}")
    console.print(f"rejects:     {Path(summary['run_dir']) / 'rejects'}")
    console.print(f"data docs:   {summary['data_docs']}")
    console.print(f"report:      {summary['report']}")


@app.command()
def experiment(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="run configuration (its experiment: section)"),
    data: Optional[Path] = typer.Option(None, help="instead of --config: a CSV, JSONL, Parquet file or saved HF dataset"),
    text_column: str = typer.Option("text", help="with --data: the text column"),
    label_column: str = typer.Option("label", help="with --data: the label column"),
    k: Optional[list[int]] = typer.Option(None, "--k", help="examples per class (repeatable); default 10 25 100"),
    seeds: Optional[int] = typer.Option(None, help="number of seeds (0..n-1); default 5"),
    trainer: Optional[str] = typer.Option(None, help="head | finetune | setfit"),
    embedding_mode: Optional[str] = typer.Option(None, help="truncate | chunk_mean"),
    references: Optional[str] = typer.Option(None, help="comma-separated reference arms: tuned_lr,tfidf_lr,name_prior (default), frozen_lr, setfit ('' for none)"),
    eval_split: Optional[str] = typer.Option(None, help="test (default: published figures) | dev (tuning work)"),
    ablations: Optional[bool] = typer.Option(None, "--ablations/--no-ablations", help="one arm per stage and op switched off (default: on)"),
    results_dir: Optional[Path] = typer.Option(None, help="where the results files go"),
    run_id: Optional[str] = typer.Option(None),
):
    """Few-shot experiment: raw vs curated data, ablations and reference arms, several seeds, CIs."""
    from schemas.config import ConfigError, RunConfig

    overrides: dict = {"experiment": {}}
    if k:
        overrides["experiment"]["ks"] = list(k)
    if seeds is not None:
        overrides["experiment"]["seeds"] = list(range(seeds))
    if trainer:
        overrides["experiment"]["trainer"] = trainer
    if embedding_mode:
        overrides["experiment"]["embedding_mode"] = embedding_mode
    if references is not None:
        overrides["experiment"]["reference_arms"] = [name for name in references.split(",") if name]
    if results_dir:
        overrides["experiment"]["results_dir"] = str(results_dir.resolve())
    if eval_split:
        overrides["experiment"]["eval_split"] = eval_split
    if ablations is not None:
        overrides["experiment"]["ablations"] = ablations
    try:
        if (config is None) == (data is None):
            raise ConfigError("give either --config or --data")
        if config is not None:
            run_config = RunConfig.load(config, overrides)
        else:
            run_config = RunConfig.from_data_file(data, text_column, label_column, overrides)
        from flows.experiment import experiment_flow

        summary = experiment_flow(run_config, run_id)
    except (*_known_errors(), _sampling_error()) as error:
        _fail(error, 1 if type(error).__name__ == "ContractViolation" else 2)
    print_experiment(summary)


def _sampling_error():
    from experiments.sampling import SamplingError

    return SamplingError


def print_experiment(summary: dict) -> None:
    table = Table(title="pdap experiment: paired macro-F1 uplift (points) over raw k-shot data and over the best reference")
    for column in ("split", "arm", "against", "k", "seeds", "uplift", "95% CI"):
        table.add_column(column)
    for row in summary["uplifts"]:
        ci = "n/a" if row["n"] < 2 else f"[{row['ci_low'] * 100:+.2f}, {row['ci_high'] * 100:+.2f}]"
        table.add_row(row["eval_split"], row["arm"], row["against"], str(row["k"]), str(row["n"]), f"{row['mean'] * 100:+.2f}", ci)
    console.print(table)
    arms = Table(title="macro-F1 by arm (mean ± std over seeds)")
    for column in ("trainer", "arm", "k", "macro-F1"):
        arms.add_column(column)
    for row in summary["arms"]:
        spread = "" if row["n"] < 2 else f" ± {row['std']:.3f}"
        arms.add_row(row["trainer"], row["arm"], str(row["k"]), f"{row['mean']:.3f}{spread}")
    console.print(arms)
    for name in ("records", "markdown", "plot"):
        console.print(f"{name + ':':10} {summary[name]}")
    console.print(f"{'run:':10} {summary['run_dir']}")


@app.command()
def robustness(
    config: Path = typer.Option(..., "--config", "-c", help="run configuration (its experiment.robustness section)"),
    k: Optional[list[int]] = typer.Option(None, "--k", help="examples per class (repeatable); default 10"),
    seeds: Optional[int] = typer.Option(None, help="number of seeds (0..n-1); default 3"),
    sample: Optional[int] = typer.Option(None, help="eval rows attacked per cell; default 50"),
    recipe: Optional[str] = typer.Option(None, help="deepwordbug | pruthi"),
    run_id: Optional[str] = typer.Option(None),
):
    """Attack the raw and the curated model with a TextAttack recipe; write robustness_<dataset>.jsonl."""
    from schemas.config import ConfigError, RunConfig

    section = {key: value for key, value in {"ks": list(k) if k else None, "seeds": list(range(seeds)) if seeds is not None else None,
                                             "sample": sample, "recipe": recipe}.items() if value is not None}
    try:
        run_config = RunConfig.load(config, {"experiment": {"robustness": section}})
        from flows.robustness import robustness_flow

        summary = robustness_flow(run_config, run_id)
    except (*_known_errors(), ConfigError, _sampling_error()) as error:
        _fail(error, 1 if type(error).__name__ == "ContractViolation" else 2)
    console.print(summary["table"], markup=False)
    console.print(f"records: {summary['records']}")
    console.print(f"run:     {summary['run_dir']}")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="a run folder written by `pdap curate`"),
    out: Path = typer.Argument(..., help="where to save the Hugging Face dataset (save_to_disk)"),
):
    """Export the curated labeled rows of a run as a Hugging Face dataset with a ClassLabel feature."""
    import json

    import pyarrow.parquet as pq

    from flows.run_folder import RunFolder
    from stages.export import to_hf_dataset

    folder = RunFolder(run_dir)
    path = folder.boundary_path("validate")  # the last stage's output: a finished run has it
    if not path.exists():
        _fail(FileNotFoundError(f"{path} not found: is {run_dir} a finished curate run?"))
    labels = json.loads((folder.root / "labels.json").read_text())
    dataset = to_hf_dataset(pq.read_table(path), labels)
    dataset.save_to_disk(str(out))
    console.print(f"saved {len(dataset)} rows with labels {labels} to {out}")


@app.command()
def refresh(config: Path = typer.Option(..., "--config", "-c", help="run configuration with a refresh: section")):
    """Process only new or changed files of refresh.input_dir, merge, and curate (a Prefect flow)."""
    from schemas.config import ConfigError, RunConfig

    try:
        run_config = RunConfig.load(config)
        if run_config.refresh is None:
            raise ConfigError(f"{config}: no refresh: section (refresh.input_dir names the folder to watch)")
        from flows.refresh import pending_changes, refresh_flow

        manifest, changed, removed = pending_changes(run_config)
        if not changed and not removed:  # answer at once, without starting Prefect
            console.print(f"nothing new in {run_config.refresh.input_dir} ({len(manifest)} files)")
            return
        summary = refresh_flow(run_config)
    except (*_known_errors(), FileNotFoundError) as error:
        _fail(error, 1 if type(error).__name__ == "ContractViolation" else 2)
    if summary["status"] == "busy":
        _fail(RuntimeError(summary["message"]), 3)
    if summary["status"] == "unchanged":
        console.print(f"nothing new in {run_config.refresh.input_dir} ({summary['files']} files); generation {summary['generation']} stays, {summary['seconds']:.1f} s")
        return
    console.print(f"generation {summary['generation']}: new or changed {', '.join(summary['new_or_changed']) or '-'}; "
                  f"removed {', '.join(summary['removed']) or '-'}; clean rows {summary['clean_rows']}, rejected {summary['rejected_rows']}")
    console.print(f"state: {summary['state_dir']}")


@app.command()
def serve(config: Path = typer.Option(..., "--config", "-c", help="run configuration with a schedule: section")):
    """Serve the scheduled flows as Prefect deployments (starts a local Prefect server if PREFECT_API_URL is unset)."""
    from flows.serve import serve_scheduled
    from schemas.config import ConfigError, RunConfig

    try:
        run_config = RunConfig.load(config)
        if run_config.schedule is None:
            raise ConfigError(f"{config}: no schedule: section (interval_seconds or cron, and flows)")
        raise typer.Exit(serve_scheduled(config.resolve(), run_config, console.print))
    except (*_known_errors(), TimeoutError) as error:
        _fail(error)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a run folder written by `pdap curate` or `pdap experiment`")):
    """(Re)write the run folder's self-contained data-quality report, report.html."""
    from flows.quality_report import write_report

    if not (run_dir / "stats").is_dir():
        _fail(FileNotFoundError(f"{run_dir} is not a pdap run folder (no stats/ in it)"))
    console.print(f"report: {write_report(run_dir)}")


@app.command()
def resources():
    """Install the offline linguistic resources (WordNet, stopwords) into the project's NLTK folder."""
    from model_hooks.resources import main

    raise typer.Exit(main(["resources", "install"]))


if __name__ == "__main__":
    sys.exit(app())
