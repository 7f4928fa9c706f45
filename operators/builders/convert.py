"""One photo file -> objects in an empty scene -> output files: the CLI's unit of work.

`checkpoint()` is called between steps, where stopping is safe (the CLI raises there when Ctrl-C or SIGTERM
came); `shielded()` wraps what must not be interrupted midway: Blender's operators, and the moment the outputs
are moved into place, so they arrive all together or not at all.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from pathlib import Path

import bpy

from ...inference.pipeline import image_to_mesh
from ...inference.runtime.access import ModelAccess
from ...inference.runtime.jobs import ThreadJob
from ...inference.settings import MeshSettings
from .objects import build_objects
from .export import StagedOutputs
from .finish import MeshFinish


def convert_file(
    photo: Path,
    depth_map: Path | None,
    outputs: list[Path],
    settings: MeshSettings,
    models: ModelAccess | None,
    checkpoint=lambda: None,
    shielded=nullcontext,
) -> dict:
    """Mesh `photo` (with `depth_map`, or a model), write every output, and describe the run (the CLI's JSON)."""
    start = time.perf_counter()
    # On a thread, so the caller's thread stays free for Ctrl-C and SIGTERM: their handler cancels the run.
    job = ThreadJob(cancel_token=models and models.cancel).start(image_to_mesh, photo, depth_map, settings, models)
    try:
        while not job.wait(0.1):
            checkpoint()
    except BaseException:  # stopping: let the run end first (a native run torn down mid-way aborts the process)
        job.cancel()
        job.wait(30)
        raise
    job.raise_error()
    record = job.result

    checkpoint()
    built = time.perf_counter()
    with shielded():
        bpy.ops.wm.read_homefile(use_empty=True)
        scene = bpy.context.scene
        mesh_object, camera_object, image = build_objects(record, scene.collection, scene, MeshFinish.of(settings))
    report = record.report.to_dict()
    timings = dict(report["timings"], build=time.perf_counter() - built)

    exported = time.perf_counter()
    objects = [o for o in (mesh_object, camera_object) if o is not None]
    with StagedOutputs(outputs) as staged:
        for out in outputs:
            checkpoint()
            with shielded():
                staged.write(objects, out, image)
        checkpoint()
        with shielded():
            written = staged.commit()
    timings["export"] = time.perf_counter() - exported
    timings["total"] = time.perf_counter() - start
    return {
        "inputs": {"photo": str(photo), "depth_map": depth_map and str(depth_map)},
        "method": report["method"],
        "model": report["model"],
        "object": mesh_object.name,
        "vertices": len(record.vertices),
        "faces": record.face_count,
        "mask": report["mask"],
        "closure": report["closure"],
        "scale": report["scale"],
        "quality": report["quality"],
        "camera": report["camera"],
        "notices": report["notices"],
        "timings": timings,
        "outputs": [str(f) for f in written],
    }
