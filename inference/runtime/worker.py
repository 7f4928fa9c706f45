"""A worker process: serves jobs.ProcessJob requests, one JSON line each, until its stdin closes.

    python <extension>/inference/runtime/worker.py

Run by any Python that has the extension's dependencies (Blender's own, or the CLI's). It loads the extension
it belongs to as the package `image_to_mesh`, reads requests from stdin and answers on stdout with JSON-line
events (see jobs.ProcessJob); anything else a library prints goes to stderr, so the protocol stays clean.
Results are files in the request's folder, each written under a temporary name and renamed when complete:
killed at any moment, the worker leaves no partial result behind.

Tasks:
  mesh   {"photo", "depth", "settings", "models"} -> the pipeline's MeshRecord as record.npz
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    os.dup2(2, 1)  # stray prints (libraries, Blender) go to stderr, never into the protocol
    _load_package()
    for line in sys.stdin:
        request = json.loads(line)
        start = time.perf_counter()

        def emit(event: str, **fields):
            protocol.write(json.dumps({"event": event, "id": request.get("id"), **fields}) + "\n")

        try:
            emit("result", **TASKS[request["task"]](request, lambda stage, step=0, steps=0: emit(
                "progress", stage=stage, step=step, steps=steps, seconds=time.perf_counter() - start)))
        except Exception as err:  # every failure becomes one event; the traceback goes to stderr
            from image_to_mesh.inference.errors import InputError

            if not isinstance(err, InputError):
                traceback.print_exc()
            emit("error", message=str(err) if isinstance(err, InputError) else
                 "The worker failed unexpectedly; its log has the details.")
    return 0


def _mesh(request: dict, progress) -> dict:
    from image_to_mesh.inference.pipeline import image_to_mesh
    from image_to_mesh.inference.record_files import save_record
    from image_to_mesh.inference.runtime.access import ModelAccess
    from image_to_mesh.inference.runtime.store import ModelStore
    from image_to_mesh.inference.settings import MeshSettings

    models = request.get("models")
    access = None
    if models:
        store = ModelStore(Path(models["folder"]), allow_download=models.get("allow_download", False))
        u2netp = models.get("u2netp")
        access = ModelAccess(store, models.get("device", "cpu"), models.get("threads", 0),
                             models.get("license_accepted", False), u2netp=u2netp and Path(u2netp),
                             u2netp_hint=models.get("u2netp_hint", "reinstall Image to Mesh"))
        access.progress = lambda name, done, total: progress(f"Downloading {name}", done, total)
    progress("Meshing")
    record = image_to_mesh(request["photo"], request.get("depth"), MeshSettings(**request.get("settings", {})), access)
    path = save_record(record, Path(request["folder"]) / "record.npz")
    return {"files": {"record": str(path)}}


TASKS = {"mesh": _mesh}


def _load_package() -> None:
    """The extension as `image_to_mesh`, loaded the way its command line loads it."""
    sys.path.insert(0, str(ROOT))
    import cli

    cli.load_package()


if __name__ == "__main__":
    sys.exit(main())
