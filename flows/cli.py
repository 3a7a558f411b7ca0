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

    return ConfigError, InputError, ResourceMissing, ContractViolation


@app.command()
def curate(
    config: Path = typer.Option(..., "--config", "-c", help="YAML or TOML run configuration"),
    run_id: Optional[str] = typer.Option(None, help="name of the run folder (default: <name>-<time>-<hash>)"),
):
    """Run the curate flow (ingest, clean) and print where the outputs are."""
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
    for column in ("stage", "rows in", "rows out", "rejected", "by reason", "seconds"):
        table.add_column(column, overflow="fold")
    for row in summary["funnel"]:
        table.add_row(
            row["stage"], str(row["rows_in"]), str(row["rows_out"]), str(row["rejected"]), row["rejected_by_reason"], f"{row['seconds']:.1f}"
        )
    console.print(table)
    splits = ", ".join(f"{name}={count}" for name, count in sorted(summary["splits"].items()))
    console.print(f"curated rows by split: {splits}")
    console.print(f"run folder:  {summary['run_dir']}")
    console.print(f"curated:     {summary['output']}")
    console.print(f"rejects:     {Path(summary['run_dir']) / 'rejects'}")
    console.print(f"data docs:   {summary['data_docs']}")


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
    path = folder.boundary_path("clean")
    if not path.exists():
        _fail(FileNotFoundError(f"{path} not found: is {run_dir} a finished curate run?"))
    labels = json.loads((folder.root / "labels.json").read_text())
    dataset = to_hf_dataset(pq.read_table(path), labels)
    dataset.save_to_disk(str(out))
    console.print(f"saved {len(dataset)} rows with labels {labels} to {out}")


@app.command()
def resources():
    """Install the offline linguistic resources (WordNet, stopwords) into the project's NLTK folder."""
    from model_hooks.resources import main

    raise typer.Exit(main(["resources", "install"]))


if __name__ == "__main__":
    sys.exit(app())
