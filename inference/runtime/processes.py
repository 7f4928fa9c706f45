"""Child processes that can be stopped with everything they started: worker processes (jobs.ProcessJob, the object
generator's worker) and the generator set-up's pip.

Each is started as the leader of its own session (POSIX) or process group (Windows); killing the group kills the
whole tree at once — pip's build helpers, torch's worker threads' processes, anything — within a second.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def new_group() -> dict:
    """Popen keywords that make the child lead its own process group."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {"start_new_session": True}


def kill_process_tree(process: subprocess.Popen) -> None:
    """Kill a child started with new_group(), and everything it started, then reap it."""
    if process.poll() is None:
        if sys.platform == "win32":
            subprocess.run(["taskkill", "/T", "/F", "/PID", str(process.pid)], capture_output=True)
        else:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:  # taskkill could not: the leader at least
        process.kill()
        process.wait()
