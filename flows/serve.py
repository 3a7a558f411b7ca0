"""`pdap serve`: the scheduled flows of a config as Prefect deployments, served until stopped.

Prefect cannot schedule on its temporary (ephemeral) server, so serving needs a real one: the
one at PREFECT_API_URL when it is set, else a local `prefect server start` (SQLite, loopback,
a free port) that this command starts, waits for, and stops on exit. The server is recorded in
PREFECT_HOME (flows/servers.py), so after a SIGKILL the next pdap run stops it; the serving child
process stops itself when this command is gone.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from flows import servers

SERVER_START_TIMEOUT_S = 120


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@contextmanager
def local_server(log_path: Path) -> Iterator[str]:
    """Start `prefect server start` on a free loopback port; yield its API URL; stop it on exit."""
    servers.stop_orphaned_servers()
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"},
            start_new_session=True,
        )
    try:
        servers.record_server(server.pid, group=True)
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(api_url):
            if server.poll() is not None:
                raise TimeoutError(f"the Prefect server exited with code {server.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the Prefect server did not answer within {SERVER_START_TIMEOUT_S} s; see {log_path}")
            time.sleep(0.5)
        yield api_url
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)


def deployments(config) -> list:
    """One deployment per scheduled flow, at most one run of each at a time."""
    from flows.curate import curate_flow
    from flows.experiment import experiment_flow
    from flows.refresh import refresh_flow

    flows = {"refresh": refresh_flow, "curate": curate_flow, "experiment": experiment_flow}
    schedule = config.schedule
    timing = {"interval": schedule.interval_seconds} if schedule.interval_seconds is not None else {"cron": schedule.cron}
    parameters = {"config": config.model_dump(mode="json")}
    return [flows[name].to_deployment(name=f"{config.name}-{name}", parameters=parameters, concurrency_limit=1, **timing)
            for name in schedule.flows]


def serve_scheduled(config_path: Path, config, say: Callable[[str], None]) -> int:
    """Serve `config`'s scheduled flows; blocks until interrupted. Returns an exit code."""
    if os.environ.get("PREFECT_API_URL"):
        return _serve_here(config)

    def stop(signum, frame):  # SIGTERM: leave through the finally blocks, which stop the server
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    with local_server(Path(config.runs_dir) / ".prefect-server.log") as api_url:
        say(f"Prefect API: {api_url}")
        say(f"Prefect UI:  {api_url.removesuffix('/api')}")
        # the serving process gets the server's URL in its environment before Prefect loads settings
        child = subprocess.Popen([sys.executable, "-m", "flows.serve", str(config_path), str(os.getpid())], env={**os.environ, "PREFECT_API_URL": api_url})
        try:
            return child.wait()
        except KeyboardInterrupt:
            return 0
        finally:
            if child.poll() is None:
                child.terminate()
                try:
                    child.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    child.kill()


def _serve_here(config) -> int:
    from prefect import serve

    serve(*deployments(config))
    return 0


def _exit_with_parent(parent: int) -> None:
    """Stop this process once `parent` (pdap serve) is gone, even SIGKILLed: its server is gone too."""
    def watch():
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


if __name__ == "__main__":
    from flows.config import RunConfig

    _exit_with_parent(int(sys.argv[2]))
    sys.exit(_serve_here(RunConfig.load(sys.argv[1])))
