"""Depth map -> mesh on the pixel grid, without faces across depth discontinuities.

The discontinuity rule. Seen from the camera, a surface slanted by angle theta away from facing the camera
changes its log-depth by about tan(theta) per radian of view angle. Across one face (angular diameter
sqrt(2) * step / focal) a true surface therefore spans at most

    ln(z_max / z_min) <= sqrt(2) * step / focal * tan(edge_threshold)

and a face over a depth jump spans far more. One threshold, in degrees, keeps slanted but continuous
surfaces (a floor at a grazing angle of 80 degrees) and drops the near-perpendicular faces that bridge a
jump. Because it measures slope rather than jump size, it also drops the smooth ramps of "flying pixels"
that depth networks put between foreground and background, while the surfaces on both sides stay whole.
Where a quad fails, its two triangles along one diagonal are tried, so mask and discontinuity borders keep
diagonal steps instead of losing whole cells.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .camera import Intrinsics

DEFAULT_RESOLUTION = 512
DEFAULT_EDGE_THRESHOLD_DEG = 87.0


@dataclass
class GridMesh:
    vertices: np.ndarray  # (N, 3) float32, metres, camera frame: x right, y up, looking down -z
    quads: np.ndarray  # (Q, 4) int32, counter-clockwise seen from the camera
    triangles: np.ndarray  # (T, 3) int32, counter-clockwise seen from the camera
    uvs: np.ndarray  # (N, 2) float32, (0, 0) at the photo's bottom-left
    grid_index: np.ndarray  # (N,) int64, each vertex's row * grid_width + column on the sampling grid
    grid_size: tuple[int, int]  # (grid_width, grid_height)


def grid_size(image_size: tuple[int, int], resolution: int) -> tuple[int, int]:
    """(columns, rows) of the vertex grid: `resolution` vertices along the long side, capped at one per pixel."""
    w, h = image_size
    long_side = max(w, h)
    n = max(2, min(int(resolution), long_side))
    return max(2, round(w * n / long_side)), max(2, round(h * n / long_side))


def sample_nearest(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Values of `image` at the centres of a (columns, rows) grid laid over it, by nearest neighbour."""
    rows = ((np.arange(size[1]) + 0.5) * image.shape[0] / size[1]).astype(np.int64)
    cols = ((np.arange(size[0]) + 0.5) * image.shape[1] / size[0]).astype(np.int64)
    return image[rows[:, None], cols[None, :]]


def depth_to_grid_mesh(
    depth: np.ndarray,
    camera: Intrinsics,
    resolution: int = DEFAULT_RESOLUTION,
    edge_threshold_deg: float = DEFAULT_EDGE_THRESHOLD_DEG,
    mask: np.ndarray | None = None,
) -> GridMesh:
    """Mesh a metric depth map (NaN = no surface) seen by `camera`; faces outside `mask` (bool) are dropped.

    The depth map and mask may have any size: they are sampled at the grid's points, which lie at the same
    relative positions in the photo. Vertex (column j, row i) sits at photo pixel coordinates
    ((j + 0.5) * step_x, (i + 0.5) * step_y), so at full resolution vertices are the pixel centres.
    """
    cols, rows = grid_size((camera.width, camera.height), resolution)
    z = sample_nearest(depth, (cols, rows)).astype(np.float32)
    if mask is not None:
        z[~sample_nearest(mask, (cols, rows))] = np.nan

    step_x, step_y = camera.width / cols, camera.height / rows
    x = ((np.arange(cols, dtype=np.float64) + 0.5) * step_x - camera.width / 2) / camera.focal_px
    y = (camera.height / 2 - (np.arange(rows, dtype=np.float64) + 0.5) * step_y) / camera.focal_px
    face_limit = math.sqrt(2.0) * max(step_x, step_y) / camera.focal_px * math.tan(math.radians(edge_threshold_deg))
    quads, triangles = _grid_faces(np.log(z), face_limit)

    used = np.zeros(rows * cols, dtype=bool)
    used[quads.ravel()] = True
    used[triangles.ravel()] = True
    grid_index = np.flatnonzero(used)
    remap = np.cumsum(used, dtype=np.int64) - 1

    zi = z.ravel()[grid_index]
    vi, vj = np.divmod(grid_index, cols)
    vertices = np.empty((len(grid_index), 3), dtype=np.float32)
    vertices[:, 0] = x[vj] * zi
    vertices[:, 1] = y[vi] * zi
    vertices[:, 2] = -zi
    uvs = np.empty((len(grid_index), 2), dtype=np.float32)
    uvs[:, 0] = (vj + 0.5) / cols
    uvs[:, 1] = 1.0 - (vi + 0.5) / rows
    return GridMesh(
        vertices,
        remap[quads].astype(np.int32),
        remap[triangles].astype(np.int32),
        uvs,
        grid_index,
        (cols, rows),
    )


def _grid_faces(log_z: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """Quads, and triangles where a quad fails, as grid vertex indices. NaN log-depth = no vertex."""
    rows, cols = log_z.shape
    idx = np.arange(rows * cols, dtype=np.int64).reshape(rows, cols)
    # Corners of every cell, counter-clockwise seen from the camera: top-left, bottom-left, bottom-right, top-right.
    corner_idx = [idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]]
    corner_z = [log_z[:-1, :-1], log_z[1:, :-1], log_z[1:, 1:], log_z[:-1, 1:]]

    def fits(*corners: int) -> np.ndarray:
        zs = [corner_z[c] for c in corners]
        with np.errstate(invalid="ignore"):
            return (np.maximum.reduce(zs) - np.minimum.reduce(zs)) <= limit  # False wherever a corner is NaN

    quad_ok = fits(0, 1, 2, 3)
    # Split A along the top-left/bottom-right diagonal, split B along the other; take the one keeping more.
    a1, a2 = fits(0, 1, 2) & ~quad_ok, fits(0, 2, 3) & ~quad_ok
    b1, b2 = fits(0, 1, 3) & ~quad_ok, fits(1, 2, 3) & ~quad_ok
    use_a = a1.astype(np.int8) + a2 >= b1.astype(np.int8) + b2
    a1, a2, b1, b2 = a1 & use_a, a2 & use_a, b1 & ~use_a, b2 & ~use_a

    quads = np.stack([c[quad_ok] for c in corner_idx], axis=1)
    triangles = np.concatenate(
        [
            np.stack([corner_idx[i][sel] for i in tri], axis=1)
            for sel, tri in ((a1, (0, 1, 2)), (a2, (0, 2, 3)), (b1, (0, 1, 3)), (b2, (1, 2, 3)))
        ]
    )
    return quads, triangles
