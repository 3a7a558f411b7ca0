"""Problems in the eval split, found by a read-only look at the eval rows and reported, never fixed.

Stages never change or drop eval rows (the contracts check that), so an eval row that is markup
only, or that duplicates another eval row, stays in the split and skews the evaluation. Two checks:
markup-only rows (no letter or digit once tags and entities are removed), and groups of eval rows
that are exact or near duplicates of each other under the run's cleaning keys (the repair and the
MinHash settings cleaning uses against eval leaks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from schemas.minhash import signed_keys
from schemas.rows import Split
from schemas.text_keys import KeySettings, key_hashes, repaired_keys
from schemas.text_normalization import strip_markup
from stages.near_duplicates import groups_from_hashes

_WORD_CHARACTER = re.compile(r"[^\W_]")


@dataclass
class EvalProblems:
    """Eval rows (id, text) that are markup only, and groups of eval rows that duplicate each other."""

    eval_rows: int
    markup_only: list[dict] = field(default_factory=list)
    duplicate_groups: list[dict] = field(default_factory=list)  # {"kind": "exact" | "near", "rows": [{id, text}, ...]}


def is_markup_only(text: str) -> bool:
    """True if `text` has markup and no letter or digit outside it."""
    stripped = strip_markup(text)
    return stripped != text and not _WORD_CHARACTER.search(stripped)


def eval_problems(rows: pa.Table, cleaning: KeySettings) -> EvalProblems:
    """The problems of the eval rows of `rows`; reads them only."""
    evals = rows.filter(pc.equal(rows.column("split"), Split.EVAL.value))
    ids, texts = evals.column("id").to_pylist(), evals.column("text").to_pylist()
    markup = [is_markup_only(text) for text in texts]
    problems = EvalProblems(eval_rows=evals.num_rows, markup_only=[{"id": i, "text": t} for i, t, m in zip(ids, texts, markup) if m])
    keep = [index for index, m in enumerate(markup) if not m]  # markup-only rows are reported once, above
    if len(keep) < 2:
        return problems
    keys = repaired_keys(pl.Series([texts[i] for i in keep], dtype=pl.String), cleaning)
    params = cleaning.minhash if cleaning.near_duplicates else None
    exact, near = groups_from_hashes(key_hashes(keys), params, signed_keys(keys, params) if params else None)
    members: dict[int, list[int]] = {}
    for position, group in enumerate(near.tolist()):
        members.setdefault(group, []).append(position)
    for positions in members.values():
        if len(positions) > 1:
            kind = "exact" if len(np.unique(exact[positions])) == 1 else "near"
            problems.duplicate_groups.append({"kind": kind, "rows": [{"id": ids[keep[p]], "text": texts[keep[p]]} for p in positions]})
    return problems
