"""One unpadded text per model call, as many calls at once as the process has cores.

The per-text backends (`onnx`, `onnx_int8`, `torch_bf16`) share this: with no padding and no
batch-mates, a text's vector depends on its tokens only, so it is the same bytes whichever call
embeds it; on 2 shared cores this also beat one multi-threaded call on padded batches.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


def unit(pooled: np.ndarray) -> np.ndarray:
    """The pooled vector scaled to length 1 (a zero vector stays zero)."""
    return pooled / max(float(np.linalg.norm(pooled)), 1e-12)


def embed_each(embed_one: Callable[[Sequence[int]], np.ndarray], token_ids: Sequence[Sequence[int]],
               thread_initializer: Callable[[], None] | None = None) -> np.ndarray:
    """(len(token_ids), dims) float32: `embed_one` on each token-id list, one thread per core."""
    with ThreadPoolExecutor(available_cores(), initializer=thread_initializer) as pool:
        vectors = list(pool.map(embed_one, token_ids))
    return np.stack(vectors).astype(np.float32)
