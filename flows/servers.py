"""The Prefect servers pdap commands start: who owns each one, and stopping those whose owner died.

A command's temporary Prefect server (Prefect starts it on first use when PREFECT_API_URL is
unset; `pdap serve` starts `prefect server start`) stops when the command exits, on SIGTERM too
once the command has called `exit_on_sigterm`. A SIGKILLed command cannot stop it, so every such server is recorded in
PREFECT_HOME/pdap-servers/ with its owner; the next run stops the recorded servers whose owner
is dead, after checking that the process is still that server. Processes are named by
(pid, start time, host), so a reused PID is never mistaken for the one recorded.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import threading
from pathlib import Path

import psutil

from schemas.files import atomic_write_json

STOP_WAIT_S = 10
exit_signal: int | None = None  # the signal that made this process exit, once one has
_recorded: dict[int, dict] = {}  # server PID -> its identity, for the servers this process recorded


def identity(pid: int | None = None) -> dict:
    """The (pid, start time, host) of a process, this one by default."""
    process = psutil.Process(pid)
    return {"pid": process.pid, "started": process.create_time(), "host": socket.gethostname()}


def _process(ident: dict) -> psutil.Process | None:
    """The running process `ident` names, or None when it has ended (or its PID now names another)."""
    try:
        process = psutil.Process(ident["pid"])
        if abs(process.create_time() - ident["started"]) > 0.01 or process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def alive(ident: dict) -> bool:
    """Whether the process is still running; a process of another host counts as running (we cannot tell)."""
    return ident.get("host") != socket.gethostname() or _process(ident) is not None


def is_prefect_server(cmdline: list[str]) -> bool:
    """A Prefect API server: Prefect's temporary uvicorn server or `prefect server start`."""
    line = " ".join(cmdline)
    return ("uvicorn" in line and "prefect.server" in line) or ("prefect" in line and "server start" in line)


def stop_server(ident: dict, group: bool = False) -> bool:
    """Stop the Prefect server `ident` names (its process group with `group`); False if it is not running."""
    process = _process(ident) if ident.get("host") == socket.gethostname() else None
    try:
        if process is None or not is_prefect_server(process.cmdline()):
            return False
        if group and os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signal.SIGTERM)
        else:
            process.terminate()
        try:
            process.wait(STOP_WAIT_S)
        except psutil.TimeoutExpired:
            if group:
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
            process.wait(STOP_WAIT_S)
    except (psutil.NoSuchProcess, ProcessLookupError):
        pass
    return True


def registry() -> Path:
    from prefect.settings import get_current_settings

    return Path(get_current_settings().home) / "pdap-servers"


def record_server(pid: int, group: bool = False) -> dict:
    """Record that this process owns the Prefect server `pid`; the record goes when this process exits."""
    entry = {"server": identity(pid), "group": group, "owner": identity()}
    path = registry() / f"{pid}.json"
    atomic_write_json(path, entry)
    atexit.register(path.unlink, missing_ok=True)
    _recorded[pid] = entry["server"]
    return entry["server"]


def record_temporary_server() -> dict | None:
    """Record the temporary server Prefect started in this process (None when there is none)."""
    from prefect.server.api.server import SubprocessASGIServer

    running = [server.server_process.pid for server in list(SubprocessASGIServer._instances.values())
               if server.running and server.server_process is not None]
    if not running:
        return None
    return _recorded.get(running[0]) or record_server(running[0])


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit in this process (main thread, default handler only), so exit handlers run.

    A command calls it before its flow starts: Prefect's flow engine, on SIGTERM, reports the crash
    and then re-sends the signal to the handler it found, which by default ends the process
    without the exit handlers that stop the temporary server.
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_exit)


def _raise_exit(signum, frame):
    global exit_signal
    exit_signal = signum
    raise SystemExit(128 + signum)


def stop_orphaned_servers() -> None:
    """Stop every recorded server whose owner is dead; drop their records."""
    for path in sorted(registry().glob("*.json")) if registry().is_dir() else []:
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # being written or removed right now
        if alive(entry["owner"]):
            continue
        stop_server(entry["server"], entry.get("group", False))
        path.unlink(missing_ok=True)
