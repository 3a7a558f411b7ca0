"""Tiny sentence-transformers folders for the encoder tests: a 2-layer BERT with seeded random weights, built offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from model_hooks.locations import model_path

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
MODULES = [
    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
]
POOLING_MODES = ("cls_token", "mean_tokens", "max_tokens", "mean_sqrt_len_tokens")


def _write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2), encoding="utf-8")


def _save_bert(folder: Path, hidden: int) -> None:
    import torch
    from transformers import BertConfig, BertModel

    vocab_size = json.loads((model_path() / "config.json").read_text(encoding="utf-8"))["vocab_size"]
    config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=512)
    with torch.random.fork_rng():  # the seed stays local: other tests' random draws are untouched
        torch.manual_seed(0)
        model = BertModel(config).eval()
    model.save_pretrained(folder, safe_serialization=True)


def build_tiny_encoder(folder: Path, pooling: str = "mean", hidden: int = 32) -> Path:
    """Write a loadable sentence-transformers folder (BERT, `hidden` dims, mean or cls pooling, L2 norm) at `folder`."""
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    _save_bert(folder, hidden)
    for name in TOKENIZER_FILES:
        shutil.copyfile(model_path() / name, folder / name)
    _write_json(folder / "modules.json", MODULES)
    wanted = "mean_tokens" if pooling == "mean" else "cls_token"
    _write_json(folder / "1_Pooling" / "config.json",
                {"word_embedding_dimension": hidden, **{f"pooling_mode_{mode}": mode == wanted for mode in POOLING_MODES}})
    (folder / "2_Normalize").mkdir(exist_ok=True)
    _write_json(folder / "sentence_bert_config.json", {"max_seq_length": 128, "do_lower_case": False})
    return folder
