"""One suite per stage boundary, built from the named rules in rules.py."""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from great_expectations.expectations.row_conditions import Column

from data_contracts import rules
from schemas.rows import ORIGINS, ROW_COLUMNS, SPLITS, Split
from stages.cleaning import CleaningConfig, repaired_keys
from stages.near_duplicates import duplicate_groups

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


def clean_suite(labels, cleaning: CleaningConfig, rows_in: int, rows_rejected: int) -> list:
    return [
        *row_rules(labels, DERIVED_CLEAN_COLUMNS),
        rules.TextLengthWithinBounds(column="text", min_value=1, max_value=cleaning.max_chars, row_condition=NOT_EVAL),
        rules.NoRowDuplicatesAnEvalRow(column="duplicates_eval_row", value_set=[False], row_condition=NOT_EVAL),
        rules.EvalRowsAreUnchanged(column="eval_row_unchanged", value_set=[True], row_condition=Column("split") == Split.EVAL.value),
        accounting_rule(rows_in, rows_rejected),
    ]


def with_clean_checks(clean: pa.Table, raw: pa.Table, cleaning: CleaningConfig) -> pa.Table:
    """Add the columns the clean suite checks, computed independently of the cleaning stage's decisions.

    `duplicates_eval_row`: the row's repaired text is an exact or near duplicate of a raw eval row.
    `eval_row_unchanged`: an eval row's (id, text) pair is the one it had at ingest.
    """
    raw_eval = raw.filter(pc.equal(raw.column("split"), Split.EVAL.value))
    is_eval = np.asarray(clean.column("split").to_pylist(), dtype=object) == Split.EVAL.value
    texts = pl.concat([pl.Series(clean.column("text").combine_chunks()), pl.Series(raw_eval.column("text").combine_chunks())])
    keys = repaired_keys(texts.cast(pl.String), cleaning)
    _, groups = duplicate_groups(keys, cleaning.minhash if cleaning.near_duplicates else None)
    eval_groups = set(groups[clean.num_rows :].tolist())
    duplicates_eval = np.isin(groups[: clean.num_rows], list(eval_groups)) & ~is_eval
    raw_pairs = set(zip(raw_eval.column("id").to_pylist(), raw_eval.column("text").to_pylist()))
    unchanged = [pair in raw_pairs for pair in zip(clean.column("id").to_pylist(), clean.column("text").to_pylist())]
    return clean.append_column("duplicates_eval_row", pa.array(duplicates_eval)).append_column(
        "eval_row_unchanged", pa.array(unchanged)
    )
