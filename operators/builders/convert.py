"""One photo file -> output files: the CLI's unit of work.

Memory: a conversion whose estimated peak exceeds the memory available is refused before its mesh is made
(inference/memory.py), in one sentence naming a --resolution that fits. A GLB is written straight from the
record (glb.py) whenever no Blender-only finish is asked, so a run writing only GLBs builds no Blender mesh at
all; otherwise the record's arrays are let go one by one as Blender takes them, before Blender writes any file.

Interruptions: `checkpoint()` is called between steps, where stopping is safe (the CLI raises there when Ctrl-C
or SIGTERM came); `shielded()` wraps what must not be interrupted midway: Blender's operators, and the moment
the outputs are moved into place, so that all of a photo's outputs arrive together or none does.
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import replace
from functools import partial
from pathlib import Path

import bpy

from ...inference.memory import MeshPlan, require_memory
from ...inference.pipeline import image_to_mesh
from ...inference.record import MeshRecord
from ...inference.runtime.access import ModelAccess
from ...inference.runtime.jobs import ThreadJob
from ...inference.settings import MeshSettings
from .export import StagedOutputs
from .finish import MeshFinish
from .glb import write_glb
from .objects import build_objects


def convert_file(
    photo: Path,
    depth_map: Path | None,
    outputs: list[Path],
    settings: MeshSettings,
    models: ModelAccess | None,
    checkpoint=lambda: None,
    shielded=nullcontext,
    views: dict[str, Path] | None = None,
) -> dict:
    """Mesh `photo` (with `depth_map`, or a model; or generate its object, seen in `views` too), write every
    output, and describe the run (the CLI's JSON)."""
    start = time.perf_counter()
    with shielded():
        bpy.ops.wm.read_homefile(use_empty=True)  # the previous photo's objects go before this photo's work
    finish = MeshFinish.of(settings)
    formats = tuple(out.suffix.lower() for out in outputs)
    # A decimation that keeps every face: still counted.
    glb_by_blender = bool(finish.smooth or finish.target_faces or finish.remesh != "none")

    def check_memory(plan: MeshPlan) -> None:
        require_memory(replace(plan, formats=formats, glb_by_blender=glb_by_blender), photo.name)

    record = _run_pipeline(checkpoint, photo, depth_map, settings, models, check_memory, views)
    report = record.report.to_dict()
    timings = dict(report["timings"], build=0.0, export=0.0)
    name, vertices, faces = record.name, len(record.vertices), record.face_count

    with StagedOutputs(outputs) as staged:
        exported = time.perf_counter()
        from_record = [out for out in outputs if written_from_record(out, record, finish)]
        for out in from_record:
            checkpoint()
            staged.write(out, partial(write_glb, record))
        timings["export"] += time.perf_counter() - exported

        rest = [out for out in outputs if out not in from_record]
        if rest:
            checkpoint()
            built = time.perf_counter()
            with shielded():
                scene = bpy.context.scene
                # The record's arrays go as Blender takes them, the rest of it before any file is written.
                mesh_object, _camera, image = build_objects(record, scene.collection, scene, finish,
                                                                  release=True)
            name = mesh_object.name
            if finish.remesh != "none":
                vertices, faces = len(mesh_object.data.vertices), len(mesh_object.data.polygons)
            del record
            timings["build"] = time.perf_counter() - built
            exported = time.perf_counter()
            objects = [mesh_object, *mesh_object.children]  # its cameras: one per photo
            for out in rest:
                checkpoint()
                with shielded():
                    staged.export(objects, out, image)
            timings["export"] += time.perf_counter() - exported
        checkpoint()
        with shielded():
            written = staged.commit()
    timings["total"] = time.perf_counter() - start
    return {
        "inputs": {"photo": str(photo), "depth_map": depth_map and str(depth_map)},
        "method": report["method"],
        "model": report["model"],
        "object": name,
        "vertices": vertices,
        "faces": faces,
        "mask": report["mask"],
        "closure": report["closure"],
        "scale": report["scale"],
        "preparation": report["preparation"],
        "quality_before": report["quality_before"],
        "quality": report["quality"],
        "camera": report["camera"],
        "depth_edges": report["depth_edges"],
        "generation": report["generation"],
        "notices": report["notices"],
        "timings": timings,
        "outputs": [str(f) for f in written],
    }


def _run_pipeline(checkpoint, *arguments) -> MeshRecord:
    """image_to_mesh on a thread, so the caller's thread stays free for Ctrl-C and SIGTERM, whose handler
    cancels the run (models.cancel)."""
    models = arguments[3]
    job = ThreadJob(cancel_token=models and models.cancel).start(image_to_mesh, *arguments)
    try:
        while not job.wait(0.1):
            checkpoint()
    except BaseException:  # stopping: let the run end first (a native run torn down mid-way aborts the process)
        job.cancel()
        job.wait(30)
        raise
    job.raise_error()
    return job.result


def written_from_record(out: Path, record: MeshRecord, finish: MeshFinish) -> bool:
    """Whether `out` is written straight from the record (glb.py) rather than by Blender's exporter: a GLB, unless
    a finish only Blender does (smoothing, decimation, a remesh: finish.py) changes the mesh."""
    triangles = 2 * len(record.quads) + len(record.triangles)  # what Decimate counts
    return (out.suffix.lower() == ".glb" and not finish.smooth and finish.remesh == "none"
            and not 0 < finish.target_faces < triangles)
