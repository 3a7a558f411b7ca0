"""Test set-up: Prefect and Hugging Face stay local and quiet; tiny row-table builders."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid

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
# Every process the tests start inherits this tag, so the servers they leave can be told from others'.
SESSION_TAG = os.environ["PDAP_TEST_SESSION"] = uuid.uuid4().hex

import psutil  # noqa: E402
import pytest  # noqa: E402
from row_fixtures import make_rows  # noqa: E402

from flows.servers import is_prefect_server  # noqa: E402


@pytest.fixture
def rows():
    return make_rows


def _in_process_servers() -> set[int]:
    """The temporary server Prefect runs for this pytest process: it stops when the process exits."""
    server_module = sys.modules.get("prefect.server.api.server")
    if server_module is None:  # no test of this process has started one
        return set()
    SubprocessASGIServer = server_module.SubprocessASGIServer
    return {server.server_process.pid for server in list(SubprocessASGIServer._instances.values()) if server.server_process}


def session_servers(include_own: bool = False) -> list[psutil.Process]:
    """The running Prefect servers started by this session's tests (and this process's own with `include_own`)."""
    own = set() if include_own else _in_process_servers()
    found = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if (is_prefect_server(process.info["cmdline"] or []) and process.pid not in own
                    and process.environ().get("PDAP_TEST_SESSION") == SESSION_TAG):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def leftover_servers(wait_s: float = 10.0) -> list[psutil.Process]:
    """`session_servers()` still running after up to `wait_s` (a server may be shutting down)."""
    deadline = time.monotonic() + wait_s
    while (found := session_servers()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return found


def _stop_servers_then_die(signum, frame):
    """A test session stopped by SIGTERM (a CI timeout) first stops every server its tests started."""
    for process in session_servers(include_own=True):
        process.kill()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


signal.signal(signal.SIGTERM, _stop_servers_then_die)


def _stop_and_fail(leftovers: list[psutil.Process], when: str) -> None:
    if not leftovers:
        return
    described = [f"pid {process.pid}: {' '.join(process.info['cmdline'])[:160]}" for process in leftovers]
    for process in leftovers:
        process.kill()
    psutil.wait_procs(leftovers, timeout=10)
    pytest.fail(f"{len(leftovers)} Prefect server(s) still running {when} (now killed): " + "; ".join(described))


@pytest.fixture(autouse=True)
def no_prefect_server_outlives_its_test():
    """Every server a test starts, directly or through a pdap subprocess, is stopped by the end of the test."""
    yield
    _stop_and_fail(leftover_servers(), "after this test")


@pytest.fixture(scope="session", autouse=True)
def no_prefect_server_outlives_the_session():
    """The same check once more at the end of the session (servers of session-scoped fixtures)."""
    yield
    _stop_and_fail(leftover_servers(), "at the end of the session")
