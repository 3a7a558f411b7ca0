"""Stage 1, cleaning: repair text, filter bad rows, remove duplicates, conflicts and eval leakage.

Row-level work (repair, PII masking, filters, duplicate keys, MinHash signatures) runs per
shard (`clean_shard`), in this process or on Dask workers; the duplicate grouping runs once over
all shards (`merge_shards`) so duplicates across shards are found.
Eval rows are never changed or dropped: they are normalised only in a shadow copy, so leakage
is detected on the same footing as the other rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
from pydantic import Field

from schemas.minhash import MinHashParams, eval_duplicate_of, signed_keys
from schemas.pii import PII_TYPES, mask_pii_column
from schemas.rows import Split, conform_rows
from schemas.strict import StrictModel
from schemas.text_keys import duplicate_keys, key_hashes
from schemas.text_normalization import NORMALIZATION_OPS, normalize_column
from stages.base import ReasonLedger, RowFilter, StageResult
from stages.near_duplicates import groups_from_hashes

STAGE = "clean"
REASONS = [
    "empty_text",
    "too_short",
    "too_long",
    "wrong_language",
    "eval_leak",
    "label_conflict",
    "exact_duplicate",
    "near_duplicate",
]


class CleaningConfig(StrictModel):
    """Settings of the cleaning stage. Defaults suit general text classification."""

    normalize_text: bool = Field(True, description="ftfy unicode repair, markup stripping, whitespace")
    mask_pii: bool = True
    min_words: int = Field(2, ge=0)
    max_chars: int = Field(100_000, ge=1)
    languages: list[str] | None = Field(["en"], description="ISO 639-1 codes to keep; null disables")
    min_words_for_language: int = Field(5, ge=1, description="shorter texts are not language-checked")
    drop_duplicates: bool = True
    near_duplicates: bool = True
    near_duplicate_threshold: float = Field(0.7, gt=0.0, le=1.0)
    num_perm: int = Field(128, ge=16, le=1024)
    shingle_words: int = Field(2, ge=1, le=5)
    reject_label_conflicts: bool = True
    reject_eval_leaks: bool = True
    batch_rows: int = Field(8192, ge=1)

    @property
    def minhash(self) -> MinHashParams:
        return MinHashParams(self.near_duplicate_threshold, self.num_perm, self.shingle_words)


@dataclass(frozen=True)
class EmptyTextFilter:
    reason: str = "empty_text"

    def keep(self, texts: pl.Series) -> pl.Series:
        return texts.str.len_chars() > 0


@dataclass(frozen=True)
class MinWordsFilter:
    min_words: int
    reason: str = "too_short"

    def keep(self, texts: pl.Series) -> pl.Series:
        return texts.str.count_matches(r"\S+") >= self.min_words


@dataclass(frozen=True)
class MaxCharsFilter:
    max_chars: int
    reason: str = "too_long"

    def keep(self, texts: pl.Series) -> pl.Series:
        return texts.str.len_chars() <= self.max_chars


@dataclass(frozen=True)
class LanguageFilter:
    """Keep texts in `languages`; texts too short to judge are kept.

    A text whose words are at least `common_word_share` among the 100 commonest words of a kept
    language is accepted at once (fast, and robust for technical prose that detectors mistake
    for Latin); the rest go to the offline detector.
    """

    languages: tuple[str, ...]
    min_words: int
    common_word_share: float = 0.2
    reason: str = "wrong_language"

    def keep(self, texts: pl.Series) -> pl.Series:
        from model_hooks.language import common_word_share, detect_languages

        words = texts.str.count_matches(r"\S+")
        undecided = (words >= self.min_words) & (common_word_share(texts, self.languages) < self.common_word_share)
        keep = np.ones(len(texts), dtype=bool)
        indices = undecided.arg_true().to_numpy()
        if len(indices):
            detected = detect_languages(texts.gather(indices).to_list())
            keep[indices] = [code is None or code in self.languages for code in detected]
        return pl.Series(self.reason, keep)


def build_filters(config: CleaningConfig) -> list[RowFilter]:
    filters: list[RowFilter] = [EmptyTextFilter(), MinWordsFilter(config.min_words), MaxCharsFilter(config.max_chars)]
    if config.languages:
        filters.append(LanguageFilter(tuple(code.lower() for code in config.languages), config.min_words_for_language))
    return filters


def _filter_detail(reason: str, texts: pl.Series) -> list[str] | None:
    if reason == "too_short":
        return [f"{count} words" for count in texts.str.count_matches(r"\S+").to_list()]
    if reason == "too_long":
        return [f"{count} characters" for count in texts.str.len_chars().to_list()]
    return None


@dataclass
class CleanedShard:
    """Row-level cleaning of one shard: everything the global duplicate step needs.

    `codes` and `details` follow ReasonLedger (0 = kept; details keyed by the shard's row
    index); `key_hashes` are the rows' duplicate keys hashed to 64 bits; `signatures` holds the
    MinHash signature of every row still kept, in row order.
    """

    texts: pa.Array
    key_hashes: np.ndarray
    codes: np.ndarray
    details: dict[int, str]
    counters: dict[str, int]
    signatures: np.ndarray | None


def clean_shard(shard: pa.Table, config: CleaningConfig = CleaningConfig()) -> CleanedShard:
    """Repair, mask and filter the rows of `shard` (row schema); sign what survives for near-duplicates.

    Rows are independent here, so shards can be cleaned anywhere, in any order.
    """
    ledger = ReasonLedger(shard.num_rows, REASONS)
    filters = build_filters(config)
    counters = {name: 0 for name, _ in NORMALIZATION_OPS} | {f"masked_{kind}": 0 for kind in PII_TYPES}
    text_chunks, key_chunks = [], []
    for offset in range(0, shard.num_rows, config.batch_rows):
        texts, keys = _clean_batch(shard.slice(offset, config.batch_rows), offset, config, filters, ledger, counters)
        text_chunks.append(texts)
        key_chunks.append(keys)
    keys = pl.concat(key_chunks) if key_chunks else pl.Series("key", [], dtype=pl.String)
    signatures = None
    if config.near_duplicates:
        signatures = signed_keys(keys.filter(pl.Series(ledger.kept_mask)), config.minhash)
    texts = pa.concat_arrays(text_chunks) if text_chunks else pa.array([], pa.string())
    return CleanedShard(texts, key_hashes(keys), ledger.codes, ledger.details, counters, signatures)


def merge_shards(table: pa.Table, shards: list[CleanedShard], config: CleaningConfig, started: float | None = None) -> StageResult:
    """Join cleaned shards of `table` (in order) and remove duplicates, conflicts and leaks across all rows.

    The shards' signatures are released once joined (at a million rows they are the largest part).
    """
    started = time.perf_counter() if started is None else started
    ledger = ReasonLedger.concatenate(REASONS, [(shard.codes, shard.details) for shard in shards])
    if len(ledger.codes) != table.num_rows:
        raise ValueError(f"cleaned shards hold {len(ledger.codes)} rows, the table {table.num_rows}")
    counters = {name: sum(shard.counters[name] for shard in shards) for name in (shards[0].counters if shards else {})}
    hashes = np.concatenate([shard.key_hashes for shard in shards]) if shards else np.zeros(0, dtype=np.uint64)
    signatures = None
    if config.near_duplicates and shards:
        signatures = np.concatenate([shard.signatures for shard in shards])
        for shard in shards:
            shard.signatures = None
    _reject_duplicates(table, hashes, signatures, config, ledger)
    del signatures

    cleaned_text = pa.chunked_array([shard.texts for shard in shards], pa.string())
    kept = table.set_column(table.schema.get_field_index("text"), table.schema.field("text"), cleaned_text).filter(pa.array(ledger.kept_mask))
    stats = {
        "rows_in": table.num_rows,
        "rows_out": kept.num_rows,
        **ledger.counts(),
        **counters,
        "seconds": round(time.perf_counter() - started, 3),
    }
    return StageResult(kept=kept, rejected=ledger.rejects_table(table, STAGE), stats=stats)


def clean(table: pa.Table, config: CleaningConfig = CleaningConfig()) -> StageResult:
    """Clean `table` (row schema) in one process; return kept rows, rejects with reasons, and stats."""
    started = time.perf_counter()
    table = conform_rows(table)
    shards = [clean_shard(table.slice(offset, config.batch_rows), config) for offset in range(0, table.num_rows, config.batch_rows)]
    return merge_shards(table, shards, config, started)


def _clean_batch(batch, offset, config, filters, ledger, counters) -> tuple[pa.Array, pl.Series]:
    """Repair and filter one batch; return its output texts and its duplicate keys."""
    original = pl.Series("text", batch.column("text").combine_chunks())
    is_eval = pl.Series(batch.column("split").combine_chunks()) == Split.EVAL.value
    texts = original
    if config.normalize_text:
        texts, changed = normalize_column(texts)
        for name, mask in changed.items():
            counters[name] += int((mask & ~is_eval).sum())
    if config.mask_pii:
        texts = _mask_pii(texts, is_eval, counters)

    candidates = ~is_eval
    for row_filter in filters:
        indices = candidates.arg_true()
        keep = row_filter.keep(texts.gather(indices))
        dropped = indices.filter(~keep)
        if len(dropped):
            details = _filter_detail(row_filter.reason, texts.gather(dropped))
            ledger.reject(dropped.to_numpy() + offset, row_filter.reason, details)
            candidates = candidates.scatter(dropped, False)

    keys = duplicate_keys(texts)
    output = pl.select(pl.when(is_eval).then(original).otherwise(texts)).to_series()
    return output.to_arrow().cast(pa.string()), keys


def _mask_pii(texts: pl.Series, is_eval: pl.Series, counters: dict) -> pl.Series:
    """Mask PII everywhere (eval only in the shadow copy); count what was masked outside eval."""
    masked, counts = mask_pii_column(texts.filter(~is_eval))
    for kind, count in counts.items():
        counters[f"masked_{kind}"] += count
    shadow, _ = mask_pii_column(texts.filter(is_eval))
    merged = texts.scatter(is_eval.not_().arg_true(), masked) if len(masked) else texts
    return merged.scatter(is_eval.arg_true(), shadow) if len(shadow) else merged


def _reject_duplicates(table: pa.Table, hashes: np.ndarray, signatures: np.ndarray | None, config: CleaningConfig, ledger: ReasonLedger) -> None:
    """Group surviving rows with eval rows by duplicate key; reject leaks, conflicts and copies.

    `signatures` are those of the rows that survived the filters, in row order.
    """
    split = pl.Series(table.column("split").combine_chunks())
    alive = np.flatnonzero(ledger.kept_mask)  # eval rows are never rejected, so they are all here
    if len(alive) == 0:
        return
    params = config.minhash if config.near_duplicates else None
    exact, near = groups_from_hashes(hashes[alive], params, signatures)
    ids = pl.Series(table.column("id").combine_chunks()).gather(alive)
    is_eval = (split.gather(alive) == Split.EVAL.value).to_numpy()
    leak_of = eval_duplicate_of(hashes[alive], is_eval, params, signatures) if config.reject_eval_leaks else np.full(len(alive), -1)
    rows = pl.DataFrame(
        {
            "row": alive,
            "id": ids,
            "label": pl.Series(table.column("label").combine_chunks()).gather(alive),
            "split": split.gather(alive),
            "exact": exact,
            "group": near,
            "leak_of": pl.select(pl.when(pl.Series(leak_of >= 0)).then(ids.gather(np.maximum(leak_of, 0)))).to_series(),
            "is_eval": is_eval,
        }
    ).with_columns(is_labeled=pl.col("split") == Split.LABELED.value)
    if config.reject_eval_leaks:  # a row that is itself a duplicate of an eval row, whatever its group
        direct = rows.filter(pl.col("leak_of").is_not_null())
        ledger.reject(direct["row"].to_numpy(), "eval_leak", [f"duplicate of eval row {i}" for i in direct["leak_of"]])
    groups = rows.group_by("group").agg(
        eval_id=pl.col("id").filter(pl.col("is_eval")).first(),
        labels=pl.col("label").filter(pl.col("is_labeled") & pl.col("leak_of").is_null()).unique().sort(),  # leaks are gone
        size=pl.len(),
    )
    rows = rows.join(groups.filter(pl.col("size") > 1), on="group", how="inner").filter(~pl.col("is_eval"))
    if rows.is_empty():
        return

    if config.reject_eval_leaks:  # and every other row of a group with an eval row
        leaks = rows.filter(pl.col("eval_id").is_not_null() & pl.col("leak_of").is_null())
        ledger.reject(leaks["row"].to_numpy(), "eval_leak", [f"duplicate of eval row {i}" for i in leaks["eval_id"]])
        rows = rows.filter(pl.col("eval_id").is_null() & pl.col("leak_of").is_null())
    rows = rows.with_columns(conflict=pl.col("labels").list.len() > 1)
    if config.reject_label_conflicts:
        conflicts = rows.filter(pl.col("conflict") & pl.col("is_labeled"))
        details = [f"labels in group: {', '.join(labels)}" for labels in conflicts["labels"].to_list()]
        ledger.reject(conflicts["row"].to_numpy(), "label_conflict", details)
        rows = rows.filter(~(pl.col("conflict") & pl.col("is_labeled")))
    if not config.drop_duplicates:
        return
    # Keep one row per group: a labeled row if any is left, else the first unlabeled one.
    rows = rows.sort(["group", "is_labeled", "row"], descending=[False, True, False])
    keeper = rows.group_by("group", maintain_order=True).agg(
        keeper_row=pl.col("row").first(), keeper_exact=pl.col("exact").first(), keeper_id=pl.col("id").first()
    )
    copies = rows.join(keeper, on="group").filter(pl.col("row") != pl.col("keeper_row"))
    for reason, same_key in (("exact_duplicate", True), ("near_duplicate", False)):
        chosen = copies.filter((pl.col("exact") == pl.col("keeper_exact")) == same_key)
        ledger.reject(chosen["row"].to_numpy(), reason, [f"duplicate of {i}" for i in chosen["keeper_id"]])
