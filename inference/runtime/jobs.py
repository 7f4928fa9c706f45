"""Work that runs while Blender stays responsive, and really stops when the user cancels.

One interface, `Job`: `status` and `fraction` for a progress bar, `done`, then `result` or `error` (one
sentence), and `cancel()`. Two kinds:
  ThreadJob   a function on a worker thread (numpy and ONNX Runtime only: bpy is not thread-safe). Cancelling
              sets its CancelToken, which downloads poll and which terminates a running ONNX Runtime
              inference through its RunOptions, so even a long model run ends at once.
  ProcessJob  a request to a separate process speaking JSON lines (runtime/worker.py): progress events while
              it runs, results handed over as files; cancelling kills the process tree.
The caller polls `done` (a modal operator's timer) or waits (`wait`, background mode and the CLI).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from typing import Protocol

from ..errors import InputError
from .processes import kill_process_tree, new_group

UNEXPECTED = "Image to Mesh failed unexpectedly; the system console has the details."


class Cancelled(InputError):
    """The user stopped the work; nothing it would have made is kept."""


class CancelToken(threading.Event):
    """A threading.Event that downloads poll, and that terminates the ONNX Runtime runs registered with it."""

    def __init__(self):
        super().__init__()
        # Re-entrant: a signal handler sets the token on the main thread, which may be inside watch() or
        # unwatch() holding the lock at that moment.
        self._lock = threading.RLock()
        self._runs: set = set()

    def set(self) -> None:
        with self._lock:
            super().set()
            for run_options in self._runs:
                run_options.terminate = True

    def watch(self, run_options) -> None:
        """Terminate `run_options`' run when cancelled (at once if already cancelled)."""
        with self._lock:
            self._runs.add(run_options)
            if self.is_set():
                run_options.terminate = True

    def unwatch(self, run_options) -> None:
        with self._lock:
            self._runs.discard(run_options)

    def check(self, what: str = "Image to Mesh") -> None:
        if self.is_set():
            raise Cancelled(f"{what} was cancelled.")


class Job(Protocol):
    status: str
    fraction: float
    result: object
    error: str | None

    @property
    def done(self) -> bool: ...

    def cancel(self) -> None: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class ThreadJob:
    """`function(*args)` on a daemon thread; `cancel_token` is what the function must poll or pass on."""

    def __init__(self, status: str = "Starting", cancel_token: CancelToken | None = None):
        self.cancel_token = cancel_token or CancelToken()
        self.status = status
        self.fraction = 0.0
        self.result = None
        self.error: str | None = None
        self.exception: BaseException | None = None  # what the function raised, its traceback with it
        self._thread: threading.Thread | None = None

    def start(self, function, *args) -> ThreadJob:
        self._thread = threading.Thread(target=self._run, args=(function, *args), daemon=True)
        self._thread.start()
        return self

    @property
    def done(self) -> bool:
        return self._thread is not None and not self._thread.is_alive()

    def cancel(self) -> None:
        self.cancel_token.set()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return self.done

    def progress(self, name: str, done: int, total: int) -> None:
        """Download progress, in the shape runtime.store reports it."""
        self.status = f"Downloading {name}: {done / 1e6:.0f} / {total / 1e6:.0f} MB (Esc cancels)"
        self.fraction = done / total if total else 0.0

    def stage(self, what: str, step: int, steps: int) -> None:
        """A long model run's progress, in the shape access.Stage reports it."""
        self.status = f"{what} {step} / {steps} (Esc cancels)"
        self.fraction = step / steps if steps else 0.0

    def _run(self, function, *args) -> None:
        try:
            self.result = function(*args)
        except Exception as err:  # a user mistake is its sentence; a bug keeps its traceback in `exception`
            self.exception = err
            self.error = str(err) if isinstance(err, InputError) else UNEXPECTED

    def raise_error(self) -> None:
        """Raise what the function raised, in the caller's thread."""
        if self.exception is not None:
            raise self.exception


class ProcessJob:
    """One request to a worker process that speaks JSON lines (runtime/worker.py's protocol).

    The request goes to the worker's stdin as one line; the worker answers on stdout with events, one JSON
    object a line: {"event": "progress", "stage", "step", "steps", "seconds"} any number of times, then
    {"event": "result", ...} or {"event": "error", "message"}. Arrays travel as files in `folder`, a private
    temp folder the request names. Cancelling kills the worker's whole process tree (its own session /
    process group), so nothing it started lives on; a worker that dies without answering is one sentence.
    """

    def __init__(self, argv: list[str], request: dict, env: dict | None = None, status: str = "Starting"):
        self.argv, self.request, self.env = argv, {"protocol": PROTOCOL, **request}, env
        self.status = status
        self.fraction = 0.0
        self.result: dict | None = None
        self.error: str | None = None
        self.process: subprocess.Popen | None = None
        self._reader: threading.Thread | None = None
        self._cancelled = False

    def start(self) -> ProcessJob:
        self.process = subprocess.Popen(
            self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None, env=self.env,
            text=True, encoding="utf-8", **new_group(),
        )
        self.process.stdin.write(json.dumps(self.request) + "\n")
        self.process.stdin.close()  # one request: the worker ends once it has answered
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    @property
    def done(self) -> bool:
        return self._reader is not None and not self._reader.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        self._reader.join(timeout)
        return self.done

    def cancel(self) -> None:
        """Kill the worker and everything it started; returns once they are gone."""
        self._cancelled = True
        if self.process is not None and self.process.poll() is None:
            kill_process_tree(self.process)
        if self._reader is not None:
            self._reader.join(5)

    def _read(self) -> None:
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue  # a library's stray print: the protocol's lines are JSON objects
            kind = event.get("event") if isinstance(event, dict) else None
            if kind == "progress":
                steps = event.get("steps") or 0
                self.fraction = event.get("step", 0) / steps if steps else self.fraction
                self.status = f"{event.get('stage', 'Working')}" + (f" {event['step']}/{steps}" if steps else "")
            elif kind == "result":
                self.result = event
            elif kind == "error":
                self.error = event.get("message") or UNEXPECTED
        code = self.process.wait()
        if self._cancelled:
            self.result, self.error = None, "Image to Mesh was cancelled."
        elif self.result is None and self.error is None:
            self.error = death_sentence(code)


PROTOCOL = 1


def death_sentence(code: int) -> str:
    if os.name != "nt" and code < 0 and -code == signal.SIGKILL:
        return "The worker process was killed (out of memory?); nothing was made."
    return f"The worker process stopped unexpectedly (exit status {code}); nothing was made."
