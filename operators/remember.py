"""A result remembers how it was made — its photo (and a hash of its pixels), depth map, more photos and every
setting — on the object itself (Object.image_to_mesh_result), so the sidebar can show them and "Update"
(results.py) can make it again in place. Saved with the .blend."""

from __future__ import annotations

import bpy

from ..inference.generate.backend import MORE_VIEWS
from ..inference.settings import MeshSettings, blender_value, options


def remember(obj: bpy.types.Object, settings: MeshSettings, *, photo_path: str = "", image=None,
             depth_path: str = "", views: dict[str, str] | None = None, photo_hash: str = "") -> None:
    result = obj.image_to_mesh_result
    for name, default, opt in options(MeshSettings):
        if "blender" in opt.shown_in:
            setattr(result, name, blender_value(getattr(settings, name), default, opt))
    result.photo_source = "IMAGE" if image is not None else "FILE"
    result.photo_path, result.image, result.depth_path = photo_path, image, depth_path or ""
    for tag in MORE_VIEWS:
        setattr(result, f"{tag}_photo", (views or {}).get(tag, ""))
    result.photo_hash, result.made = photo_hash, True


def result_of(obj: bpy.types.Object | None):
    """The object's remembered settings, or None when Image to Mesh did not make it."""
    result = getattr(obj, "image_to_mesh_result", None)
    return result if result is not None and result.made else None
