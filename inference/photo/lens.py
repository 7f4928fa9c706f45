"""Lens distortion: OpenCV's model (k1, k2, p1, p2[, k3]) removed from the photo, so it obeys a pinhole camera.

Where the numbers come from: `--undistort K1[,K2[,P1,P2]]` (coefficients for the photo's own camera: its focal
length as given, from EXIF or assumed, the principal point at the centre), or a calibration file written by
OpenCV's calibration (YAML or XML through cv2.FileStorage, or JSON with the same keys): camera_matrix and
distortion_coefficients, and the image size they were measured at (image_width/image_height), scaled to the
photo's size.

The undistorted photo keeps its size and is seen by a pinhole camera with square pixels, its principal point
at the centre and the calibration's horizontal focal length: that is the camera the mesh is built with and the
Blender camera is created with, so vertices land on the undistorted photo's pixels. Pixel coordinates here are
OpenCV's (pixel centres at integers): the image centre is ((W - 1) / 2, (H - 1) / 2).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError

_MATRIX_KEYS = ("camera_matrix", "cameraMatrix", "K")
_DISTORTION_KEYS = ("distortion_coefficients", "dist_coeffs", "distCoeffs", "D")


@dataclass(frozen=True)
class Lens:
    """A lens's distortion, and the camera matrix it was measured with (None: the photo's own camera)."""

    coefficients: tuple[float, ...]  # k1, k2, p1, p2[, k3]: OpenCV's order
    matrix: np.ndarray | None = None  # 3 x 3, in pixels of an image of `size`
    size: tuple[int, int] | None = None  # (width, height) the matrix belongs to; None: the photo's original size
    source: str = "given"

    def focal_px(self, width: int) -> float | None:
        """The calibrated horizontal focal length in pixels of a `width`-wide image, if calibrated."""
        if self.matrix is None:
            return None
        return float(self.matrix[0, 0]) * width / (self.size[0] if self.size else width)


def parse_lens(text: str) -> Lens:
    """`--undistort`'s value: K1[,K2[,P1,P2]] or a calibration file's path. InputError when it is neither."""
    parts = [p.strip() for p in text.split(",")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        return read_calibration(Path(text))
    if len(numbers) not in (1, 2, 4, 5) or not all(np.isfinite(numbers)):
        raise InputError(f"--undistort takes K1, K1,K2, K1,K2,P1,P2 or K1,K2,P1,P2,K3 (OpenCV's order), not '{text}'.")
    return Lens(tuple(numbers + [0.0] * (4 - len(numbers))))


def read_calibration(path: Path) -> Lens:
    """A calibration file: OpenCV's YAML/XML (cv2.FileStorage) or JSON with the same keys."""
    if not path.is_file():
        raise InputError(f"The calibration file '{path}' does not exist (or give --undistort K1[,K2[,P1,P2]]).")
    try:
        values = _read_json(path) if path.suffix.lower() == ".json" else _read_opencv(path)
        matrix = np.asarray(values["matrix"], np.float64).reshape(3, 3)
        coefficients = tuple(float(c) for c in np.ravel(values["distortion"]))
    except (KeyError, ValueError, TypeError, cv2.error) as err:
        raise InputError(f"The calibration file '{path.name}' has no readable camera_matrix and "
                         "distortion_coefficients (OpenCV's calibration output).") from err
    if len(coefficients) not in (4, 5, 8, 12, 14) or not np.isfinite(matrix).all() or not matrix[0, 0] > 0:
        raise InputError(f"The calibration file '{path.name}' holds {len(coefficients)} distortion coefficients "
                         "or a camera matrix OpenCV cannot use.")
    size = values.get("size")
    return Lens(coefficients, matrix, tuple(int(s) for s in size) if size else None, f"calibration file {path.name}")


def _read_opencv(path: Path) -> dict:
    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    try:
        if not storage.isOpened():
            raise ValueError("not an OpenCV file")

        def first(keys):
            for key in keys:
                node = storage.getNode(key)
                if not node.empty():  # an opencv-matrix, or a plain sequence of numbers
                    matrix = node.mat()
                    return matrix if matrix is not None else [node.at(i).real() for i in range(node.size())]
            raise KeyError(keys[0])

        values = {"matrix": first(_MATRIX_KEYS), "distortion": first(_DISTORTION_KEYS)}
        width, height = storage.getNode("image_width"), storage.getNode("image_height")
        if not width.empty() and not height.empty():
            values["size"] = (int(width.real()), int(height.real()))
        return values
    finally:
        storage.release()


def _read_json(path: Path) -> dict:
    raw = json.loads(path.read_text(encoding="utf-8"))

    def first(keys):
        for key in keys:
            if key in raw:
                value = raw[key]
                return value["data"] if isinstance(value, dict) else value  # OpenCV's own JSON: {"data": [...]}
        raise KeyError(keys[0])

    values = {"matrix": first(_MATRIX_KEYS), "distortion": first(_DISTORTION_KEYS)}
    if "image_width" in raw and "image_height" in raw:
        values["size"] = (raw["image_width"], raw["image_height"])
    elif "image_size" in raw:
        values["size"] = tuple(raw["image_size"])
    return values


def undistort(image: np.ndarray, lens: Lens, focal_px: float, source_size: tuple[int, int],
              interpolation: int = cv2.INTER_CUBIC, extra: np.ndarray | None = None,
              ) -> tuple[np.ndarray, np.ndarray | None, float, dict]:
    """`image` (H, W[, C]) without the lens's distortion (module notes), `extra` (an alpha channel) alike;
    `interpolation` is OpenCV's (nearest for maps whose values must not blend: depth).

    focal_px is the photo's focal length in pixels of its original size `source_size` (used when the lens
    carries no calibrated matrix). Returns the images, the undistorted camera's focal length in pixels of
    `source_size`, and what was done (the largest shift in pixels, the share of the frame filled from its edge).
    """
    h, w = image.shape[:2]
    scale = w / source_size[0]
    if lens.matrix is None:
        f = focal_px * scale
        matrix = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    else:
        sx, sy = (w / lens.size[0], h / lens.size[1]) if lens.size else (scale, h / source_size[1])
        matrix = lens.matrix.copy()
        matrix[0, :] *= sx
        matrix[1, :] *= sy
        matrix[0, 2] += (sx - 1) / 2  # pixel centres at integers: (c + 0.5) * s - 0.5
        matrix[1, 2] += (sy - 1) / 2
    f = float(matrix[0, 0])
    pinhole = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    map_x, map_y = cv2.initUndistortRectifyMap(matrix, np.asarray(lens.coefficients), None, pinhole, (w, h),
                                               cv2.CV_32FC1)
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    shift = float(np.sqrt((map_x - grid_x) ** 2 + (map_y - grid_y) ** 2).max())
    outside = float(((map_x < -0.5) | (map_x > w - 0.5) | (map_y < -0.5) | (map_y > h - 0.5)).mean())

    def remapped(a):
        return None if a is None else cv2.remap(a, map_x, map_y, interpolation, borderMode=cv2.BORDER_REPLICATE)

    details = {"coefficients": list(lens.coefficients), "source": lens.source, "max_shift_px": shift / scale,
               "outside": outside}
    return remapped(image), remapped(extra), f / scale, details
