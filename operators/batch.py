"""Photos as meshes from where Blender users look: File > Import and Add > Mesh ("Photo as Mesh", a file browser
taking one photo, several, or a folder), and image files dragged into the 3D Viewport (a FileHandler).

Several photos are a batch: one object per photo with its camera, laid out side by side along X in the order
given, with the sidebar's settings. Each photo runs on a worker thread like a single click (progress per photo in
the status bar); a photo that fails is listed with its one sentence and the batch goes on; Esc stops it and keeps
the objects already made.
"""

from __future__ import annotations

from pathlib import Path

import bpy
from bpy.props import BoolProperty, CollectionProperty, StringProperty
from bpy.types import OperatorFileListElement

from ..inference.errors import InputError
from ..inference.photo.photo import PHOTO_SUFFIXES
from .builders.finish import MeshFinish
from .generate import PhotoToMesh, operator_properties

GAP = 0.1  # between neighbours in a batch, as a fraction of the wider one


class IMAGE_TO_MESH_OT_import_photos(PhotoToMesh, bpy.types.Operator):
    """Turn photos into textured meshes with their cameras, side by side, using the Image to Mesh sidebar's
    settings"""

    bl_idname = "image_to_mesh.import_photos"
    bl_label = "Photo as Mesh"
    bl_options = {"REGISTER", "UNDO"}

    __annotations__ = {
        **operator_properties(),
        "directory": StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"}),
        "files": CollectionProperty(type=OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"}),
        "filter_image": BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"}),
        "filter_folder": BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"}),
    }

    @classmethod
    def poll(cls, context):
        return context.mode == "OBJECT"

    def invoke(self, context, event):
        if not self.directory:  # from a menu: choose the photos first (dropped files come with them)
            context.window_manager.fileselect_add(self)
            return {"RUNNING_MODAL"}
        return self.execute(context)

    def execute(self, context):
        try:
            self.begin(context)
        except InputError as err:
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        if not bpy.app.background and self._queue and context.window is not None:
            return self._start_modal(context)
        while self._queue:  # scripts and background mode: one photo after another, here
            self.photo_path = self._queue.pop(0)
            try:
                self.execute_one(context)
            except InputError as err:
                self._failed.append(f"{Path(self.photo_path).name}: {err}")
        return self._finish()

    def begin(self, context) -> None:
        self._queue = [str(p) for p in photos_of(self.directory, [f.name for f in self.files])]
        self._total, self._made, self._failed, self._right = len(self._queue), [], [], None
        self.take_sidebar_settings(context)
        self.image_name = ""

    def _start_modal(self, context):
        context.window_manager.modal_handler_add(self)
        self.next_photo(context)
        return {"RUNNING_MODAL"}

    def next_photo(self, context) -> None:
        """Start the next photo's job (a photo refused at once is listed and skipped)."""
        while self._queue:
            self.photo_path = self._queue.pop(0)
            try:
                self.start_job(context)
            except InputError as err:
                self._failed.append(f"{Path(self.photo_path).name}: {err}")
                continue
            done = self._total - len(self._queue)
            self._job.status = f"Image to Mesh: photo {done} / {self._total}, {Path(self.photo_path).name} (Esc stops)"
            return

    def modal(self, context, event):
        if not hasattr(self, "_job") or self._job is None:
            return self._finish()
        job = self._job
        if event.type == "ESC":
            job.cancel()
            self._stop_progress(context)
            self.report({"WARNING"}, f"The batch was stopped: {len(self._made)} of {self._total} photos were made.")
            return self._finish(cancelled=True)
        if event.type != "TIMER" or not self.job_ended(context):
            return {"PASS_THROUGH"}
        if job.error:
            self._failed.append(f"{Path(self.photo_path).name}: {job.error}")
        else:
            self._build(context, job.result)
        self._job = None
        self.next_photo(context)
        return {"PASS_THROUGH"} if self._job is not None else self._finish()

    def execute_one(self, context) -> None:
        """One photo, here and now (InputError when it fails)."""
        from ..inference.pipeline import image_to_mesh

        self._build(context, image_to_mesh(*self._pipeline_arguments(context)))

    def place(self, context, record, finish: MeshFinish) -> bpy.types.Object:
        """Each new object to the right of the previous one."""
        obj = PhotoToMesh.place(self, context, record, finish)
        half = obj.dimensions.x / 2
        if self._right is not None:
            obj.location.x = self._right + GAP * max(half * 2, 1e-3) + half
        self._right = obj.location.x + half
        self._made.append(obj.name)
        return obj

    def _finish(self, cancelled: bool = False):
        for failure in self._failed:
            self.report({"WARNING"}, failure)
        if len(self._made) + len(self._failed) > 1 or self._failed:
            self.report({"INFO"}, f"{len(self._made)} of {self._total} photos were made"
                                  + (f"; {len(self._failed)} failed" if self._failed else "") + ".")
        return {"CANCELLED"} if cancelled and not self._made else {"FINISHED"} if self._made else {"CANCELLED"}


def photos_of(directory: str, names: list[str]) -> list[Path]:
    """The chosen photos, or every photo in the folder when none is chosen; one sentence when there is none."""
    folder = Path(bpy.path.abspath(directory)) if directory else None
    names = [name for name in names if name]
    if folder is None:
        raise InputError("Choose one or more photos.")
    if not names:
        photos = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES) if folder.is_dir() else []
        if not photos:
            raise InputError(f"There is no photo in {folder} ({', '.join(sorted(PHOTO_SUFFIXES))}).")
        return photos
    refused = [name for name in names if Path(name).suffix.lower() not in PHOTO_SUFFIXES]
    if refused:
        raise InputError(f"{refused[0]} is not a photo: Image to Mesh takes {', '.join(sorted(PHOTO_SUFFIXES))}.")
    return [folder / name for name in names]


class IMAGE_TO_MESH_FH_photos(bpy.types.FileHandler):
    """Photos dropped into the 3D Viewport: Image to Mesh offers to turn them into meshes."""

    bl_idname = "IMAGE_TO_MESH_FH_photos"
    bl_label = "Image to Mesh"
    bl_import_operator = IMAGE_TO_MESH_OT_import_photos.bl_idname
    bl_file_extensions = ";".join(sorted(PHOTO_SUFFIXES))

    @classmethod
    def poll_drop(cls, context):
        return context.area is not None and context.area.type == "VIEW_3D"


def menu_entry(self, context):
    self.layout.operator(IMAGE_TO_MESH_OT_import_photos.bl_idname, text="Photo as Mesh", icon="IMAGE_DATA")


MENUS = (bpy.types.TOPBAR_MT_file_import, bpy.types.VIEW3D_MT_mesh_add)
