"""The extension's preferences: where inference runs and where models are kept (inference.settings.RuntimeSettings)."""

import bpy

from .inference.settings import RuntimeSettings
from .operators.model_access import generator_status
from .operators.properties import blender_properties


class ImageToMeshPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__
    __annotations__ = blender_properties(RuntimeSettings)

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        for name in self.__annotations__:
            layout.prop(self, name)
        if not bpy.app.online_access:
            layout.label(text="Online access is off: models must already be in the models folder.", icon="INFO")
        layout.operator("image_to_mesh.clear_cache", icon="TRASH")
        generation = layout.box().row()
        ready, line = generator_status(context)
        generation.label(text=f"Object generation: {line}", icon="CHECKMARK" if ready else "INFO")
        generation.operator("image_to_mesh.remove_generator" if ready else "image_to_mesh.setup_generator")
