"""Servers the round-trip tests start on this machine and stop by their process ids: a local S3
server (moto's server mode) and a Ray head with its own ports, temp dir and dashboard (Ray Jobs).

Nothing here stops anything it did not start: never `ray stop`, never a kill by process name.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import defaultdict
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterator

VENV_BIN = Path(sys.executable).parent


def free_ports(n: int) -> list[int]:
    """n distinct ports free on every interface right now (held open together, so no repeats)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _wait(ok, what: str, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}: {log.read_text()[-3000:]}")
        if ok():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what} not up after {timeout:.0f} s: {log.read_text()[-3000:]}")


def _listening(port: int) -> bool:
    with closing(socket.socket()) as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


# ---- processes by id ---------------------------------------------------------------------------
def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) from /proc, None once the process is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return fields[0], int(fields[1])
    except (OSError, IndexError, ValueError):
        return None


def _all_pids() -> list[int]:
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def descendants(pid: int) -> set[int]:
    children = defaultdict(list)
    for p in _all_pids():
        st = _stat(p)
        if st:
            children[st[1]].append(p)
    out, todo = set(), [pid]
    while todo:
        for c in children[todo.pop()]:
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def mentioning(marker: str) -> set[int]:
    """Processes whose command line names `marker` (a folder only our processes were given)."""
    out = set()
    for p in _all_pids():
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if marker.encode() in f.read():
                    out.add(p)
        except OSError:
            continue
    return out


def alive(pids: set[int]) -> set[int]:
    return {p for p in pids if (st := _stat(p)) and st[0] != "Z"}


def stop_pids(pids: set[int], grace: float = 15.0) -> set[int]:
    """SIGTERM these processes, SIGKILL what is left after `grace` seconds; -> those still alive."""
    pids = set(pids) - {os.getpid()}
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        for p in alive(pids):
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.time() + wait
        while alive(pids) and time.time() < deadline:
            time.sleep(0.2)
    return alive(pids)


# ---- S3 ----------------------------------------------------------------------------------------
@contextmanager
def s3_server(log_dir: Path) -> Iterator[dict[str, str]]:
    """moto's S3 server on a free port; yields the environment that points AWS clients (pyarrow's
    S3FileSystem, boto3, the aws CLI) at it."""
    port = free_ports(1)[0]
    log = log_dir / "moto.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait(lambda: _listening(port), "moto S3 server", 60, proc, log)
        yield {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_EC2_METADATA_DISABLED": "true"}
    finally:
        left = stop_pids({proc.pid} | descendants(proc.pid))
        proc.wait(timeout=10)
        assert not left, f"moto server processes left: {left}"


# ---- a Ray head with the dashboard (Ray Jobs) --------------------------------------------------
@contextmanager
def ray_head(env: dict[str, str], num_cpus: int = 2) -> Iterator[str]:
    """`ray start --head --block` with its own ports and temp dir, so it never meets another Ray
    on this machine; yields the dashboard's address (for `ray job submit --address`). Stopped by
    the ids of the processes it started (its process tree, and any process naming its temp dir)."""
    tmp = tempfile.mkdtemp(prefix="rayhead-", dir="/tmp")  # short: Ray's unix sockets live under it
    gcs, node_manager, object_manager, client, dashboard, agent, agent_grpc, env_agent, metrics = free_ports(9)
    log = Path(tmp) / "ray-start.log"
    cmd = [str(VENV_BIN / "ray"), "start", "--head", "--block", "--disable-usage-stats",
           "--node-ip-address", "127.0.0.1", "--port", str(gcs), "--num-cpus", str(num_cpus), "--num-gpus", "0",
           "--object-store-memory", str(300 * 1024 ** 2), "--temp-dir", tmp,
           "--node-manager-port", str(node_manager), "--object-manager-port", str(object_manager),
           "--ray-client-server-port", str(client), "--min-worker-port", "0", "--max-worker-port", "0",
           "--include-dashboard", "true", "--dashboard-host", "127.0.0.1", "--dashboard-port", str(dashboard),
           "--dashboard-agent-listen-port", str(agent), "--dashboard-agent-grpc-port", str(agent_grpc),
           "--runtime-env-agent-port", str(env_agent), "--metrics-export-port", str(metrics)]
    # The venv's python and ray first on PATH: a job's entrypoint `python -m ...` runs with this PATH.
    # No token authentication, as on a cluster launcher head (no token there; its dashboard is reached
    # through `ray dashboard`'s SSH tunnel): Ray turns it on for a new head when ~/.ray/auth_token exists.
    head_env = {**os.environ, **env, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=head_env, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"

    def jobs_api_up() -> bool:
        try:
            with urllib.request.urlopen(f"{address}/api/version", timeout=5) as r:
                return "ray_version" in json.loads(r.read())
        except (OSError, ValueError):
            return False
    try:
        _wait(jobs_api_up, "ray head (dashboard)", 180, proc, log)
        yield address
    finally:
        pids = {proc.pid} | descendants(proc.pid) | mentioning(tmp)
        left = stop_pids(pids)
        left |= stop_pids(mentioning(tmp))  # anything started while we were stopping
        proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)
        assert not left, f"ray processes left: {left}"
