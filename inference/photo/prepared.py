"""The photo as every backend gets it: prepared, its subject found, its quality checked, its texture's edges
feathered.

Preparation follows the photographer's checklist, each step optional and reported (PreparationStep), in this
order: the lens's distortion removed (lens.py), white balance and exposure corrected (exposure.py), the photo
cropped to its subject (framing.py), then upscaled (upscale.py). Masks, models and the texture all get the
result. Where the prepared photo lies in the original one is a geometry.camera.Window: the mesh is built
through it with the original photo's camera, so the created camera still lines the mesh up with the (corrected)
whole photo. When anything was changed, the photo check runs before and after.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..geometry.camera import Window, photo_intrinsics
from ..masks.subject import MASK_MODES, feather_alpha, subject_mask
from ..runtime.access import ModelAccess
from ..runtime.cache import content_hash, file_key
from ..runtime.cards import model_card
from ..runtime.onnx_session import onnx_session
from .exposure import auto_exposure, grey_world
from .framing import subject_box
from .lens import Lens, parse_lens, undistort
from .photo import Photo, Texture
from .quality import assess_photo
from .upscale import bicubic_upscale, upscale_with_network, upscaled_size

PHOTO_CHECK_SIDE = 1024  # the photo check works at this long side: load photos for it no larger


@dataclass
class PreparationStep:
    """One thing done to the photo before reconstruction: what, in one sentence, and its numbers."""

    name: str  # "undistort", "white-balance", "exposure", "crop", "upscale"
    summary: str
    details: dict = field(default_factory=dict)


@dataclass
class PreparedPhoto:
    photo: Photo  # prepared and upright; its alpha is the feathered mask when a feather was asked
    mask: np.ndarray | None  # (H, W) bool at photo.rgb's size: the subject (None = the whole photo)
    mask_report: dict  # masks.subject_mask's report
    quality: dict  # quality.assess_photo's checklist of the prepared photo
    seconds: float
    window: Window  # where the prepared photo lies in the whole photo, in the whole photo's original pixels
    camera_size: tuple[int, int]  # (width, height) of the whole photo, original pixels: the camera's image
    focal_px: float | None = None  # a calibrated focal length (original pixels), from a calibration file
    whole: Texture | None = None  # the whole corrected photo when the prepared one is a crop of it
    steps: list[PreparationStep] = field(default_factory=list)
    quality_before: dict = field(default_factory=dict)  # the check of the photo as given, when it was changed
    notices: list[str] = field(default_factory=list)  # the mask's and the preparation's
    lens: Lens | None = None  # the distortion removed, with the focal length (original pixels) it was removed for
    lens_focal_px: float = 0.0
    views: dict[str, PreparedPhoto] = field(default_factory=dict)  # more photos of the subject, by view (multi-view)

    def aligned(self, values: np.ndarray) -> np.ndarray:
        """A map that lines up with the photo as given (a depth map, of any size) as the prepared photo sees it:
        undistorted like the photo (nearest neighbour: values are never blended), then cut to the window."""
        if self.lens is not None:
            values = undistort(values, self.lens, self.lens_focal_px, self.camera_size, cv2.INTER_NEAREST)[0]
        return _in_window(values, self.window, self.camera_size)


def prepare_photo(photo: Photo, settings, models: ModelAccess | None, max_side: int) -> PreparedPhoto:
    """Prepare the photo (module notes) as `settings` (MeshSettings) ask, find its subject (settings.mask_mode,
    see masks.subject), check it, and feather the texture's edge. max_side caps an upscaled photo's long side."""
    start = time.perf_counter()
    given, steps, notices = photo, [], []
    focal = lens = None
    if settings.undistort:
        photo, lens, focal, step = _undistorted(photo, settings)
        steps.append(step)
    if settings.white_balance == "auto":
        photo, step = _corrected(photo, grey_world, "white-balance", "white balanced (grey world)")
        steps.append(step)
    if settings.auto_exposure:
        photo, step = _corrected(photo, auto_exposure, "exposure", "exposure corrected (levels)")
        steps.append(step)
    window = Window(0.0, 0.0, *map(float, photo.source_size), pixels=photo.source_size)
    whole, framing_mask = photo, None
    if settings.crop_subject:
        framing_mode = settings.mask_mode if settings.mask_mode != "none" else "auto"
        framing_mask, framing_report = _subject(photo, framing_mode, models)
        photo, window, step = _cropped(photo, window, framing_mask)
        steps.append(step)
        notices += framing_report["notices"]
    if settings.upscale != "off":
        photo, window, step, upscale_notices = _upscaled(photo, window, settings, models, max_side)
        steps.append(step)
        notices += upscale_notices

    mask, mask_report = _subject(photo, settings.mask_mode, models)
    checked_mask = mask if mask is not None or framing_mask is None else _in_window(framing_mask, window,
                                                                                     whole.source_size)
    quality = assess_photo(photo, checked_mask)
    changed = any(step.details.get("changed", True) for step in steps)
    quality_before = assess_photo(given, framing_mask if framing_mask is not None else mask) if changed else {}
    if settings.feather and mask is not None:  # soft texture edges instead of a fringe of background colour
        alpha = feather_alpha(mask, settings.feather * photo.size[0] / window.width)
        photo = replace(photo, alpha=(alpha * 255 + 0.5).astype(np.uint8))
    cropped = (window.width, window.height) != tuple(map(float, whole.source_size))
    return PreparedPhoto(
        photo, mask, mask_report, quality, time.perf_counter() - start, window, whole.source_size, focal,
        whole.texture if cropped else None, steps, quality_before, mask_report["notices"] + notices,
        *(lens or (None, 0.0)),
    )


def check_photo(photo: Photo, u2netp: Path | None, u2netp_hint: str) -> dict:
    """The photographer's checklist for a photo, its subject found the way an object's is (alpha or U²-Net-p)."""
    return assess_photo(photo, subject_mask(photo, "auto", u2netp, u2netp_hint)[0])


def _undistorted(photo: Photo, settings) -> tuple[Photo, tuple[Lens, float], float | None, PreparationStep]:
    """The undistorted photo, the lens with the focal length it was removed for, a calibrated focal length."""
    lens = parse_lens(settings.undistort)
    assumed, _ = photo_intrinsics(photo.source_size, settings.fov, settings.focal_px, photo.focal_35mm)
    rgb, alpha, focal, details = undistort(photo.rgb, lens, assumed.focal_px, photo.source_size, extra=photo.alpha)
    calibrated = lens.matrix is not None
    summary = (f"lens distortion removed ({lens.source}; up to {details['max_shift_px']:.1f} px moved)"
               + (f", focal length {focal:.1f} px from the calibration" if calibrated else ""))
    return replace(photo, rgb=rgb, alpha=alpha), (lens, assumed.focal_px), focal if calibrated else None, \
        PreparationStep("undistort", summary, details)


def _corrected(photo: Photo, correction, name: str, done: str) -> tuple[Photo, PreparationStep]:
    rgb, details = correction(photo.rgb)
    summary = done if details["changed"] else f"{name.replace('-', ' ')}: nothing to correct"
    if name == "exposure" and details["changed"]:
        summary += f", {details['stops']:+.2f} stops"
    return replace(photo, rgb=rgb), PreparationStep(name, summary, details)


def _cropped(photo: Photo, whole: Window, mask: np.ndarray | None) -> tuple[Photo, Window, PreparationStep]:
    """The photo cropped to its subject, and the window the crop is of the whole photo (original pixels)."""
    w, h = photo.size
    box = None if mask is None else subject_box(mask)
    if box is None:
        return photo, whole, PreparationStep("crop", "not cropped: no subject was found", {"changed": False})
    x0, y0, x1, y1 = box
    rx, ry = photo.source_size[0] / w, photo.source_size[1] / h
    window = Window(x0 * rx, y0 * ry, (x1 - x0) * rx, (y1 - y0) * ry,
                    (max(1, round((x1 - x0) * rx)), max(1, round((y1 - y0) * ry))))
    coverage = float(np.count_nonzero(mask[y0:y1, x0:x1])) / ((x1 - x0) * (y1 - y0))
    crop = Photo(photo.name, np.ascontiguousarray(photo.rgb[y0:y1, x0:x1]),
                 None if photo.alpha is None else np.ascontiguousarray(photo.alpha[y0:y1, x0:x1]),
                 window.pixels, photo.focal_35mm)
    summary = (f"cropped to the subject: {window.pixels[0]}x{window.pixels[1]} px of "
               f"{photo.source_size[0]}x{photo.source_size[1]}, the subject fills {coverage * 100:.0f} %")
    return crop, window, PreparationStep("crop", summary, {
        "box": [window.x, window.y, window.width, window.height], "coverage": coverage,
        "coverage_before": float(mask.mean())})


def _upscaled(photo: Photo, window: Window, settings, models: ModelAccess | None,
              max_side: int) -> tuple[Photo, Window, PreparationStep, list[str]]:
    size = upscaled_size(photo.size, settings.upscale, max_side)
    if size == photo.size:
        return photo, window, PreparationStep(
            "upscale", f"not upscaled: {max(photo.size)} px on the long side is enough", {"changed": False}), []
    card = model_card(settings.upscale_model, task="upscale")
    path, notices = _upscale_model(card, models)
    start = time.perf_counter()
    if path is None:
        rgb, how = bicubic_upscale(photo.rgb, size), "bicubic"
    else:
        session, session_notices = onnx_session(path, models.device, models.threads)
        notices += session_notices
        rgb = upscale_with_network(session, photo.rgb, size, card.input, models.cancel)
        how = card.name
    alpha = None if photo.alpha is None else bicubic_upscale(photo.alpha, size)
    details = {"method": how, "from": list(photo.size), "to": list(size), "seconds": time.perf_counter() - start}
    summary = f"upscaled from {photo.size[0]}x{photo.size[1]} to {size[0]}x{size[1]} px ({how})"
    return (replace(photo, rgb=rgb, alpha=alpha, source_size=size), replace(window, pixels=size),
            PreparationStep("upscale", summary, details), notices)


def _upscale_model(card, models: ModelAccess | None) -> tuple[Path | None, list[str]]:
    """The upscaling model's file, or None and a notice saying why the photo is resampled instead."""
    if models is not None:
        try:
            return models.fetch(card)[0], []
        except InputError as err:
            if models.cancel.is_set():
                raise
            reason = str(err)
    else:
        reason = "no models folder was given"
    return None, [f"The photo was upscaled by bicubic resampling, not by {card.name}: {reason}"]


def _in_window(values: np.ndarray, window: Window, camera_size: tuple[int, int]) -> np.ndarray:
    """The part of a whole-photo array (any size) that the window covers, to the nearest of its pixels."""
    sx, sy = values.shape[1] / camera_size[0], values.shape[0] / camera_size[1]
    x0, y0 = round(window.x * sx), round(window.y * sy)
    x1, y1 = round((window.x + window.width) * sx), round((window.y + window.height) * sy)
    return values[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]


def _subject(photo: Photo, mode: str, models: ModelAccess | None) -> tuple[np.ndarray | None, dict]:
    """The subject's mask at the photo's size (None = the whole photo) and its report."""
    if models is None:  # masks that need no model file: alpha, none (the others say what is missing)
        if mode not in MASK_MODES:
            raise InputError(f"The mask model {model_card(mode, task='mask').name} needs a models folder.")
        return subject_mask(photo, mode, None)
    if mode in ("none", "alpha"):  # no model: nothing worth keeping
        return subject_mask(photo, mode, None)
    downloaded = mode not in MASK_MODES or mode == "u2net"  # a mask model's card, fetched like a depth model
    model_path = models.fetch(model_card(mode, task="mask"))[0] if downloaded else None
    model = model_path or models.u2netp
    key = ["mask", content_hash(*[a for a in (photo.rgb, photo.alpha) if a is not None]), mode,
           model and model.is_file() and file_key(model)]
    cached = models.cache.get(key)
    if cached is not None:  # the same photo and mask model: the same mask
        return cached[0]["mask"], cached[1]
    mask, report = subject_mask(photo, mode, models.u2netp, models.u2netp_hint, model_path=model_path,
                                device=models.device, threads=models.threads, cancel=models.cancel)
    models.cache.put(key, {"mask": mask}, report)
    return mask, report
