"""Front surface -> closed, watertight object: a back surface behind the front, joined to it by a rim.

The front is a depth mesh as `grid_mesh.depth_to_grid_mesh` makes it: faces counter-clockwise seen from the
camera, boundary loops along the silhouette, around holes and along cuts at depth discontinuities. Closing it:

1. Bow-tie vertices (where two boundary loops touch, e.g. where the lone triangles that grid_mesh keeps in
   cells along diagonal mask edges meet corner to corner) are split: each fan of faces around such a vertex
   gets its own copy, so every boundary vertex lies on exactly one loop.
2. Every front vertex gets a back twin ON ITS OWN VIEW RAY, further from the camera. Hence the back hides
   exactly behind the front, projects onto the same pixel, and reuses the front twin's UV (the photo seen
   from behind, mirrored). Back faces are the front faces reversed.
     solidify: back depth = front depth + thickness (uniform; default SOLIDIFY_FRACTION of the object's size).
     mirror:   back depth = 2 * z_s - front depth, z_s = the median depth of the outer silhouette of each
               connected piece, clamped to at least front depth + a minimum gap.
     inflate:  closes like mirror. The inflation happens before meshing, on the mask: `inflate_depth`.
3. A rim quad joins each front boundary edge to its back twin. Rim vertices ARE the front and back boundary
   vertices (no new vertices, per-vertex UVs stay enough), so the rim is a band one face tall whose UVs run
   along the boundary pixels: each rim quad shows the colours between its two boundary pixels drawn across
   the thickness, never one pixel's colour over a wide area. (Its UV area is zero: tangents for normal
   maps are undefined there.)

Because twins share a view ray, each rim quad lies in the plane through the camera and its boundary edge and
is convex; the back lies strictly behind the front, so nothing self-intersects. The only contacts are the
copies of split bow-tie vertices, which keep their shared position (touching, not crossing).

The result: every edge in exactly two faces, traversed once in each direction; outward normals (front toward
the camera, back away, rim outward), so the signed volume is positive. Vectorised throughout: about 0.1 s
for a 512 x 512 grid on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Each closure with its label and description, as the sidebar and --help show them.
CLOSURES = {
    "none": ("Open Relief", "Only the surface the photo sees"),
    "solidify": ("Solidify", "A back at a uniform thickness behind the front"),
    "mirror": ("Mirror", "The front mirrored about the silhouette: a guess at the hidden back"),
    "inflate": ("Inflate", "Rounded like a balloon from the silhouette, with the depth's detail on top"),
}

# Default solidify thickness: this fraction of the smaller side of the front's bounding box in x and y.
SOLIDIFY_FRACTION = 0.1
# Inflation: 1.0 makes a disc-shaped mask a hemisphere (a sphere once mirrored).
DEFAULT_ROUNDNESS = 1.0


@dataclass
class ClosedMesh:
    vertices: np.ndarray  # (N, 3) float32, camera frame (x right, y up, looking down -z), metres
    quads: np.ndarray  # (Q, 4) int32: front quads, back quads, rim quads
    triangles: np.ndarray  # (T, 3) int32: front triangles, back triangles
    uvs: np.ndarray  # (N, 2) float32 per vertex; a back twin has its front twin's UV
    # Layout: [0, n_in) the input vertices, unchanged; [n_in, front_count) copies of split bow-tie vertices;
    # [front_count, N) the back twins of [0, front_count), in the same order.
    source_vertex: np.ndarray  # (N,) int32, the input vertex each vertex copies: carries colours and the like
    front_count: int

    def carry_normals(self, normals: np.ndarray | None, closure: str) -> np.ndarray | None:
        """The input vertices' normals (e.g. a model's) on the closed mesh: a front vertex keeps its own; a back
        twin faces away, mirrored about the silhouette plane (mirror, inflate) or reversed (solidify)."""
        if normals is None:
            return None
        carried = normals[self.source_vertex].astype(np.float32)
        back = carried[self.front_count:]
        if closure == "solidify":
            back *= -1.0
        else:
            back[:, 2] *= -1.0
        return carried


def close_surface(
    vertices: np.ndarray,
    quads: np.ndarray,
    triangles: np.ndarray,
    uvs: np.ndarray,
    closure: str,
    thickness: float | None = None,
) -> ClosedMesh:
    """Close a front surface into a watertight object (see the module notes); ValueError on bad input.

    closure: one of CLOSURES. "none" returns the front as it is. "inflate" closes like "mirror": its front
    comes from `inflate_depth`, whose silhouette plane is then the mirror plane.
    thickness, metres: for "solidify" the uniform depth offset of the back (default SOLIDIFY_FRACTION of the
    smaller side of the front's x/y bounding box); for "mirror" and "inflate" the least front-to-back depth
    gap, which keeps the rim from collapsing where the front meets the mirror plane (default: the median
    boundary edge length, so rim faces come out about square).
    """
    if closure not in CLOSURES:
        raise ValueError(f"Unknown closure '{closure}': use one of {', '.join(CLOSURES)}.")
    if thickness is not None and not (np.isfinite(thickness) and thickness > 0):
        raise ValueError(f"The thickness must be a positive number of metres, not {thickness}.")
    vertices = np.asarray(vertices, dtype=np.float32)
    quads = np.asarray(quads, dtype=np.int64).reshape(-1, 4)
    triangles = np.asarray(triangles, dtype=np.int64).reshape(-1, 3)
    uvs = np.asarray(uvs, dtype=np.float32)
    n = len(vertices)
    if closure == "none":
        return ClosedMesh(
            vertices, quads.astype(np.int32), triangles.astype(np.int32), uvs, np.arange(n, dtype=np.int32), n
        )

    corner_vertex, corner_next = _corners(quads, triangles)
    twin = _twins(corner_vertex, corner_next, n)
    corner_vertex, source = _split_bowties(corner_vertex, corner_next, twin, n)
    front = vertices if len(source) == n else vertices[source]
    depth = -front[:, 2].astype(np.float64)
    if not (depth > 0).all():  # also False for NaN
        raise ValueError("Every vertex of the front surface must lie in front of the camera (z < 0).")

    boundary = np.flatnonzero(twin < 0)  # corners whose outgoing half-edge is on a boundary
    if closure == "solidify":
        gap = thickness if thickness is not None else _default_solidify_thickness(front)
        back_depth = depth + gap
    else:  # mirror, inflate
        gap = thickness if thickness is not None else _median_edge_length(front, corner_vertex, corner_next, boundary)
        planes = _mirror_planes(front, corner_vertex, corner_next, boundary)
        back_depth = np.maximum(2.0 * planes - depth, depth + gap)
    back = (front * (back_depth / depth)[:, None]).astype(np.float32)  # on the front twin's view ray
    return _assemble(front, back, uvs[source], source, corner_vertex, corner_next, boundary, len(quads))


# ---- the front's half-edge structure ------------------------------------------------------------------------


def _corners(quads: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each face corner's vertex, and the next corner of the same face; quads' corners, then triangles'.

    The half-edge of corner c runs from vertex[c] to vertex[next[c]].
    """
    n_quad_corners = quads.size
    next_corner = np.arange(1, n_quad_corners + triangles.size + 1)
    next_corner[3:n_quad_corners:4] -= 4  # the last corner of a face wraps to its first
    next_corner[n_quad_corners + 2 :: 3] -= 3
    return np.concatenate([quads.ravel(), triangles.ravel()]), next_corner


def _twins(vertex: np.ndarray, next_corner: np.ndarray, n_vertices: int) -> np.ndarray:
    """The corner whose half-edge runs opposite to each corner's, -1 where there is none (a boundary)."""
    if len(vertex) == 0:
        raise ValueError("The front surface has no faces.")
    head = vertex[next_corner]
    if (vertex == head).any() or vertex.min() < 0 or vertex.max() >= n_vertices:
        raise ValueError("The front surface has a face with a repeated or out-of-range vertex.")
    key = np.minimum(vertex, head) * n_vertices + np.maximum(vertex, head)  # the undirected edge
    # Stable sort (timsort): a grid mesh's corners come in long sorted runs, which it merges in a few passes.
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    same = sorted_key[1:] == sorted_key[:-1]
    if (same[1:] & same[:-1]).any():
        raise ValueError("The front surface is not a manifold: an edge is shared by more than two faces.")
    pair = np.flatnonzero(same)
    first, second = order[pair], order[pair + 1]
    if (vertex[first] == vertex[second]).any():
        raise ValueError("The front surface is not consistently oriented: two faces run along an edge the same way.")
    twin = np.full(len(vertex), -1, dtype=np.int64)
    twin[first] = second
    twin[second] = first
    return twin


def _split_bowties(
    vertex: np.ndarray, next_corner: np.ndarray, twin: np.ndarray, n_vertices: int
) -> tuple[np.ndarray, np.ndarray]:
    """Give each extra fan of faces around a bow-tie vertex its own copy of the vertex.

    Returns the corners' vertices after the split and, for every vertex, the input vertex it copies. A
    vertex with k outgoing boundary half-edges has k open fans. Walking around a vertex across each corner's
    outgoing half-edge ends, for every corner of a fan, at the same corner: the fan's one corner whose
    outgoing half-edge is a boundary. That end names the fan.
    """
    source = np.arange(n_vertices)
    boundary_out = np.bincount(vertex[twin < 0], minlength=n_vertices)
    if not (boundary_out > 1).any():
        return vertex, source
    at_bowtie = np.flatnonzero(boundary_out[vertex] > 1)  # corners around bow-tie vertices
    local = np.full(len(vertex), -1)
    local[at_bowtie] = np.arange(len(at_bowtie))
    across = twin[at_bowtie]
    pointer = local[np.where(across >= 0, next_corner[np.maximum(across, 0)], at_bowtie)]
    for _ in range(64):  # pointer jumping: log2(fan size) rounds
        jumped = pointer[pointer]
        if np.array_equal(jumped, pointer):
            break
        pointer = jumped
    end = at_bowtie[pointer]
    open_fan = twin[end] < 0  # a closed fan (a cone tip, not planar) keeps the original vertex

    ends = np.unique(end[open_fan])  # one per fan, sorted by corner
    fan_vertex = vertex[ends]
    by_vertex = np.argsort(fan_vertex, kind="stable")
    first = np.ones(len(ends), dtype=bool)
    first[1:] = fan_vertex[by_vertex][1:] != fan_vertex[by_vertex][:-1]
    fan_id = np.empty(len(ends), dtype=np.int64)
    fan_id[by_vertex] = np.where(first, fan_vertex[by_vertex], n_vertices + np.cumsum(~first) - 1)

    vertex = vertex.copy()
    vertex[at_bowtie[open_fan]] = fan_id[np.searchsorted(ends, end[open_fan])]
    # Copies are numbered in by_vertex order, so their sources are the non-first fans' vertices in that order.
    return vertex, np.concatenate([source, fan_vertex[by_vertex][~first]])


# ---- back depths ---------------------------------------------------------------------------------------------


def _default_solidify_thickness(vertices: np.ndarray) -> float:
    extent = vertices[:, :2].max(axis=0) - vertices[:, :2].min(axis=0)
    side = float(extent.min()) if extent.min() > 0 else float(extent.max())
    return SOLIDIFY_FRACTION * side if side > 0 else SOLIDIFY_FRACTION * float(-vertices[:, 2].mean())


def _median_edge_length(vertices, vertex, next_corner, boundary) -> float:
    corners = boundary if len(boundary) else np.arange(len(vertex))
    lengths = np.linalg.norm(vertices[vertex[next_corner[corners]]] - vertices[vertex[corners]], axis=1)
    return float(np.median(lengths))


def _mirror_planes(vertices, vertex, next_corner, boundary) -> np.ndarray:
    """Each vertex's mirror plane depth: the median depth of its connected piece's outer silhouette.

    Outer loops run counter-clockwise seen from the camera (positive area in the image), holes clockwise.
    A piece with no outer loop (none in a planar front) falls back to the median depth of all its vertices.
    """
    depth = -vertices[:, 2].astype(np.float64)
    piece = _connected_pieces(len(vertices), vertex, vertex[next_corner])
    outer = boundary[_outer_loop_corners(vertices, vertex, next_corner, boundary)]
    plane = np.full(len(vertices), np.nan)
    roots, medians = _group_medians(piece[vertex[outer]], depth[vertex[outer]])
    plane[roots] = medians
    if np.isnan(plane[piece]).any():
        roots, medians = _group_medians(piece, depth)
        plane[roots] = np.where(np.isnan(plane[roots]), medians, plane[roots])
    return plane[piece]


def _outer_loop_corners(vertices, vertex, next_corner, boundary) -> np.ndarray:
    """Which boundary corners lie on a loop with positive signed area in the image plane."""
    if len(boundary) == 0:
        return np.zeros(0, dtype=bool)
    # After the bow-tie split each boundary vertex starts exactly one boundary half-edge: the loops' order.
    starts_at = np.full(len(vertices), -1)
    starts_at[vertex[boundary]] = np.arange(len(boundary))
    successor = starts_at[vertex[next_corner[boundary]]]
    loop = _cycle_minimum(successor)
    with np.errstate(invalid="ignore", divide="ignore"):
        image = vertices[:, :2] / -vertices[:, 2:3]  # the photo plane at unit depth: orientation as seen
    a, b = image[vertex[boundary]].astype(np.float64), image[vertex[next_corner[boundary]]].astype(np.float64)
    area = np.bincount(loop, weights=a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1], minlength=len(boundary))
    return area[loop] > 0


def _cycle_minimum(successor: np.ndarray) -> np.ndarray:
    """For a permutation made of cycles, the smallest index on each element's cycle (its loop's name)."""
    label = np.arange(len(successor))
    pointer = successor.copy()
    span = 1
    while span < len(successor):  # after k rounds each label covers 2**k consecutive elements
        label = np.minimum(label, label[pointer])
        pointer = pointer[pointer]
        span *= 2
    return label


def _connected_pieces(n_vertices: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each vertex's piece: the smallest vertex index connected to it by edges (a[i], b[i]).

    Union by hooking each root under the smallest root it touches, then pointer jumping; a grid numbered
    row by row settles in one or two rounds.
    """
    label = np.arange(n_vertices)
    while True:
        la, lb = label[a], label[b]
        differ = la != lb
        if not differ.any():
            return label
        la, lb = la[differ], lb[differ]
        np.minimum.at(label, np.maximum(la, lb), np.minimum(la, lb))
        while True:
            jumped = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped


def _group_medians(keys: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct keys and the median of the values under each."""
    order = np.lexsort((values, keys))
    keys, values = keys[order], values[order]
    starts = np.flatnonzero(np.concatenate([[True], keys[1:] != keys[:-1]]))
    counts = np.diff(np.append(starts, len(keys)))
    return keys[starts], 0.5 * (values[starts + (counts - 1) // 2] + values[starts + counts // 2])


# ---- the closed mesh -----------------------------------------------------------------------------------------


def _assemble(front, back, uvs, source, vertex, next_corner, boundary, n_quads) -> ClosedMesh:
    """Front faces, back faces (the front's reversed, on the twins), and one rim quad per boundary edge."""
    n = len(front)
    front_quads = vertex[: 4 * n_quads].reshape(-1, 4)
    front_triangles = vertex[4 * n_quads :].reshape(-1, 3)
    a, b = vertex[boundary], vertex[next_corner[boundary]]
    # The rim quad runs b -> a (opposite the front's a -> b), down the ray to a's twin, then twin b -> b.
    rim = np.stack([b, a, a + n, b + n], axis=1)
    # Back quads reversed as (2, 1, 0, 3): corners 0-2 stay the front's 0-2 diagonal, along which Blender and
    # exporters split a non-planar quad, so each back triangle lies behind its front triangle on the same rays.
    quads = np.concatenate([front_quads, n + front_quads[:, [2, 1, 0, 3]], rim]).astype(np.int32)
    triangles = np.concatenate([front_triangles, n + front_triangles[:, ::-1]]).astype(np.int32)
    return ClosedMesh(
        np.concatenate([front, back]),
        quads,
        triangles,
        np.concatenate([uvs, uvs]),
        np.concatenate([source, source]).astype(np.int32),
        n,
    )


# ---- inflation: a depth map for a mask alone -----------------------------------------------------------------


def inflate_depth(
    mask: np.ndarray,
    focal_px: float,
    distance: float,
    roundness: float = DEFAULT_ROUNDNESS,
    detail: np.ndarray | None = None,
) -> np.ndarray:
    """A pillow-shaped depth map (float32 metres, NaN outside the mask) for an object known only by its mask.

    mask: (H, W) bool, the object. focal_px: the focal length in the MASK's pixels (scale it with the mask;
    pass the mask at the mesh's grid size: the cost grows with its pixel count, about 0.1 s at 512 x 512).
    distance: metres from the camera to the silhouette plane; the mask's edge pixels (those with a
    4-neighbour outside it) lie on it, and the object bulges toward the camera by `inflation_height`
    converted to metres at that distance (a pixel there spans distance / focal_px metres). Closing with
    "mirror" or "inflate" then mirrors it about that plane, its equator.
    roundness: scales the bulge; 1.0 turns a disc into a hemisphere.
    detail: an optional metric depth map of the same size whose relief is kept on top of the inflation:
    front = distance - inflation + (detail - median of detail over the mask); invalid detail (NaN, <= 0)
    adds nothing. To keep the depth map's own placement, pass distance = that median.
    """
    mask = np.asarray(mask) != 0
    if not (focal_px > 0 and distance > 0 and roundness > 0):
        raise ValueError("The focal length, distance and roundness must be positive.")
    depth = distance - inflation_height(mask, roundness) * (distance / focal_px)
    if detail is not None:
        detail = np.asarray(detail, dtype=np.float64)
        if detail.shape != mask.shape:
            raise ValueError(f"The detail depth map is {detail.shape[1]}x{detail.shape[0]}, the mask "
                             f"{mask.shape[1]}x{mask.shape[0]}: they must be the same size.")
        with np.errstate(invalid="ignore"):
            valid = mask & np.isfinite(detail) & (detail > 0)
        if valid.any():
            depth += np.where(valid, detail - np.median(detail[valid]), 0.0)
    # A bulge deeper than the distance to the camera (a huge mask seen close up) would reach behind it.
    depth = np.maximum(depth, 0.05 * distance).astype(np.float32)
    depth[~mask] = np.nan
    return depth


def inflation_height(mask: np.ndarray, roundness: float = DEFAULT_ROUNDNESS) -> np.ndarray:
    """The bulge of an inflated mask, in pixels (float32, 0 outside the mask and on its edge).

    h = roundness * sqrt(u), where u solves Poisson's equation (laplacian u = -4, u = 0 on the mask's edge
    pixels and outside). For a disc of radius R, u = R^2 - r^2: h is a hemisphere. For a long strip of half
    width w, h = sqrt(2) * roundness * sqrt(w^2 - x^2): a rounded cross-section whose height grows in
    proportion to the LOCAL width, where a distance-transform profile with one global radius would make thin
    parts as tall as the body allows. Solved by conjugate gradients, coarse to fine.
    """
    mask = np.asarray(mask) != 0
    # Zero on the edge pixels: the grid mesh's boundary vertices then sit on the silhouette plane.
    inner = cv2.erode(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3)),
                      borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    height = np.zeros(mask.shape, dtype=np.float32)
    rows, cols = np.flatnonzero(inner.any(axis=1)), np.flatnonzero(inner.any(axis=0))
    if len(rows) == 0:
        return height
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    u = _poisson_cascade(np.pad(inner[box], 1))[1:-1, 1:-1]
    height[box] = roundness * np.sqrt(np.maximum(u, 0.0))
    return height


_COARSEST_SIDE = 24  # solved to convergence; each finer level starts from the coarser solution
_FINE_ITERATIONS = 60
_TOLERANCE = 1e-3


def _poisson_cascade(mask: np.ndarray) -> np.ndarray:
    """u with laplacian u = -4 on `mask` (bool, with a False border), u = 0 elsewhere; float32, unit spacing."""
    h, w = mask.shape
    weights = mask.astype(np.float32)
    if min(h, w) <= _COARSEST_SIDE:
        return _conjugate_gradients(weights, np.zeros_like(weights), 10 * max(h, w), 1e-6)
    even = np.zeros((h + h % 2, w + w % 2), dtype=np.float32)
    even[:h, :w] = weights
    coarse = even.reshape(even.shape[0] // 2, 2, even.shape[1] // 2, 2).mean(axis=(1, 3)) >= 0.5
    coarse[[0, -1], :] = coarse[:, [0, -1]] = False  # keep the zero border
    # u scales with the square of the pixel size: a coarse pixel is 2 fine ones.
    guess = cv2.resize(4.0 * _poisson_cascade(coarse), (even.shape[1], even.shape[0]), interpolation=cv2.INTER_LINEAR)
    return _conjugate_gradients(weights, guess[:h, :w] * weights, _FINE_ITERATIONS, _TOLERANCE)


def _conjugate_gradients(weights: np.ndarray, x: np.ndarray, iterations: int, tolerance: float) -> np.ndarray:
    """Solve A x = 4 on the mask (weights 1 inside, 0 outside), A the masked 5-point negative laplacian."""
    b = 4.0 * weights
    r = b - _negative_laplacian(x, weights)
    p = r.copy()
    rr = _dot(r, r)
    stop = tolerance * tolerance * _dot(b, b)
    for _ in range(iterations):
        if rr <= stop:
            break
        ap = _negative_laplacian(p, weights)
        alpha = np.float32(rr / _dot(p, ap))
        x += alpha * p
        r -= alpha * ap
        rr, rr_before = _dot(r, r), rr
        p *= np.float32(rr / rr_before)
        p += r
    return x


def _negative_laplacian(x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    out = 4.0 * x
    out[1:] -= x[:-1]
    out[:-1] -= x[1:]
    out[:, 1:] -= x[:, :-1]
    out[:, :-1] -= x[:, 1:]
    out *= weights
    return out


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # einsum, not vdot: float64 accumulation without BLAS, which is slow here on float64 and inexact on float32.
    return float(np.einsum("ij,ij->", a, b, dtype=np.float64))
