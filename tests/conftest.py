"""Test set-up: Prefect and Hugging Face stay local and quiet; tiny row-table builders."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="pdap-prefect-"))
for _offline in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_offline, "1")

import pytest  # noqa: E402
from row_fixtures import make_rows  # noqa: E402


@pytest.fixture
def rows():
    return make_rows
