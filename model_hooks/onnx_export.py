"""The bundled sentence model as an ONNX file, exported locally once, for the ONNX Runtime backend.

`python -m model_hooks.resources install` calls `export_onnx_model()`: the transformer of the
bundled all-MiniLM-L6-v2 (token states, before pooling) is traced with torch's TorchScript ONNX
exporter, ONNX Runtime's BERT optimiser fuses its attention, layer norms and GELU, and the file is
written atomically under `.cache/onnx/` (git-ignored). Idempotent: an existing file is kept.
Nothing is downloaded.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from model_hooks.resources import PROJECT_ROOT

ONNX_DIR = Path(os.environ.get("PDAP_ONNX_DIR", PROJECT_ROOT / ".cache" / "onnx"))
ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
OPSET = 17


def onnx_model_file() -> Path:
    return ONNX_DIR / "all-MiniLM-L6-v2.onnx"


def export_onnx_model() -> bool:
    """Write the ONNX file if it is missing; True if it was written."""
    target = onnx_model_file()
    if target.is_file():
        return False
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from onnxruntime.transformers.optimizer import optimize_model
    from transformers import AutoModel, AutoTokenizer

    from model_hooks.embedder import model_path

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
