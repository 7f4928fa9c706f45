"""Image to Mesh settings held by Blender: the scene's (what the sidebar shows and the operator starts from) and a
result object's (how it was made)."""

from __future__ import annotations

import bpy
from bpy.props import BoolProperty, EnumProperty, PointerProperty, StringProperty

from ..inference.settings import MeshSettings
from .photo_check import refresh_quality
from .properties import PATH_OPTIONS, blender_properties, view_properties


def settings_annotations(update=None) -> dict:
    """The photo, depth map, more photos and every mesh setting; `update` runs when the photo changes."""
    photo_update = {"update": update} if update else {}
    return {
        "photo_source": EnumProperty(
            name="Photo Source",
            items=[("FILE", "File", "A photo file on disk"), ("IMAGE", "Image", "An image already in this .blend")],
            **photo_update,
        ),
        "photo_path": StringProperty(
            name="Photo", subtype="FILE_PATH", description="The photo to turn into a mesh", options=PATH_OPTIONS,
            **photo_update,
        ),
        "image": PointerProperty(
            name="Image", type=bpy.types.Image, description="An image already in this .blend", **photo_update,
        ),
        "depth_path": StringProperty(
            name="Depth Map", subtype="FILE_PATH", description="The photo's depth map", options=PATH_OPTIONS,
        ),
        **view_properties(),
        "quality_report": StringProperty(options={"HIDDEN", "SKIP_SAVE"}),
        **blender_properties(MeshSettings),
    }


class ImageToMeshSettings(bpy.types.PropertyGroup):
    """The scene's: what the sidebar shows when no result is active."""

    __annotations__ = settings_annotations(update=refresh_quality)


class ImageToMeshResult(bpy.types.PropertyGroup):
    """A result's own: how it was made, so it can be made again in place (operators/results.py)."""

    __annotations__ = {
        **settings_annotations(),
        "made": BoolProperty(name="Made by Image to Mesh", options={"HIDDEN"}),
        "photo_hash": StringProperty(name="Photo Hash", description="A hash of the photo's pixels when it was made",
                                     options={"HIDDEN"}),
    }
