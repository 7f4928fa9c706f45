"""Blender side. The UI: the operator (generate.py), its properties derived from inference/settings.py
(properties.py, sidebar_settings.py), the photo check and model status the sidebar shows (photo_check.py,
model_access.py), setting up and removing object generation (generator_setup.py), results that remember how
they were made and are made again in place, presets, the cache (remember.py, results.py), photos from File >
Import, Add > Mesh and drops into the viewport, one or a batch (batch.py). The builders that turn MeshRecords into datablocks and files: builders/."""

import bpy

from .batch import IMAGE_TO_MESH_FH_photos, IMAGE_TO_MESH_OT_import_photos, MENUS, menu_entry
from .generate import IMAGE_TO_MESH_OT_generate
from .generator_setup import IMAGE_TO_MESH_OT_remove_generator, IMAGE_TO_MESH_OT_setup_generator
from .model_access import GENERATOR_WORKERS
from .results import IMAGE_TO_MESH_OT_apply_preset, IMAGE_TO_MESH_OT_clear_cache, IMAGE_TO_MESH_OT_update
from .sidebar_settings import ImageToMeshResult, ImageToMeshSettings

_CLASSES = (ImageToMeshSettings, ImageToMeshResult, IMAGE_TO_MESH_OT_generate, IMAGE_TO_MESH_OT_update,
            IMAGE_TO_MESH_OT_import_photos, IMAGE_TO_MESH_FH_photos, IMAGE_TO_MESH_OT_apply_preset,
            IMAGE_TO_MESH_OT_clear_cache, IMAGE_TO_MESH_OT_setup_generator, IMAGE_TO_MESH_OT_remove_generator)


def register():
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.image_to_mesh = bpy.props.PointerProperty(type=ImageToMeshSettings)
    bpy.types.Object.image_to_mesh_result = bpy.props.PointerProperty(type=ImageToMeshResult)
    for menu in MENUS:
        menu.append(menu_entry)


def unregister():
    GENERATOR_WORKERS.close()  # the generator's model leaves memory with the extension
    for menu in MENUS:
        menu.remove(menu_entry)
    del bpy.types.Object.image_to_mesh_result
    del bpy.types.Scene.image_to_mesh
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
