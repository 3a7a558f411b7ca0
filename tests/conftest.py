"""Test set-up: Prefect and Hugging Face stay local and quiet; tiny row-table builders."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# The temporary server needs more than the default 20 s to start on a busy 2-core machine.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
if "PREFECT_HOME" not in os.environ:
    os.environ["PREFECT_HOME"] = tempfile.mkdtemp(prefix="pdap-prefect-")
    atexit.register(shutil.rmtree, os.environ["PREFECT_HOME"], ignore_errors=True)
# INFO logs of the temporary server arrive after pytest has closed its capture streams.
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
for _offline in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_offline, "1")

import pytest  # noqa: E402
from row_fixtures import make_rows  # noqa: E402


@pytest.fixture
def rows():
    return make_rows
