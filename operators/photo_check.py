"""The photographer's checklist for the chosen photo, shown in the sidebar before anything runs.

Computed when the photo changes (a property update, on the main thread: about a second with the bundled
subject mask) and kept as JSON in the scene's settings, so drawing the panel costs nothing.
"""

from __future__ import annotations

import json

import bpy
import numpy as np

from ..inference.errors import InputError
from ..inference.photo.photo import Photo, load_photo, photo_from_pixels
from ..inference.photo.quality import format_quality
from ..inference.pipeline import PHOTO_CHECK_SIDE, check_photo


def refresh_quality(settings, _context=None) -> None:
    """Update callback of the photo settings: assess the chosen photo and keep the report."""
    try:
        photo = _chosen_photo(settings)
        if photo is None:
            settings.quality_report = ""
            return
        settings.quality_report = json.dumps(check_photo(photo))
    except InputError as err:
        settings.quality_report = json.dumps({"error": str(err)})


def quality_lines(settings) -> list[str]:
    """Short lines for the panel (empty when no photo is chosen)."""
    if not settings.quality_report:
        return []
    report = json.loads(settings.quality_report)
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


def _chosen_photo(settings) -> Photo | None:
    if settings.photo_source == "IMAGE":
        return image_photo(settings.image, PHOTO_CHECK_SIDE) if settings.image else None
    return load_photo(bpy.path.abspath(settings.photo_path), PHOTO_CHECK_SIDE) if settings.photo_path else None
