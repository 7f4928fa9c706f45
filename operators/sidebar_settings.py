"""The scene's Image to Mesh settings: what the sidebar shows and the operator starts from."""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty, PointerProperty, StringProperty

from ..inference.settings import MeshSettings
from .photo_check import refresh_quality
from .properties import PATH_OPTIONS, blender_properties


class ImageToMeshSettings(bpy.types.PropertyGroup):
    __annotations__ = {
        "photo_source": EnumProperty(
            name="Photo Source",
            items=[("FILE", "File", "A photo file on disk"), ("IMAGE", "Image", "An image already in this .blend")],
            update=refresh_quality,
        ),
        "photo_path": StringProperty(
            name="Photo", subtype="FILE_PATH", description="The photo to turn into a mesh", update=refresh_quality,
            options=PATH_OPTIONS,
        ),
        "image": PointerProperty(
            name="Image", type=bpy.types.Image, description="An image already in this .blend", update=refresh_quality,
        ),
        "depth_path": StringProperty(
            name="Depth Map", subtype="FILE_PATH", description="The photo's depth map", options=PATH_OPTIONS,
        ),
        "quality_report": StringProperty(options={"HIDDEN", "SKIP_SAVE"}),
        **blender_properties(MeshSettings),
    }
