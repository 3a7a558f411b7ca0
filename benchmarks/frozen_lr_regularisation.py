"""Frozen-embedding logistic regression at C=1 and C=10 on the demo protocol (5 seeds, k 10/25/100).

Backs the README's explanation of the gap to the orientation figures. Needs the ingested demo
rows: run `pdap curate --config configs/demo.yaml` first and pass its 00_raw.parquet.
"""

import sys
import warnings

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
from sklearn.linear_model import LogisticRegression

import harness
from experiments.metrics import classification_scores
from experiments.sampling import draw_k_shot
from harness import RESULTS
from model_hooks.embedder import get_embedder

warnings.filterwarnings("ignore")


def main(raw_path: str) -> None:
    rows = pq.read_table(raw_path)
    embedder = get_embedder("truncate")
    eval_rows = rows.filter(pc.equal(rows.column("split"), "eval"))
    eval_x, eval_y = embedder.embed(eval_rows.column("text").to_pylist()), eval_rows.column("label").to_pylist()
    labels = sorted(set(eval_y))
    records = []
    for k in (10, 25, 100):
        for seed in range(5):
            drawn = draw_k_shot(rows, k, seed)
            train = drawn.filter(pc.equal(drawn.column("split"), "labeled"))
            x, y = embedder.embed(train.column("text").to_pylist()), train.column("label").to_pylist()
            for c in (1.0, 10.0):
                predicted = LogisticRegression(C=c, max_iter=2000).fit(x, y).predict(eval_x).tolist()
                scores = classification_scores(eval_y, predicted, labels)
                records.append({"bench": "frozen_lr_regularisation", "C": c, "k": k, "seed": seed,
                                "macro_f1": round(scores["macro_f1"], 6), "accuracy": round(scores["accuracy"], 6)})
    harness.rewrite_records(RESULTS / "frozen_lr_regularisation.jsonl", records)
    for c in (1.0, 10.0):
        print(c, [round(float(np.mean([r["macro_f1"] for r in records if r["C"] == c and r["k"] == k])), 3) for k in (10, 25, 100)])


if __name__ == "__main__":
    main(sys.argv[1])
