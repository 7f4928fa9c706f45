"""The "Image to Mesh" operator: gather settings, run the pipeline, build the objects, report.

Clicked in the sidebar with a depth model, the model runs (and downloads, with progress) on a worker thread
while Blender stays responsive; Esc cancels. Scripts, background mode (where timers never fire) and
Adjust Last Operation run the same pipeline synchronously.
"""

from __future__ import annotations

import bpy
from bpy.props import StringProperty

from ..inference.errors import InputError
from ..inference.photo.photo import Photo, load_photo
from ..inference.pipeline import image_to_mesh
from .background_job import BackgroundJob
from .builders.objects import build_objects, select_only
from .model_access import preferences_model_access
from .photo_check import image_photo
from .properties import mesh_properties, to_mesh_finish, to_mesh_settings


class IMAGE_TO_MESH_OT_generate(bpy.types.Operator):
    """Turn the photo into a textured mesh with a camera that lines it up with the photo"""

    bl_idname = "image_to_mesh.generate"
    bl_label = "Image to Mesh"
    bl_options = {"REGISTER", "UNDO"}

    __annotations__ = {
        "photo_path": StringProperty(name="Photo", subtype="FILE_PATH"),
        "image_name": StringProperty(name="Image", description="An image datablock to use instead of a file"),
        **mesh_properties(),
    }

    @classmethod
    def poll(cls, context):
        return context.mode == "OBJECT"

    def take_sidebar_settings(self, context) -> None:
        """Fill every property not given explicitly from the sidebar's settings.

        Blender marks properties as set once an operator ran, so a redo (Adjust Last Operation) keeps the
        values edited there, while a script can pass just the properties it cares about.
        """
        settings = context.scene.image_to_mesh
        for name in mesh_properties():
            if not self.properties.is_property_set(name):
                setattr(self, name, getattr(settings, name))
        if not (self.properties.is_property_set("photo_path") or self.properties.is_property_set("image_name")):
            use_image = settings.photo_source == "IMAGE"
            self.photo_path = "" if use_image else settings.photo_path
            self.image_name = settings.image.name if use_image and settings.image else ""

    def invoke(self, context, event):
        self.take_sidebar_settings(context)
        if self.depth_source != "MODEL" or bpy.app.background:
            return self.execute(context)
        try:
            arguments = self._pipeline_arguments(context)
        except InputError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        self._job = BackgroundJob()
        models = arguments[3]
        models.progress, models.cancel = self._job.progress, self._job.cancel
        self._job.status = f"Running {self.model} (Esc cancels)"
        self._job.start(image_to_mesh, *arguments)
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        job = self._job
        if event.type == "ESC":
            job.cancel.set()
            self._stop_progress(context)
            self.report({"WARNING"}, "Image to Mesh was cancelled.")
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        context.window_manager.progress_update(int(job.fraction * 100))
        context.workspace.status_text_set(job.status)
        if not job.done:
            return {"PASS_THROUGH"}
        self._stop_progress(context)
        if job.error:
            self.report({"ERROR"}, job.error)
            return {"CANCELLED"}
        return self._build(context, job.result)

    def execute(self, context):
        self.take_sidebar_settings(context)
        try:
            record = image_to_mesh(*self._pipeline_arguments(context))
        except InputError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        return self._build(context, record)

    def _pipeline_arguments(self, context) -> tuple:
        """(photo, depth map, settings, models) for inference.pipeline.image_to_mesh; reads Blender data, so
        it runs on the main thread."""
        photo = self._photo()
        settings = to_mesh_settings(self)
        settings.check()
        if self.depth_source != "DEPTH_MAP":
            return photo, None, settings, preferences_model_access(context, self.accept_license)
        if not self.depth_path:
            raise InputError("Choose a depth map for the photo (Depth Map in the Image to Mesh sidebar).")
        return photo, bpy.path.abspath(self.depth_path), settings, None

    def _build(self, context, record):
        mesh_object, _camera, _image = build_objects(record, context.collection, context.scene, to_mesh_finish(self))
        select_only(context.view_layer, [mesh_object])
        camera = record.report["camera"]
        method = record.report["model"]["name"] if record.report["model"] else record.report["method"]
        self.report(
            {"INFO"},
            f"{record.name} ({method}): {len(record.vertices):,} vertices, {record.face_count:,} faces; "
            f"camera {camera['fov_x_deg']:.1f} deg wide ({camera['source']}).",
        )
        for notice in record.report["notices"]:
            self.report({"WARNING"}, notice)
        return {"FINISHED"}

    def _stop_progress(self, context) -> None:
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.workspace.status_text_set(None)

    def _photo(self) -> Photo:
        if self.image_name:
            image = bpy.data.images.get(self.image_name)
            if image is None:
                raise InputError(f"There is no image called '{self.image_name}' in this file.")
            return image_photo(image)
        if not self.photo_path:
            raise InputError("Choose a photo first (Photo in the Image to Mesh sidebar).")
        return load_photo(bpy.path.abspath(self.photo_path))
