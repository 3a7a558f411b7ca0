"""Which typo reader (model_hooks/spelling.py) a run's rows are read through, if any."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from model_hooks.spelling import TypoReader
from schemas.rows import Split


def typo_reader(rows: pa.Table, config) -> TypoReader | None:
    """The typo reader for `rows` when `experiment.typo_reader` asks for one (`auto`: with `augmentation.goal:
    robustness`). Its vocabulary is every labeled and unlabeled text of `rows`, never an eval row."""
    setting = config.experiment.typo_reader
    if setting == "off" or (setting == "auto" and config.augmentation.goal != "robustness"):
        return None
    return TypoReader.from_texts(rows.filter(pc.not_equal(rows.column("split"), Split.EVAL.value)).column("text").to_pylist())
