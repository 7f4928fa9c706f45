"""The extension's preferences: where inference runs and where models are kept."""

import bpy
from bpy.props import EnumProperty, IntProperty, StringProperty


class ImageToMeshPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    device: EnumProperty(
        name="Device",
        description="Where depth models run; anything unavailable falls back to the CPU with a message",
        items=[
            ("cpu", "CPU", "Every machine"),
            ("cuda", "CUDA", "NVIDIA GPUs (needs ONNX Runtime's CUDA build and drivers)"),
            ("directml", "DirectML", "Any GPU on Windows (needs onnxruntime-directml)"),
            ("coreml", "Core ML", "Apple silicon"),
        ],
    )
    threads: IntProperty(name="Threads", default=0, min=0, max=256, description="CPU threads; 0 = all cores")
    models_folder: StringProperty(
        name="Models Folder", subtype="DIR_PATH",
        description="Where downloaded models are kept; empty = the extension's user folder",
    )

    def draw(self, context):
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "device")
        layout.prop(self, "threads")
        layout.prop(self, "models_folder")
        if not bpy.app.online_access:
            layout.label(text="Online access is off: models must already be in the models folder.", icon="INFO")
