"""Base meshes: what a remesh (operators/builders/remesh.py does it in Blender) is asked and what it may cost.

"quad" is Blender's QuadriFlow: an all-quad mesh of about --target-faces faces, edge flow following the shape.
"voxel" is Blender's voxel remesher: a uniform mesh of quads about --voxel-size across, rebuilt from the
object's volume (a relief is given one, a thin shell behind it, for the time of the remesh). Here only the
numbers: the surface area, the automatic voxel size (memory.check_voxel_memory refuses a voxel size too small for
the memory), and how a relief's photo maps onto any point (PhotoProjection), so a remeshed relief needs no bake.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .view import Y_UP_TO_BLENDER, View

if TYPE_CHECKING:
    from ..record import MeshRecord

# Each remesh with its label and description, as the sidebar and --help show them.
REMESHES = {
    "none": ("None", "Keep the mesh as it was made"),
    "quad": ("Quads (QuadriFlow)", "An all-quad base mesh of Target Faces faces, the photo on new UVs"),
    "voxel": ("Voxels", "A uniform base mesh of quads Voxel Size across, the photo on new UVs"),
}
VOXEL_FACES = 20000  # the faces an automatic voxel size aims at when no face budget is given
QUAD_VOXEL_FACES = 4  # a non-manifold input is voxel remeshed first at this many faces per QuadriFlow face


def surface_area(vertices: np.ndarray, quads: np.ndarray, triangles: np.ndarray) -> float:
    """The mesh's area in square metres (a quad as its two triangles)."""
    corners = [triangles, quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]]
    area = 0.0
    for tri in corners:
        a, b, c = (vertices[tri[:, k]].astype(np.float64) for k in range(3))
        area += 0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum()
    return area


def voxel_faces(area: float, size: float) -> float:
    """About how many quads a voxel remesh of a surface of `area` makes with voxels `size` metres across: a
    surface slanted to the grid is a staircase, crossing |nx| + |ny| + |nz| voxel faces per voxel of its area,
    1.5 on average over all directions."""
    return 1.5 * area / size**2


def voxel_size_for(area: float, faces: int) -> float:
    """The voxel size that covers `area` with about `faces` quads (voxel_faces' inverse)."""
    return float(np.sqrt(1.5 * area / max(faces, 1)))


@dataclass(frozen=True)
class PhotoProjection:
    """A relief's photo is a projection through the record's camera, so its texture maps onto any point exactly:
    seen through the camera, then by the affine map from image coordinates to UVs that the grid's own UVs follow
    (DESIGN.md's convention, and a texture cropped from the photo alike). Points are in the Blender object's frame,
    whose origin is the record's point `centre` (builders/placement.py)."""

    view: View
    to_uv: np.ndarray  # (3, 2): [x, y, 1] in the camera's image coordinates -> UV
    centre: np.ndarray  # (3,) the record's point at the object's origin

    def uvs(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) float32 UVs of object-frame points (N, 3); a point seen just off the texture (a remesh can move
        an outline that far) takes its edge, not the far side's colour."""
        xy, _ = self.view.project(np.asarray(points, np.float64) @ Y_UP_TO_BLENDER + self.centre)
        return np.clip(np.c_[xy, np.ones(len(xy))] @ self.to_uv, 0.0, 1.0).astype(np.float32)

    @property
    def camera_position(self) -> np.ndarray:
        """The camera's centre in the object's frame."""
        return Y_UP_TO_BLENDER @ (self.view.position - self.centre)


def photo_projection(record: MeshRecord, centre: np.ndarray) -> PhotoProjection | None:
    """The projection that textures `record` when it is a relief (an open depth mesh with its camera and UVs per
    vertex), its object's origin at the record's point `centre`; None for anything else. The UV map is fitted to
    the photo's own grid vertices (not the occlusion fill's, whose UVs are mirrored about the silhouette)."""
    if record.closed or record.camera is None or record.uvs is None or record.report.depth_edges is None:
        return None
    front = len(record.vertices) - record.report.depth_edges.fill_vertices
    step = max(1, front // 100_000)  # an affine map: a sample of the grid fixes it
    xy, _ = record.camera.project(record.vertices[:front:step])
    to_uv = np.linalg.lstsq(np.c_[xy, np.ones(len(xy))], record.uvs[:front:step].astype(np.float64), rcond=None)[0]
    return PhotoProjection(record.camera, to_uv, np.asarray(centre, np.float64))
