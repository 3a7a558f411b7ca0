"""Near-duplicate groups: rows linked by LSH band collisions of their MinHash signatures.

Signatures come from schemas/minhash.py. Candidate pairs come from LSH band collisions (polars
group-by), are verified by the estimated Jaccard similarity of their signatures, and are merged
into groups with connected components.
"""

from __future__ import annotations

import numpy as np
import polars as pl
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from schemas.minhash import MinHashParams, bucket_keys, signatures_agree


def _band_candidates(signatures: np.ndarray, bands: int, rows: int, members: np.ndarray) -> np.ndarray:
    """Edges (member, first member) of every LSH bucket holding more than one of `members` (row indices)."""
    edges = []
    doc = np.arange(len(members), dtype=np.int64)
    for band in range(bands):
        bucket = bucket_keys(signatures, members, band, rows)
        frame = pl.DataFrame({"bucket": bucket, "doc": doc})
        first = frame.group_by("bucket").agg(pl.col("doc").min().alias("first"), pl.len().alias("size"))
        linked = frame.join(first.filter(pl.col("size") > 1), on="bucket").filter(pl.col("doc") != pl.col("first"))
        if linked.height:
            edges.append(linked.select("doc", "first").to_numpy())
    if not edges:
        return np.empty((0, 2), dtype=np.int64)
    # each edge as one int64 (doc * n + first), deduplicated by sort: same edges in the same order as unique(axis=0)
    n = np.int64(len(members))
    encoded = sorted_unique(np.concatenate([pair[:, 0] * n + pair[:, 1] for pair in edges]))
    return np.stack([encoded // n, encoded % n], axis=1)


def sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique(values) for a 1-D integer array, by sorting: numpy 2.4's hash-based unique is far slower on integers."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def similar_pairs(signatures: np.ndarray, params: MinHashParams, members: np.ndarray | None = None) -> np.ndarray:
    """Pairs (i, j) of positions in `members` (default: every row) whose estimated Jaccard reaches the threshold.

    Rows are picked by index rather than copied: at a million documents a copy of the signatures
    costs hundreds of megabytes.
    """
    members = np.arange(len(signatures), dtype=np.int64) if members is None else members
    bands, rows = params.bands
    candidates = _band_candidates(signatures, bands, rows, members)
    return candidates[signatures_agree(signatures, members[candidates], params.threshold)]


def group_labels(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected-component label per item, given linking pairs."""
    if n == 0:
        return np.empty(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    return labels.astype(np.int64)


def groups_from_hashes(hashes: np.ndarray, params: MinHashParams | None, signatures: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Exact and near-duplicate group per row from key hashes and (for near duplicates) one signature per row."""
    frame = pl.DataFrame({"hash": hashes})
    first = frame["hash"].is_first_distinct()
    unique = frame.filter(first).with_row_index("exact")
    exact = frame.join(unique, on="hash", how="left", maintain_order="left")["exact"].to_numpy().astype(np.int64)
    if params is None or unique.height < 2:
        return exact, exact
    if signatures is None or len(signatures) != len(hashes):
        raise ValueError(f"near-duplicate grouping needs one signature per key ({len(hashes)} keys)")
    members = first.arg_true().to_numpy().astype(np.int64)
    near = group_labels(unique.height, similar_pairs(signatures, params, members))
    return exact, near[exact]
