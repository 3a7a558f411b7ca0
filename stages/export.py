"""Hand curated rows back to Hugging Face `datasets` with a ClassLabel feature."""

from __future__ import annotations

import pyarrow as pa

from schemas.rows import family_weights


def to_hf_dataset(rows: pa.Table, labels: list[str], splits: tuple[str, ...] = ("labeled",)):
    """A `datasets.Dataset` of the rows in `splits` with `label` as a ClassLabel over `labels`.

    `sample_weight` is the row's family weight (`schemas.rows.family_weights`): pass it to a loss or
    `fit(sample_weight=...)` so augmented children do not count as independent examples.
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
            "origin": datasets.Value("string"),
            "sample_weight": datasets.Value("float64"),
        }
    )
    index = {name: position for position, name in enumerate(labels)}
    return datasets.Dataset.from_dict(
        {
            "id": chosen.column("id").to_pylist(),
            "text": chosen.column("text").to_pylist(),
            "label": [index[label] for label in chosen.column("label").to_pylist()],
            "origin": chosen.column("origin").to_pylist(),
            "sample_weight": family_weights(chosen).tolist(),
        },
        features=features,
    )
