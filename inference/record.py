"""The one value that crosses from inference/ into Blender: plain arrays and a report."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .geometry.camera import Intrinsics
from .photo.photo import Photo


@dataclass
class MeshRecord:
    name: str
    vertices: np.ndarray  # (N, 3) float32, metres, camera frame: x right, y up, looking down -z
    quads: np.ndarray  # (Q, 4) int32, counter-clockwise seen from the camera
    triangles: np.ndarray  # (T, 3) int32, counter-clockwise seen from the camera
    uvs: np.ndarray  # (N, 2) float32 per vertex, (0, 0) at the photo's bottom-left
    vertex_colors: np.ndarray  # (N, 4) float32 sRGB in [0, 1], the photo's colour at each vertex
    photo: Photo  # the texture, upright
    camera: Intrinsics  # the camera that took the photo, in the photo's original pixels
    report: dict = field(default_factory=dict)  # what ran: method, model, settings, notices, timings
    vertex_normals: np.ndarray | None = None  # (N, 3) float32 unit normals in the camera frame, if predicted
    edges: np.ndarray | None = None  # (E, 2) int32, every face edge once; None: Blender finds them (slower)
    corner_edges: np.ndarray | None = None  # (4Q + 3T,) int32, the edge from each corner to the next

    @property
    def face_count(self) -> int:
        return len(self.quads) + len(self.triangles)
