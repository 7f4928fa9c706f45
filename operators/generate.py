"""The "Image to Mesh" operator: gather settings, run the pipeline, build the objects, report.

Clicked in the sidebar, the pipeline runs on a worker thread (ThreadJob) while Blender stays responsive, with
progress in the status bar; Esc cancels it at once, downloads and model runs included, and nothing is built.
Scripts, background mode (where timers never fire) and Adjust Last Operation run the same pipeline
synchronously.
"""

from __future__ import annotations

import traceback
from functools import partial

import bpy
from bpy.props import StringProperty

from ..inference.errors import InputError
from ..inference.memory import require_memory
from ..inference.photo.photo import Photo, load_photo
from ..inference.pipeline import check_sources, image_to_mesh, photo_load_side
from ..inference.generate.backend import MORE_VIEWS
from ..inference.runtime.cache import content_hash
from ..inference.runtime.cards import model_card
from ..inference.runtime.jobs import ThreadJob
from ..inference.settings import MeshSettings
from .builders.finish import MeshFinish
from .builders.objects import build_objects, select_only
from .model_access import forget_model_status, preferences_model_access
from .photo_check import image_photo
from .properties import PATH_OPTIONS, SETTING_NAMES, blender_properties, settings_from, view_properties
from .remember import remember


def operator_properties() -> dict:
    """Fresh declarations of the operator's properties: the photo, the depth map, more photos, every setting."""
    return {
        "photo_path": StringProperty(name="Photo", subtype="FILE_PATH", options=PATH_OPTIONS),
        "image_name": StringProperty(name="Image", description="An image datablock to use instead of a file"),
        "depth_path": StringProperty(name="Depth Map", subtype="FILE_PATH", description="The photo's depth map",
                                     options=PATH_OPTIONS),
        **view_properties(),
        **blender_properties(MeshSettings),
    }


class PhotoToMesh:
    """What the operators that run the pipeline share (Image to Mesh here; Update: results.py): the settings, the
    job on a worker thread, progress and Esc, the report; `source_settings` and `place` are theirs to choose."""

    def take_sidebar_settings(self, context) -> None:
        """Fill every property not given explicitly from the sidebar's settings.

        Blender marks properties as set once an operator ran, so a redo (Adjust Last Operation) keeps the
        values edited there, while a script can pass just the properties it cares about.
        """
        settings = self.source_settings(context)
        for name in SETTING_NAMES:
            if not self.properties.is_property_set(name):
                setattr(self, name, getattr(settings, name))
        if not (self.properties.is_property_set("photo_path") or self.properties.is_property_set("image_name")):
            use_image = settings.photo_source == "IMAGE"
            self.photo_path = "" if use_image else settings.photo_path
            self.image_name = settings.image.name if use_image and settings.image else ""

    def source_settings(self, context):
        """Where the settings come from: the sidebar's (the scene's)."""
        return context.scene.image_to_mesh

    def invoke(self, context, event):
        self.take_sidebar_settings(context)
        if bpy.app.background:
            return self.execute(context)
        try:
            self.start_job(context)
        except InputError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        context.window_manager.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def start_job(self, context) -> None:
        """Start the pipeline on a worker thread, a timer that polls it (modal) and the progress bar."""
        arguments = self._pipeline_arguments(context)
        self._job = ThreadJob(f"Image to Mesh: {arguments[2].method} (Esc cancels)")
        models = arguments[3]
        models.progress, models.stage, models.cancel = self._job.progress, self._job.stage, self._job.cancel_token
        self._job.start(image_to_mesh, *arguments)
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.progress_begin(0, 100)

    def modal(self, context, event):
        job = self._job
        if event.type == "ESC":
            job.cancel()  # the worker ends on its own within moments: its result is never built
            self._stop_progress(context)
            self.report({"WARNING"}, "Image to Mesh was cancelled.")
            return {"CANCELLED"}
        if event.type != "TIMER" or not self.job_ended(context):
            return {"PASS_THROUGH"}
        if job.error:
            if not isinstance(job.exception, InputError):  # a bug: its traceback goes to the system console
                traceback.print_exception(job.exception)
            self.report({"ERROR"}, job.error)
            return {"CANCELLED"}
        return self._build(context, job.result)

    def job_ended(self, context) -> bool:
        """On a timer event: show the job's progress; when it has ended, stop showing it and say so."""
        job = self._job
        context.window_manager.progress_update(int(job.fraction * 100))
        context.workspace.status_text_set(job.status)
        if job.done:
            self._stop_progress(context)
        return job.done

    def execute(self, context):
        self.take_sidebar_settings(context)
        try:
            record = image_to_mesh(*self._pipeline_arguments(context))
        except InputError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        finally:
            forget_model_status()
        return self._build(context, record)

    def _pipeline_arguments(self, context) -> tuple:
        """(photo, depth map, settings, models, memory check, more views) for inference.pipeline.image_to_mesh;
        reads Blender data, so it runs on the main thread."""
        settings = settings_from(self)
        if settings.model_file:
            settings.model_file = bpy.path.abspath(settings.model_file)
        depth = bpy.path.abspath(self.depth_path) if self.depth_path and settings.method in ("auto", "depth-map") else None
        models = preferences_model_access(context, settings.accept_license)
        views = {}
        if settings.method == "generate" and model_card(settings.generator, task="object").generator.multiview:
            views = {tag: bpy.path.abspath(getattr(self, f"{tag}_photo")) for tag in MORE_VIEWS
                     if getattr(self, f"{tag}_photo")}
        check_sources(settings, depth is not None, models, tuple(views))  # refused now, not after the photo was read
        photo = self._photo(photo_load_side(settings))
        self._photo_hash = content_hash(photo.rgb)  # what the result remembers it was made from
        # A mesh too large for the memory available is refused before it is made, naming a Resolution that fits.
        check_memory = partial(require_memory, name=photo.name, cli=False)
        return photo, depth, settings, models, check_memory, views

    def _build(self, context, record):
        settings = settings_from(self)
        vertices, faces = len(record.vertices), record.face_count
        try:  # a remesh refused (a voxel size too small for the memory) or failed: one sentence
            mesh_object = self.place(context, record, MeshFinish.of(settings))
        except InputError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        remember(mesh_object, settings, photo_path=self.photo_path, image=bpy.data.images.get(self.image_name or ""),
                 depth_path=self.depth_path, views={tag: getattr(self, f"{tag}_photo") for tag in MORE_VIEWS},
                 photo_hash=self._photo_hash)
        select_only(context.view_layer, [mesh_object])
        report = record.report
        method = report.model.name if report.model else report.method
        camera = f"; camera {report.camera.fov_x_deg:.1f} deg wide ({report.camera.source})" if report.camera else ""
        cached = " (the model's output came from the cache)" if report.model and report.model.cached else ""
        self.report({"INFO"}, f"{record.name} ({method}): {vertices:,} vertices, {faces:,} faces{camera}{cached}.")
        for step in report.preparation:
            self.report({"INFO"}, f"Photo {step.summary}.")
        for notice in report.notices:
            self.report({"WARNING"}, notice)
        return {"FINISHED"}

    def place(self, context, record, finish: MeshFinish) -> bpy.types.Object:
        """A new object (and its cameras) in the active collection. The record's arrays go as Blender takes them
        (release): the build peaks lower."""
        return build_objects(record, context.collection, context.scene, finish, release=True)[0]

    def _stop_progress(self, context) -> None:
        forget_model_status()
        wm = context.window_manager
        wm.event_timer_remove(self._timer)
        wm.progress_end()
        context.workspace.status_text_set(None)

    def _photo(self, max_side: int) -> Photo:
        if self.image_name:
            image = bpy.data.images.get(self.image_name)
            if image is None:
                raise InputError(f"There is no image called '{self.image_name}' in this file.")
            return image_photo(image)
        if not self.photo_path:
            raise InputError("Choose a photo first (Photo in the Image to Mesh sidebar).")
        return load_photo(bpy.path.abspath(self.photo_path), max_side)


class IMAGE_TO_MESH_OT_generate(PhotoToMesh, bpy.types.Operator):
    """Turn the photo into a textured mesh with a camera that lines it up with the photo"""

    bl_idname = "image_to_mesh.generate"
    bl_label = "Image to Mesh"
    bl_options = {"REGISTER", "UNDO"}

    __annotations__ = operator_properties()

    @classmethod
    def poll(cls, context):
        return context.mode == "OBJECT"
