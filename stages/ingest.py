"""Stage 0, ingest: read CSV, JSONL, Parquet or Hugging Face data into the row schema.

Whole-file problems (missing file or column, empty file, unparseable CSV) raise `InputError`
with a one-line message. Row problems (bytes that are not UTF-8, empty text, unknown label,
duplicate id) become rejects rows with a reason; every record read is accounted for.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Literal

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from pydantic import Field, model_validator

from schemas.rows import SPLITS, Origin, Split, conform_rows, content_id, make_rejects
from schemas.strict import StrictModel
from stages.base import ReasonLedger, StageResult

STAGE = "ingest"
REASONS = ["malformed_record", "invalid_utf8", "missing_text", "missing_label", "unknown_label", "unknown_split", "duplicate_id"]
DEFAULT_HF_SPLITS = {"train": "labeled", "validation": "labeled", "test": "eval", "unsupervised": "unlabeled", "unlabeled": "unlabeled"}


class InputError(ValueError):
    """The input cannot be read at all; the message says which file and why, in one line."""


class ColumnMapping(StrictModel):
    """Names of the input columns that hold each field. `label: null` means unlabeled input."""

    text: str = "text"
    label: str | None = "label"
    id: str | None = None
    split: str | None = None


class SourceConfig(StrictModel):
    path: Path
    format: Literal["auto", "csv", "jsonl", "parquet", "hf"] = "auto"
    split: Literal["labeled", "unlabeled", "eval"] | None = Field(None, description="force this split on every row")
    hf_splits: dict[str, Literal["labeled", "unlabeled", "eval"]] = Field(default_factory=lambda: dict(DEFAULT_HF_SPLITS))

    @property
    def resolved_format(self) -> str:
        if self.format != "auto":
            return self.format
        suffix = self.path.suffix.lower()
        if self.path.is_dir():
            return "hf"
        for fmt, suffixes in {"csv": (".csv", ".tsv"), "jsonl": (".jsonl", ".ndjson", ".json"), "parquet": (".parquet", ".pq")}.items():
            if suffix in suffixes:
                return fmt
        raise InputError(f"{self.path}: cannot tell the format from the suffix {suffix!r}; set format: csv|jsonl|parquet|hf")


class IngestConfig(StrictModel):
    sources: list[SourceConfig] = Field(default_factory=list, description="empty only for refresh runs")
    columns: ColumnMapping = ColumnMapping()
    labels: list[str] | None = Field(None, description="the label set; default: every label seen")
    label_names: dict[str, str] | None = Field(None, description="raw label value -> class name")
    eval_rule: Literal["none", "sha256_even"] = Field(
        "none", description="sha256_even: rows whose SHA-256 of the UTF-8 text is even are eval"
    )

    @model_validator(mode="after")
    def _labels_unique(self):
        if self.labels is not None and len(set(self.labels)) != len(self.labels):
            raise ValueError("labels must be unique")
        return self

    @property
    def label_set(self) -> list[str] | None:
        if self.labels is not None:
            return list(self.labels)
        if self.label_names is not None:
            return sorted(set(self.label_names.values()))
        return None


def is_eval_text(text: str) -> bool:
    """The fixed evaluation rule: SHA-256 of the UTF-8 text, read as an integer, is even."""
    return hashlib.sha256(text.encode("utf-8")).digest()[-1] % 2 == 0


def eval_part(text: str) -> str:
    """Which half of the eval rows a text belongs to: `test` where bit 1 of its SHA-256 (read as an
    integer) is clear, `dev` where it is set. Independent of the eval parity (bit 0)."""
    return "dev" if (hashlib.sha256(text.encode("utf-8")).digest()[-1] >> 1) & 1 else "test"


# ---------------------------------------------------------------- readers: file -> raw columns


def _read_csv(path: Path, wanted: list[str], first_block: bool = False):
    """The mapped columns as bytes (a table); with `first_block`, only the schema Arrow infers from the
    first block (for the type checks). Arrow errors become one-line InputErrors."""
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    block_size = 1 << 20
    while True:
        options = dict(
            read_options=pa_csv.ReadOptions(block_size=block_size),
            parse_options=pa_csv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pa_csv.ConvertOptions(
                column_types=None if first_block else {name: pa.binary() for name in wanted},
                include_columns=wanted, strings_can_be_null=False,
            ),
        )
        try:
            return pa_csv.open_csv(path, **options).schema if first_block else pa_csv.read_csv(path, **options)
        except (pa.ArrowInvalid, pa.ArrowKeyError) as error:
            message = str(error).splitlines()[0]
            if "straddling" in message and block_size < min(path.stat().st_size, 1 << 30):
                block_size *= 4  # a record longer than one block (a multi-megabyte text): read with larger blocks
                continue
            if "Empty CSV file" in message:
                raise InputError(f"{path}: the file is empty") from None
            if "include_columns" in message and "does not exist" in message:
                raise InputError(f"{path}: {message}; columns present: {_csv_columns(path, delimiter)}") from None
            raise InputError(f"{path}: malformed CSV ({message}); look for an unbalanced quote") from None


def _csv_columns(path: Path, delimiter: str) -> list[str]:
    with path.open("rb") as handle:
        first = handle.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    return first.split(delimiter)


def _read_jsonl(path: Path, wanted: list[str]) -> tuple[pa.Table, list[tuple[int, str, str]], set[str]]:
    """Read JSON Lines; return the records, unreadable lines (line, text, reason) and the keys seen."""
    records: dict[str, list] = {name: [] for name in wanted}
    present: set[str] = set()
    bad: list[tuple[int, str, str]] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as error:
                bad.append((number, raw.decode("utf-8", errors="replace"), f"invalid_utf8:{error.reason} at byte {error.start}"))
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError("a line is not a JSON object")
            except ValueError as error:
                bad.append((number, line[:2000], f"malformed_record:{error}"))
                continue
            present.update(record)
            for name in wanted:
                value = record.get(name)
                records[name].append(None if value is None else str(value))
    if not records[wanted[0]] and not bad:
        raise InputError(f"{path}: the file is empty")
    return pa.table({name: pa.array(records[name], pa.string()) for name in wanted}), bad, present


def _load_hf(source: SourceConfig):
    import datasets

    try:
        return datasets.load_from_disk(str(source.path))
    except FileNotFoundError as error:
        raise InputError(f"{source.path}: not a dataset saved with save_to_disk ({error})") from None


def _hf_parts(dataset) -> list[tuple[str | None, object]]:
    """(split name, Dataset) for a DatasetDict, or [(None, dataset)]."""
    import datasets

    return list(dataset.items()) if isinstance(dataset, datasets.DatasetDict) else [(None, dataset)]


def _read_hf(source: SourceConfig, wanted: list[str], dataset) -> pa.Table:
    import datasets

    tables = []
    for split_name, part in _hf_parts(dataset):
        table = part.select_columns(wanted).with_format("arrow")[:]  # honours an indices mapping (select, filter, shuffle)
        columns = {}
        for name in wanted:
            column = table.column(name)
            feature = part.features[name]
            if isinstance(feature, datasets.ClassLabel):
                column = pa.array([None if v is None or v < 0 else feature.int2str(v) for v in column.to_pylist()], pa.string())
            columns[name] = column.cast(pa.string())
        if split_name is not None:
            if split_name not in source.hf_splits:
                raise InputError(f"{source.path}: split {split_name!r} has no mapping in hf_splits {source.hf_splits}")
            columns["__split__"] = pa.array([source.hf_splits[split_name]] * table.num_rows, pa.string())
        tables.append(pa.table(columns))
    return pa.concat_tables(tables, promote_options="default")


def _check_columns(path: Path, table_columns: list[str], wanted: list[str]) -> None:
    for name in wanted:
        if name not in table_columns:
            raise InputError(f"{path}: column {name!r} not found; columns present: {table_columns}")


def _wanted(columns: ColumnMapping) -> list[str]:
    return [name for name in (columns.text, columns.label, columns.id, columns.split) if name]


# ---------------------------------------------------------------- whole-file checks: columns and their types


def _is_text_type(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        return _is_text_type(kind.value_type)
    return any(check(kind) for check in (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary,
                                         pa.types.is_large_binary, pa.types.is_null))


def check_column_types(path: Path, types: dict[str, pa.DataType], columns: ColumnMapping) -> None:
    """The text column must hold strings; label, id and split columns one scalar per row (no lists or structs)."""
    if columns.text in types and not _is_text_type(types[columns.text]):
        raise InputError(f"{path}: column {columns.text!r} has type {types[columns.text]}; the text column must be a string column")
    for role, name in (("label", columns.label), ("id", columns.id), ("split", columns.split)):
        kind = types.get(name) if name else None
        if kind is not None and (pa.types.is_nested(kind) or (pa.types.is_dictionary(kind) and pa.types.is_nested(kind.value_type))):
            raise InputError(f"{path}: column {name!r} has type {kind}; a {role} column must hold one string or number per row")


def _jsonl_sample(path: Path, wanted: list[str], records: int = 1000) -> tuple[dict[str, pa.DataType], set[str], bool]:
    """Types of the mapped keys in the first `records` JSON objects, the keys seen, and whether that was the whole file."""
    values: dict[str, list] = {name: [] for name in wanted}
    present: set[str] = set()
    seen = 0
    with path.open("rb") as handle:
        for raw in handle:
            try:
                record = json.loads(raw)
            except ValueError:
                continue  # blank or malformed lines are the full read's business (rejects)
            if isinstance(record, dict):
                seen += 1
                present.update(record)
                for name in wanted:
                    values[name].append(record.get(name))
                if seen == records:
                    break
        complete = seen < records or not any(line.strip() for line in handle)
    types = {}
    for name, column in values.items():
        try:
            types[name] = pa.array(column).type
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            types[name] = pa.string()  # strings mixed with other values: the row-level checks judge each row
    return types, present, complete


def check_source(source: SourceConfig, columns: ColumnMapping, dataset=None) -> None:
    """Cheap whole-file checks before reading the data: the file exists and is readable, its format is
    known, and the mapped columns exist with usable types (from the Parquet or dataset schema, or the
    first block of a CSV or the first 1,000 records of a JSON Lines file). Raises InputError."""
    wanted = _wanted(columns)
    path = source.path
    if dataset is None:
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if not os.access(path, os.R_OK):
            raise InputError(f"{path}: not readable (permission denied)")
    fmt = "hf" if dataset is not None else source.resolved_format
    if fmt == "csv":
        schema = _read_csv(path, wanted, first_block=True)
        check_column_types(path, {field.name: field.type for field in schema}, columns)
    elif fmt == "jsonl":
        types, present, complete = _jsonl_sample(path, wanted)
        if present and complete:
            _check_columns(path, sorted(present), wanted)
        check_column_types(path, types, columns)
    elif fmt == "parquet":
        try:
            schema = pq.read_schema(path)
        except (pa.ArrowInvalid, OSError) as error:
            raise InputError(f"{path}: not a Parquet file ({str(error).splitlines()[0]})") from None
        _check_columns(path, schema.names, wanted)
        check_column_types(path, {name: schema.field(name).type for name in wanted}, columns)
    else:
        for _, part in _hf_parts(_load_hf(source) if dataset is None else dataset):
            _check_columns(path, part.column_names, wanted)
            check_column_types(path, {name: part.data.schema.field(name).type for name in wanted}, columns)


def read_source(source: SourceConfig, columns: ColumnMapping, dataset=None) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """Check (`check_source`), then read one source into a table of the mapped columns (text may be
    binary); plus unreadable lines."""
    wanted = _wanted(columns)
    if dataset is None and source.path.exists() and source.resolved_format == "hf":
        dataset = _load_hf(source)  # loaded once, for the checks and the read
    check_source(source, columns, dataset)
    fmt = "hf" if dataset is not None else source.resolved_format
    bad: list[tuple[int, str, str]] = []
    if fmt == "csv":
        table = _read_csv(source.path, wanted)
    elif fmt == "jsonl":
        table, bad, present = _read_jsonl(source.path, wanted)
        _check_columns(source.path, sorted(present), wanted if table.num_rows else [])
    elif fmt == "parquet":
        table = pq.read_table(source.path, columns=wanted)
    else:
        table = _read_hf(source, wanted, dataset)
    return table, bad


# ---------------------------------------------------------------- raw columns -> row schema


def _decode_texts(column: pa.ChunkedArray) -> tuple[list[str | None], list[int], list[str]]:
    """Decode a binary or string column; return texts, indices of invalid UTF-8, and their reasons."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column.to_pylist(), [], []
    try:
        return column.cast(pa.string()).to_pylist(), [], []
    except pa.ArrowInvalid:
        pass
    texts, bad, why = [], [], []
    for index, raw in enumerate(column.to_pylist()):
        if raw is None:
            texts.append(None)
            continue
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError as error:
            texts.append(raw.decode("utf-8", errors="replace"))
            bad.append(index)
            why.append(f"{error.reason} at byte {error.start}")
    return texts, bad, why


def _optional_strings(table: pa.Table, name: str | None) -> list[str | None]:
    if not name:
        return [None] * table.num_rows
    column = table.column(name)
    if pa.types.is_floating(column.type) and pc.all(pc.equal(pc.round(column), column)).as_py() is not False:
        column = column.cast(pa.int64())  # labels 1.0, 2.0 from JSON or Parquet mean "1", "2"
    texts, _, _ = _decode_texts(column)
    return [None if value is None else value.strip() or None for value in texts]


def to_rows(table: pa.Table, source: SourceConfig, config: IngestConfig) -> tuple[pa.Table, ReasonLedger]:
    """Map a raw table to the row schema and mark bad rows in a ledger (ids not yet deduplicated)."""
    columns = config.columns
    n = table.num_rows
    ledger = ReasonLedger(n, REASONS)
    texts, bad_utf8, why = _decode_texts(table.column(columns.text))
    labels = _optional_strings(table, columns.label)
    ids = _optional_strings(table, columns.id)
    splits = table.column("__split__").to_pylist() if "__split__" in table.column_names else _optional_strings(table, columns.split)
    label_set = config.label_set

    ledger.reject(pa.array(bad_utf8, pa.int64()).to_numpy(zero_copy_only=False), "invalid_utf8", why)
    missing_text = [i for i, text in enumerate(texts) if text is None or not text.strip()]
    ledger.reject(_indices(missing_text), "missing_text")
    resolved_labels, resolved_splits = [], []
    unknown_label, missing_label, unknown_split = [], [], []
    for index in range(n):
        label = labels[index]
        split = source.split or splits[index]
        if split is None:
            text = texts[index]
            if label is None:
                split = Split.UNLABELED.value
            elif config.eval_rule == "sha256_even" and text is not None and is_eval_text(text):
                split = Split.EVAL.value
            else:
                split = Split.LABELED.value
        elif split not in SPLITS:
            unknown_split.append(index)
        if split == Split.UNLABELED.value:
            label = None  # whatever label an unlabeled row carries is discarded, so not checked
        if label is not None and config.label_names is not None:
            if label not in config.label_names:
                unknown_label.append(index)
            label = config.label_names.get(label, label)
        if label is not None and label_set is not None and label not in label_set:
            unknown_label.append(index)
        if split in (Split.LABELED.value, Split.EVAL.value) and label is None:
            missing_label.append(index)
        resolved_labels.append(label)
        resolved_splits.append(split)
    ledger.reject(_indices(unknown_split), "unknown_split", [f"split {splits[i]!r}" for i in unknown_split])
    ledger.reject(_indices(missing_label), "missing_label")
    ledger.reject(_indices(sorted(set(unknown_label))), "unknown_label", [f"label {labels[i]!r}" for i in sorted(set(unknown_label))])

    safe_texts = ["" if text is None else text for text in texts]
    rows = pa.table(
        {
            "id": pa.array(ids, pa.string()),
            "text": pa.array(safe_texts, pa.string()),
            "label": pa.array(resolved_labels, pa.string()),
            "split": pa.array(resolved_splits, pa.string()),
            "origin": pa.array([Origin.ORIGINAL.value] * n, pa.string()),
        }
    )
    return rows, ledger


def _indices(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def _assign_ids(rows: pa.Table, ledger: ReasonLedger, user_ids: bool) -> pa.Table:
    """Content-hash ids (identical rows told apart by occurrence), or the user's ids checked for uniqueness."""
    if user_ids:
        ids = pl.Series(rows.column("id").combine_chunks())
        missing = ids.is_null().arg_true().to_numpy()
        ledger.reject(missing, "duplicate_id", ["id is empty"] * len(missing))
        frame = pl.DataFrame({"id": ids, "alive": ledger.kept_mask})
        seen = frame.with_row_index("row").filter(pl.col("alive") & pl.col("id").is_not_null())
        repeated = seen.filter(pl.col("id").is_duplicated() & (pl.col("row") != pl.col("row").min().over("id")))
        ledger.reject(repeated["row"].to_numpy().astype(np.int64), "duplicate_id", [f"id {i!r} seen before" for i in repeated["id"]])
        return rows
    texts = rows.column("text").to_pylist()
    splits = rows.column("split").to_pylist()
    seen: dict[str, int] = {}
    ids = []
    # The label is not part of the id: an id must not tell a model (or a reader) the row's class.
    for text, split in zip(texts, splits):
        base = content_id(text, split)
        occurrence = seen.get(base, 0)
        seen[base] = occurrence + 1
        ids.append(base if occurrence == 0 else content_id(text, split, str(occurrence)))
    return rows.set_column(0, "id", pa.array(ids, pa.string()))


def ingest(config: IngestConfig, datasets_by_source: dict[int, object] | None = None) -> StageResult:
    """Read every source; return rows in the row schema, rejects with reasons, and stats.

    `datasets_by_source` maps a source index to an in-memory `datasets.Dataset`/`DatasetDict`
    to use instead of reading that source's path.
    """
    started = time.perf_counter()
    kept_parts, reject_parts = [], []
    rows_in = 0
    counts = {f"dropped_{reason}": 0 for reason in REASONS}
    all_rows, all_ledgers = [], []
    for index, source in enumerate(config.sources):
        table, unreadable = read_source(source, config.columns, (datasets_by_source or {}).get(index))
        rows, ledger = to_rows(table, source, config)
        all_rows.append(rows)
        all_ledgers.append(ledger)
        if unreadable:
            reject_parts.append(_unreadable_rejects(unreadable))
            for _, _, reason in unreadable:
                counts[f"dropped_{reason.split(':', 1)[0]}"] += 1
        rows_in += table.num_rows + len(unreadable)
    if rows_in == 0:
        raise InputError(f"{', '.join(str(s.path) for s in config.sources)}: no rows to read")
    rows = pa.concat_tables(all_rows)
    ledger = ReasonLedger(rows.num_rows, REASONS)
    ledger.codes = _concat_codes(all_ledgers)
    offset = 0
    for part, part_ledger in zip(all_rows, all_ledgers):
        ledger.details.update({offset + k: v for k, v in part_ledger.details.items()})
        offset += part.num_rows
    rows = _assign_ids(rows, ledger, user_ids=config.columns.id is not None)
    full = conform_rows(rows)
    kept_parts.append(full.filter(pa.array(ledger.kept_mask)))
    reject_parts.insert(0, ledger.rejects_table(full, STAGE))
    for key, value in ledger.counts().items():
        counts[key] += value
    kept = pa.concat_tables(kept_parts)
    rejected = pa.concat_tables(reject_parts)
    stats = {"rows_in": rows_in, "rows_out": kept.num_rows, **counts, "seconds": round(time.perf_counter() - started, 3)}
    return StageResult(kept=kept, rejected=rejected, stats=stats)


def _concat_codes(ledgers: list[ReasonLedger]) -> np.ndarray:
    return np.concatenate([ledger.codes for ledger in ledgers]) if ledgers else np.zeros(0, dtype=np.int16)


def _unreadable_rejects(unreadable: list[tuple[int, str, str]]) -> pa.Table:
    texts = [text for _, text, _ in unreadable]
    rows = pa.table(
        {
            "id": pa.array([content_id("unreadable line", str(number), text) for number, text, _ in unreadable], pa.string()),
            "text": pa.array(texts, pa.string()),
            "split": pa.array(["unknown"] * len(texts), pa.string()),
            "origin": pa.array([Origin.ORIGINAL.value] * len(texts), pa.string()),
        }
    )
    reasons = [reason.split(":", 1)[0] for _, _, reason in unreadable]
    details = [f"line {number}: {reason.split(':', 1)[1]}" for number, _, reason in unreadable]
    return make_rejects(rows, STAGE, reasons, details)
