"""Per-shard work of the curate flow as Prefect tasks, so a Dask task runner can spread it over workers.

Shards travel as files in the run folder (`shards/`), never as task arguments: a task gets a
path and returns a path. The workers of a local cluster see the run folder; the workers of a
remote scheduler need it on shared storage. The global steps that need every row at once
(duplicate grouping, the augmentation gates, the discriminator) run in the flow's process on
the merged shard outputs, so a sharded run gives the same rows as a single-process run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.run_folder import atomic_write_parquet
from model_hooks.encoders import use_encoder
from schemas.files import atomic_write_bytes
from stages.cleaning import CleanedShard, CleaningConfig, clean_shard
from stages.semantic_augmentation import AugmentationConfig, AugmentationInputs, GeneratedChildren, generate

# Shard files live for one run: fast compression beats small files.
SCRATCH_COMPRESSION = "lz4"


def write_shards(table: pa.Table, directory: Path, prefix: str, shard_rows: int) -> list[str]:
    """Write `table` as consecutive Parquet shards of at most `shard_rows` rows; return their paths in order."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, offset in enumerate(range(0, max(table.num_rows, 1), shard_rows)):
        path = directory / f"{prefix}-{index:05d}.parquet"
        atomic_write_parquet(path, table.slice(offset, shard_rows), SCRATCH_COMPRESSION)
        paths.append(str(path))
    return paths


def _sibling(shard_path: str, kind: str, suffix: str = ".parquet") -> Path:
    path = Path(shard_path)
    return path.with_name(f"{path.stem}.{kind}{suffix}")


@task(name="clean-shard", cache_policy=NO_CACHE)
def clean_shard_task(config: CleaningConfig, shard_path: str) -> str:
    """Clean one raw shard; write its texts, keys, reason codes, details and signatures beside it."""
    shard = clean_shard(pq.read_table(shard_path), config)
    details = [shard.details.get(row) for row in range(len(shard.codes))]
    table = pa.table(
        {"text": shard.texts, "key_hash": pa.array(shard.key_hashes, pa.uint64()), "code": pa.array(shard.codes, pa.int16()), "detail": pa.array(details, pa.string())},
        metadata={"counters": json.dumps(shard.counters)},
    )
    if shard.signatures is not None:
        buffer = pa.BufferOutputStream()
        np.save(buffer, shard.signatures)
        atomic_write_bytes(_sibling(shard_path, "signatures", ".npy"), buffer.getvalue().to_pybytes())
    out = _sibling(shard_path, "cleaned")
    atomic_write_parquet(out, table, SCRATCH_COMPRESSION)
    return str(out)


def read_cleaned_shard(path: str) -> CleanedShard:
    """A CleanedShard written by `clean_shard_task`."""
    table = pq.read_table(path)
    details = {row: detail for row, detail in enumerate(table.column("detail").to_pylist()) if detail is not None}
    signatures_path = _sibling(path.removesuffix(".cleaned.parquet") + ".parquet", "signatures", ".npy")
    return CleanedShard(
        texts=table.column("text").combine_chunks(),
        key_hashes=table.column("key_hash").to_numpy(),
        codes=table.column("code").to_numpy().astype(np.int16),
        details=details,
        counters=json.loads(table.schema.metadata[b"counters"]),
        signatures=np.load(signatures_path) if signatures_path.exists() else None,
    )


@task(name="augment-shard", cache_policy=NO_CACHE)
def augment_shard_task(config: AugmentationConfig, inputs: AugmentationInputs, seed: int, parents_path: str, encoder: str) -> str:
    """Make the children of one shard of parents and embed both with `encoder` for the similarity gate (into the shared cache)."""
    from model_hooks.embedder import get_embedder

    parents = pq.read_table(parents_path)
    generated = generate(parents, config, inputs, seed)
    if generated.table.num_rows:
        with use_encoder(encoder):  # a remote worker has not inherited the flow's environment
            embedder = get_embedder(config.embedding_mode)
            embedder.embed(parents.column("text").to_pylist())
            embedder.embed(generated.table.column("text").to_pylist())
    out = _sibling(parents_path, "children")
    notes = {"not_run": generated.not_run, "seconds_by_op": generated.seconds_by_op}
    atomic_write_parquet(out, generated.table.replace_schema_metadata({"notes": json.dumps(notes)}), SCRATCH_COMPRESSION)
    return str(out)


def read_children(paths: list[str], ops: list[str]) -> GeneratedChildren:
    """The children of every parent shard, in the order a single process makes them."""
    parts = []
    for path in paths:
        table = pq.read_table(path)
        notes = json.loads(table.schema.metadata[b"notes"])
        parts.append(GeneratedChildren(table.replace_schema_metadata(None), notes["not_run"], notes["seconds_by_op"]))
    return GeneratedChildren.merge(parts, ops)


@task(name="embed-shard", cache_policy=NO_CACHE)
def embed_shard_task(mode: str, shard_path: str, encoder: str) -> int:
    """Embed the texts of one shard with `encoder` into the shared embedding cache; return how many were computed."""
    from model_hooks.embedder import get_embedder

    with use_encoder(encoder):  # a remote worker has not inherited the flow's environment
        embedder = get_embedder(mode)
        before = embedder.computed
        embedder.embed(pq.read_table(shard_path, columns=["text"]).column("text").to_pylist())
        return embedder.computed - before
