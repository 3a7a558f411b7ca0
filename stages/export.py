"""Hand curated rows back to Hugging Face `datasets` with a ClassLabel feature."""

from __future__ import annotations

import pyarrow as pa

from schemas.rows import family_weights


def to_hf_dataset(rows: pa.Table, labels: list[str], splits: tuple[str, ...] = ("labeled",)):
    """A `datasets.Dataset` of the rows in `splits` with `label` as a ClassLabel over `labels`.

    `sample_weight` is the row's family weight (`schemas.rows.family_weights`): pass it to a loss or
    `fit(sample_weight=...)` so augmented children do not count as independent examples. `split`,
    `origin`, `op` and `parent_id` come with every row: an augmented child's `parent_id` names its
    parent, so grouping by `parent_id or id` keeps a family on one side of a train/dev split.
    """
    import datasets
    import pyarrow.compute as pc

    chosen = rows.filter(pc.is_in(rows.column("split"), pa.array(list(splits), pa.string())))
    unknown = set(chosen.column("label").to_pylist()) - set(labels)
    if unknown:
        raise ValueError(f"labels {sorted(map(str, unknown))} are not in the label set {labels}")
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(labels)),
            "split": datasets.Value("string"),
            "origin": datasets.Value("string"),
            "op": datasets.Value("string"),
            "parent_id": datasets.Value("string"),
            "sample_weight": datasets.Value("float64"),
        }
    )
    index = {name: position for position, name in enumerate(labels)}
    return datasets.Dataset.from_dict(
        {
            "id": chosen.column("id").to_pylist(),
            "text": chosen.column("text").to_pylist(),
            "label": [index[label] for label in chosen.column("label").to_pylist()],
            **{name: chosen.column(name).to_pylist() for name in ("split", "origin", "op", "parent_id")},
            "sample_weight": family_weights(chosen).tolist(),
        },
        features=features,
    )
