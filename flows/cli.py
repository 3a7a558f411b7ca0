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

from flows.cli_errors import ErrorReportingGroup, Unavailable  # noqa: E402

app = typer.Typer(
    cls=ErrorReportingGroup, no_args_is_help=True,
    help="pdap: curate, augment and measure few-shot text classification data, offline. "
    "Exit codes: 0 ok, 1 data contract failed, 2 bad input or config, 3 locked; anything else is a bug (docs/cli.md).",
)
console = Console()
RUN_ID_HELP = "name of the run folder under runs_dir (default: <name>-<time>-<hash>)"
ENCODER_HELP = ("sentence encoder: minilm (default), mpnet (make encoder-mpnet) or a sentence-transformers folder; "
                "repeat it to let each run or cell choose one on its labeled rows")


def encoder_overrides(encoders: list[str] | None) -> dict:
    """The `embedding:` override of `--encoder` (folders made absolute against the working directory)."""
    if not encoders:
        return {}
    from model_hooks.encoders import encoder_spec

    models = [encoder_spec(name) for name in encoders]
    return {"embedding": {"model": models[0] if len(models) == 1 else models}}


def _version() -> str:
    """The installed package's version, or pyproject.toml's in a checkout that is not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pdap")
    except PackageNotFoundError:
        import tomllib

        return tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def _print_version(asked: bool) -> None:
    if asked:
        print(f"pdap {_version()}")
        raise typer.Exit()


@app.callback()
def global_options(
    debug: bool = typer.Option(False, "--debug", help="on an error, print the traceback as well as the one-line message"),
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="print the version and exit"),
):
    """The options before the command; ErrorReportingGroup reads --debug itself (flows/cli_errors.py)."""


def before_flow(run_config, run_id: str | None) -> None:
    """Just before a flow starts: refuse a --run-id in use (before the server starts), let SIGTERM run the exit
    handlers that stop the temporary server, and keep Prefect's tracebacks for --debug."""
    from flows.cli_errors import quiet_prefect_tracebacks
    from flows.run_folder import check_run_id
    from flows.servers import exit_on_sigterm

    if run_id is not None:
        check_run_id(Path(run_config.runs_dir), run_id)
    exit_on_sigterm()
    quiet_prefect_tracebacks()


@app.command()
def curate(
    config: Path = typer.Option(..., "--config", "-c", help="YAML or TOML run configuration"),
    encoder: Optional[list[str]] = typer.Option(None, "--encoder", help=ENCODER_HELP),
    run_id: Optional[str] = typer.Option(None, help=RUN_ID_HELP),
):
    """Run the curate flow (ingest, clean, augment, adapt, validate) and print where the outputs are."""
    from experiments.sampling import SamplingError
    from flows.preflight import preflight
    from flows.config import ConfigError, RunConfig

    run_config = RunConfig.load(config, encoder_overrides(encoder))
    per_class = run_config.labeled_per_class
    preflight(run_config, {f"{config}: labeled_per_class": [per_class]} if per_class is not None else {})
    from flows.curate import curate_flow

    before_flow(run_config, run_id)

    try:
        summary = curate_flow(run_config, run_id)
    except SamplingError as error:  # cleaning left fewer rows of a class than labeled_per_class draws
        raise ConfigError(f"{config}: labeled_per_class: {error}") from None
    print_summary(summary)


def print_summary(summary: dict) -> None:
    """The curate summary on stdout: the funnel table (wall seconds per stage), splits and paths.

    On a terminal it fits the window; piped, lines are never wrapped (a file or grep gets whole rows).
    """
    out = console if console.is_terminal else Console(width=100_000, highlight=False)
    table = Table(title=f"pdap curate: rows through each stage (embedding backend {summary['embedding_backend']}, runner {summary['runner']})")
    for column in ("stage", "rows in", "added", "rows out", "rejected", "by reason", "seconds"):
        table.add_column(column, overflow="fold")
    for row in summary["funnel"]:
        table.add_row(
            row["stage"], str(row["rows_in"]), str(row["added"]), str(row["rows_out"]), str(row["rejected"]),
            row["rejected_by_reason"], f"{row['seconds']:.1f}",
        )
    out.print(table)
    for row in summary["funnel"]:
        if row["relabeled"]:
            out.print(f"{row['stage']}: {row['relabeled']} unlabeled rows pseudo-labeled (already in rows in, so not added)")
    splits = ", ".join(f"{name}={count}" for name, count in sorted(summary["splits"].items()))
    out.print(f"curated rows by split: {splits}")
    out.print(f"run folder:  {summary['run_dir']}")
    out.print(f"curated:     {summary['output']}")
    out.print(f"rejects:     {Path(summary['run_dir']) / 'rejects'}")
    out.print(f"data docs:   {summary['data_docs']}")
    out.print(f"report:      {summary['report']}")


TYPO_READER_HELP = ("auto (default: on with --goal robustness) | on | off: the curated models read each text through a typo reader "
                    "built from the run's own training texts")


@app.command()
def experiment(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="run configuration (its experiment: section)"),
    data: Optional[Path] = typer.Option(None, help="instead of --config: a CSV, JSONL, Parquet file or saved HF dataset"),
    text_column: str = typer.Option("text", help="with --data: the text column"),
    label_column: str = typer.Option("label", help="with --data: the label column"),
    k: Optional[list[int]] = typer.Option(None, "--k", min=1, help="examples per class (repeatable); default 10 25 100"),
    seeds: Optional[int] = typer.Option(None, min=1, help="number of seeds (0..n-1); default 5"),
    trainer: Optional[str] = typer.Option(None, help="head | finetune | setfit"),
    embedding_mode: Optional[str] = typer.Option(None, help="truncate | chunk_mean"),
    references: Optional[str] = typer.Option(None, help="comma-separated reference arms: tuned_lr,tfidf_lr,name_prior (default), frozen_lr, setfit ('' for none)"),
    eval_split: Optional[str] = typer.Option(None, help="test (default: published figures) | dev (tuning work)"),
    ablations: Optional[bool] = typer.Option(None, "--ablations/--no-ablations", help="one arm per stage and op switched off (default: on)"),
    goal: Optional[str] = typer.Option(None, help="accuracy (default) | robustness: what self-tuning keeps stages and ops for"),
    noise: Optional[list[str]] = typer.Option(None, "--noise", help="noisy copies of the eval rows to score too, e.g. char@0.10 (repeatable; 'none' for clean only)"),
    typo_reader: Optional[str] = typer.Option(None, help=TYPO_READER_HELP),
    encoder: Optional[list[str]] = typer.Option(None, "--encoder", help=ENCODER_HELP),
    results_dir: Optional[Path] = typer.Option(None, help="where the results files go"),
    run_id: Optional[str] = typer.Option(None, help=RUN_ID_HELP),
):
    """Few-shot experiment: raw vs curated data, ablations and reference arms, several seeds, CIs."""
    from flows.preflight import preflight
    from flows.config import ConfigError, RunConfig

    overrides: dict = {"experiment": {}, **encoder_overrides(encoder)}
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
    if goal:
        overrides["augmentation"] = {"goal": goal}
    if noise:
        overrides["experiment"]["noise"] = [name for name in noise if name != "none"]
    if typo_reader:
        overrides["experiment"]["typo_reader"] = typo_reader
    if (config is None) == (data is None):
        raise ConfigError("--config, --data: give exactly one of them")
    if config is not None:
        run_config = RunConfig.load(config, overrides)
    else:
        run_config = RunConfig.from_data_file(data, text_column, label_column, overrides)
    preflight(run_config, {"--k" if k else f"{config}: experiment.ks" if config else "experiment.ks (default; set with --k)":
                           run_config.experiment.ks})
    from flows.experiment import experiment_flow

    before_flow(run_config, run_id)

    print_experiment(experiment_flow(run_config, run_id))


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
    k: Optional[list[int]] = typer.Option(None, "--k", min=1, help="examples per class (repeatable); default 10"),
    seeds: Optional[int] = typer.Option(None, min=1, help="number of seeds (0..n-1); default 3"),
    sample: Optional[int] = typer.Option(None, min=1, help="test-half eval rows attacked per cell (the same for both models); default 100"),
    recipe: Optional[list[str]] = typer.Option(
        None, "--recipe", help="attack recipe, repeatable (--recipe deepwordbug --recipe pwws): deepwordbug | wordnet_swap | pwws | "
        "pruthi; default deepwordbug and wordnet_swap"),
    addback: Optional[bool] = typer.Option(None, "--addback/--no-addback", help="also attack curated+adversarial: the curated rows "
                                           "plus adversarial add-back (default: off)"),
    typo_reader: Optional[str] = typer.Option(None, help=TYPO_READER_HELP.replace("--goal robustness", "augmentation.goal robustness")),
    encoder: Optional[list[str]] = typer.Option(None, "--encoder", help=ENCODER_HELP),
    results_dir: Optional[Path] = typer.Option(None, help="where robustness_<dataset>.jsonl and .md go (default: experiment.results_dir)"),
    run_id: Optional[str] = typer.Option(None, help=RUN_ID_HELP),
):
    """Attack the raw and the curated model with offline TextAttack recipes; write robustness_<dataset>.jsonl."""
    from flows.preflight import preflight
    from flows.config import RunConfig

    section = {key: value for key, value in {"ks": list(k) if k else None, "seeds": list(range(seeds)) if seeds is not None else None,
                                             "sample": sample, "recipes": list(recipe) if recipe else None,
                                             "adversarial_addback": addback}.items() if value is not None}
    experiment_section = {"robustness": section, **({"typo_reader": typo_reader} if typo_reader else {}),
                          **({"results_dir": str(results_dir.resolve())} if results_dir else {})}
    run_config = RunConfig.load(config, {"experiment": experiment_section, **encoder_overrides(encoder)})
    preflight(run_config, {"--k" if k else f"{config}: experiment.robustness.ks": run_config.experiment.robustness.ks})
    from flows.robustness import robustness_flow

    before_flow(run_config, run_id)

    summary = robustness_flow(run_config, run_id)
    console.print(summary["table"], markup=False)
    console.print(f"records: {summary['records']}")
    console.print(f"run:     {summary['run_dir']}")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="a run folder written by `pdap curate`"),
    out: Path = typer.Argument(..., help="a new or empty folder outside any run folder, for the dataset (save_to_disk)"),
):
    """Export the curated labeled rows of a run as a Hugging Face dataset with a ClassLabel feature,
    with each row's split, origin, op and parent_id (group by parent_id, or id where it is empty, to split by family)."""
    import json

    import pyarrow.parquet as pq

    from flows.preflight import check_export_target
    from flows.run_folder import RunFolder
    from flows.config import ConfigError
    from stages.export import to_hf_dataset

    folder = RunFolder(run_dir)
    path = folder.boundary_path("validate")  # the last stage's output: a finished run has it
    if not path.exists() or not (folder.root / "labels.json").exists():
        raise ConfigError(f"{run_dir}: not a finished curate run (no {path.name} or labels.json in it)")
    check_export_target(out)
    labels = json.loads((folder.root / "labels.json").read_text())
    dataset = to_hf_dataset(pq.read_table(path), labels)
    dataset.save_to_disk(str(out))
    console.print(f"saved {len(dataset)} rows with labels {labels} to {out}")


@app.command()
def refresh(config: Path = typer.Option(..., "--config", "-c", help="run configuration with a refresh: section")):
    """Process only new or changed files of refresh.input_dir, merge, and curate (a Prefect flow)."""
    from flows.preflight import check_encoders, check_inputs
    from flows.config import ConfigError, RunConfig
    from stages.ingest import SourceConfig

    run_config = RunConfig.load(config)
    check_encoders(run_config)
    if run_config.refresh is None:
        raise ConfigError(f"{config}: no refresh: section (refresh.input_dir names the folder to watch)")
    if not run_config.refresh.input_dir.is_dir():
        raise ConfigError(f"{config}: refresh.input_dir: {run_config.refresh.input_dir} is not a folder")
    from flows.refresh import pending_changes, refresh_flow
    from flows.refresh_state import RefreshLocked

    manifest, changed, removed = pending_changes(run_config)
    if not changed and not removed:  # answer at once, without starting Prefect
        console.print(f"nothing new in {run_config.refresh.input_dir} ({len(manifest)} files)")
        return
    check_inputs([SourceConfig(path=path) for path in changed.values()], run_config.ingest.columns)
    from flows.servers import stop_orphaned_servers

    stop_orphaned_servers()  # what a killed earlier run left, before this one starts its own
    before_flow(run_config, None)
    summary = refresh_flow(run_config)
    if summary["status"] == "busy":
        raise RefreshLocked(summary["message"])
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
    from flows.config import ConfigError, RunConfig
    from flows.preflight import check_encoders

    run_config = RunConfig.load(config)
    check_encoders(run_config)
    if run_config.schedule is None:
        raise ConfigError(f"{config}: no schedule: section (interval_seconds or cron, and flows)")
    try:
        code = serve_scheduled(config.resolve(), run_config, console.print)
    except TimeoutError as error:  # the Prefect server did not start: the environment's problem, not a bug
        raise Unavailable(str(error)) from None
    raise typer.Exit(code)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a run folder written by `pdap curate` or `pdap experiment`")):
    """(Re)write the run folder's self-contained data-quality report, report.html."""
    from flows.quality_report import write_report
    from flows.config import ConfigError

    if not (run_dir / "stats").is_dir():
        raise ConfigError(f"{run_dir}: not a pdap run folder (no stats/ in it)")
    console.print(f"report: {write_report(run_dir)}")


@app.command()
def resources(encoder: Optional[str] = typer.Option(None, "--encoder", help="also install this optional encoder: mpnet")):
    """Install the offline resources (WordNet, stopwords, the ONNX exports; with --encoder, an optional encoder)."""
    from model_hooks.resources import main

    raise typer.Exit(main(["resources", "install", *(["--encoder", encoder] if encoder else [])]))


if __name__ == "__main__":
    sys.exit(app())
