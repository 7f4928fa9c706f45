"""Blender side: settings, the operator and the builders that turn MeshRecords into datablocks."""

import bpy

from .generate import IMAGE_TO_MESH_OT_generate
from .properties import ImageToMeshSettings

_CLASSES = (ImageToMeshSettings, IMAGE_TO_MESH_OT_generate)


def register():
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.image_to_mesh = bpy.props.PointerProperty(type=ImageToMeshSettings)


def unregister():
    del bpy.types.Scene.image_to_mesh
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
