"""A pinhole camera placed in an object's frame: the view a photo was taken from.

Frames. The object frame is the generator's: +X right, +Y up, +Z towards the viewer of the input image. The
camera frame is Blender's (DESIGN.md): x right, y up, looking down -z. A View holds
  rotation R (3x3, camera-to-object: its columns are the camera's x, y, z axes written in the object frame)
  position t (3,), the camera centre in the object frame,
so a point p goes object -> camera as R^T (p - t) and back as R q + t; [R | t] is exactly the matrix_world a
Blender camera object needs when the object sits at the origin unrotated.

Image coordinates. `project` returns continuous image coordinates in which pixel (u, v) covers
[u, u+1) x [v, v+1), so its centre is (u + 0.5, v + 0.5): x = W/2 + f X/d, y = H/2 - f Y/d with d = -Z the
depth along the axis. That is DESIGN.md's convention, and Blender's normalised camera coordinates times the
image size (with y flipped). Subtract 0.5 for OpenCV's pixel-centre-at-integer convention (cv2.remap).

Orbit angles. `orbit_view` places the camera on a sphere around a target: yaw turns it counter-clockwise seen
from above (right-handed about +Y), so yaw 90 puts it on +X looking at the object's +X side: the same photo as
turning the object 90 degrees clockwise seen from above in front of a fixed camera (the "left" product shot).
Elevation raises it above the XZ plane. There is no roll: the camera's x axis stays horizontal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .camera import Intrinsics

UP = np.array([0.0, 1.0, 0.0])
# The generator's frame is glTF's (+Y up); Blender's world is +Z up. glTF importers (and the builders here)
# map a point (x, y, z) to Blender's (x, -z, y).
Y_UP_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


def intrinsics_from_fov(width: int, height: int, fov_deg: float) -> Intrinsics:
    """The camera of a width x height image whose field of view across its LONG side is fov_deg."""
    focal = max(width, height) / (2.0 * math.tan(math.radians(fov_deg) / 2.0))
    return Intrinsics(int(width), int(height), float(focal))


def long_side_fov_deg(intrinsics: Intrinsics) -> float:
    """The field of view across the long side of the image, in degrees."""
    long_side = max(intrinsics.width, intrinsics.height)
    return math.degrees(2.0 * math.atan(long_side / (2.0 * intrinsics.focal_px)))


@dataclass(frozen=True, eq=False)
class View:
    """Intrinsics + pose: rotation (3, 3) camera-to-object, position (3,) of the camera in the object frame."""

    intrinsics: Intrinsics
    rotation: np.ndarray = field(repr=False)
    position: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "rotation", np.asarray(self.rotation, np.float64).reshape(3, 3))
        object.__setattr__(self, "position", np.asarray(self.position, np.float64).reshape(3))

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the image in pixels."""
        return self.intrinsics.width, self.intrinsics.height

    @property
    def matrix_world(self) -> np.ndarray:
        """4x4 camera-to-object transform [R | t]: a Blender camera's matrix_world in the object frame."""
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = self.rotation, self.position
        return m

    @property
    def matrix_world_blender(self) -> np.ndarray:
        """4x4 matrix_world of a Blender camera that is this view of the mesh imported into Blender's +Z-up
        world the glTF way ((x, y, z) -> (x, -z, y)): the camera's own axes keep Blender's camera convention,
        so only the frame they are written in changes."""
        m = np.eye(4)
        m[:3, :3], m[:3, 3] = Y_UP_TO_BLENDER @ self.rotation, Y_UP_TO_BLENDER @ self.position
        return m

    @property
    def forward(self) -> np.ndarray:
        """The unit viewing direction (the camera's -z) in the object frame."""
        return -self.rotation[:, 2]

    @property
    def yaw_deg(self) -> float:
        """Orbit yaw of the camera's orientation (see the module docstring); offsets do not change it."""
        back = self.rotation[:, 2]
        return math.degrees(math.atan2(back[0], back[2]))

    @property
    def elevation_deg(self) -> float:
        back = self.rotation[:, 2]
        return math.degrees(math.asin(float(np.clip(back[1], -1.0, 1.0))))

    @property
    def fov_deg(self) -> float:
        """Field of view across the image's long side."""
        return long_side_fov_deg(self.intrinsics)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """Object-frame points (N, 3) -> camera frame (N, 3), float64."""
        # einsum, not @: numpy's matmul is several times slower on millions of rows times a 3 x 3.
        return np.einsum("ij,jk->ik", np.asarray(points, np.float64) - self.position, self.rotation)

    def to_object(self, points: np.ndarray) -> np.ndarray:
        """Camera-frame points (N, 3) -> object frame (N, 3), float64."""
        return np.einsum("ij,kj->ik", np.asarray(points, np.float64), self.rotation) + self.position

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Object-frame points (N, 3) -> image coordinates (N, 2) and depth along the axis (N,), float64.

        Pixel (u, v) has its centre at (u + 0.5, v + 0.5). Points behind the camera get depth <= 0 and
        meaningless coordinates: callers drop them.
        """
        cam = self.to_camera(points)
        depth = -cam[:, 2]
        safe = np.where(np.abs(depth) > 1e-12, depth, 1e-12)
        f = self.intrinsics.focal_px
        xy = np.empty((len(cam), 2))
        xy[:, 0] = self.intrinsics.width / 2.0 + f * cam[:, 0] / safe
        xy[:, 1] = self.intrinsics.height / 2.0 - f * cam[:, 1] / safe
        return xy, depth

    def rays(self, xy: np.ndarray) -> np.ndarray:
        """Unit directions (N, 2) image coordinates -> (N, 3) in the object frame, from the camera centre."""
        xy = np.asarray(xy, np.float64)
        f = self.intrinsics.focal_px
        cam = np.stack(
            [(xy[:, 0] - self.intrinsics.width / 2.0) / f, (self.intrinsics.height / 2.0 - xy[:, 1]) / f,
             -np.ones(len(xy))], axis=1)
        d = cam @ self.rotation.T
        return d / np.linalg.norm(d, axis=1, keepdims=True)

    def resized(self, width: int, height: int) -> View:
        """The same camera for the image resized to width x height (the field of view is kept)."""
        scale = width / self.intrinsics.width
        return View(Intrinsics(int(width), int(height), self.intrinsics.focal_px * scale), self.rotation,
                    self.position)


def look_at(intrinsics: Intrinsics, position, target, up=UP) -> View:
    """A camera at `position` looking at `target` with no roll (its x axis horizontal w.r.t. `up`)."""
    position = np.asarray(position, np.float64)
    back = position - np.asarray(target, np.float64)
    back /= np.linalg.norm(back)
    up = np.asarray(up, np.float64)
    right = np.cross(up, back)
    if np.linalg.norm(right) < 1e-9:  # looking straight along `up`: any horizontal x axis will do
        right = np.cross(np.array([0.0, 0.0, 1.0]) if abs(up[2]) < 0.9 else np.array([1.0, 0.0, 0.0]), back)
    right /= np.linalg.norm(right)
    return View(intrinsics, np.stack([right, np.cross(back, right), back], axis=1), position)


def orbit_rotation(yaw_deg: float, elevation_deg: float) -> np.ndarray:
    """Camera-to-object rotation of an orbiting camera (module docstring): columns x, y, z."""
    yaw, elev = math.radians(yaw_deg), math.radians(elevation_deg)
    back = np.array([math.cos(elev) * math.sin(yaw), math.sin(elev), math.cos(elev) * math.cos(yaw)])
    right = np.array([math.cos(yaw), 0.0, -math.sin(yaw)])
    return np.stack([right, np.cross(back, right), back], axis=1)


def orbit_view(
    intrinsics: Intrinsics,
    yaw_deg: float,
    elevation_deg: float,
    distance: float,
    target=(0.0, 0.0, 0.0),
    offset_px=(0.0, 0.0),
) -> View:
    """A camera orbiting `target` at `distance`, then slid sideways in its own image plane by offset_px.

    Without an offset the target lands on the image centre; with one it lands offset_px = (right, down)
    pixels away. Sliding (rather than turning) the camera is what keeps the principal point at the centre
    while the subject sits anywhere in the photo: the object is then seen slightly off-axis, as in a photo.
    """
    rotation = orbit_rotation(yaw_deg, elevation_deg)
    f = intrinsics.focal_px
    target_in_camera = np.array([offset_px[0] / f * distance, -offset_px[1] / f * distance, -distance])
    position = np.asarray(target, np.float64) - rotation @ target_in_camera
    return View(intrinsics, rotation, position)


def view_from_fov(width: int, height: int, fov_deg: float, yaw_deg: float, elevation_deg: float,
                  distance: float, target=(0.0, 0.0, 0.0), offset_px=(0.0, 0.0)) -> View:
    """orbit_view with the intrinsics given as a field of view across the image's long side."""
    return orbit_view(intrinsics_from_fov(width, height, fov_deg), yaw_deg, elevation_deg, distance, target,
                      offset_px)
