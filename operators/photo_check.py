"""The photographer's checklist for the chosen photo, shown in the sidebar before anything runs.

Choosing a photo (a property update) reads it at a small size on the main thread and starts the check (about
a second of subject masking) on a worker thread; a timer writes the result into the scene's settings as JSON
when it is ready, so neither choosing nor drawing ever stalls Blender. Results are cached per photo (file and
modification time, or image and size), so choosing a photo again costs nothing. In background mode, where
timers never fire, the check runs at once.
"""

from __future__ import annotations

import json
import os

import bpy
import numpy as np

from ..inference.errors import InputError
from ..inference.photo.photo import Photo, load_photo, photo_from_pixels
from ..inference.photo.prepared import PHOTO_CHECK_SIDE, check_photo
from ..inference.photo.quality import format_quality
from ..inference.runtime.jobs import ThreadJob
from .model_access import BUNDLED_U2NETP, u2netp_hint

_PENDING = json.dumps({"pending": True})
_reports: dict[tuple, str] = {}  # photo key -> report JSON


def refresh_quality(settings, _context=None) -> None:
    """Update callback of the photo settings: show the chosen photo's cached checklist, or start checking it."""
    try:
        key = _photo_key(settings)
        if key is None:
            settings.quality_report = ""
        elif key in _reports:
            settings.quality_report = _reports[key]
        else:
            photo = _chosen_photo(settings)
            if bpy.app.background:
                settings.quality_report = _reports[key] = _checked(photo)
            else:
                settings.quality_report = _PENDING
                job = ThreadJob().start(_checked, photo)
                bpy.app.timers.register(lambda: _collect(job, key, settings.id_data.name), first_interval=0.1)
    except InputError as err:
        settings.quality_report = json.dumps({"error": str(err)})


def quality_lines(settings) -> list[str]:
    """Short lines for the panel (empty when no photo is chosen)."""
    if not settings.quality_report:
        return []
    report = json.loads(settings.quality_report)
    if "pending" in report:
        return ["Checking the photo..."]
    return [report["error"]] if "error" in report else format_quality(report)


def image_photo(image: bpy.types.Image, max_side: int = 4096) -> Photo:
    """A photo from an Image datablock: read from its file when it has one (keeps EXIF), else its pixels."""
    path = bpy.path.abspath(image.filepath) if image.filepath else ""
    if image.source == "FILE" and image.packed_file is None and path:
        return load_photo(path, max_side)
    width, height = image.size
    if width == 0 or height == 0:
        raise InputError(f"The image '{image.name}' has no pixels (is its file missing?).")
    pixels = np.empty(width * height * 4, dtype=np.float32)
    image.pixels.foreach_get(pixels)
    return photo_from_pixels(image.name, pixels.reshape(height, width, 4))


def _checked(photo: Photo) -> str:
    try:
        return json.dumps(check_photo(photo, BUNDLED_U2NETP, u2netp_hint()))
    except InputError as err:
        return json.dumps({"error": str(err)})


def _collect(job: ThreadJob, key: tuple, scene_name: str) -> float | None:
    """Timer: once the check is done, cache it and show it if that photo is still the chosen one."""
    if not job.done:
        return 0.2
    report = job.result or json.dumps({"error": job.error})
    _reports[key] = report
    scene = bpy.data.scenes.get(scene_name)
    if scene is not None and _photo_key(scene.image_to_mesh) == key:
        scene.image_to_mesh.quality_report = report
        for window in bpy.context.window_manager.windows:
            for area in window.screen.areas:
                if area.type == "VIEW_3D":
                    area.tag_redraw()
    return None


def _photo_key(settings) -> tuple | None:
    if settings.photo_source == "IMAGE":
        image = settings.image
        return ("image", image.name, image.filepath, tuple(image.size)) if image else None
    if not settings.photo_path:
        return None
    path = bpy.path.abspath(settings.photo_path)
    try:
        return ("file", path, os.stat(path).st_mtime_ns)
    except OSError:
        return ("file", path, None)


def _chosen_photo(settings) -> Photo | None:
    if settings.photo_source == "IMAGE":
        return image_photo(settings.image, PHOTO_CHECK_SIDE)
    return load_photo(bpy.path.abspath(settings.photo_path), PHOTO_CHECK_SIDE)
