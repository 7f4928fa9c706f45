"""The object generator's worker: run by the generator environment's Python, never imported by Blender.

    <generator-env>/bin/python -I worker_main.py --work-dir DIR [--idle-timeout SECONDS] [--threads N]

Protocol (version PROTOCOL): JSON lines. Requests arrive on stdin, one object per line; events leave on stdout,
one object per line, each with "protocol" and, for a request's events, its "id".
  requests:  {"op": "generate", "id": ..., "params": {...}}   (params: see worker_client.ShapeRequest.params;
                                                              params["family"] picks the code: FAMILIES)
             {"op": "ping", "id": ...}                          -> {"event": "pong", ...versions}
             {"op": "shutdown"}                                 -> the worker exits
  events:    {"event": "ready", "pid": ...}                                 once, at start
             {"event": "progress", "id", "stage", "step", "steps", "seconds"}
             {"event": "result", "id", "path", "vertices", "faces", "report", "seconds"}   the mesh is an .npz at path
             {"event": "error", "id", "kind": "input"|"memory"|"internal", "message": one sentence}
             {"event": "idle-exit"}                                          the model was idle too long: exiting
The model stays loaded between requests and is released by exiting after --idle-timeout seconds without one. A
closed stdin (the parent is gone) ends the worker at once, whatever it is doing. Everything libraries print goes
to stderr (a log file the client keeps): stdout carries the protocol only.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import queue
import sys
import threading
import time
import traceback
from pathlib import Path

PROTOCOL = 2
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the generators' sibling modules (the worker runs with -I: no script dir)

from shape_output import GenerationError, load_subject  # noqa: E402  (numpy, PIL, xatlas: no torch yet)
from shape_settings import ShapeSettings  # noqa: E402

FAMILIES = {"hunyuan3d-2": "hunyuan", "triposr": "triposr"}  # a card's generator family -> the module that runs it


class Channel:
    """The protocol's stdout: a private copy of file descriptor 1, which itself is pointed at stderr, so that
    whatever torch, hy3dgen or a C library prints can never corrupt a message."""

    def __init__(self):
        self._out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        self._lock = threading.Lock()

    def send(self, event: str, **fields) -> None:
        line = json.dumps({"protocol": PROTOCOL, "event": event, **fields})
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()


def read_requests(requests: queue.Queue) -> None:
    """Stdin -> queue; at end of file the parent is gone, and nobody wants what is being made: exit now."""
    for line in sys.stdin:
        if line.strip():
            requests.put(line)
    os._exit(0)


class Worker:
    def __init__(self, channel: Channel, work_dir: Path, threads: int):
        self.channel, self.work_dir = channel, work_dir
        self.model = None
        self.model_key = None
        if threads > 0:
            import torch

            torch.set_num_threads(threads)

    def handle(self, request: dict) -> bool:
        """Answer one request; False when the worker should stop."""
        op, request_id = request.get("op"), request.get("id")
        if request.get("protocol") != PROTOCOL:
            self.channel.send("error", id=request_id, kind="internal", message=(
                f"The generator worker speaks protocol {PROTOCOL}, not {request.get('protocol')}."))
        elif op == "shutdown":
            return False
        elif op == "ping":
            self.channel.send("pong", id=request_id, python=sys.version.split()[0], pid=os.getpid())
        elif op == "generate":
            self.generate(request_id, request.get("params", {}))
        else:
            self.channel.send("error", id=request_id, kind="internal", message=f"Unknown request '{op}'.")
        return True

    def generate(self, request_id, params: dict) -> None:
        start = time.perf_counter()

        def progress(stage: str, step: int, steps: int) -> None:
            self.channel.send("progress", id=request_id, stage=stage, step=step, steps=steps,
                              seconds=round(time.perf_counter() - start, 3))

        try:
            family = params.get("family", "hunyuan3d-2")
            if family not in FAMILIES:
                self.channel.send("error", id=request_id, kind="internal", message=(
                    f"The generator worker does not know the model family '{family}'."))
                return
            key = (family, params["dit_folder"], params.get("vae_folder"), params.get("device", "cpu"),
                   params.get("flashvdm", False), params.get("checkpoint_sha256", ""))
            if key != self.model_key:
                progress("load", 0, 1)
            # torch and the family's code: the first request pays for them
            generator = importlib.import_module(FAMILIES[family])
            try:
                mesh = self._generate(generator, key, params, progress)
            except GenerationError as err:
                self.channel.send("error", id=request_id, kind="input", message=str(err))
                return
            out = self.work_dir / f"mesh-{request_id}.npz"
            partial = out.with_name(out.stem + ".partial.npz")
            arrays = {"vertices": mesh.vertices, "faces": mesh.faces}
            if mesh.uvs is not None:
                arrays["uvs"] = mesh.uvs
            if mesh.colours is not None:
                arrays["colours"] = mesh.colours
            np_save(partial, arrays)
            os.replace(partial, out)  # never a half-written file under the final name
            self.channel.send("result", id=request_id, path=str(out), vertices=len(mesh.vertices),
                              faces=len(mesh.faces), report=mesh.report, seconds=round(time.perf_counter() - start, 3))
        except MemoryError:
            self._out_of_memory(request_id, params)
        except RuntimeError as err:
            if "memory" in str(err).lower():  # torch's allocators: "out of memory", "can't allocate memory"
                self._out_of_memory(request_id, params)
            else:
                self._internal(request_id, err)
        except Exception as err:  # noqa: BLE001  (whatever it is, the user gets one sentence, the log the trace)
            self._internal(request_id, err)
        finally:
            gc.collect()

    def _generate(self, generator, key: tuple, params: dict, progress):
        if key != self.model_key:
            self.model = self.model_key = None  # one model at a time: free the old one first
            gc.collect()
            family, folder, vae_folder, device, flashvdm, checkpoint_sha256 = key
            if family == "triposr":
                self.model = generator.load_model(folder, checkpoint_sha256, device)
            else:
                self.model = generator.load_model(folder, device, vae_folder, flashvdm)
            self.model_key = key
            progress("load", 1, 1)
        settings = ShapeSettings(**{name: params[name] for name in ShapeSettings.__dataclass_fields__ if name in params})
        if key[0] == "triposr":
            if params.get("views"):
                raise GenerationError("TripoSR takes one photo: use a multi-view model (Hunyuan3D-2mv) for several.")
            images = load_subject(params["image"])
        else:
            images = generator.conditioning_images(self.model, params["image"], params.get("views") or {})
        return generator.generate_shape(self.model, images, settings, progress)

    def _out_of_memory(self, request_id, params: dict) -> None:
        self.model = self.model_key = None  # whatever was half-built goes too
        self.channel.send("error", id=request_id, kind="memory", message=(
            f"Not enough memory to generate the object at octree resolution {params.get('octree_resolution')} on "
            f"{params.get('device', 'cpu').upper()}: lower the octree resolution or the number of chunks."))

    def _internal(self, request_id, err: Exception) -> None:
        traceback.print_exc()
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
        self.channel.send("error", id=request_id, kind="internal",
                          message=f"Object generation failed inside the generator ({type(err).__name__}: {reason}).")


def np_save(path: Path, arrays: dict) -> None:
    import numpy as np

    with open(path, "wb") as f:
        np.savez(f, **arrays)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work-dir", type=Path, required=True)
    parser.add_argument("--idle-timeout", type=float, default=600.0)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    channel = Channel()
    requests: queue.Queue = queue.Queue()
    threading.Thread(target=read_requests, args=(requests,), daemon=True).start()
    worker = Worker(channel, args.work_dir, args.threads)
    channel.send("ready", pid=os.getpid(), python=sys.version.split()[0])
    while True:
        try:
            line = requests.get(timeout=args.idle_timeout)
        except queue.Empty:
            channel.send("idle-exit")
            return
        try:
            request = json.loads(line)
        except ValueError:
            channel.send("error", id=None, kind="internal", message="The generator worker got a line that is not JSON.")
            continue
        if not worker.handle(request):
            return


if __name__ == "__main__":
    main()
