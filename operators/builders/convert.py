"""One photo file -> objects in an empty scene -> output files: the CLI's unit of work."""

from __future__ import annotations

import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import bpy

from ...inference.memory import MeshPlan, require_memory
from ...inference.pipeline import image_to_mesh
from ...inference.record import MeshRecord
from ...inference.runtime.access import ModelAccess
from ...inference.settings import MeshSettings
from .objects import build_objects
from .export import export_objects, write_staged
from .finish import MeshFinish
from .glb import write_glb


def convert_file(
    photo: Path,
    depth_map: Path | None,
    outputs: list[Path],
    settings: MeshSettings,
    models: ModelAccess | None,
) -> dict:
    """Mesh `photo` (with `depth_map`, or a model), write every output, and describe the run (the CLI's JSON).

    Memory: a conversion whose estimated peak exceeds the memory available is refused before its mesh is made
    (inference/memory.py), in one sentence naming a --resolution that fits. A GLB is written straight from the
    record (glb.py) whenever no Blender-only finish is asked, so a run writing only GLBs builds no Blender mesh at
    all; otherwise the record's arrays are let go one by one as Blender takes them, before Blender writes any file.
    """
    start = time.perf_counter()
    bpy.ops.wm.read_homefile(use_empty=True)  # the previous photo's objects go before this photo's work
    finish = MeshFinish.of(settings)
    formats = tuple(out.suffix.lower() for out in outputs)
    glb_by_blender = bool(finish.smooth or finish.target_faces)  # a decimation that keeps every face: still counted

    def check_memory(plan: MeshPlan) -> None:
        require_memory(replace(plan, formats=formats, glb_by_blender=glb_by_blender), photo.name)

    record = image_to_mesh(photo, depth_map, settings, models, check_memory)
    report = record.report.to_dict()
    timings = dict(report["timings"], build=0.0, export=0.0)
    name, vertices, faces = record.name, len(record.vertices), record.face_count
    files: dict[Path, list[Path]] = {}

    exported = time.perf_counter()
    for out in outputs:
        if written_from_record(out, record, finish):
            files[out] = write_staged(out, partial(write_glb, record))
    timings["export"] += time.perf_counter() - exported

    rest = [out for out in outputs if out not in files]
    if rest:
        built = time.perf_counter()
        scene = bpy.context.scene
        # The record's arrays go as Blender takes them, and the rest of the record before any file is written.
        mesh_object, camera_object, image = build_objects(record, scene.collection, scene, finish, release=True)
        name = mesh_object.name
        del record
        timings["build"] = time.perf_counter() - built
        exported = time.perf_counter()
        objects = [o for o in (mesh_object, camera_object) if o is not None]
        for out in rest:
            files[out] = export_objects(objects, out, image)
        timings["export"] += time.perf_counter() - exported
    timings["total"] = time.perf_counter() - start
    written = []
    for out in outputs:  # in the order asked, each file once
        written += [f for f in files[out] if f not in written]
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
        "quality": report["quality"],
        "camera": report["camera"],
        "notices": report["notices"],
        "timings": timings,
        "outputs": [str(f) for f in written],
    }


def written_from_record(out: Path, record: MeshRecord, finish: MeshFinish) -> bool:
    """Whether `out` is written straight from the record (glb.py) rather than by Blender's exporter: a GLB, unless
    a finish only Blender does (smoothing, decimation: finish.py) changes the mesh."""
    triangles = 2 * len(record.quads) + len(record.triangles)  # what Decimate counts
    return out.suffix.lower() == ".glb" and not finish.smooth and not 0 < finish.target_faces < triangles
