"""Dev-row probe (issue 21): can a linear head on frozen embeddings learn typo invariance other than from extra rows?

On one data set at k=10 (dev rows, clean and with char@0.10 noise), against the raw head and the head
with keyboard + OCR children (2 per row and op, family weight, as `robustness_children_probe.py`):
- `consistency mu=<m>`: the head's loss plus m x the mean squared change of its logits from a parent's
  embedding to its child's (the children's noise directions are penalised, not only labelled);
- `project out <r>`: every embedding (training and eval) loses its part along the r leading principal
  directions of the child-minus-parent differences;
- `typo reader`: training and eval texts read through the typo reader (model_hooks/spelling.py) built from
  the run's own labeled and unlabeled training texts, before embedding.
Each with the cell's cross-validated L2. One JSON record per line on stdout.

    python benchmarks/robustness_head_probe.py banking77 runs/<a banking77 run>/00_raw.parquet 0,1
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from benchmarks.robustness_children_probe import child_seed  # noqa: E402
from experiments.metrics import classification_scores  # noqa: E402
from experiments.noise import noisy_copy, parse_noise  # noqa: E402
from experiments.runner import scored_eval_rows  # noqa: E402
from experiments.sampling import draw_k_shot  # noqa: E402
from model_hooks.embedder import get_embedder  # noqa: E402
from model_hooks.spelling import TypoReader  # noqa: E402
from model_hooks.trainers import HeadTrainer, choose_head_l2, linear_probabilities  # noqa: E402
from schemas.rows import Split  # noqa: E402
from stages.augmenters import build_augmenter  # noqa: E402

NOISE = parse_noise("char@0.10")


def consistency_head(x, y, n_classes, l2, weights, differences, mu, seed):
    """The head's weighted, class-balanced softmax with mu x mean ||W d||^2 over child-minus-parent differences d."""
    import torch

    torch.manual_seed(seed)
    xt, yt = torch.from_numpy(x.astype(np.float32)), torch.from_numpy(y)
    counts = np.bincount(y, weights=weights, minlength=n_classes)
    combined = torch.from_numpy((weights * (weights.sum() / (n_classes * counts))[y]).astype(np.float32))
    dt = torch.from_numpy(differences.astype(np.float32))
    layer = torch.nn.Linear(x.shape[1], n_classes)
    torch.nn.init.zeros_(layer.weight)
    torch.nn.init.zeros_(layer.bias)
    optimizer = torch.optim.LBFGS(layer.parameters(), lr=1.0, max_iter=500, tolerance_grad=1e-6, line_search_fn="strong_wolfe")
    penalty = l2 / (2 * float(weights.sum()))

    def closure():
        optimizer.zero_grad()
        loss = (torch.nn.functional.cross_entropy(layer(xt), yt, reduction="none") * combined).sum() / combined.sum()
        loss = loss + penalty * layer.weight.pow(2).sum() + mu * (dt @ layer.weight.T).pow(2).sum(1).mean()
        loss.backward()
        return loss

    optimizer.step(closure)
    return layer.weight.detach().numpy(), layer.bias.detach().numpy()


def main() -> None:
    dataset, raw_path, seeds = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3].split(",")]
    rows = pq.read_table(raw_path)
    labels = json.loads(Path(raw_path).with_name("labels.json").read_text())
    index = {label: position for position, label in enumerate(labels)}
    embedder = get_embedder("truncate")
    augmenters = [build_augmenter("keyboard", 0.1), build_augmenter("ocr", 0.1)]
    for seed in seeds:
        drawn = draw_k_shot(rows, 10, seed)
        dev = scored_eval_rows(drawn, "dev")
        texts, gold = dev.column("text").to_pylist(), dev.column("label").to_pylist()
        noisy = [noisy_copy(text, NOISE, seed) for text in texts]
        split = drawn.column("split").to_numpy(zero_copy_only=False)
        labeled = drawn.filter(split == Split.LABELED.value)
        train_texts, train_labels, ids = (labeled.column(name).to_pylist() for name in ("text", "label", "id"))
        children, parents = [], []
        for position, (text, row_id) in enumerate(zip(train_texts, ids)):
            for augmenter in augmenters:
                made = augmenter.augment(text, 2, child_seed(seed, row_id, augmenter.name), frozenset())
                children += made
                parents += [position] * len(made)
        x, kids = embedder.embed(train_texts), embedder.embed(children)
        l2, _ = choose_head_l2(x, train_labels, labels, seed)
        y = np.asarray([index[label] for label in train_labels])
        x_all, y_all = np.vstack([x, kids]), np.concatenate([y, y[parents]])
        family = Counter(ids + [ids[p] for p in parents])
        weights = np.asarray([1.0 / family[i] for i in ids + [ids[p] for p in parents]])
        eval_x = embedder.embed(texts + noisy)
        differences = kids - x[parents]
        directions = np.linalg.svd(differences, full_matrices=False)[2]

        def record(variant: str, probabilities: np.ndarray, n_train: int) -> None:
            predicted = [labels[i] for i in probabilities.argmax(axis=1)]
            clean = classification_scores(gold, predicted[: len(texts)], labels)["macro_f1"]
            with_noise = classification_scores(gold, predicted[len(texts):], labels)["macro_f1"]
            print(json.dumps({"probe": "robustness_head", "dataset": dataset, "eval_split": "dev", "k": 10, "seed": seed, "head_l2": l2,
                              "variant": variant, "macro_f1_clean": round(clean, 4), "macro_f1_char@0.10": round(with_noise, 4),
                              "drop_points": round((clean - with_noise) * 100, 2), "n_train": n_train}), flush=True)

        head = HeadTrainer(l2=l2)
        record("raw", head.fit_predict_proba_vectors(x, train_labels, eval_x, labels, seed), len(x))
        child_labels = train_labels + [train_labels[p] for p in parents]
        record("kb+ocr x2", head.fit_predict_proba_vectors(x_all, child_labels, eval_x, labels, seed, weights), len(x_all))
        for mu in (1.0, 10.0):
            weight, bias = consistency_head(x_all, y_all, len(labels), l2, weights, differences, mu, seed)
            record(f"kb+ocr x2, consistency mu={mu:g}", linear_probabilities(eval_x, weight, bias), len(x_all))
        for rank in (8, 32):
            keep = np.eye(x.shape[1]) - directions[:rank].T @ directions[:rank]
            record(f"kb+ocr x2, project out {rank}",
                   head.fit_predict_proba_vectors(x_all @ keep, child_labels, eval_x @ keep, labels, seed, weights), len(x_all))
        reader = TypoReader.from_texts(drawn.filter(split != Split.EVAL.value).column("text").to_pylist())
        read_x, read_eval = embedder.embed([reader.repair(t) for t in train_texts]), embedder.embed([reader.repair(t) for t in texts + noisy])
        record("typo reader", head.fit_predict_proba_vectors(read_x, train_labels, read_eval, labels, seed), len(x))


if __name__ == "__main__":
    main()
