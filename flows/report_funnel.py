"""The funnel of a run folder: rows in, added, out and rejected by reason, per stage, from its stats.

Shared by the curate flow (its summary, progress lines and Prefect artifact) and the report, so
neither imports the other.
"""

from __future__ import annotations

from flows.run_folder import RunFolder

STAGES = ("ingest", "clean", "augment", "adapt", "validate")


def funnel_row(stage: str, stats: dict) -> dict:
    """Rows in, added (new rows), out and rejected by reason, and wall seconds, of one stage's stats.

    rows_in + added == rows_out + rejected: pseudo-labeled rows were already in (unlabeled rows that
    got a label), so they count as `relabeled`, not as added. Seconds are the stage's whole wall time
    as the curate flow measured it (`wall_seconds`); a run without it (an experiment's ingest) shows
    the stage's own.
    """
    reasons = {key.removeprefix("dropped_"): value for key, value in stats.items() if key.startswith("dropped_") and value}
    return {
        "stage": stage,
        "rows_in": stats["rows_in"],
        "added": stats.get("generated", 0),
        "relabeled": stats.get("pseudo_labeled", 0),
        "rows_out": stats["rows_out"],
        "rejected": sum(reasons.values()),
        "rejected_by_reason": ", ".join(f"{reason}={count}" for reason, count in sorted(reasons.items())) or "-",
        "seconds": stats.get("wall_seconds", stats["seconds"]),
    }


def funnel(folder: RunFolder) -> list[dict]:
    """`funnel_row` for every stage that ran."""
    return [funnel_row(stage, folder.read_stats(stage)) for stage in STAGES if folder.stats_path(stage).exists()]
