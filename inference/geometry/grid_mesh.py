"""Depth map -> mesh on the pixel grid, cut along depth discontinuities, with the background continued
under every cut.

Which faces are cut is decided by depth_edges (see its docstring): blurred ramps are snapped back onto the
surfaces on either side, and a grid edge is cut where its disparity step is not explained by the steps
before and after it, so continuous surfaces stay whole at any slant and jumps of any size are cut. On top of
that, one slope limit still applies:

    ln(z_max / z_min) <= sqrt(2) * step / focal * tan(edge_threshold)

Seen from the camera, a surface slanted by theta away from facing it changes its log-depth by about tan(theta)
per radian of view angle, so a face spanning more than a surface at the edge threshold could is cut too
(a last guard against ramps that no step surrounds). An edge threshold of 90 degrees keeps every face: no
snapping, no cut, no fill. Where a quad fails, its two triangles along one diagonal are tried, so mask and
discontinuity borders keep diagonal steps instead of losing whole cells.

Cutting leaves a gap one cell wide along every cut; occlusion_fill continues the background under the
foreground by a band (or, where no background can be continued, the foreground one step over it), and the
fill's vertices (after the front's, from `fill_start` on) are meshed into the cells the gap left. Where three
surfaces meet within the blur, or beside points the front dropped, neither reaches every cell: each cell still
open is closed last on the farthest surface the front keeps there (_closures), so from the photo's camera the
mesh has no hole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .camera import Intrinsics, Window
from .depth_edges import DIRECTIONS, edges_broken_at, find_depth_edges
from .occlusion_fill import LAYER_TOLERANCE, FillLayer, default_occlusion_fill_px, fill_layers

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
    # Vertices from fill_start on are the occlusion fill: background continued behind the front surface (or a
    # foreground's one-step skirt). Each sits at its own grid point (grid_index) but is textured from another
    # (source_index: the background's mirror point, the skirt's foreground; a front vertex's own).
    fill_start: int = -1
    source_index: np.ndarray | None = None
    depth_blur: float = 0.0  # the depth map's blur measured at its steps (Gaussian sigma, grid steps)

    def __post_init__(self):
        if self.fill_start < 0:
            self.fill_start = len(self.vertices)
        if self.source_index is None:
            self.source_index = self.grid_index


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
    window: Window | None = None,
    guide: np.ndarray | None = None,
    occlusion_fill_px: float | None = None,
    snap_edges: bool = True,
) -> GridMesh:
    """Mesh a metric depth map (NaN = no surface) seen by `camera`; faces outside `mask` (bool) are dropped.

    The depth map and mask may have any size: they are sampled at the grid's points, which lie at the same
    relative positions in the photo, or in `window` (a crop of the camera's image: the grid's resolution is
    capped by its pixels, its UVs span it). Vertex (column j, row i) sits at photo pixel coordinates
    (x + (j + 0.5) * step_x, y + (i + 0.5) * step_y), so at full resolution vertices are the pixel centres.

    guide: the photo (H x W x 3 uint8, any size, covering the grid), which helps decide on which side of a
        blurred edge a vertex lies. occlusion_fill_px: how far (camera pixels) the background continues under
        the foreground at each cut; None: default_occlusion_fill_px of the window (0.25 % of its long side),
        0: no fill.
    snap_edges: False cuts by the slope limit alone, without snapping or fill (the rule before depth_edges,
        kept for comparison).
    """
    window = window or Window.whole(camera)
    cols, rows = grid_size(window.pixels, resolution)
    z = sample_nearest(depth, (cols, rows)).astype(np.float32, copy=False)
    if mask is not None:
        z[~sample_nearest(mask, (cols, rows))] = np.nan

    step_x, step_y = window.width / cols, window.height / rows
    x = (window.x + (np.arange(cols, dtype=np.float64) + 0.5) * step_x - camera.width / 2) / camera.focal_px
    y = (camera.height / 2 - (window.y + (np.arange(rows, dtype=np.float64) + 0.5) * step_y)) / camera.focal_px
    face_limit = math.sqrt(2.0) * max(step_x, step_y) / camera.focal_px * math.tan(math.radians(edge_threshold_deg))
    edges_found = None
    if edge_threshold_deg < 90 and snap_edges:
        edges_found = find_depth_edges(z, guide)
        z = edges_found.depth
        # The slope limit cuts too: an edge steeper than a surface at the threshold.
        slope = math.tan(math.radians(edge_threshold_deg)) / camera.focal_px
        log_z = np.log(z)
        for k, (dr, dc) in enumerate(DIRECTIONS):
            limit = math.hypot(dr * step_y, dc * step_x) * slope
            rows_k, cols_k = slice(0, rows - dr), slice(max(0, -dc), cols - max(0, dc))
            after = log_z[dr:, max(0, dc): cols + min(0, dc)] if dc >= 0 else log_z[dr:, : cols + dc]
            with np.errstate(invalid="ignore"):
                edges_found.broken[k][rows_k, cols_k] |= np.abs(after - log_z[rows_k, cols_k]) > limit
    broken = None if edges_found is None else edges_found.broken
    quad_ok, triangles = _grid_faces(np.log(z), face_limit, broken)

    # A vertex is kept when a face uses it: a quad in one of its four cells, or a triangle.
    used = np.zeros((rows, cols), dtype=bool)
    for corner in _corners(used):
        corner |= quad_ok
    used.ravel()[triangles.ravel()] = True
    remap = np.cumsum(used, dtype=np.int32).reshape(rows, cols)
    remap -= 1  # grid point -> vertex number, valid where used
    n_front = int(np.count_nonzero(used))

    # The occlusion fill: its faces are found first, so every array below is allocated once at full size.
    fill = None
    if edges_found is not None:
        if occlusion_fill_px is None:
            occlusion_fill_px = default_occlusion_fill_px((window.width, window.height))
        band = int(round(occlusion_fill_px / max(step_x, step_y)))
        if band > 0:
            q = edges_found.disparity
            layers = fill_layers(q, broken, band, edges_found.blur, edges_found.behind, used)
            fill = _fill_faces(q, layers, face_limit, np.where(used, remap, -1), n_front, x, y, edges_found.floors,
                               quad_ok | _covered((rows, cols), np.zeros(0, np.int64), triangles))
    n_fill = 0 if fill is None else len(fill.points)
    n_fill_quads = 0 if fill is None else len(fill.quads)
    n_fill_triangles = 0 if fill is None else len(fill.triangles)

    n_quads = int(np.count_nonzero(quad_ok))
    quads = np.empty((n_quads + n_fill_quads, 4), dtype=np.int32)
    for k, corner in enumerate(_corners(remap)):
        quads[:n_quads, k] = corner[quad_ok]

    # Vertices in row-major grid order; the same float64 arithmetic as per-vertex (x[j] * z, (j + 0.5) / cols).
    grid_index = np.empty(n_front + n_fill, dtype=np.int64)
    grid_index[:n_front] = np.flatnonzero(used)
    zi = z[used]
    vertices = np.empty((n_front + n_fill, 3), dtype=np.float32)
    vertices[:n_front, 0] = np.broadcast_to(x, (rows, cols))[used] * zi
    vertices[:n_front, 1] = np.broadcast_to(y[:, None], (rows, cols))[used] * zi
    np.negative(zi, out=vertices[:n_front, 2])
    uvs = np.empty((n_front + n_fill, 2), dtype=np.float32)
    uvs[:n_front, 0] = np.broadcast_to((np.arange(cols) + 0.5) / cols, (rows, cols))[used]
    uvs[:n_front, 1] = np.broadcast_to(1.0 - (np.arange(rows)[:, None] + 0.5) / rows, (rows, cols))[used]

    edges, corner_edges, edge_keys, n_edges = _grid_edges(
        quad_ok, triangles, remap, n_fill_quads, n_fill_triangles, 4 * n_fill_quads + 3 * n_fill_triangles
    )
    triangles = remap.ravel()[triangles]
    source_index = grid_index
    if fill is not None:
        vertices[n_front:] = fill.vertices
        grid_index[n_front:] = fill.points
        source_index = grid_index.copy()
        source_index[n_front:] = fill.texture
        uv_rows, uv_cols = np.divmod(fill.texture, cols)
        uvs[n_front:, 0] = (uv_cols + 0.5) / cols
        uvs[n_front:, 1] = 1.0 - (uv_rows + 0.5) / rows
        quads[n_quads:] = fill.quads
        triangles = np.concatenate([triangles, fill.triangles.astype(np.int32)])  # few: triangles are few
        n_edges = _fill_edges(fill, grid_index, n_front, cols, edges, n_edges, edge_keys, corner_edges, n_quads,
                              len(triangles) - n_fill_triangles)
    return GridMesh(vertices, quads, triangles, uvs, grid_index, (cols, rows), edges[:n_edges], corner_edges,
                    n_front, source_index, 0.0 if edges_found is None else edges_found.blur)


@dataclass
class _FillFaces:
    vertices: np.ndarray  # (M, 3) float32
    points: np.ndarray  # (M,) grid point of each fill vertex
    texture: np.ndarray  # (M,) grid point whose pixel textures it
    quads: np.ndarray  # (Qf, 4) vertex numbers (front vertices below n_front, fill ones from it)
    triangles: np.ndarray  # (Tf, 3)


def _fill_faces(q, layers: list[FillLayer], face_limit, front_number, n_front, x, y, floors,
                covered: np.ndarray) -> _FillFaces | None:
    """Mesh the occlusion fill's layers into the cells next to them: vertices numbered from n_front on,
    faces whose other corners are front vertices (the background's own, so the fill joins it without a seam);
    then close the cells still open (see _closures). `q`: the grid's disparity; `front_number`: grid point ->
    front vertex, -1 where none; `covered`: the cells the front's faces cover (see _covered)."""
    rows, cols = q.shape
    flat_front = front_number.ravel()
    fill_vertices, fill_points, fill_texture, fill_quads, fill_triangles = [], [], [], [], []
    n_vertices = n_front
    for layer in layers:
        back = _BackLayer(q, layer, floors)
        # The cells around the fill points, meshed like the front but on the back layer's depth.
        pi, pj = np.divmod(layer.points, cols)
        cells = []
        for di, dj in ((-1, -1), (-1, 0), (0, -1), (0, 0)):
            ci, cj = pi + di, pj + dj
            inside = (ci >= 0) & (ci < rows - 1) & (cj >= 0) & (cj < cols - 1)
            cells.append(ci[inside] * cols + cj[inside])  # as their top-left grid point
        top_left = np.unique(np.concatenate(cells))
        corner_points = np.stack([top_left, top_left + cols, top_left + cols + 1, top_left + 1], axis=1)
        joins = (back.is_fill(corner_points) | (flat_front[corner_points] >= 0)).all(axis=1)
        quad_ok, triangles = _cell_faces(top_left[joins], cols, back, face_limit)
        quads = corner_points[joins][quad_ok]
        triangles = triangles[back.is_fill(triangles).any(axis=1)]
        face_points = np.concatenate([quads.ravel(), triangles.ravel()])
        points = np.unique(face_points[back.is_fill(face_points)])  # fill points some face uses, ascending
        if len(points) == 0:
            continue

        def number(p):
            out = flat_front[p].astype(np.int64)
            fill = back.is_fill(p)
            out[fill] = n_vertices + np.searchsorted(points, p[fill])
            return out

        covered |= _covered((rows, cols), quads[:, 0], triangles)
        fill_quads.append(number(quads))
        fill_triangles.append(number(triangles))
        fill_points.append(points)
        fill_texture.append(layer.texture_points[np.searchsorted(layer.points, points)])
        fi, fj = np.divmod(points, cols)
        zf = 1.0 / back.at(points)
        fill_vertices.append(np.stack([x[fj] * zf, y[fi] * zf, -zf], axis=1).astype(np.float32))
        n_vertices += len(points)
    closure = _closures(q, covered, front_number, n_vertices, x, y)
    if closure is not None:
        for parts, part in zip((fill_vertices, fill_points, fill_texture, fill_quads), closure):
            parts.append(part)
    if not fill_points:
        return None
    return _FillFaces(
        np.concatenate(fill_vertices), np.concatenate(fill_points), np.concatenate(fill_texture),
        np.concatenate(fill_quads).reshape(-1, 4).astype(np.int32),
        np.concatenate(fill_triangles or [np.zeros((0, 3), np.int64)]).reshape(-1, 3).astype(np.int32),
    )


def _covered(shape: tuple[int, int], top_left: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """The cells ((rows - 1) x (cols - 1) bool) that faces cover whole: quads at `top_left` grid points, and
    cells holding two of `triangles` (T x 3 grid points; a cell's two triangles are its two halves)."""
    rows, cols = shape
    count = np.zeros((rows - 1) * (cols - 1), np.uint8)
    if len(triangles):
        ti, tj = np.divmod(triangles, cols)
        np.add.at(count, ti.min(axis=1) * (cols - 1) + tj.min(axis=1), 1)
    ci, cj = np.divmod(top_left, cols)
    count[ci * (cols - 1) + cj] = 2
    return (count >= 2).reshape(rows - 1, cols - 1)


def _closures(q, covered, front_number, n_vertices, x, y):
    """The last resort of the fill: every cell still open whose four corners have depth (where three surfaces
    meet within the blur, or beside points the front mesh dropped: a ramp's leftovers, whose depth no surface
    has) is closed by a quad on the farthest surface among its corners the front keeps. Its corners on that
    surface (within LAYER_TOLERANCE of the farthest) keep their front vertices; each other corner gets a vertex
    of its own at the depth of a neighbour on it, textured from that neighbour: background continued under a
    foreground, or a foreground one step over a dropped point, as the skirt does. A cell whose kept corners
    all lie on one surface with no dropped one is left open: the front cut it for a step too small to hide
    anything. Returns vertices, grid points, texture points and quads (vertex numbers from n_vertices on), or
    None."""
    rows, cols = q.shape
    ci, cj = np.nonzero(~covered & np.logical_and.reduce([np.isfinite(c) for c in _corners(q)]))
    top_left = ci * cols + cj
    points = np.stack([top_left, top_left + cols, top_left + cols + 1, top_left + 1], axis=1)  # tl bl br tr
    cq = q.ravel()[points]
    meshed = front_number.ravel()[points] >= 0
    far = np.where(meshed, cq, np.inf).min(axis=1)
    on = meshed & (cq <= far[:, None] * (1 + LAYER_TOLERANCE))
    keep = ~on.all(axis=1) & meshed.any(axis=1)
    points, cq, on = points[keep], cq[keep], on[keep]
    if len(points) == 0:
        return None
    # Each other corner takes the value and texture of a neighbour on it: along a side of the cell if one is
    # (the farther of two), else across the diagonal.
    kept = np.where(on, cq, np.inf)
    cell = np.arange(len(points))
    source = np.zeros(points.shape, np.int64)
    for m in range(4):
        side = np.where(kept[:, (m + 1) % 4] <= kept[:, (m + 3) % 4], (m + 1) % 4, (m + 3) % 4)
        source[:, m] = np.where(np.isfinite(kept[cell, side]), side, (m + 2) % 4)
    source = np.where(on, np.arange(4)[None, :], source)
    new = ~on
    number = np.where(on, front_number.ravel()[points], 0).astype(np.int64)
    number[new] = n_vertices + np.arange(np.count_nonzero(new))
    new_points = points[new]
    texture = np.take_along_axis(points, source, axis=1)[new]
    pi, pj = np.divmod(new_points, cols)
    z = 1.0 / np.take_along_axis(cq, source, axis=1)[new]
    vertices = np.stack([x[pj] * z, y[pi] * z, -z], axis=1).astype(np.float32)
    return vertices, new_points, texture, number


def _fill_edges(fill: _FillFaces, grid_index, n_front, cols, edges, n_edges, edge_keys, corner_edges, n_quads,
                n_triangles) -> int:
    """Number the fill faces' edges into the room _grid_edges left (corner_edges after the front quads' and
    after the front triangles', edges from n_edges on) and return the new edge count. A corner's edge between
    two front vertices may be the front's: found by its key (kind * front vertices + lower vertex, as
    _grid_edges numbers them); every other one is new."""
    n_vertices = n_front + len(fill.points)
    quads, triangles = fill.quads.astype(np.int64), fill.triangles.astype(np.int64)
    a = np.concatenate([quads.ravel(), triangles.ravel()])
    b = np.concatenate([np.roll(quads, -1, axis=1).ravel(), np.roll(triangles, -1, axis=1).ravel()])
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    edge_number = np.full(len(a), -1, np.int64)
    both_front = np.flatnonzero(hi < n_front)
    if len(both_front) and len(edge_keys):
        d_row, d_col = np.divmod(grid_index[hi[both_front]] - grid_index[lo[both_front]] + 1, cols)
        kind = np.where(d_row == 0, 0, 1 + (d_col - 1) % 3)  # steps (0,1) (1,0) (1,1) (1,-1) -> 0 1 2 3
        key = kind * n_front + lo[both_front]
        at = np.minimum(np.searchsorted(edge_keys, key), len(edge_keys) - 1)
        hit = edge_keys[at] == key
        edge_number[both_front[hit]] = at[hit]
    new = edge_number < 0
    unique, inverse = np.unique(lo[new] * n_vertices + hi[new], return_inverse=True)
    edge_number[new] = n_edges + inverse.ravel()
    edges[n_edges : n_edges + len(unique), 0], edges[n_edges : n_edges + len(unique), 1] = np.divmod(unique, n_vertices)
    n_fill_quads = len(quads)
    corner_edges[4 * n_quads : 4 * (n_quads + n_fill_quads)] = edge_number[: 4 * n_fill_quads]
    start = 4 * (n_quads + n_fill_quads) + 3 * n_triangles
    corner_edges[start : start + 3 * len(triangles)] = edge_number[4 * n_fill_quads :]
    return n_edges + len(unique)


class _BackLayer:
    """The grid's disparity with one fill layer's values in place of the front's at its points."""

    def __init__(self, q: np.ndarray, layer: FillLayer, floor: list[np.ndarray]):
        self.q, self.layer, self.shape, self.floor = q.ravel(), layer, q.shape, floor

    def is_fill(self, p: np.ndarray) -> np.ndarray:
        at = np.minimum(np.searchsorted(self.layer.points, p), len(self.layer.points) - 1)
        return self.layer.points[at] == p

    def at(self, p: np.ndarray) -> np.ndarray:
        out = self.q[p]
        at = np.minimum(np.searchsorted(self.layer.points, p), len(self.layer.points) - 1)
        fill = self.layer.points[at] == p
        out[fill] = self.layer.disparity[at[fill]]
        return out


def _corners(grid: np.ndarray) -> list[np.ndarray]:
    """Views of a (rows, cols) grid at every cell's corners, counter-clockwise seen from the camera:
    top-left, bottom-left, bottom-right, top-right."""
    return [grid[:-1, :-1], grid[1:, :-1], grid[1:, 1:], grid[:-1, 1:]]


# A fill quad is one surface when its corners' disparities are affine within this share.
_FILL_PLANAR = 0.005

# A cell's six corner pairs (corners top-left 0, bottom-left 1, bottom-right 2, top-right 3): the pair, the
# DIRECTIONS index of the edge from the first to the second, and which corner that edge starts from.
_CELL_EDGES = {(0, 3): (0, 0), (1, 2): (0, 1), (0, 1): (1, 0), (3, 2): (1, 3), (0, 2): (2, 0), (3, 1): (3, 3)}


def _grid_faces(log_z: np.ndarray, limit: float, broken=None) -> tuple[np.ndarray, np.ndarray]:
    """The cells that keep their quad (bool, rows - 1 x cols - 1), and the triangles kept where a quad fails
    (T x 3 grid point indices). NaN log-depth = no vertex; broken: depth_edges' cut edges, if any."""
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
    if broken is not None:
        for (a, b), (k, start) in _CELL_EDGES.items():
            quad_ok &= ~_corners(broken[k])[start]
    failed = np.flatnonzero(~quad_ok)
    i, j = np.divmod(failed, cols - 1)
    cut = None if broken is None else {pair: _corners(broken[k])[start].ravel()[failed]
                                       for pair, (k, start) in _CELL_EDGES.items()}
    top_left = i * cols + j
    flat = log_z.ravel()
    corner_log_z = [flat[c] for c in (top_left, top_left + cols, top_left + cols + 1, top_left + 1)]
    return quad_ok, _split_cells(top_left, cols, corner_log_z, limit, cut)


def _cell_faces(top_left: np.ndarray, cols: int, back: "_BackLayer", limit: float):
    """_grid_faces for the cells at `top_left` grid points only, on the fill's back layer, its cut edges
    judged there as depth_edges does."""
    corner = [top_left, top_left + cols, top_left + cols + 1, top_left + 1]
    cq = [back.at(c) for c in corner]
    with np.errstate(divide="ignore", invalid="ignore"):
        cz = [-np.log(c) for c in cq]
        quad_ok = (np.maximum.reduce(cz) - np.minimum.reduce(cz)) <= limit
        # One surface continued: a planar quad's disparities satisfy tl + br = bl + tr (they are affine).
        quad_ok &= np.abs(cq[0] + cq[2] - cq[1] - cq[3]) <= _FILL_PLANAR * np.maximum.reduce(cq)
    cut = {}
    for (a, b), (k, start) in _CELL_EDGES.items():
        cut[(a, b)] = edges_broken_at(back.at, back.shape, corner[start], k, back.floor[k])
        quad_ok &= ~cut[(a, b)]
    failed = ~quad_ok
    corner_log_z = [c[failed] for c in cz]
    triangles = _split_cells(top_left[failed], cols, corner_log_z, limit, {p: c[failed] for p, c in cut.items()})
    return quad_ok, triangles


def _split_cells(top_left, cols, corner_z, limit, cut) -> np.ndarray:
    """Triangles for cells whose quad failed, given their corners' log-depths: split A along the
    top-left/bottom-right diagonal, split B along the other; take the one keeping more triangles (T x 3 grid
    point indices)."""
    corner_idx = [top_left, top_left + cols, top_left + cols + 1, top_left + 1]

    def fits(*corners: int) -> np.ndarray:
        zs = [corner_z[c] for c in corners]
        with np.errstate(invalid="ignore"):
            ok = (np.maximum.reduce(zs) - np.minimum.reduce(zs)) <= limit  # False wherever a corner is NaN
        if cut is not None:
            for pair in ((corners[0], corners[1]), (corners[1], corners[2]), (corners[0], corners[2])):
                key = pair if pair in cut else pair[::-1]
                ok &= ~cut[key]
        return ok

    a1, a2, b1, b2 = fits(0, 1, 2), fits(0, 2, 3), fits(0, 1, 3), fits(1, 2, 3)
    use_a = a1.astype(np.int8) + a2 >= b1.astype(np.int8) + b2
    a1, a2, b1, b2 = a1 & use_a, a2 & use_a, b1 & ~use_a, b2 & ~use_a
    return np.concatenate(
        [
            np.stack([corner_idx[k][sel] for k in tri], axis=1)
            for sel, tri in ((a1, (0, 1, 2)), (a2, (0, 2, 3)), (b1, (0, 1, 3)), (b2, (1, 2, 3)))
        ]
    )


# Kinds of edge on the grid, by the step (rows, columns) from the lower grid point to the higher one: right (H)
# and down (V), from quads and triangles; down-right (D: split A's diagonal) and down-left (N: split B's), from
# triangles only.
_EDGE_STEPS = ((0, 1), (1, 0), (1, 1), (1, -1))
# A quad's edges 0..3 (corner k to corner k + 1): (kind of edge, the corner that is its lower point).
_QUAD_SIDES = ((1, 0), (0, 1), (1, 3), (0, 0))


def _grid_edges(quad_ok: np.ndarray, triangles: np.ndarray, remap: np.ndarray, fill_quads: int = 0,
                fill_triangles: int = 0, fill_edges: int = 0):
    """Every edge of the faces once, as (lower, higher) vertex index, the edge from each face corner to the
    next, quads' corners then triangles', each edge's key (kind * vertices + lower vertex, ascending) and the
    number of edges; `triangles` in grid point indices, `remap` grid point -> vertex. The arrays leave room
    for the occlusion fill: `fill_quads` quads' corners after the quads', `fill_triangles` triangles' after
    the triangles', and up to `fill_edges` edges after the edges.

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
    corner_edges = np.empty(4 * (n_quads + fill_quads) + triangles.size + 3 * fill_triangles, dtype=np.int32)
    quad_edges = corner_edges[: 4 * n_quads].reshape(n_quads, 4)
    for k, (kind, corner) in enumerate(_QUAD_SIDES):
        quad_edges[:, k] = _corners(number[kind])[corner][quad_ok]
    first = 4 * (n_quads + fill_quads)
    triangle_edges = corner_edges[first : first + triangles.size].reshape(triangles.shape)
    triangle_edges[straight] = number.reshape(2, -1)[tri_kind[straight], tri_lower[straight]]
    triangle_edges[~straight] = n_straight + np.searchsorted(diagonals, diagonal_key)

    n_edges = n_straight + len(diagonals)
    edges = np.empty((n_edges + fill_edges, 2), dtype=np.int32)
    start = 0
    n_horizontal = int(np.count_nonzero(used[0]))
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
    edges[start:n_edges, 0] = remap.ravel()[lower]
    edges[start:n_edges, 1] = remap.ravel()[lower + flat_steps[kind]]
    # Every edge's key, kind * vertices + lower vertex: ascending, for looking edges up by searchsorted.
    if not fill_edges:
        return edges, corner_edges, None, n_edges
    n_vertices = int(remap.max(initial=-1)) + 1
    keys = edges[:n_edges, 0].astype(np.int64)
    keys[n_horizontal:n_straight] += n_vertices
    keys[n_straight:] += kind.astype(np.int64) * n_vertices
    return edges, corner_edges, keys, n_edges
