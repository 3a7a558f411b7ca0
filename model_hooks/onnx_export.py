"""A sentence encoder as an ONNX file, exported locally once, for the ONNX Runtime backend.

`python -m model_hooks.resources install` calls `export_onnx_model()` for the bundled MiniLM
(`make encoder-mpnet` for mpnet; a user's own folder is exported on its first use): the encoder's
transformer (token states, before pooling) is traced with torch's TorchScript ONNX exporter, ONNX Runtime's BERT optimiser fuses its attention, layer norms and GELU, and the file is
written atomically under `.cache/onnx/` (git-ignored). `export_int8_model()` then writes, beside
it, ONNX Runtime's dynamic int8 quantisation of that file (int8 weights, activations quantised per
call) for the opt-in `onnx_int8` backend. Idempotent: an existing file is kept; a second export
gives the same bytes. Nothing is downloaded.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from pathlib import Path

from model_hooks.encoders import Encoder, resolve_encoder
from model_hooks.locations import PROJECT_ROOT

ONNX_DIR = Path(os.environ.get("PDAP_ONNX_DIR", PROJECT_ROOT / ".cache" / "onnx"))
INPUT_ORDER = ("input_ids", "attention_mask", "token_type_ids")  # the transformers forward() order
OPSET = 17
# The int8 file's name carries its recipe: the embedding cache keys vectors by file name, so a new
# recipe never reuses vectors of an old one. MiniLM keeps the recipe its figures were measured with;
# other encoders also keep the products after GELU in fp32 (see `_int8_excluded`).
INT8_SUFFIX = ".int8-per-channel-7bit.onnx"
INT8_SUFFIX_FP32_AFTER_GELU = ".int8-per-channel-7bit-fp32-after-gelu.onnx"
GELU_OPS = {"Gelu", "BiasGelu", "FastGelu"}


def _keeps_gelu_products_fp32(encoder: Encoder) -> bool:
    return encoder.identity != "all-MiniLM-L6-v2"


def onnx_model_file(backend: str = "onnx", encoder: Encoder | None = None) -> Path:
    """The exported file a backend runs for an encoder (default MiniLM): fp32 for `onnx`, its int8 quantisation for `onnx_int8`."""
    encoder = encoder or resolve_encoder("minilm")
    if backend == "onnx":
        return ONNX_DIR / f"{encoder.identity}.onnx"
    return ONNX_DIR / (encoder.identity + (INT8_SUFFIX_FP32_AFTER_GELU if _keeps_gelu_products_fp32(encoder) else INT8_SUFFIX))


def export_onnx_model(encoder: Encoder | None = None) -> bool:
    """Write the encoder's (default MiniLM's) ONNX file if it is missing; True if it was written."""
    encoder = encoder or resolve_encoder("minilm")
    target = onnx_model_file("onnx", encoder)
    if target.is_file():
        return False
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(encoder.folder)).eval()
    pieces = AutoTokenizer.from_pretrained(str(encoder.folder))
    example = pieces(["an example", "a second, longer example"], padding=True, return_tensors="pt")
    inputs = [name for name in INPUT_ORDER if name in pieces.model_input_names]  # MPNet takes no token_type_ids
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        traced = Path(work) / "traced.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, tuple(example[name] for name in inputs), str(traced), input_names=inputs,
                output_names=["token_states"], opset_version=OPSET, dynamo=False,
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*inputs, "token_states")},
            )
        fused = optimize_model(str(traced), model_type="bert", num_heads=model.config.num_attention_heads,
                               hidden_size=model.config.hidden_size, opt_level=0)
        written = Path(work) / target.name
        fused.save_model_to_file(str(written))
        os.replace(written, target)
    return True


def export_int8_model(encoder: Encoder | None = None) -> bool:
    """Write the encoder's (default MiniLM's) int8 file from the fp32 one (exported first if missing); True if it was written."""
    encoder = encoder or resolve_encoder("minilm")
    target = onnx_model_file("onnx_int8", encoder)
    if target.is_file():
        return False
    export_onnx_model(encoder)
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        written = Path(work) / target.name
        logging.disable(logging.WARNING)  # its advice to pre-process (shape inference) does not apply here
        try:
            # per-channel weight scales: 1 - cos to fp32 drops from about 6e-2 (one scale per tensor) to 7e-3;
            # 7-bit weights (reduce_range): AVX2 without VNNI sums u8 x s8 products in 16 bits, which saturate
            # with full-range weights (bench_embed: max 1 - cos 2.1e-2 -> 1.3e-2, and no slower);
            # the fused BERT ops are outside ONNX's shape inference: their outputs are float tensors
            quantize_dynamic(onnx_model_file("onnx", encoder), written, weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=True, nodes_to_exclude=_int8_excluded(onnx_model_file("onnx", encoder), _keeps_gelu_products_fp32(encoder)),
                             extra_options={"DefaultTensorType": TensorProto.FLOAT})
        finally:
            logging.disable(logging.NOTSET)
        os.replace(written, target)
    return True


def _int8_excluded(path: Path, after_gelu: bool) -> list[str]:
    """MatMul nodes of an ONNX file that stay fp32 in the int8 file: products of two activations (where attention is
    not fused, as in MPNet with its relative position bias) and, with `after_gelu`, the feed-forward output projections.

    Activations are quantised per call with one scale per tensor; GELU outputs carry a few very large channels in
    mpnet, so one scale for all of them moved its vectors by up to 0.18 in 1 - cos (0.014 with them in fp32; MiniLM,
    quantised there too, measures 0.013).
    """
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    weights = {tensor.name for tensor in graph.initializer}
    producer = {output: node.op_type for node in graph.node for output in node.output}
    return [node.name for node in graph.node if node.op_type == "MatMul" and (
        not weights.intersection(node.input) or (after_gelu and producer.get(node.input[0]) in GELU_OPS))]
