"""Where a record's mesh and camera go in the scene, in numbers: shared by the Blender objects (objects.py) and
the GLB written straight from the record (glb.py), so both place them alike. No bpy here.

The world is Blender's, Z up: the record's frame (x right, y up, z towards the viewer) turns into it by
CAMERA_TO_WORLD (x -> X, y -> Z, z -> -Y), and the mesh's bounding box is centred on the world origin (a closed
object stands on the ground: its lowest point at Z = 0).
"""

from __future__ import annotations

import numpy as np

from ...inference.geometry.view import Y_UP_TO_BLENDER, View
from ...inference.photo.photo import Texture
from ...inference.record import MeshRecord

# The record's frame (x right, y up, z towards the viewer) -> Blender's world: x -> X, y -> Z, z -> -Y.
CAMERA_TO_WORLD = Y_UP_TO_BLENDER.astype(np.float32)


def record_centre(record: MeshRecord) -> np.ndarray:
    """The point of the record's frame (float32, 3) that goes to the world origin: the middle of the bounding
    box, or for a closed object the middle of its bottom.

    Computed in float32 from each column's extremes: a world position is exactly float32(vertex - centre),
    rotated by CAMERA_TO_WORLD (a permutation with a sign, so exact too).
    """
    # Column by column: numpy reduces a tall N x 3 array along axis 0 several times slower.
    low_high = [(column.min(), column.max()) for column in record.vertices.T]
    centre = np.array([(low + high) / 2 for low, high in low_high], dtype=np.float32)
    if record.closed:
        centre[1] = low_high[1][0]  # the lowest point along the photo's vertical: world Z
    return centre


def camera_clip_end(record: MeshRecord, camera: View) -> float:
    """A camera's far clip: twice the distance from the camera to the farthest corner of the mesh's box, at
    least 100 m."""
    box = np.array([[column.min(), column.max()] for column in record.vertices.T])  # (3, 2)
    corners = np.stack(np.meshgrid(*box, indexing="ij"), axis=-1).reshape(-1, 3)
    farthest = float(np.linalg.norm(corners - camera.position, axis=1).max())
    return max(100.0, 2 * farthest)


def record_cameras(record: MeshRecord) -> list[tuple[str, View, Texture | None]]:
    """(object name, camera, photo seen through it; None: the texture itself) of each of the record's cameras: the
    photo's, then a multi-view object's other photos', each named after its view."""
    if record.camera is None:
        return []
    if not record.more_cameras:
        return [(f"{record.name} camera", record.camera, record.photo)]
    return [(f"{record.name} front camera", record.camera, record.photo),
            *((f"{record.name} {more.view} camera", more.camera, more.photo) for more in record.more_cameras)]
