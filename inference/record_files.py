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
from .photo.prepared import PreparationStep
from .record import CameraReport, DepthEdgesReport, GenerationReport, MeshRecord, ModelRun, PhotoCamera, Report

_ARRAYS = ("vertices", "quads", "triangles", "uvs", "corner_uvs", "vertex_colors", "vertex_normals", "edges",
           "corner_edges")


def save_record(record: MeshRecord, path: Path) -> Path:
    arrays = {name: getattr(record, name) for name in _ARRAYS if getattr(record, name) is not None}
    meta = {"name": record.name, "closed": record.closed, "report": record.report.to_dict(),
            "texture": _put_texture(arrays, "texture", record.texture),
            "photo": _put_texture(arrays, "photo", record.photo),
            "camera": _put_camera(arrays, "camera", record.camera),
            "more_cameras": [{"view": more.view, "camera": _put_camera(arrays, f"camera{i}", more.camera),
                              "photo": _put_texture(arrays, f"photo{i}", more.photo)}
                             for i, more in enumerate(record.more_cameras)]}
    arrays["meta"] = np.array(json.dumps(meta))
    partial = path.with_name(path.name + ".partial.npz")
    np.savez(partial, **arrays)
    os.replace(partial, path)
    return path


def load_record(path: Path) -> MeshRecord:
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    meta = json.loads(str(arrays.pop("meta")))
    more = tuple(PhotoCamera(m["view"], _get_camera(arrays, f"camera{i}", m["camera"]),
                             _get_texture(arrays, f"photo{i}", m["photo"]))
                 for i, m in enumerate(meta["more_cameras"]))
    return MeshRecord(
        name=meta["name"], closed=meta["closed"], report=_report(meta["report"]),
        camera=_get_camera(arrays, "camera", meta["camera"]), texture=_get_texture(arrays, "texture", meta["texture"]),
        photo=_get_texture(arrays, "photo", meta["photo"]), more_cameras=more,
        **{name: arrays.get(name) for name in _ARRAYS},
    )


def _put_texture(arrays: dict, key: str, texture: Texture | None) -> str | None:
    """Its arrays under `key`; its name for the metadata (None: no texture)."""
    if texture is None:
        return None
    arrays[f"{key}_rgb"] = texture.rgb
    if texture.alpha is not None:
        arrays[f"{key}_alpha"] = texture.alpha
    return texture.name


def _get_texture(arrays: dict, key: str, name: str | None) -> Texture | None:
    return None if name is None else Texture(name, arrays[f"{key}_rgb"], arrays.get(f"{key}_alpha"))


def _put_camera(arrays: dict, key: str, camera: View | None) -> dict | None:
    """Its pose under `key`; its intrinsics for the metadata (None: no camera)."""
    if camera is None:
        return None
    arrays[f"{key}_rotation"], arrays[f"{key}_position"] = camera.rotation, camera.position
    return asdict(camera.intrinsics)


def _get_camera(arrays: dict, key: str, intrinsics: dict | None) -> View | None:
    if intrinsics is None:
        return None
    return View(Intrinsics(**intrinsics), arrays[f"{key}_rotation"], arrays[f"{key}_position"])


def _report(raw: dict) -> Report:
    raw = dict(raw)
    raw["model"] = raw["model"] and ModelRun(**raw["model"])
    if raw["camera"]:
        point = raw["camera"].get("crop_principal_point")
        raw["camera"] = CameraReport(**{**raw["camera"], "crop_principal_point": point and tuple(point)})
    raw["grid"] = raw["grid"] and tuple(raw["grid"])
    raw["depth_edges"] = raw["depth_edges"] and DepthEdgesReport(**raw["depth_edges"])
    raw["generation"] = raw["generation"] and GenerationReport(**raw["generation"])
    raw["preparation"] = [PreparationStep(**step) for step in raw["preparation"]]
    return Report(**{f.name: raw[f.name] for f in fields(Report)})
