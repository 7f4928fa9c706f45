"""Making a result again in place ("Update"), presets, and forgetting cached model outputs.

Update runs the pipeline with the active result's remembered settings (as edited in the sidebar) and swaps the new
mesh data into the same object: its name, transform, parent, collections and the modifiers and materials the user
added stay; the finish modifiers and the material Image to Mesh made are replaced; its cameras are updated (a
multi-view result gets or loses cameras to match its photos). One undo step. The depth, mask or generated shape
usually comes from the cache (runtime/cache.py): changing only how it is meshed does not run the model again.
"""

from __future__ import annotations

import bpy
from bpy.props import EnumProperty

from ..inference.settings import PRESETS, MeshSettings, blender_value, options

from .builders.finish import DECIMATE, SMOOTH, MeshFinish
from .builders.material import MADE_HERE
from .builders.objects import build_objects
from .generate import PhotoToMesh, operator_properties
from .model_access import RESULTS, cache_folder, forget_model_status, preferences_runtime
from .remember import result_of


class IMAGE_TO_MESH_OT_update(PhotoToMesh, bpy.types.Operator):
    """Make the active result again with its settings, in place: its transform, parent, collections and your own
    modifiers and materials are kept"""

    bl_idname = "image_to_mesh.update"
    bl_label = "Update"
    bl_options = {"REGISTER", "UNDO"}

    __annotations__ = operator_properties()

    @classmethod
    def poll(cls, context):
        return context.mode == "OBJECT" and result_of(context.active_object) is not None

    def source_settings(self, context):
        self._target = context.active_object.name
        return result_of(context.active_object)

    def place(self, context, record, finish: MeshFinish) -> bpy.types.Object:
        target = bpy.data.objects.get(self._target)
        if target is None:  # deleted while the model ran: make it anew
            return PhotoToMesh.place(self, context, record, finish)
        return rebuild_in_place(target, record, finish, context.scene)


def rebuild_in_place(target: bpy.types.Object, record, finish: MeshFinish, scene) -> bpy.types.Object:
    """Give `target` the record's mesh data, finish and cameras; keep everything else about it."""
    staging = bpy.data.collections.new("Image to Mesh update")  # never linked to a scene
    scene_camera = scene.camera
    built, _camera, _image = build_objects(record, staging, scene, finish, release=True)
    scene.camera = scene_camera  # the build may have claimed an empty scene's camera slot for a staged camera

    old, new = target.data, built.data
    for index, material in enumerate(old.materials):  # the user's materials stay in their slots
        if material is not None and not material.get(MADE_HERE):
            if index < len(new.materials):
                new.materials[index] = material
            else:
                new.materials.append(material)
    for modifier in [m for m in target.modifiers if m.name in (SMOOTH, DECIMATE)]:
        target.modifiers.remove(modifier)
    ours = [built.modifiers[name] for name in (SMOOTH, DECIMATE) if name in built.modifiers]
    for position, modifier in enumerate(ours):  # first in the stack, as when it was made; the user's follow
        added = target.modifiers.new(modifier.name, modifier.type)
        for setting in ("factor", "iterations", "ratio"):
            if hasattr(modifier, setting):
                setattr(added, setting, getattr(modifier, setting))
        target.modifiers.move(len(target.modifiers) - 1, position)
    name = old.name
    target.data = new
    if old.users == 0:
        bpy.data.meshes.remove(old)
    new.name = name

    cameras = [c for c in built.children if c.type == "CAMERA"]
    kept = [c for c in target.children if c.type == "CAMERA" and c.get(MADE_HERE)]
    for index, camera in enumerate(cameras):
        if index < len(kept):  # the same camera object, so the scene's camera and the user's links stay
            old_data = kept[index].data
            kept[index].data, kept[index].matrix_basis = camera.data, camera.matrix_basis.copy()
            bpy.data.objects.remove(camera)
            if old_data.users == 0:
                bpy.data.cameras.remove(old_data)
        else:
            basis = camera.matrix_basis.copy()
            camera.parent = target
            camera.matrix_basis = basis
            for collection in target.users_collection:
                collection.objects.link(camera)
            staging.objects.unlink(camera)
    for camera in kept[len(cameras):]:
        bpy.data.objects.remove(camera)
    bpy.data.objects.remove(built)
    bpy.data.collections.remove(staging)
    return target


class IMAGE_TO_MESH_OT_apply_preset(bpy.types.Operator):
    """Set the sidebar's settings (or the active result's) for a common job; the rest stay as they are"""

    bl_idname = "image_to_mesh.apply_preset"
    bl_label = "Apply Preset"
    bl_options = {"REGISTER", "UNDO"}

    __annotations__ = {"preset": EnumProperty(name="Preset", items=[(key, label, description) for key, (
        label, description, _values) in PRESETS.items()])}

    def execute(self, context):
        result = result_of(context.active_object)
        settings = result if result is not None else context.scene.image_to_mesh
        values = PRESETS[self.preset][2]
        for name, default, opt in options(MeshSettings):
            if name in values:
                setattr(settings, name, blender_value(values[name], default, opt))
        return {"FINISHED"}


class IMAGE_TO_MESH_OT_clear_cache(bpy.types.Operator):
    """Forget the model outputs kept for re-meshing (in memory, and on disk in the models folder)"""

    bl_idname = "image_to_mesh.clear_cache"
    bl_label = "Clear Cache"

    def execute(self, context):
        freed = RESULTS.clear(cache_folder(preferences_runtime(context)))
        forget_model_status()
        self.report({"INFO"}, f"The cache was cleared ({freed:.0f} MB freed on disk).")
        return {"FINISHED"}
