"""What every stage returns, and the small filter interface stages are built from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import polars as pl
import pyarrow as pa

from schemas.rows import make_rejects

@dataclass
class StageResult:
    """Kept rows, rejected rows (with reasons), stats with fixed keys, and any extra tables.

    Stats always hold `rows_in`, `rows_out`, `seconds` and one `dropped_<reason>` per reason.
    `extra` holds tables a stage produces besides rows (the validate stage's per-check scores).
    """

    kept: pa.Table
    rejected: pa.Table
    stats: dict = field(default_factory=dict)
    extra: dict[str, pa.Table] = field(default_factory=dict)


class RowFilter(Protocol):
    """A named check: `keep` returns True for rows to keep; rejected rows get `reason`."""

    reason: str

    def keep(self, texts: pl.Series) -> pl.Series: ...


class ReasonLedger:
    """One reason code per row (0 = kept), so no Python object is held per row."""

    def __init__(self, n_rows: int, reasons: list[str]):
        self.reasons = reasons
        self._code = {reason: index + 1 for index, reason in enumerate(reasons)}
        self.codes = np.zeros(n_rows, dtype=np.int16)
        self.details = {}

    @classmethod
    def concatenate(cls, reasons: list[str], parts: list[tuple[np.ndarray, dict[int, str]]]) -> "ReasonLedger":
        """One ledger from consecutive parts' (codes, details), details re-keyed to the joined rows."""
        ledger = cls(0, reasons)
        ledger.codes = np.concatenate([codes for codes, _ in parts]) if parts else np.zeros(0, dtype=np.int16)
        offset = 0
        for codes, details in parts:
            ledger.details.update((row + offset, detail) for row, detail in details.items())
            offset += len(codes)
        return ledger

    def reject(self, rows: np.ndarray, reason: str, details: list[str] | None = None) -> None:
        """Mark `rows` (indices) as rejected for `reason`, unless an earlier reason already holds."""
        fresh = self.codes[rows] == 0
        rows = rows[fresh]
        self.codes[rows] = self._code[reason]
        if details is not None:
            kept_details = (detail for detail, is_fresh in zip(details, fresh) if is_fresh)
            self.details.update(zip(rows.tolist(), kept_details))

    @property
    def kept_mask(self) -> np.ndarray:
        return self.codes == 0

    def counts(self) -> dict[str, int]:
        counted = np.bincount(self.codes, minlength=len(self.reasons) + 1)
        return {f"dropped_{reason}": int(counted[index + 1]) for index, reason in enumerate(self.reasons)}

    def rejects_table(self, rows: pa.Table, stage: str) -> pa.Table:
        rejected = np.flatnonzero(self.codes)
        reasons = [self.reasons[code - 1] for code in self.codes[rejected]]
        details = [self.details.get(index) for index in rejected.tolist()]
        return make_rejects(rows.take(pa.array(rejected)), stage, reasons, details)
