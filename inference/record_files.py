"""A MeshRecord as one .npz file and back: how records cross a process boundary (and later a disk cache).

Written to a temporary name and renamed into place, so a reader never sees half a file. Loading never
unpickles: arrays are plain, the report is JSON text.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from .geometry.camera import Intrinsics
from .geometry.view import View
from .photo.photo import Texture
from .record import CameraReport, MeshRecord, ModelRun, Report

_ARRAYS = ("vertices", "quads", "triangles", "uvs", "corner_uvs", "vertex_colors", "vertex_normals", "edges",
           "corner_edges")


def save_record(record: MeshRecord, path: Path) -> Path:
    arrays = {name: getattr(record, name) for name in _ARRAYS if getattr(record, name) is not None}
    for key, texture in (("texture", record.texture), ("photo", record.photo)):
        if texture is not None:
            arrays[f"{key}_rgb"] = texture.rgb
            if texture.alpha is not None:
                arrays[f"{key}_alpha"] = texture.alpha
    meta = {"name": record.name, "closed": record.closed, "report": record.report.to_dict(),
            "texture": record.texture.name, "photo": record.photo and record.photo.name}
    if record.camera is not None:
        arrays["camera_rotation"], arrays["camera_position"] = record.camera.rotation, record.camera.position
        meta["intrinsics"] = asdict(record.camera.intrinsics)
    arrays["meta"] = np.array(json.dumps(meta))
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, **arrays)
    os.replace(partial, path)
    return path


def load_record(path: Path) -> MeshRecord:
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    camera = None
    if "intrinsics" in meta:
        camera = View(Intrinsics(**meta["intrinsics"]), arrays["camera_rotation"], arrays["camera_position"])
    textures = {key: Texture(meta[key], arrays[f"{key}_rgb"], arrays.get(f"{key}_alpha"))
                for key in ("texture", "photo") if f"{key}_rgb" in arrays}
    return MeshRecord(
        name=meta["name"], closed=meta["closed"], report=_report(meta["report"]), camera=camera,
        texture=textures["texture"], photo=textures.get("photo"),
        **{name: arrays.get(name) for name in _ARRAYS},
    )


def _report(raw: dict) -> Report:
    raw = dict(raw)
    raw["model"] = raw["model"] and ModelRun(**raw["model"])
    raw["camera"] = raw["camera"] and CameraReport(**raw["camera"])
    raw["grid"] = raw["grid"] and tuple(raw["grid"])
    return Report(**{f.name: raw[f.name] for f in fields(Report)})
