"""A Ray cluster on 127.0.0.1 for the batch tests and `make bench`: a head node and more nodes joined to it, each
`ray start --block` leading its own process group, so that killing the group is the node's death and nothing
it started outlives it."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager

RAY = [sys.executable, "-m", "ray.scripts.scripts"]
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_health_check_period_ms": "1000",
       "RAY_health_check_failure_threshold": "3"}


def start_node(*args) -> subprocess.Popen:
    """`ray start ... --block` as the leader of its own process group: killing the group is the node's death."""
    return subprocess.Popen([*RAY, "start", "--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--block", *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV, start_new_session=True)


def kill_node(node: subprocess.Popen) -> None:
    """The node's death: its processes killed at once, the Ray workers its raylet started (each leading a process
    group of its own) included."""
    for pid in node_processes(node.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    node.wait()


def node_processes(group: int) -> dict[int, bytes]:
    """Every process of the node whose `ray start` leads process group `group`, and their descendants: pid ->
    process title (a Ray worker's says what it runs: ray::IDLE, ray::<task>)."""
    processes = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(") ", 1)[1].split()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                processes[int(pid)] = (int(fields[1]), int(fields[2]), f.read())
        except (OSError, IndexError, ValueError):
            continue
    members = {pid for pid, (_, pgid, _) in processes.items() if pgid == group}
    while True:
        more = {pid for pid, (ppid, _, _) in processes.items() if ppid in members} - members
        if not more:
            return {pid: processes[pid][2] for pid in members}
        members |= more


def wait_for_nodes(address: str, count: int, timeout=120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        status = subprocess.run([*RAY, "status", "--address", address], capture_output=True, text=True, env=ENV)
        active = status.stdout.split("Active:")[-1].split("Pending:")[0]
        if status.returncode == 0 and active.count("node_") >= count:
            return
        time.sleep(1)
    raise AssertionError(f"the cluster never had {count} nodes")


@contextmanager
def head_node():
    """The head node on 127.0.0.1 (a port of its own, its own temp folder): its address; gone afterwards with
    everything it started."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray's socket paths are limited
    head = start_node("--head", "--port", str(port), "--include-dashboard=false", "--temp-dir", temp,
                      "--disable-usage-stats")
    address = f"127.0.0.1:{port}"
    try:
        wait_for_nodes(address, 1)
        yield address
    finally:
        kill_node(head)
        shutil.rmtree(temp, ignore_errors=True)
