"""The photo's pinhole camera: focal length from the user, from EXIF, or a documented default."""

from __future__ import annotations

import math
from dataclasses import dataclass

# When neither the user nor the photo's EXIF says how wide the lens was: 55 degrees across the long side,
# between a phone's main camera (about 67) and a 50 mm lens on full frame (about 40).
DEFAULT_LONG_SIDE_FOV_DEG = 55.0
# The diagonal of a 36 x 24 mm frame: 35 mm-equivalent focal lengths are defined against it.
_FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)


@dataclass(frozen=True)
class Intrinsics:
    """Square pixels, principal point at the image centre; focal length in pixels of a width x height image."""

    width: int
    height: int
    focal_px: float

    @property
    def fov_x_deg(self) -> float:
        return math.degrees(2.0 * math.atan(self.width / (2.0 * self.focal_px)))


def photo_intrinsics(
    size: tuple[int, int],
    fov_deg: float | None = None,
    focal_px: float | None = None,
    focal_35mm: float | None = None,
) -> tuple[Intrinsics, str]:
    """The camera of a photo of `size` (width, height) and a sentence saying where its focal length came from.

    fov_deg is the horizontal field of view; focal_px is in the photo's own pixels. The user's value wins,
    then the EXIF 35 mm-equivalent focal length, then DEFAULT_LONG_SIDE_FOV_DEG.
    """
    w, h = size
    if focal_px is not None:
        return Intrinsics(w, h, float(focal_px)), f"focal length {focal_px:g} px (given)"
    if fov_deg is not None:
        f = w / (2.0 * math.tan(math.radians(fov_deg) / 2.0))
        return Intrinsics(w, h, f), f"horizontal field of view {fov_deg:g} deg (given)"
    if focal_35mm:
        f = focal_35mm * math.hypot(w, h) / _FULL_FRAME_DIAGONAL_MM
        return Intrinsics(w, h, f), f"focal length {focal_35mm:g} mm (35 mm equivalent, from the photo's EXIF)"
    f = max(w, h) / (2.0 * math.tan(math.radians(DEFAULT_LONG_SIDE_FOV_DEG) / 2.0))
    return Intrinsics(w, h, f), (
        f"field of view unknown: assumed {DEFAULT_LONG_SIDE_FOV_DEG:g} deg across the long side "
        "(give the field of view or focal length for a true shape)"
    )


@dataclass(frozen=True)
class Window:
    """The part of a camera's image that a depth map and its texture cover, and at what resolution.

    A box (x, y, width, height) in the camera's pixels (x right, y down from the top-left corner), seen by an
    image of `pixels` = (width, height): a cropped and upscaled photo. The whole image at its own size is the
    default; a crop keeps the camera (its centre, axis and focal length), so a mesh built through a window
    still lines up with the uncropped photo through that camera.
    """

    x: float
    y: float
    width: float
    height: float
    pixels: tuple[int, int]

    @classmethod
    def whole(cls, camera: Intrinsics, pixels: tuple[int, int] | None = None) -> Window:
        return cls(0.0, 0.0, float(camera.width), float(camera.height), pixels or (camera.width, camera.height))

    def principal_point(self, camera: Intrinsics) -> tuple[float, float]:
        """Where the camera's axis meets the window's image, in its pixels (from its top-left corner)."""
        return ((camera.width / 2 - self.x) * self.pixels[0] / self.width,
                (camera.height / 2 - self.y) * self.pixels[1] / self.height)

    def fov_x_deg(self, camera: Intrinsics) -> float:
        """The horizontal field of view the window spans."""
        left, right = (self.x - camera.width / 2) / camera.focal_px, (self.x + self.width - camera.width / 2) / camera.focal_px
        return math.degrees(math.atan(right) - math.atan(left))
