"""Blender side. The UI: the operator (generate.py), its properties derived from inference/settings.py
(properties.py, sidebar_settings.py), the photo check and model status the sidebar shows (photo_check.py,
model_access.py). The builders that turn MeshRecords into datablocks and files: builders/."""

import bpy

from .generate import IMAGE_TO_MESH_OT_generate
from .sidebar_settings import ImageToMeshSettings

_CLASSES = (ImageToMeshSettings, IMAGE_TO_MESH_OT_generate)


def register():
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.image_to_mesh = bpy.props.PointerProperty(type=ImageToMeshSettings)


def unregister():
    del bpy.types.Scene.image_to_mesh
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
