"""Stage 4, adversarial validation: the last gate before training.

The registered checks of stages/validation_checks.py run on the labeled, non-eval rows (originals
and synthetic rows). Synthetic rows a check flags are rejected with the check's reason
(`looks_synthetic`, `label_flip`, `outlier`); originals are never rejected for looking real.
cleanlab's label issues in the originals are flagged and listed, and dropped (with their
augmented children, `parent_label_issue`) only when `drop_label_issues` is set.
The discriminator's score becomes `synthetic_p`, the label model's P(label) `label_agreement`;
every enabled check's per-row score is returned as the `check_scores` table.
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa

from model_hooks.discriminator import family_folds, words
from schemas.rows import Origin, Split, column_values, conform_rows
from stages.augmenters import op_purpose
from stages.base import ReasonLedger, StageResult
from stages.domain_adaptation import in_domain_texts
from stages.validation_checks import CheckFailed, CheckInputs, ValidationConfig, run_check

STAGE = "validate"
REASONS = ["looks_synthetic", "label_flip", "outlier", "label_issue", "parent_label_issue"]


def check_inputs(rows: pa.Table, config: ValidationConfig, seed: int) -> tuple[np.ndarray, CheckInputs]:
    """Row positions of the checked rows (labeled, non-eval) and what the checks need about them."""
    from model_hooks.embedder import get_embedder

    split, origin = column_values(rows, "split"), column_values(rows, "origin")
    checked = np.flatnonzero(split == Split.LABELED.value)
    ids, texts, labels = (column_values(rows, name)[checked] for name in ("id", "text", "label"))
    parents = column_values(rows, "parent_id")[checked]
    is_synthetic = origin[checked] != Origin.ORIGINAL.value
    families = [parent if origin_ == Origin.AUGMENTED.value and parent else row_id for row_id, parent, origin_ in zip(ids, parents, origin[checked])]
    original_families = {family for family, synthetic in zip(families, is_synthetic) if not synthetic}
    if len(checked) and len(original_families) < 2:
        raise CheckFailed("adversarial validation needs at least two labeled original rows; set validation.enabled: false")
    vocabulary = frozenset(word for text in in_domain_texts(rows) for word in words(text))
    inputs = CheckInputs(
        ids=ids.tolist(), texts=texts.tolist(), labels=labels.tolist(), is_synthetic=is_synthetic.astype(bool), origins=origin[checked].tolist(),
        vectors=get_embedder(config.embedding_mode).embed(texts.tolist()),
        # original families are dealt first, by label, so each fold's complement keeps every class
        # it can; never more folds than original families
        folds=family_folds(families, min(config.folds, len(original_families)),
                           strata=[f"{int(family not in original_families)}:{label}" for family, label in zip(families, labels)]),
        classes=sorted(set(labels.tolist())), vocabulary=vocabulary,
        seed=seed, settings=config, purposes=[op_purpose(op) for op in column_values(rows, "op")[checked]],
    )
    return checked, inputs


def validate(rows: pa.Table, config: ValidationConfig, seed: int) -> StageResult:
    """Run the enabled checks; reject flagged synthetic rows; score every checked row."""
    started = time.perf_counter()
    rows = conform_rows(rows)
    ledger = ReasonLedger(rows.num_rows, REASONS)
    stats: dict = {"rows_in": rows.num_rows}
    scores = pa.table({"id": rows.column("id")})
    if not config.enabled:
        return StageResult(rows, ledger.rejects_table(rows, STAGE), {**stats, "rows_out": rows.num_rows, **ledger.counts(), "checks": {}, "seconds": 0.0}, {"check_scores": scores})

    checked, inputs = check_inputs(rows, config, seed)
    results = {name: run_check(name, inputs) for name in config.checks} if len(checked) else {}
    for name, result in results.items():
        if result.reason == "label_issue":
            if config.drop_label_issues:
                _drop_label_issues(rows, checked, result.flags, ledger)
            continue
        flagged = np.flatnonzero(result.flags)
        ledger.reject(checked[flagged], result.reason, [f"{name} score {result.scores[i]:.3f}" for i in flagged])
    for name in config.checks:
        column = np.full(rows.num_rows, np.nan)
        if name in results:
            column[checked] = results[name].scores
        scores = scores.append_column(f"score_{name}", pa.array(column, pa.float64(), from_pandas=True))
    rows = _set_score(rows, "synthetic_p", checked, results.get("discriminator"))
    rows = _set_score(rows, "label_agreement", checked, results.get("label_consistency"))

    kept = rows.filter(pa.array(ledger.kept_mask))
    stats.update({
        "rows_out": kept.num_rows,
        **ledger.counts(),
        "rejected_by_op": _rejected_by_op(rows, ledger),
        "checks": {name: {"summary": round(float(result.summary), 4), "info": result.info} for name, result in results.items()},
        "seconds": round(time.perf_counter() - started, 3),
    })
    kept_scores = scores.filter(pa.array(ledger.kept_mask))
    return StageResult(kept, ledger.rejects_table(rows, STAGE), stats, {"check_scores": kept_scores})


def _rejected_by_op(rows: pa.Table, ledger: ReasonLedger) -> dict[str, dict]:
    """Per augmentation op: its purpose and its rejected rows per reason (the report's per-purpose lines)."""
    found: dict[str, dict] = {}
    ops = column_values(rows, "op")
    for row in np.flatnonzero(~ledger.kept_mask):
        op = ops[row]
        if op_purpose(op) is None:
            continue
        entry = found.setdefault(op, {"purpose": op_purpose(op), "rejected": {}})
        reason = REASONS[ledger.codes[row] - 1]
        entry["rejected"][reason] = entry["rejected"].get(reason, 0) + 1
    return dict(sorted(found.items()))


def _drop_label_issues(rows: pa.Table, checked: np.ndarray, flags: np.ndarray, ledger: ReasonLedger) -> None:
    flagged = checked[np.flatnonzero(flags)]
    ledger.reject(flagged, "label_issue")
    flagged_ids = set(column_values(rows, "id")[flagged].tolist())
    children = np.flatnonzero([parent in flagged_ids for parent in column_values(rows, "parent_id")])
    ledger.reject(children, "parent_label_issue")


def _set_score(rows: pa.Table, name: str, checked: np.ndarray, result) -> pa.Table:
    if result is None:
        return rows
    values = np.asarray(rows.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)
    values[checked] = result.scores
    return rows.set_column(rows.schema.get_field_index(name), rows.schema.field(name), pa.array(values, pa.float64(), from_pandas=True))
