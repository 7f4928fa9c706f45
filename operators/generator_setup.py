"""Set up and remove object generation's Python environment from Blender (inference/generate/worker_env.py).

"Set up object generation" shows what it will download (size, where), needs Blender's online access, and
installs on a worker thread while Blender stays responsive: the last line of pip's output in the status bar, Esc
cancels and leaves nothing behind. "Remove" stops the warm worker and deletes the environment.
"""

from __future__ import annotations

import textwrap

import bpy
from bpy.props import EnumProperty

from ..inference.errors import InputError
from ..inference.generate.worker_env import create_environment, remove_environment, setup_plan
from ..inference.runtime.jobs import ThreadJob
from .model_access import GENERATOR_WORKERS, forget_model_status, generator_folder, preferences_runtime

# The ONNX device chosen in Preferences -> the PyTorch build to install.
_TORCH_DEVICE = {"cuda": "cuda", "coreml": "mps"}
_DEVICES = (("cpu", "CPU", "PyTorch's CPU build: every machine (minutes per object)"),
            ("cuda", "CUDA", "PyTorch's CUDA build: NVIDIA GPUs (seconds per object)"),
            ("mps", "Apple GPU", "PyTorch with Metal (MPS) on Apple silicon"))


class IMAGE_TO_MESH_OT_setup_generator(bpy.types.Operator):
    """Download and install what object generation runs on (PyTorch and Hunyuan3D-2's code) into its own Python
    environment; the models download on first use"""

    bl_idname = "image_to_mesh.setup_generator"
    bl_label = "Set up Object Generation"

    __annotations__ = {"device": EnumProperty(name="Device", items=_DEVICES, description="Which PyTorch to install")}

    def invoke(self, context, event):
        runtime = preferences_runtime(context)
        if not self.properties.is_property_set("device"):
            self.device = _TORCH_DEVICE.get(runtime.device, "cpu")
        if not bpy.app.online_access:
            self.report({"ERROR"}, "Setting up object generation downloads from the Python Package Index: allow "
                                   "online access (Preferences > System > Network) first.")
            return {"CANCELLED"}
        try:
            self._plan = setup_plan(generator_folder(runtime), self.device, runtime.generator_python)
        except InputError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        return context.window_manager.invoke_props_dialog(self, width=520, confirm_text="Download and Install")

    def draw(self, context):
        layout = self.layout
        layout.prop(self, "device")
        column = layout.column(align=True)
        for line in textwrap.wrap(self._plan.describe(), 90):
            column.label(text=line)

    def execute(self, context):
        runtime = preferences_runtime(context)
        arguments = (generator_folder(runtime), self.device, runtime.generator_python)
        if bpy.app.background:
            try:
                create_environment(*arguments, log=print)
            except InputError as err:
                self.report({"ERROR"}, str(err))
                return {"CANCELLED"}
            return self._done()
        self._job = ThreadJob("Setting up object generation (Esc cancels)")
        GENERATOR_WORKERS.close()  # a worker of the old environment must not hold its files
        self._job.start(create_environment, *arguments, self._log, self._job.cancel_token)
        self._timer = context.window_manager.event_timer_add(0.2, window=context.window)
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def _log(self, line: str) -> None:
        if line.strip():
            self._job.status = f"Setting up object generation: {line.strip()[:100]} (Esc cancels)"

    def modal(self, context, event):
        job = self._job
        if event.type == "ESC":
            job.cancel()
        elif event.type != "TIMER":
            return {"PASS_THROUGH"}
        context.workspace.status_text_set(job.status)
        if not job.done:
            return {"PASS_THROUGH"}
        context.window_manager.event_timer_remove(self._timer)
        context.workspace.status_text_set(None)
        if job.error:
            self.report({"ERROR"}, job.error)
            forget_model_status()
            return {"CANCELLED"}
        return self._done()

    def _done(self):
        forget_model_status()
        self.report({"INFO"}, "Object generation is set up.")
        return {"FINISHED"}


class IMAGE_TO_MESH_OT_remove_generator(bpy.types.Operator):
    """Delete object generation's Python environment (the downloaded models stay)"""

    bl_idname = "image_to_mesh.remove_generator"
    bl_label = "Remove Object Generation"

    def invoke(self, context, event):
        return context.window_manager.invoke_confirm(self, event)

    def execute(self, context):
        GENERATOR_WORKERS.close()
        try:
            freed = remove_environment(generator_folder(preferences_runtime(context)))
        except InputError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        forget_model_status()
        self.report({"INFO"}, f"Object generation was removed ({freed:.0f} MB freed).")
        return {"FINISHED"}

