"""Sentence vectors with torch in bfloat16, for CPUs whose matrix units multiply bf16 (Intel AMX).

The encoder's Linear weights are cast to bfloat16 once; each forward pass runs under CPU
autocast, so the matrix products take bf16 inputs and accumulate in fp32 on AMX, while layer norms,
softmax, the residual stream and the mean pooling stay fp32. As in the ONNX backend, each text runs
on its own, unpadded, on a thread limited to one intra-op thread, as many at once as the process has
cores (model_hooks/per_text.py): a text's vector depends on its tokens only.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from model_hooks.cpu_info import CPU_INFO, cpu_model_and_flags
from model_hooks.encoders import Encoder
from model_hooks.per_text import embed_each, unit

BF16_CPU_FLAG = "amx_bf16"


def native_bf16_cpu(cpu_info: Path = CPU_INFO) -> bool:
    """True if the CPU multiplies bf16 matrices in hardware (AMX-BF16); False where it cannot tell."""
    return BF16_CPU_FLAG in cpu_model_and_flags(cpu_info)[1]


@lru_cache(maxsize=4)
def bf16_model(encoder: Encoder):
    """The encoder's transformer (token states, before pooling) with bf16 Linear weights, loaded once."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(encoder.folder)).eval()
    if hasattr(model, "pooler"):
        model.pooler = None  # sentence vectors mean-pool the token states; the [CLS] pooler's output is never used
    for module in model.modules():
        if isinstance(module, torch.nn.Linear):
            module.to(torch.bfloat16)
    return model


def _one_intra_op_thread() -> None:
    import torch

    torch.set_num_threads(1)  # OpenMP's thread count is per calling thread: the caller's stays as it was


def _embed_one(model, ids: list[int]) -> np.ndarray:
    import torch

    tokens = torch.tensor([ids])
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        states = model(input_ids=tokens, attention_mask=torch.ones_like(tokens)).last_hidden_state[0]
    return unit(states.float().mean(dim=0).numpy())  # no padding: every token counts


def embed_token_ids(token_ids: list[list[int]], encoder: Encoder) -> np.ndarray:
    """(len(token_ids), dims) float32 unit vectors of `encoder`, one per token-id list (with [CLS] and [SEP])."""
    model = bf16_model(encoder)
    return embed_each(lambda ids: _embed_one(model, ids), token_ids, thread_initializer=_one_intra_op_thread)
