"""One photo file -> objects in an empty scene -> output files: the CLI's unit of work."""

from __future__ import annotations

import time
from pathlib import Path

import bpy

from ...inference.pipeline import image_to_mesh
from ...inference.runtime.access import ModelAccess
from ...inference.settings import MeshSettings
from .objects import build_objects
from .export import export_objects
from .finish import MeshFinish


def convert_file(
    photo: Path,
    depth_map: Path | None,
    outputs: list[Path],
    settings: MeshSettings,
    models: ModelAccess | None,
) -> dict:
    """Mesh `photo` (with `depth_map`, or a model), write every output, and describe the run (the CLI's JSON)."""
    start = time.perf_counter()
    record = image_to_mesh(photo, depth_map, settings, models)

    built = time.perf_counter()
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    mesh_object, camera_object, image = build_objects(record, scene.collection, scene, MeshFinish.of(settings))
    report = record.report.to_dict()
    timings = dict(report["timings"], build=time.perf_counter() - built)

    exported = time.perf_counter()
    written = []
    for out in outputs:
        objects = [o for o in (mesh_object, camera_object) if o is not None]
        written += [f for f in export_objects(objects, out, image) if f not in written]
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
