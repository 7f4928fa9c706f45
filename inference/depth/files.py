"""Reading depth maps from files, and fitting them to the photo."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

# OpenCV only decodes EXR when this is set before its first EXR read.
os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
import cv2  # noqa: E402

from ..errors import InputError  # noqa: E402

DEPTH_MAP_SUFFIXES = (".exr", ".png", ".tif", ".tiff", ".pfm", ".npy", ".jpg", ".jpeg", ".webp", ".bmp")


def load_depth_map(path: str | Path) -> np.ndarray:
    """A depth map file as a float32 (H, W) array of its raw values.

    EXR, PFM and float TIFF keep their values; 8- and 16-bit PNG/TIFF give their integer values (scale them
    with the depth scale); .npy must hold a 2-D numeric array. Colour maps use their first (red) channel.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"The depth map '{path}' does not exist.")
    if path.stat().st_size == 0:
        raise InputError(f"The depth map '{path}' is an empty file.")
    if path.suffix.lower() == ".npy":
        values = _load_npy(path)
    else:
        values = _decode_image(path)
        if values is None:
            raise InputError(f"The depth map '{path}' is not a readable image (EXR, PNG, TIFF, PFM or .npy).")
        if values.ndim == 3:
            values = values[..., 2] if values.shape[2] >= 3 else values[..., 0]  # OpenCV orders channels BGR
    if values.ndim != 2 or min(values.shape) < 2:
        raise InputError(f"The depth map '{path}' is not a 2-D image of at least 2x2 values.")
    return values.astype(np.float32, copy=False)


def size_notice(depth: np.ndarray, photo_size: tuple[int, int]) -> str | None:
    """A notice when the depth map's size differs from the photo's: it is then resampled onto the photo."""
    h, w = depth.shape
    if (w, h) == tuple(photo_size):
        return None
    notice = f"The depth map is {w}x{h} but the photo is {photo_size[0]}x{photo_size[1]}; it was resampled to fit."
    if abs(w / h - photo_size[0] / photo_size[1]) > 0.02 * photo_size[0] / photo_size[1]:
        notice += " Their aspect ratios differ, so the depth may not line up with the photo."
    return notice


def _decode_image(path: Path) -> np.ndarray | None:
    """An image file's values as OpenCV decodes them, or None when it cannot.

    imdecode on the bytes instead of imread: imread cannot open non-ASCII paths on Windows. OpenCV logs its
    decoding failures on stderr, and the user should see one sentence instead: its log is off meanwhile.
    """
    previous = cv2.setLogLevel(0)  # 0 = silent
    try:
        return cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:  # e.g. an EXR while OpenCV's EXR codec is disabled
        return None
    finally:
        cv2.setLogLevel(previous)


def _load_npy(path: Path) -> np.ndarray:
    try:
        values = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        raise InputError(f"The depth map '{path}' is not a readable .npy array.") from err
    if not np.issubdtype(values.dtype, np.number):
        raise InputError(f"The depth map '{path}' does not hold numbers.")
    return np.squeeze(values)
