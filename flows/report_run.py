"""What the report says about a run as a whole: did it finish, and its metadata.

Read from the run folder only: `config.json` (written as the run starts), `status.json`, the
stats, the contract results and, once the run finished, `summary.json`. A run finished when its
last stage wrote its stats (curate: `validate`) or its experiment wrote `experiment_summary.json`;
it failed when any contract failed, when it stopped before that, or when status.json says so.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

from flows.report_funnel import STAGES
from flows.run_folder import BOUNDARY_FILES, RunFolder


# shown beside the backend until summary.json records the run's own (the report is written just before it)
BACKEND_NOTE = "(PDAP_EMBEDDING_BACKEND of the process writing this report)"


@dataclass(frozen=True)
class RunStatus:
    """`problem` is None for a run that finished; `last_stage` is the last stage that wrote its rows."""

    problem: str | None
    last_stage: str | None

    @property
    def failed(self) -> bool:
        return self.problem is not None


def failed_contracts(folder: RunFolder) -> list[str]:
    """'boundary: Rule, Rule' for every contract report with a failing rule."""
    found = []
    for path in sorted((folder.root / "contracts").glob("*.json")):
        for report in json.loads(path.read_text(encoding="utf-8")):
            failed = [rule["rule"] for rule in report["rules"] if not rule["success"]]
            if failed:
                found.append(f"{report['boundary']}: {', '.join(failed)}")
    return found


def run_status(folder: RunFolder) -> RunStatus:
    """Whether the run in `folder` finished, and if not, what went wrong as far as the folder tells.

    status.json (`state: failed`, `reason`, `detail`) marks a run that stopped on an error or was
    interrupted; the stats, boundaries and contract results say how far it got.
    """
    ran = [stage for stage in STAGES if folder.stats_path(stage).exists()]
    last = next((stage for stage in reversed(ran) if folder.boundary_path(stage).exists()), None)
    state = _read_json(folder.root / "status.json")
    contracts = failed_contracts(folder)
    if contracts:
        problem = f"data contract failed at {'; '.join(contracts)}"
    elif len(ran) == len(STAGES) or (folder.root / "experiment_summary.json").exists():
        if state.get("state") != "failed":
            return RunStatus(None, last)
        problem = f"{state.get('reason', 'error')}: {state.get('detail', 'no detail')}"
    elif not ran:
        problem = "the run stopped before ingest wrote any rows"
    elif (folder.root / "cells").is_dir():
        problem = "the experiment stopped before its results (experiment_summary.json)"
    else:
        problem = f"the run stopped after {ran[-1]}: {', '.join(stage for stage in STAGES if stage not in ran)} did not finish"
    if state.get("reason") == "interrupted":
        problem = f"interrupted ({state.get('detail', 'no detail')}); {problem}"
    return RunStatus(problem, last)


def final_name(stage: str) -> str:
    """How the report names the rows of the last boundary written: curated output, or how far a run got."""
    return "curated" if stage == STAGES[-1] else f"{BOUNDARY_FILES[stage]} (last written)"


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def run_metadata(folder: RunFolder) -> list[tuple[str, str]]:
    """(field, value) pairs: start time, inputs, runner, embedding backend, code commit."""
    from experiments.provenance import git_commit, git_dirty
    from model_hooks.embedder import DEFAULT_BACKEND

    config_path = folder.root / "config.json"
    config = _read_json(config_path)
    fields = [("run", folder.root.name)]
    if config_path.exists():
        started = dt.datetime.fromtimestamp(config_path.stat().st_mtime, dt.timezone.utc)
        fields.append(("started", f"{started:%Y-%m-%d %H:%M:%S} UTC"))
    sources = config.get("ingest", {}).get("sources", [])
    inputs = [source["path"] + "".join(f" ({key}: {source[key]})" for key in ("format", "split") if source.get(key) not in (None, "auto"))
              for source in sources]
    if (config.get("refresh") or {}).get("input_dir"):
        inputs.append(f"refresh input folder {config['refresh']['input_dir']}")
    fields.append(("inputs", "; ".join(inputs) or "not recorded"))
    fields.append(("runner", (config.get("execution") or {}).get("runner", "not recorded")))
    recorded = _read_json(folder.root / "summary.json").get("embedding_backend")
    fields.append(("embedding backend", recorded or f"{DEFAULT_BACKEND} {BACKEND_NOTE}"))
    status = _read_json(folder.root / "status.json")
    if "git_commit" in status:  # recorded as the run started
        commit, dirty, when = status["git_commit"], status["git_dirty"], "as the run started"
    else:
        commit, dirty, when = git_commit(), git_dirty(), "when this report was written"
    fields.append(("code commit", f"{commit or 'unknown'}{' with uncommitted changes' if dirty else ''} ({when})"))
    return fields
