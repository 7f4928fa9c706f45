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
    edges: np.ndarray  # (E, 2) int32, every face edge once, as (lower, higher) vertex index
    corner_edges: np.ndarray  # (4Q + 3T,) int32, the edge from each corner to the next: quads', then triangles'


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
    return image.take(rows, axis=0).take(cols, axis=1)  # rows, then columns: several times faster than both at once


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
    z = sample_nearest(depth, (cols, rows)).astype(np.float32, copy=False)
    if mask is not None:
        z[~sample_nearest(mask, (cols, rows))] = np.nan

    step_x, step_y = camera.width / cols, camera.height / rows
    x = ((np.arange(cols, dtype=np.float64) + 0.5) * step_x - camera.width / 2) / camera.focal_px
    y = (camera.height / 2 - (np.arange(rows, dtype=np.float64) + 0.5) * step_y) / camera.focal_px
    face_limit = math.sqrt(2.0) * max(step_x, step_y) / camera.focal_px * math.tan(math.radians(edge_threshold_deg))
    quad_ok, triangles = _grid_faces(np.log(z), face_limit)

    # A vertex is kept when a face uses it: a quad in one of its four cells, or a triangle.
    used = np.zeros((rows, cols), dtype=bool)
    for corner in _corners(used):
        corner |= quad_ok
    used.ravel()[triangles.ravel()] = True
    remap = np.cumsum(used, dtype=np.int32).reshape(rows, cols)
    remap -= 1  # grid point -> vertex number, valid where used
    quads = np.empty((np.count_nonzero(quad_ok), 4), dtype=np.int32)
    for k, corner in enumerate(_corners(remap)):
        quads[:, k] = corner[quad_ok]

    # Vertices in row-major grid order; the same float64 arithmetic as per-vertex (x[j] * z, (j + 0.5) / cols).
    grid_index = np.flatnonzero(used)
    zi = z[used]
    vertices = np.empty((len(zi), 3), dtype=np.float32)
    vertices[:, 0] = np.broadcast_to(x, (rows, cols))[used] * zi
    vertices[:, 1] = np.broadcast_to(y[:, None], (rows, cols))[used] * zi
    np.negative(zi, out=vertices[:, 2])
    uvs = np.empty((len(zi), 2), dtype=np.float32)
    uvs[:, 0] = np.broadcast_to((np.arange(cols) + 0.5) / cols, (rows, cols))[used]
    uvs[:, 1] = np.broadcast_to(1.0 - (np.arange(rows)[:, None] + 0.5) / rows, (rows, cols))[used]

    edges, corner_edges = _grid_edges(quad_ok, triangles, remap)
    return GridMesh(vertices, quads, remap.ravel()[triangles], uvs, grid_index, (cols, rows), edges, corner_edges)


def _corners(grid: np.ndarray) -> list[np.ndarray]:
    """Views of a (rows, cols) grid at every cell's corners, counter-clockwise seen from the camera:
    top-left, bottom-left, bottom-right, top-right."""
    return [grid[:-1, :-1], grid[1:, :-1], grid[1:, 1:], grid[:-1, 1:]]


def _grid_faces(log_z: np.ndarray, limit: float) -> tuple[np.ndarray, np.ndarray]:
    """The cells that keep their quad (bool, rows - 1 x cols - 1), and the triangles kept where a quad fails
    (T x 3 grid point indices). NaN log-depth = no vertex."""
    rows, cols = log_z.shape
    tl, bl, br, tr = _corners(log_z)
    with np.errstate(invalid="ignore"):  # inf - inf where a corner's depth is 0 or inf: not a face
        spread = np.maximum(tl, bl)
        np.maximum(spread, br, out=spread)
        np.maximum(spread, tr, out=spread)
        low = np.minimum(tl, bl)
        np.minimum(low, br, out=low)
        np.minimum(low, tr, out=low)
        spread -= low
    del low
    quad_ok = spread <= limit  # False wherever a corner is NaN
    del spread

    # Failed cells only (usually few): split A along the top-left/bottom-right diagonal, split B along the
    # other; take the one keeping more triangles.
    failed = np.flatnonzero(~quad_ok)
    i, j = np.divmod(failed, cols - 1)
    top_left = i * cols + j
    corner_idx = [top_left, top_left + cols, top_left + cols + 1, top_left + 1]
    flat_z = log_z.ravel()
    corner_z = [flat_z[c] for c in corner_idx]

    def fits(*corners: int) -> np.ndarray:
        zs = [corner_z[c] for c in corners]
        with np.errstate(invalid="ignore"):
            return (np.maximum.reduce(zs) - np.minimum.reduce(zs)) <= limit  # False wherever a corner is NaN

    a1, a2, b1, b2 = fits(0, 1, 2), fits(0, 2, 3), fits(0, 1, 3), fits(1, 2, 3)
    use_a = a1.astype(np.int8) + a2 >= b1.astype(np.int8) + b2
    a1, a2, b1, b2 = a1 & use_a, a2 & use_a, b1 & ~use_a, b2 & ~use_a
    triangles = np.concatenate(
        [
            np.stack([corner_idx[k][sel] for k in tri], axis=1)
            for sel, tri in ((a1, (0, 1, 2)), (a2, (0, 2, 3)), (b1, (0, 1, 3)), (b2, (1, 2, 3)))
        ]
    )
    return quad_ok, triangles


# Kinds of edge on the grid, by the step (rows, columns) from the lower grid point to the higher one: right (H)
# and down (V), from quads and triangles; down-right (D: split A's diagonal) and down-left (N: split B's), from
# triangles only.
_EDGE_STEPS = ((0, 1), (1, 0), (1, 1), (1, -1))
# A quad's edges 0..3 (corner k to corner k + 1): (kind of edge, the corner that is its lower point).
_QUAD_SIDES = ((1, 0), (0, 1), (1, 3), (0, 0))


def _grid_edges(quad_ok: np.ndarray, triangles: np.ndarray, remap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every edge of the faces once, as (lower, higher) vertex index, and the edge from each face corner to the
    next, quads' corners then triangles'; `triangles` in grid point indices, `remap` grid point -> vertex.

    Read off the grid rather than found by hashing vertex pairs, as Blender's `update(calc_edges=True)` does
    at several times the cost. Edges are numbered by kind (_EDGE_STEPS), then row-major by lower point.
    """
    rows, cols = remap.shape
    # Each triangle edge's kind and lower point, from the step between its points.
    row, col = np.divmod(triangles, cols)
    d_row, d_col = np.roll(row, -1, axis=1) - row, np.roll(col, -1, axis=1) - col
    flip = (d_row < 0) | ((d_row == 0) & (d_col < 0))  # the edge runs from its higher point
    d_row, d_col = np.where(flip, -d_row, d_row), np.where(flip, -d_col, d_col)
    tri_kind = np.where(d_row == 0, 0, 1 + d_col % 3)  # (0, 1) -> 0, (1, 0) -> 1, (1, 1) -> 2, (1, -1) -> 3
    tri_lower = np.where(flip, np.roll(triangles, -1, axis=1), triangles)
    straight = tri_kind < 2

    # H and V edges, on the grid: used at a lower point by any quad side or triangle edge there.
    used = np.zeros((2, rows, cols), dtype=bool)
    for kind, corner in _QUAD_SIDES:
        _corners(used[kind])[corner] |= quad_ok
    used.reshape(2, -1)[tri_kind[straight], tri_lower[straight]] = True
    number = np.cumsum(used, dtype=np.int32).reshape(2, rows, cols)
    number -= 1  # edge number at each used (kind, lower point)
    n_straight = int(number[1, -1, -1]) + 1
    # Diagonals come from triangles only: few, numbered after H and V by (kind, lower point).
    diagonal_key = tri_kind[~straight] * (rows * cols) + tri_lower[~straight]
    diagonals = np.unique(diagonal_key)

    n_quads = np.count_nonzero(quad_ok)
    corner_edges = np.empty(4 * n_quads + triangles.size, dtype=np.int32)
    quad_edges = corner_edges[: 4 * n_quads].reshape(n_quads, 4)
    for k, (kind, corner) in enumerate(_QUAD_SIDES):
        quad_edges[:, k] = _corners(number[kind])[corner][quad_ok]
    triangle_edges = corner_edges[4 * n_quads :].reshape(triangles.shape)
    triangle_edges[straight] = number.reshape(2, -1)[tri_kind[straight], tri_lower[straight]]
    triangle_edges[~straight] = n_straight + np.searchsorted(diagonals, diagonal_key)

    edges = np.empty((n_straight + len(diagonals), 2), dtype=np.int32)
    start = 0
    for kind, (d_row, d_col) in enumerate(_EDGE_STEPS[:2]):
        # Views of the grid at every possible lower point of this kind, and at its higher point.
        lower_rows, lower_cols = slice(0, rows - d_row), slice(0, cols - d_col)
        higher_rows, higher_cols = slice(d_row, rows), slice(d_col, cols)
        mask = used[kind, lower_rows, lower_cols]
        end = start + np.count_nonzero(mask)
        edges[start:end, 0] = remap[lower_rows, lower_cols][mask]
        edges[start:end, 1] = remap[higher_rows, higher_cols][mask]
        start = end
    kind, lower = np.divmod(diagonals, rows * cols)
    flat_steps = np.array([d_row * cols + d_col for d_row, d_col in _EDGE_STEPS])
    edges[start:, 0] = remap.ravel()[lower]
    edges[start:, 1] = remap.ravel()[lower + flat_steps[kind]]
    return edges, corner_edges
