"""The one row schema shared by every stage boundary, and the rejects schema."""

from __future__ import annotations

import hashlib
from enum import Enum

import numpy as np
import pyarrow as pa


class Split(str, Enum):
    LABELED = "labeled"
    UNLABELED = "unlabeled"
    EVAL = "eval"


class Origin(str, Enum):
    ORIGINAL = "original"
    AUGMENTED = "augmented"
    PSEUDO_LABELED = "pseudo_labeled"


SPLITS = tuple(s.value for s in Split)
ORIGINS = tuple(o.value for o in Origin)

# Score columns are null until the stage that owns them fills them in.
SCORE_COLUMNS = ("similarity", "domain_score", "synthetic_p", "label_agreement")

ROW_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("label", pa.string()),
        pa.field("split", pa.string(), nullable=False),
        pa.field("origin", pa.string(), nullable=False),
        pa.field("parent_id", pa.string()),
        pa.field("op", pa.string()),
        *(pa.field(name, pa.float64()) for name in SCORE_COLUMNS),
    ]
)

REJECT_SCHEMA = ROW_SCHEMA.append(pa.field("stage", pa.string(), nullable=False)).append(
    pa.field("reason", pa.string(), nullable=False)
).append(pa.field("detail", pa.string()))

ROW_COLUMNS = tuple(ROW_SCHEMA.names)


def content_id(*parts: str | None) -> str:
    """Stable 16-hex-digit id from the given content parts (None is distinct from '')."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(b"\x00" if part is None else b"\x01" + part.encode("utf-8"))
        digest.update(b"\x1f")
    return digest.hexdigest()[:16]


def empty_rows() -> pa.Table:
    return ROW_SCHEMA.empty_table()


def empty_rejects() -> pa.Table:
    return REJECT_SCHEMA.empty_table()


def conform_rows(table: pa.Table) -> pa.Table:
    """Return `table` with exactly the row schema's columns, adding missing nullable ones as nulls."""
    columns = []
    for field in ROW_SCHEMA:
        if field.name in table.column_names:
            columns.append(table.column(field.name).cast(field.type))
        elif field.nullable:
            columns.append(pa.nulls(table.num_rows, field.type))
        else:
            raise KeyError(f"row table lacks required column {field.name!r}")
    return pa.Table.from_arrays(columns, schema=ROW_SCHEMA)


def make_rejects(rows: pa.Table, stage: str, reasons: list[str] | pa.Array, details=None) -> pa.Table:
    """Turn rows plus a reason per row into a rejects table."""
    rows = conform_rows(rows)
    n = rows.num_rows
    reason_array = pa.array(reasons, pa.string()) if not isinstance(reasons, pa.Array) else reasons
    detail_array = pa.nulls(n, pa.string()) if details is None else pa.array(details, pa.string())
    return pa.Table.from_arrays(
        [*rows.columns, pa.array([stage] * n, pa.string()), reason_array, detail_array],
        schema=REJECT_SCHEMA,
    )


def column_values(rows: pa.Table, name: str) -> np.ndarray:
    """One column as an object array (nulls as None), for masks and fancy indexing."""
    return np.asarray(rows.column(name).to_pylist(), dtype=object)


PSEUDO_LABELS_PER_UNIT = 2  # pseudo-labeled rows that share one unit of training weight (docs/protocol.md)


def family_keys(rows: pa.Table) -> list[str]:
    """The family of each row, the unit of training weight: an augmented child belongs to its parent's;
    pseudo-labeled rows of a class, in id order, share one family per PSEUDO_LABELS_PER_UNIT rows (a
    machine's label counts for less than a person's); any other row is its own."""
    ids, origins = rows.column("id").to_pylist(), rows.column("origin").to_pylist()
    parents, labels = rows.column("parent_id").to_pylist(), rows.column("label").to_pylist()
    pseudo_rank: dict[int, int] = {}
    by_label: dict[str, list[tuple[str, int]]] = {}
    for position, (row_id, origin, label) in enumerate(zip(ids, origins, labels)):
        if origin == Origin.PSEUDO_LABELED.value:
            by_label.setdefault(label, []).append((row_id, position))
    for members in by_label.values():
        for rank, (_, position) in enumerate(sorted(members)):
            pseudo_rank[position] = rank
    keys = []
    for position, (row_id, origin, parent, label) in enumerate(zip(ids, origins, parents, labels)):
        if origin == Origin.AUGMENTED.value and parent is not None:
            keys.append(parent)
        elif position in pseudo_rank:
            keys.append(f"pseudo\x1f{label}\x1f{pseudo_rank[position] // PSEUDO_LABELS_PER_UNIT}")
        else:
            keys.append(row_id)
    return keys


def weights_of_families(keys: list[str]) -> np.ndarray:
    """One unit of weight per family, split evenly over its rows."""
    _, inverse, sizes = np.unique(np.asarray(keys, dtype=str), return_inverse=True, return_counts=True)
    return 1.0 / sizes[inverse]


def family_weights(rows: pa.Table) -> np.ndarray:
    """A training weight per row: a row and the augmented children of it in `rows` share one unit.

    An augmented child is a variant of its parent, not an independent example; counted at full
    weight, children outvote the originals and weaken a regulariser scaled by the number of rows.
    Original rows without children weigh 1 each, pseudo-labeled rows 1 / PSEUDO_LABELS_PER_UNIT; a
    family of one parent and four children weighs 0.2 per row. Children whose parent is not in `rows` share one unit per
    missing parent.
    """
    return weights_of_families(family_keys(rows))
