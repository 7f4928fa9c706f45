"""Closing a depth mesh's front surface into a watertight object (pure numpy): solidify, mirror, inflate."""

import numpy as np
import pytest
from image_to_mesh.inference.geometry.camera import Intrinsics
from image_to_mesh.inference.geometry.closure import CLOSURES, close_surface, inflate_depth, inflation_height
from image_to_mesh.inference.geometry.grid_mesh import depth_to_grid_mesh

SIZE = 64
FOCAL = 60.0
CAMERA = Intrinsics(SIZE, SIZE, FOCAL)
ROWS, COLS = np.mgrid[:SIZE, :SIZE]
RADIUS = np.hypot(ROWS - 31.5, COLS - 31.5)


def bulge(mask_radius=30.0, base=2.0, height=0.3):
    """A smooth dome: `base` metres at mask_radius from the centre, nearer the camera inside."""
    return (base - height * np.clip(1 - (RADIUS / mask_radius) ** 2, 0, None)).astype(np.float32)


def dome(row, col, radius, base, height=0.3):
    """`base` metres outside `radius` pixels of (row, col), up to `height` nearer the camera inside."""
    r = np.hypot(ROWS - row, COLS - col)
    return (base - height * np.clip(1 - (r / radius) ** 2, 0, None)).astype(np.float32)


def spiral_step(height=2.0):
    """Depth that climbs `height` metres once around the image centre: one jump, along the ray straight up."""
    turn = (np.arctan2(-(COLS - 31.5), ROWS - 31.5) + np.pi) / (2 * np.pi)
    return (2.0 + height * turn).astype(np.float32)


def diamond(row, col, radius):
    return np.abs(ROWS - row) + np.abs(COLS - col) <= radius


def box(top, left, bottom, right):
    return (ROWS >= top) & (ROWS < bottom) & (COLS >= left) & (COLS < right)


# name: (mask, depth, Euler characteristic of the closed result: 2 per sphere-like piece, 0 per ring; and of
# the inflated mask, where it differs: inflation ignores the depth)
SHAPES = {
    "disc": (RADIUS < 20, bulge(), 2),
    "rectangle with a hole": (box(12, 7, 52, 57) & ~box(26, 22, 38, 38), bulge(), 0),
    "ring": ((RADIUS < 25) & (RADIUS > 10), bulge(), 0),
    "thin L, 3 pixels": (box(10, 10, 50, 13) | box(47, 10, 50, 40), bulge(), 2),
    "thin L, 2 pixels": (box(10, 10, 50, 12) | box(48, 10, 50, 40), bulge(), 2),
    # Pixel squares meeting at a corner share no grid vertex: two separate pieces.
    "squares touching diagonally": (box(10, 10, 20, 20) | box(20, 20, 30, 30), bulge(), 4),
    # Diamonds sharing one pixel: their staircase edges end in single triangles that meet at that pixel's
    # vertex, which two boundary loops pass through (a bow-tie).
    "diamonds sharing a pixel": (diamond(20, 20, 8) | diamond(20, 36, 8), bulge(), 4),
    "disc with one-pixel and two-pixel spurs": (
        (RADIUS < 15) | box(31, 46, 32, 56) | box(40, 44, 42, 58),
        bulge(),
        2,
    ),
    # A step from 2 m to 4 m down the middle column: two pieces, each closed on its own.
    "depth step through the mask": (
        box(10, 8, 54, 56),
        np.where(COLS < 32, dome(31.5, 19.5, 10, 2.0), dome(31.5, 43.5, 10, 4.0)),
        4,
        2,
    ),
    # A jump from the top edge to the centre only, the depth continuous around its end: one piece, a slit.
    "depth step half-way in": (box(10, 8, 54, 56), spiral_step(), 2),
}


def front_of(mask, depth):
    # Without occlusion fill, as the pipeline meshes a front it will close (the closed back replaces it), and
    # cut by the slope limit alone, so each shape's topology (its Euler characteristic) is fixed here.
    grid = depth_to_grid_mesh(depth, CAMERA, resolution=SIZE, mask=mask, occlusion_fill_px=0, snap_edges=False)
    assert len(grid.quads) + len(grid.triangles) > 0
    return grid


def close(grid, closure, thickness=None):
    return close_surface(grid.vertices, grid.quads, grid.triangles, grid.uvs, closure, thickness)


def closure_inputs(closure, mask, depth):
    """The front to close: for "inflate" the mask inflated (no depth), else the given depth."""
    if closure == "inflate":
        depth = inflate_depth(mask, FOCAL, 2.0)
    return front_of(mask, depth)


def directed_edges(mesh):
    faces = [f for f in (mesh.quads, mesh.triangles) if len(f)]
    tails = np.concatenate([f.ravel() for f in faces]).astype(np.int64)
    heads = np.concatenate([np.roll(f, -1, axis=1).ravel() for f in faces]).astype(np.int64)
    return tails, heads


def assert_watertight(mesh):
    """Every edge in exactly two faces, once in each direction; every vertex's faces one fan closing on
    itself (no pinched vertex); no unused vertex. Returns V - E + F."""
    tails, heads = directed_edges(mesh)
    n = len(mesh.vertices)
    key = tails * n + heads
    assert len(np.unique(key)) == len(key), "a directed edge is used twice: inconsistent orientation"
    assert np.isin(heads * n + tails, key).all(), "an edge is used by one face only: a hole"
    undirected, counts = np.unique(np.minimum(tails, heads) * n + np.maximum(tails, heads), return_counts=True)
    assert (counts == 2).all()
    assert np.array_equal(np.unique(tails), np.arange(n)), "an unused vertex"

    # Around each vertex, step from a corner to the corner of the face across its outgoing edge: in a closed
    # 2-manifold that walk visits every corner of the vertex in one cycle.
    corner_of = dict(zip(key.tolist(), range(len(key))))
    sizes = np.concatenate([np.full(f.size, f.shape[1]) for f in (mesh.quads, mesh.triangles) if len(f)])
    position = np.concatenate([np.tile(np.arange(f.shape[1]), len(f)) for f in (mesh.quads, mesh.triangles) if len(f)])
    next_corner = np.arange(len(key)) + np.where(position == sizes - 1, 1 - sizes, 1)
    seen = np.zeros(len(key), dtype=bool)
    cycles = np.zeros(n, dtype=int)
    for start in range(len(key)):
        if seen[start]:
            continue
        cycles[tails[start]] += 1
        corner = start
        while not seen[corner]:
            seen[corner] = True
            across = corner_of[int(heads[corner] * n + tails[corner])]
            corner = int(next_corner[across])
    assert (cycles == 1).all(), f"{np.count_nonzero(cycles > 1)} pinched vertices"
    return n - len(undirected) + len(mesh.quads) + len(mesh.triangles)


def triangle_corners(mesh):
    v = mesh.vertices.astype(np.float64)
    triangles = np.concatenate([mesh.triangles, mesh.quads[:, [0, 1, 2]], mesh.quads[:, [0, 2, 3]]])
    return v[triangles[:, 0]], v[triangles[:, 1]], v[triangles[:, 2]]


def signed_volume(mesh):
    a, b, c = triangle_corners(mesh)
    return float(np.einsum("ij,ij->", a, np.cross(b, c))) / 6.0


def face_areas(mesh):
    v = mesh.vertices.astype(np.float64)
    areas = []
    for faces in (mesh.quads, mesh.triangles):
        if len(faces):
            diagonal = np.cross(v[faces[:, 2]] - v[faces[:, 0]], v[faces[:, -1]] - v[faces[:, 1]])
            areas.append(np.linalg.norm(diagonal, axis=1) / 2)  # exact for triangles and planar quads
    return np.concatenate(areas)


def assert_front_kept_and_back_twinned(grid, mesh):
    n, nf = len(grid.vertices), mesh.front_count
    # The front is the input: same vertices, the same faces (up to split copies of the same points), same UVs.
    np.testing.assert_array_equal(mesh.vertices[:n], grid.vertices)
    np.testing.assert_array_equal(mesh.uvs[:n], grid.uvs)
    np.testing.assert_array_equal(mesh.vertices[mesh.quads[: len(grid.quads)]], grid.vertices[grid.quads])
    np.testing.assert_array_equal(mesh.vertices[mesh.triangles[: len(grid.triangles)]], grid.vertices[grid.triangles])
    np.testing.assert_array_equal(mesh.vertices[:nf], grid.vertices[mesh.source_vertex[:nf]])
    np.testing.assert_array_equal(mesh.source_vertex[nf:], mesh.source_vertex[:nf])
    assert len(mesh.vertices) == 2 * nf
    # Back faces mirror the front's, a quad's corners 0-2 on the same diagonal (how quads get triangulated).
    front_quads, back_quads = mesh.quads[: len(grid.quads)], mesh.quads[len(grid.quads) : 2 * len(grid.quads)]
    np.testing.assert_array_equal(back_quads, nf + front_quads[:, [2, 1, 0, 3]])
    front_triangles = mesh.triangles[: len(grid.triangles)]
    np.testing.assert_array_equal(mesh.triangles[len(grid.triangles) :], nf + front_triangles[:, ::-1])
    # The back: the photo by mirrored projection, each twin on its front twin's view ray and behind it.
    np.testing.assert_array_equal(mesh.uvs[nf:], mesh.uvs[:nf])
    front, back = mesh.vertices[:nf].astype(np.float64), mesh.vertices[nf:].astype(np.float64)
    np.testing.assert_allclose(np.cross(front, back) / np.linalg.norm(back, axis=1, keepdims=True) ** 2, 0, atol=1e-6)
    assert (back[:, 2] < front[:, 2]).all()


@pytest.mark.parametrize("closure", ["solidify", "mirror", "inflate"])
@pytest.mark.parametrize("shape", list(SHAPES))
def test_closed_surface_is_watertight_outward_and_keeps_the_front(shape, closure):
    mask, depth, euler, *inflated_euler = SHAPES[shape]
    if closure == "inflate":
        euler = (inflated_euler or [euler])[0]
    grid = closure_inputs(closure, mask, depth)
    mesh = close(grid, closure)
    assert mesh.vertices.dtype == np.float32 and mesh.uvs.dtype == np.float32
    assert mesh.quads.dtype == np.int32 and mesh.triangles.dtype == np.int32
    assert assert_watertight(mesh) == euler
    assert signed_volume(mesh) > 0  # outward normals: front toward the camera, back away, rim out
    areas = face_areas(mesh)
    assert areas.min() > 1e-3 * np.median(areas)
    assert_front_kept_and_back_twinned(grid, mesh)


def test_bowtie_vertex_is_split_into_one_copy_per_fan():
    mask, depth, *_ = SHAPES["diamonds sharing a pixel"]
    grid = front_of(mask, depth)
    mesh = close(grid, "solidify")
    assert mesh.front_count == len(grid.vertices) + 1
    copy = mesh.source_vertex[len(grid.vertices)]
    # The copy sits where the shared pixel is, and each diamond uses one of the two.
    np.testing.assert_array_equal(mesh.vertices[len(grid.vertices)], grid.vertices[copy])
    front_faces = mesh.triangles[: len(grid.triangles)]
    assert (front_faces == copy).any() and (front_faces == len(grid.vertices)).any()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_masks_and_depths_close_watertight(seed):
    """Speckled masks: many one-triangle cells, bow-ties, holes and cuts at once."""
    rng = np.random.default_rng(seed)
    mask = rng.random((SIZE, SIZE)) < 0.6 + 0.1 * seed
    depth = (2.0 + 0.5 * rng.random((SIZE, SIZE))).astype(np.float32)
    grid = depth_to_grid_mesh(depth, CAMERA, resolution=SIZE, mask=mask, edge_threshold_deg=89)
    for closure in ("solidify", "mirror"):
        mesh = close(grid, closure)
        assert mesh.front_count > len(grid.vertices)  # bow-ties were split
        assert_watertight(mesh)
        assert signed_volume(mesh) > 0
        assert face_areas(mesh).min() > 1e-3 * np.median(face_areas(mesh))
        assert_front_kept_and_back_twinned(grid, mesh)


def test_rim_faces_map_to_the_boundary_pixels_not_a_smear():
    mask, depth, *_ = SHAPES["rectangle with a hole"]
    grid = front_of(mask, depth)
    mesh = close(grid, "solidify")
    rim = mesh.quads[2 * len(grid.quads) :]
    assert len(rim) > 0
    uv = mesh.uvs[rim]  # (R, 4, 2)
    pixel = 1.0 / SIZE
    # Each rim quad spans one boundary edge in the photo (at most a pixel's diagonal) and no width across.
    assert (np.ptp(uv, axis=1).max(axis=1) <= pixel * 1.0001).all()
    np.testing.assert_array_equal(uv[:, 1], uv[:, 2])  # a and its twin
    np.testing.assert_array_equal(uv[:, 0], uv[:, 3])  # b and its twin


def test_solidify_offsets_the_back_by_the_thickness_along_each_view_ray():
    mask, depth, *_ = SHAPES["disc"]
    grid = front_of(mask, depth)
    nf = len(grid.vertices)
    mesh = close(grid, "solidify", thickness=0.05)
    np.testing.assert_allclose(mesh.vertices[nf:, 2] - mesh.vertices[:nf, 2], -0.05, atol=1e-5)
    # Default: 10 % of the smaller side of the front's bounding box.
    extent = np.ptp(grid.vertices[:, :2], axis=0).min()
    mesh = close(grid, "solidify")
    np.testing.assert_allclose(mesh.vertices[nf:, 2] - mesh.vertices[:nf, 2], -0.1 * extent, rtol=1e-3)


def test_mirror_reflects_each_piece_about_its_own_silhouette_depth():
    mask, depth, *_ = SHAPES["depth step through the mask"]
    grid = front_of(mask, depth)
    nf = len(grid.vertices)
    mesh = close(grid, "mirror", thickness=0.01)
    front_depth, back_depth = -mesh.vertices[:nf, 2], -mesh.vertices[nf:, 2]
    left = grid.uvs[:, 0] < 0.5
    for piece, plane in ((left, 2.0), (~left, 4.0)):
        # Each piece's silhouette lies at its base depth (2 m left, 4 m right): its own mirror plane.
        expected = np.maximum(2 * plane - front_depth[piece], front_depth[piece] + 0.01)
        np.testing.assert_allclose(back_depth[piece], expected, rtol=1e-5)
    # The dome's top is 0.3 m in front of the plane, so the back's is 0.3 m behind it: 0.6 m thick there.
    assert (back_depth - front_depth).max() == pytest.approx(0.6, abs=0.03)


def test_mirror_never_puts_the_back_in_front_of_the_front():
    # A dish: the middle is deeper than the silhouette, where mirroring would cross over.
    mask = RADIUS < 25
    depth = (2.0 + 0.2 * np.clip(1 - (RADIUS / 25) ** 2, 0, None)).astype(np.float32)
    grid = front_of(mask, depth)
    nf = len(grid.vertices)
    mesh = close(grid, "mirror", thickness=0.02)
    gap = mesh.vertices[:nf, 2] - mesh.vertices[nf:, 2]
    assert gap.min() >= 0.02 * 0.999
    assert_watertight(mesh)


def test_inflated_disc_closes_into_a_sphere():
    mask = RADIUS < 20
    distance = 2.0
    depth = inflate_depth(mask, FOCAL, distance)
    assert np.isnan(depth[~mask]).all() and np.isfinite(depth[mask]).all()
    radius = np.sqrt(mask.sum() / np.pi) * distance / FOCAL  # metres at the silhouette plane
    # The bulge is a hemisphere: its top is one radius nearer the camera than the silhouette.
    assert distance - depth[mask].min() == pytest.approx(radius, rel=0.08)
    mesh = close(front_of(mask, depth), "inflate")
    assert_watertight(mesh)
    assert signed_volume(mesh) == pytest.approx(4 / 3 * np.pi * radius**3, rel=0.15)


def test_inflated_edge_lies_on_the_silhouette_plane():
    mask = (RADIUS < 20) & ~box(28, 28, 36, 36)  # a hole's edge too
    depth = inflate_depth(mask, FOCAL, 2.5)
    inner = np.zeros_like(mask)
    inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    np.testing.assert_allclose(depth[mask & ~inner], 2.5)
    assert (depth[inner] < 2.5).all()


def test_inflation_height_grows_with_the_local_width():
    mask = box(5, 5, 15, 60) | box(30, 5, 50, 60)  # strips 10 and 20 pixels wide
    height = inflation_height(mask)
    thin, wide = height[5:15].max(), height[30:50].max()
    assert wide / thin == pytest.approx(20 / 10, rel=0.15)
    assert inflation_height(mask, roundness=0.5).max() == pytest.approx(0.5 * wide, rel=1e-5)
    assert (height[~mask] == 0).all()


def test_inflation_keeps_a_depth_maps_detail():
    mask = RADIUS < 20
    detail = np.where(COLS < 24, 3.0, 3.1).astype(np.float32)  # a 10 cm step, most of the disc at 3.1 m
    detail[31, 31] = np.nan  # no depth here: no relief
    plain = inflate_depth(mask, FOCAL, 2.0)
    combined = inflate_depth(mask, FOCAL, 2.0, detail=detail)
    # The median detail over the mask (3.1 m) is the reference: the 3.0 m side comes 10 cm nearer.
    relief = np.where(COLS < 24, -0.1, 0.0)
    relief[31, 31] = 0.0
    np.testing.assert_allclose(combined[mask], (plain + relief)[mask], atol=1e-6)
    assert np.isnan(combined[~mask]).all()


def test_none_returns_the_front_and_bad_arguments_are_refused():
    mask, depth, *_ = SHAPES["disc"]
    grid = front_of(mask, depth)
    assert list(CLOSURES) == ["none", "solidify", "mirror", "inflate"]
    mesh = close(grid, "none")
    np.testing.assert_array_equal(mesh.quads, grid.quads)
    np.testing.assert_array_equal(mesh.vertices, grid.vertices)
    assert mesh.front_count == len(grid.vertices)
    with pytest.raises(ValueError, match="closure"):
        close(grid, "extrude")
    with pytest.raises(ValueError, match="thickness"):
        close(grid, "solidify", thickness=-1.0)
    flipped = grid.quads.copy()
    flipped[100] = flipped[100, ::-1]
    with pytest.raises(ValueError, match="oriented"):
        close_surface(grid.vertices, flipped, grid.triangles, grid.uvs, "mirror")
    with pytest.raises(ValueError, match="manifold"):
        close_surface(grid.vertices, np.concatenate([grid.quads, grid.quads[:1]]), grid.triangles, grid.uvs, "mirror")
    with pytest.raises(ValueError, match="same size"):
        inflate_depth(mask, FOCAL, 2.0, detail=np.ones((10, 10)))


@pytest.mark.parametrize("shape", ["ring", "diamonds sharing a pixel", "depth step half-way in"])
def test_blender_sees_a_closed_manifold_with_outward_normals(shape):
    import bmesh
    import bpy

    mask, depth, *_ = SHAPES[shape]
    grid = front_of(mask, depth)
    for closure in ("solidify", "mirror"):
        mesh = close(grid, closure)
        faces = mesh.quads.tolist() + mesh.triangles.tolist()
        me = bpy.data.meshes.new(f"{shape} {closure}")
        me.from_pydata(mesh.vertices.tolist(), [], faces)
        assert not me.validate()  # True would mean Blender had to repair it
        bm = bmesh.new()
        bm.from_mesh(me)
        assert all(e.is_manifold and e.is_contiguous for e in bm.edges)  # two faces, opposite directions
        assert all(v.is_manifold for v in bm.verts)
        # Equal up to how each non-planar front quad is split into triangles.
        assert bm.calc_volume(signed=True) == pytest.approx(signed_volume(mesh), rel=2e-3)
        assert bm.calc_volume(signed=True) > 0
        bm.free()
