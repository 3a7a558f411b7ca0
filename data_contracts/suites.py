"""One suite per stage boundary, built from the named rules in rules.py."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.expectations.row_conditions import Column

from data_contracts import rules
from schemas.minhash import eval_duplicate_of, signed_keys
from schemas.rows import ORIGINS, ROW_COLUMNS, SPLITS, Origin, Split
from schemas.text_keys import KeySettings, duplicate_keys, key_hashes, repaired_keys
from schemas.words import keeps_protected_terms


class CleaningSettings(KeySettings, Protocol):
    """What the contracts read of the cleaning settings (stages.cleaning.CleaningConfig)."""

    max_chars: int


NOT_EVAL = Column("split") != Split.EVAL.value
DERIVED_CLEAN_COLUMNS = ["duplicates_eval_row", "eval_row_unchanged"]


def row_rules(labels: list[str] | None, extra_columns: list[str] = ()) -> list:
    """Rules every boundary's rows obey."""
    found = [
        rules.RowsHaveTheRowSchema(column_list=[*ROW_COLUMNS, *extra_columns]),
        rules.IdIsPresent(column="id"),
        rules.IdsAreUnique(column="id"),
        rules.TextIsPresent(column="text"),
        rules.TextIsNotBlank(column="text", min_value=1),
        rules.SplitIsKnown(column="split", value_set=list(SPLITS)),
        rules.OriginIsKnown(column="origin", value_set=list(ORIGINS)),
        rules.LabeledRowsHaveALabel(column="label", row_condition=Column("split") != Split.UNLABELED.value),
    ]
    if labels is not None:
        found.append(rules.LabelIsInLabelSet(column="label", value_set=sorted(labels)))
    return found


def accounting_rule(rows_in: int, rows_rejected: int):
    return rules.RowsAreAccountedFor(value=rows_in - rows_rejected)


def rejects_rules(eval_may_be_rejected: bool) -> list:
    found = [rules.RejectsHaveAReason(column="reason")]
    if not eval_may_be_rejected:
        found.append(rules.NoEvalRowIsRejected(column="split", value_set=[Split.EVAL.value]))
    return found


def raw_suite(labels, rows_in: int, rows_rejected: int) -> list:
    return [*row_rules(labels), accounting_rule(rows_in, rows_rejected)]


def clean_suite(labels, cleaning: CleaningSettings, rows_in: int, rows_rejected: int) -> list:
    return [
        *row_rules(labels, DERIVED_CLEAN_COLUMNS),
        rules.TextLengthWithinBounds(column="text", min_value=1, max_value=cleaning.max_chars, row_condition=NOT_EVAL),
        rules.NoRowDuplicatesAnEvalRow(column="duplicates_eval_row", value_set=[False], row_condition=NOT_EVAL),
        rules.EvalRowsAreUnchanged(column="eval_row_unchanged", value_set=[True], row_condition=Column("split") == Split.EVAL.value),
        accounting_rule(rows_in, rows_rejected),
    ]


def eval_unchanged_column(rows: pa.Table, raw: pa.Table) -> pa.Array:
    """True where a row's (id, text) pair is that of a raw eval row."""
    raw_eval = raw.filter(pc.equal(raw.column("split"), Split.EVAL.value))
    raw_pairs = set(zip(raw_eval.column("id").to_pylist(), raw_eval.column("text").to_pylist()))
    return pa.array([pair in raw_pairs for pair in zip(rows.column("id").to_pylist(), rows.column("text").to_pylist())])


def duplicates_eval_column(rows: pa.Table, raw: pa.Table, cleaning: KeySettings) -> pa.Array:
    """True where a non-eval row's text is an exact or near duplicate of a raw eval row's text, repaired.

    Keys as the cleaning stage makes them: rows past cleaning carry repaired text, keyed as it is
    (repairing it again would strip a PII placeholder such as <EMAIL> as markup); raw eval texts
    are repaired first, as the stage repairs them in its shadow copy.
    """
    raw_eval = raw.filter(pc.equal(raw.column("split"), Split.EVAL.value))
    is_eval = np.asarray(rows.column("split").to_pylist(), dtype=object) == Split.EVAL.value
    others = pl.Series(rows.column("text").combine_chunks()).cast(pl.String).filter(pl.Series(~is_eval))
    keys = pl.concat([duplicate_keys(others), repaired_keys(pl.Series(raw_eval.column("text").combine_chunks()).cast(pl.String), cleaning)])
    params = cleaning.minhash if cleaning.near_duplicates else None
    side = np.r_[np.zeros(len(others), dtype=bool), np.ones(raw_eval.num_rows, dtype=bool)]
    found = eval_duplicate_of(key_hashes(keys), side, params, signed_keys(keys, params) if params else None)
    duplicates = np.zeros(rows.num_rows, dtype=bool)
    duplicates[~is_eval] = found[: len(others)] >= 0
    return pa.array(duplicates)


def with_clean_checks(clean: pa.Table, raw: pa.Table, cleaning: KeySettings) -> pa.Table:
    """Add the columns the clean suite checks, computed independently of the cleaning stage's decisions."""
    return clean.append_column("duplicates_eval_row", duplicates_eval_column(clean, raw, cleaning)).append_column(
        "eval_row_unchanged", eval_unchanged_column(clean, raw)
    )


def with_synthetic_checks(rows: pa.Table, raw: pa.Table, protected_terms: frozenset[str], cleaning: KeySettings) -> pa.Table:
    """Add the columns the augmented and adapted suites check about synthetic rows."""
    originals = {
        row["id"]: row
        for row in rows.select(["id", "text", "label", "split", "origin"]).to_pylist()
        if row["origin"] == Origin.ORIGINAL.value and row["split"] == Split.LABELED.value
    }
    has_parent, same_label, kept_terms = [], [], []
    for row in rows.select(["text", "label", "origin", "parent_id", "op"]).to_pylist():
        parent = originals.get(row["parent_id"]) if row["origin"] == Origin.AUGMENTED.value else None
        has_parent.append(parent is not None)
        same_label.append(parent is not None and parent["label"] == row["label"])
        kept_terms.append(parent is not None and keeps_protected_terms(parent["text"], row["text"], protected_terms, row["op"]))
    return (
        rows.append_column("parent_is_labeled_original", pa.array(has_parent))
        .append_column("label_matches_parent", pa.array(same_label))
        .append_column("keeps_parent_protected_terms", pa.array(kept_terms))
        .append_column("eval_row_unchanged", eval_unchanged_column(rows, raw))
        .append_column("duplicates_eval_row", duplicates_eval_column(rows, raw, cleaning))
    )


DERIVED_SYNTHETIC_COLUMNS = [
    "parent_is_labeled_original", "label_matches_parent", "keeps_parent_protected_terms", "eval_row_unchanged", "duplicates_eval_row",
]
AUGMENTED = Column("origin") == Origin.AUGMENTED.value


def synthetic_suite(labels, known_ops: list[str], rows_expected: int, scored: bool) -> list:
    """Rules of the augmented and adapted boundaries; `scored`: non-eval rows must carry a domain score
    (after an enabled domain stage)."""
    found = [
        *row_rules(labels, DERIVED_SYNTHETIC_COLUMNS),
        rules.OpIsKnown(column="op", value_set=sorted(known_ops), row_condition=Column("origin") != Origin.ORIGINAL.value),
        rules.AugmentedRowsHaveALabeledParent(column="parent_is_labeled_original", value_set=[True], row_condition=AUGMENTED),
        rules.AugmentedRowsKeepTheirParentsLabel(column="label_matches_parent", value_set=[True], row_condition=AUGMENTED),
        rules.AugmentedRowsKeepProtectedTerms(column="keeps_parent_protected_terms", value_set=[True], row_condition=AUGMENTED),
        rules.AugmentedRowsHaveASimilarity(column="similarity", row_condition=AUGMENTED),
        rules.EvalRowsAreUnchanged(column="eval_row_unchanged", value_set=[True], row_condition=Column("split") == Split.EVAL.value),
        rules.NoRowDuplicatesAnEvalRow(column="duplicates_eval_row", value_set=[False], row_condition=NOT_EVAL),
        rules.RowsAreAccountedFor(value=rows_expected),
    ]
    if scored:
        found.append(rules.SyntheticRowsHaveADomainScore(column="domain_score", row_condition=NOT_EVAL))
    return found


SYNTHETIC = Column("origin") != Origin.ORIGINAL.value


def with_check_scores(rows: pa.Table, scores: pa.Table) -> pa.Table:
    """Add the validate stage's per-check score columns (joined by id) for the validated suite."""
    by_id = {name: dict(zip(scores.column("id").to_pylist(), scores.column(name).to_pylist())) for name in scores.column_names if name != "id"}
    ids = rows.column("id").to_pylist()
    for name, values in by_id.items():
        column = [values.get(row_id) for row_id in ids]
        rows = rows.append_column(name, pa.array([None if v is None or v != v else v for v in column], pa.float64()))
    return rows


def validated_suite(labels, known_ops: list[str], rows_expected: int, score_columns: list[str], scored: bool = True) -> list:
    """Rules of the validated boundary: the adapted rules plus a score from every enabled check."""
    found = [rule for rule in synthetic_suite(labels, known_ops, rows_expected, scored) if not isinstance(rule, rules.RowsHaveTheRowSchema)]
    found.insert(0, rules.RowsHaveTheRowSchema(column_list=[*ROW_COLUMNS, *DERIVED_SYNTHETIC_COLUMNS, *score_columns]))
    found += [rules.SyntheticRowsHaveEveryCheckScore(column=name, row_condition=SYNTHETIC & (Column("split") == Split.LABELED.value)) for name in score_columns]
    return found
