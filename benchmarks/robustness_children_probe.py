"""Dev-row probe (issue 21): how much of the char@0.10 drop can robustness children win back for the head?

Raw k=10 rows plus keyboard and OCR children (our nlpaug augmenters) and optionally nlpaug character swaps,
2 or 4 per row and op, ungated, at family or full weight; the head with the cell's cross-validated L2;
macro-F1 on the dev rows, clean and with char@0.10 noise. Records: benchmarks/results/suite_dev/
robustness_children_probe.jsonl (made by the first version of this script, whose child seeds also
depended on Python object ids: a rerun draws other children of the same kinds and counts).

    python benchmarks/robustness_children_probe.py banking77 runs/<a banking77 run>/00_raw.parquet 0,1
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow.parquet as pq  # noqa: E402

from experiments.metrics import classification_scores  # noqa: E402
from experiments.noise import noisy_copy, parse_noise  # noqa: E402
from experiments.runner import scored_eval_rows  # noqa: E402
from experiments.sampling import draw_k_shot  # noqa: E402
from model_hooks.embedder import get_embedder  # noqa: E402
from model_hooks.trainers import choose_head_l2, make_trainer  # noqa: E402
from stages.augmenters import build_augmenter  # noqa: E402

NOISE = parse_noise("char@0.10")


def char_swaps(text: str, n: int, seed: int) -> list[str]:
    """Up to n variants with neighbouring characters swapped in 10% of the words (nlpaug RandomCharAug)."""
    import nlpaug.augmenter.char as nac

    rng = random.Random(seed)
    augmenter = nac.RandomCharAug(action="swap", aug_word_p=0.1, aug_char_max=1, include_upper_case=False, include_numeric=False,
                                  tokenizer=str.split, reverse_tokenizer=" ".join)
    augmenter.sample = lambda x, num=None: rng.sample(x, num)
    variants: list[str] = []
    for _ in range(3 * n):
        variant = augmenter.augment(text)[0]
        if len(variants) < n and variant != text and variant not in variants:
            variants.append(variant)
    return variants


def child_seed(seed: int, row_id: str, op: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{row_id}:{op}".encode()).digest()[:4], "big")


def main() -> None:
    dataset, raw_path, seeds = sys.argv[1], sys.argv[2], [int(s) for s in sys.argv[3].split(",")]
    rows = pq.read_table(raw_path)
    labels = json.loads(Path(raw_path).with_name("labels.json").read_text())
    keyboard, ocr = build_augmenter("keyboard", 0.1), build_augmenter("ocr", 0.1)
    ops = {"keyboard": lambda t, n, s: keyboard.augment(t, n, s, frozenset()), "ocr": lambda t, n, s: ocr.augment(t, n, s, frozenset()),
           "char_swap": char_swaps}
    for seed in seeds:
        drawn = draw_k_shot(rows, 10, seed)
        dev = scored_eval_rows(drawn, "dev")
        texts, gold = dev.column("text").to_pylist(), dev.column("label").to_pylist()
        noisy = [noisy_copy(text, NOISE, seed) for text in texts]
        labeled = drawn.filter(drawn.column("split").to_numpy(zero_copy_only=False) == "labeled")
        train_texts, train_labels, ids = (labeled.column(name).to_pylist() for name in ("text", "label", "id"))
        l2, _ = choose_head_l2(get_embedder("truncate").embed(train_texts), train_labels, labels, seed)
        head = make_trainer("head", "truncate", None, l2)
        variants = {"raw": ([], [], [])}
        for per in (2, 4):
            for name, chosen in ((f"kb+ocr x{per}", ("keyboard", "ocr")), (f"kb+ocr+swap x{per}", ("keyboard", "ocr", "char_swap"))):
                children = [(child, label, row_id) for text, label, row_id in zip(train_texts, train_labels, ids) for op in chosen
                            for child in ops[op](text, per, child_seed(seed, row_id, op))]
                variants[name] = tuple(map(list, zip(*children))) if children else ([], [], [])
        for name, (child_texts, child_labels, parents) in variants.items():
            for weighting in ("family", "full") if child_texts else ("family",):
                families = ids + parents if weighting == "family" else None
                predicted = head.fit_predict(train_texts + child_texts, train_labels + child_labels, texts + noisy, labels, seed, families)
                clean = classification_scores(gold, predicted[: len(texts)], labels)["macro_f1"]
                with_noise = classification_scores(gold, predicted[len(texts):], labels)["macro_f1"]
                print(json.dumps({"probe": "robustness_children", "dataset": dataset, "eval_split": "dev", "k": 10, "seed": seed,
                                  "variant": name, "weighting": weighting, "macro_f1_clean": round(clean, 4),
                                  "macro_f1_char@0.10": round(with_noise, 4), "drop_points": round((clean - with_noise) * 100, 2),
                                  "n_train": len(train_texts) + len(child_texts)}), flush=True)


if __name__ == "__main__":
    main()
