"""Draw the k-shot labeled set from the pool; the rest of the pool becomes unlabeled text."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas.rows import Split


class SamplingError(ValueError):
    """The pool cannot give k examples for every class; the message names the class and counts."""


def check_classes(label_counts: dict[str, int], k: int) -> None:
    if len(label_counts) < 2:
        raise SamplingError(f"a classification experiment needs at least 2 classes; the pool has {label_counts}")
    short = {label: count for label, count in label_counts.items() if count < k}
    if short:
        detail = ", ".join(f"{label!r} has {count}" for label, count in sorted(short.items()))
        raise SamplingError(f"k={k} examples per class requested, but in the pool {detail}; "
                            f"the largest feasible k is {min(label_counts.values())}")


def draw_k_shot(rows: pa.Table, k: int, seed: int) -> pa.Table:
    """Return `rows` with k labeled rows per class kept labeled and every other pool row unlabeled.

    Eval rows are returned unchanged and are never drawn. The draw depends only on the rows' ids,
    labels, k and seed (rows are ordered by id first), so it is reproducible.
    """
    is_pool = pc.equal(rows.column("split"), Split.LABELED.value).to_numpy(zero_copy_only=False)
    labels = np.asarray(rows.column("label").to_pylist(), dtype=object)
    ids = np.asarray(rows.column("id").to_pylist(), dtype=object)
    pool_labels = labels[is_pool]
    check_classes({label: int((pool_labels == label).sum()) for label in sorted(set(pool_labels))}, k)

    rng = np.random.default_rng(seed)
    chosen = np.zeros(len(ids), dtype=bool)
    for label in sorted(set(pool_labels)):
        members = np.flatnonzero(is_pool & (labels == label))
        members = members[np.argsort(ids[members], kind="stable")]
        chosen[rng.choice(members, size=k, replace=False)] = True

    to_unlabeled = is_pool & ~chosen
    split = np.where(to_unlabeled, Split.UNLABELED.value, np.asarray(rows.column("split").to_pylist(), dtype=object))
    label = np.where(to_unlabeled, None, labels)
    rows = rows.set_column(rows.schema.get_field_index("split"), rows.schema.field("split"), pa.array(split.tolist(), pa.string()))
    return rows.set_column(rows.schema.get_field_index("label"), rows.schema.field("label"), pa.array(label.tolist(), pa.string()))
