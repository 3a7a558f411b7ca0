"""The bundled sentence model as an ONNX file, exported locally once, for the ONNX Runtime backend.

`python -m model_hooks.resources install` calls `export_onnx_model()`: the transformer of the
bundled all-MiniLM-L6-v2 (token states, before pooling) is traced with torch's TorchScript ONNX
exporter, ONNX Runtime's BERT optimiser fuses its attention, layer norms and GELU, and the file is
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

from model_hooks.locations import PROJECT_ROOT, model_path

ONNX_DIR = Path(os.environ.get("PDAP_ONNX_DIR", PROJECT_ROOT / ".cache" / "onnx"))
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


# The int8 file's name carries its recipe: the embedding cache keys vectors by file name, so a new
# recipe never reuses vectors of an old one.
MODEL_FILES = {"onnx": "all-MiniLM-L6-v2.onnx", "onnx_int8": "all-MiniLM-L6-v2.int8-per-channel-7bit.onnx"}


def onnx_model_file(backend: str = "onnx") -> Path:
    """The exported file a backend runs: fp32 for `onnx`, its int8 quantisation for `onnx_int8`."""
    return ONNX_DIR / MODEL_FILES[backend]


def export_onnx_model() -> bool:
    """Write the ONNX file if it is missing; True if it was written."""
    target = onnx_model_file()
    if target.is_file():
        return False
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(model_path())).eval()
    example = AutoTokenizer.from_pretrained(str(model_path()))(["an example", "a second, longer example"], padding=True, return_tensors="pt")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as work:
        traced = Path(work) / "traced.onnx"
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model, tuple(example[name] for name in ONNX_INPUTS), str(traced), input_names=list(ONNX_INPUTS),
                output_names=["token_states"], opset_version=OPSET, dynamo=False,
                dynamic_axes={name: {0: "batch", 1: "tokens"} for name in (*ONNX_INPUTS, "token_states")},
            )
        fused = optimize_model(str(traced), model_type="bert", num_heads=model.config.num_attention_heads,
                               hidden_size=model.config.hidden_size, opt_level=0)
        written = Path(work) / target.name
        fused.save_model_to_file(str(written))
        os.replace(written, target)
    return True


def export_int8_model() -> bool:
    """Write the int8 file from the fp32 one (exported first if missing); True if it was written."""
    target = onnx_model_file("onnx_int8")
    if target.is_file():
        return False
    export_onnx_model()
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
            quantize_dynamic(onnx_model_file("onnx"), written, weight_type=QuantType.QInt8, per_channel=True,
                             reduce_range=True, extra_options={"DefaultTensorType": TensorProto.FLOAT})
        finally:
            logging.disable(logging.NOTSET)
        os.replace(written, target)
    return True
