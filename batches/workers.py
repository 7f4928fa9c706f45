"""The driver's side of a batch on one machine: N worker processes (worker.py), each fed one photo at a time.

A worker that dies while converting (a segfault, the kernel's out-of-memory killer) fails that photo only, in one
sentence, and a fresh worker takes its place. Interrupted, the driver asks every worker to stop (SIGTERM: a
photo being moved into place still arrives whole), takes in their last answers, then kills what is left.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

from ..inference.runtime.jobs import death_sentence
from ..inference.runtime.processes import kill_process_tree, new_group

STOP_GRACE_S = 60.0  # an interrupted worker's time to finish moving a photo's outputs into place


def worker_command(cli_path: Path) -> list[str]:
    """How to start a worker: this Python with the bpy module, or inside Blender, Blender itself in the background."""
    bpy = sys.modules.get("bpy")
    if bpy is not None and bpy.app.binary_path:
        return [bpy.app.binary_path, "-b", "--factory-startup", "--python", str(cli_path), "--", "--batch-worker"]
    return [sys.executable, str(cli_path), "--batch-worker"]


class WorkerProcess:
    def __init__(self, command: list[str], hello: dict, events: queue.Queue):
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                        encoding="utf-8", **new_group())
        self.task = None  # what it converts now
        self._send(hello)
        threading.Thread(target=self._read, args=(events,), daemon=True).start()

    def give(self, task, request: dict) -> None:
        self.task = task
        self._send(request)

    def finish(self) -> None:
        """No more photos: the worker ends once it has answered."""
        try:
            self.process.stdin.close()
        except OSError:
            pass

    def stop(self) -> None:
        if self.process.poll() is None:
            if os.name == "nt":
                self.process.terminate()
            else:
                os.killpg(self.process.pid, signal.SIGTERM)

    def _send(self, line: dict) -> None:
        try:
            self.process.stdin.write(json.dumps(line) + "\n")
            self.process.stdin.flush()
        except OSError:
            pass  # it died: its exit event says so

    def _read(self, events: queue.Queue) -> None:
        for line in self.process.stdout:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and event.get("event") in ("result", "error"):
                events.put((self, event))
        events.put((self, {"event": "exit", "code": self.process.wait()}))


def convert_in_workers(tasks: list, jobs: int, command: list[str], hello: dict, request_of, answered, interrupts) -> None:
    """Convert each task (request_of(task): its request) in `jobs` workers; answered(task, event) for each, in this
    thread, as they come."""
    events: queue.Queue = queue.Queue()
    pending = deque(tasks)
    workers = [WorkerProcess(command, hello, events) for _ in range(min(jobs, len(tasks)))]
    try:
        for worker in workers:
            _next(worker, pending, request_of)
        while workers:
            interrupts.checkpoint()  # a signal that came while an answer was being journalled
            try:
                worker, event = events.get(timeout=0.5)  # a short wait: Ctrl-C and SIGTERM are handled between
            except queue.Empty:
                continue
            with interrupts.shielded():  # an answer taken is journalled before the batch can stop
                if event["event"] != "exit":
                    task, worker.task = worker.task, None
                    answered(task, event)
                    _next(worker, pending, request_of)
                    continue
                workers.remove(worker)
                if worker.task is not None:  # it died in the middle of a photo
                    task, worker.task = worker.task, None
                    answered(task, {"event": "error", "message": death_sentence(event["code"])})
                    if pending:
                        workers.append(WorkerProcess(command, hello, events))
                        _next(workers[-1], pending, request_of)
    except BaseException:
        with interrupts.shielded():
            _stop(workers, events, answered)
        raise


def _next(worker: WorkerProcess, pending: deque, request_of) -> None:
    if pending:
        task = pending.popleft()
        worker.give(task, request_of(task))
    else:
        worker.finish()


def _stop(workers: list[WorkerProcess], events: queue.Queue, answered) -> None:
    """Stop every worker; the photos they finish writing still count."""
    for worker in workers:
        worker.stop()
    deadline = time.monotonic() + STOP_GRACE_S
    running = {worker for worker in workers if worker.task is not None}
    while running and time.monotonic() < deadline:
        try:
            worker, event = events.get(timeout=0.5)
        except queue.Empty:
            continue
        if worker in running:
            running.discard(worker)
            if event["event"] == "result":
                answered(worker.task, event)
    for worker in workers:
        kill_process_tree(worker.process)
