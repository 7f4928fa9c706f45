"""The geometry core (pure numpy): depth + camera -> vertices, faces, UVs, and the discontinuity rule."""

import math

import numpy as np
import pytest
from image_to_mesh.inference.geometry.camera import Intrinsics, photo_intrinsics
from image_to_mesh.inference.depth.kinds import to_metric_depth
from image_to_mesh.inference.geometry.grid_mesh import depth_to_grid_mesh, grid_size


def project(vertices, camera):
    """Pixel coordinates (u, v) and axial depth of camera-frame vertices."""
    z = -vertices[:, 2]
    u = camera.focal_px * vertices[:, 0] / z + camera.width / 2
    v = camera.height / 2 - camera.focal_px * vertices[:, 1] / z
    return u, v, z


def faces_of(grid):
    return [grid.quads, grid.triangles]


def max_depth_ratio(grid):
    """The largest z_max / z_min over any face."""
    z = -grid.vertices[:, 2]
    worst = 1.0
    for faces in faces_of(grid):
        if len(faces):
            fz = z[faces]
            worst = max(worst, float((fz.max(axis=1) / fz.min(axis=1)).max()))
    return worst


def test_vertices_reproject_to_their_pixels_and_keep_depth():
    rng = np.random.default_rng(1)
    depth = rng.uniform(2.0, 2.2, size=(60, 80)).astype(np.float32)
    camera = Intrinsics(80, 60, 70.0)
    grid = depth_to_grid_mesh(depth, camera, resolution=80, edge_threshold_deg=90)
    u, v, z = project(grid.vertices, camera)
    rows, cols = np.divmod(grid.grid_index, 80)
    np.testing.assert_allclose(u, cols + 0.5, atol=1e-3)
    np.testing.assert_allclose(v, rows + 0.5, atol=1e-3)
    np.testing.assert_allclose(z, depth[rows, cols], rtol=1e-6)
    # UVs: (0, 0) bottom-left, pixel centres at ((u + 0.5) / W, 1 - (v + 0.5) / H).
    np.testing.assert_allclose(grid.uvs[:, 0], (cols + 0.5) / 80, atol=1e-6)
    np.testing.assert_allclose(grid.uvs[:, 1], 1 - (rows + 0.5) / 60, atol=1e-6)


def test_coarser_grid_samples_the_photo_at_the_same_relative_positions():
    depth = np.full((400, 600), 3.0, dtype=np.float32)
    camera = Intrinsics(1200, 800, 1000.0)  # a depth map at half the photo's size
    grid = depth_to_grid_mesh(depth, camera, resolution=120)
    assert grid.grid_size == (120, 80)
    u, v, _ = project(grid.vertices, camera)
    rows, cols = np.divmod(grid.grid_index, 120)
    np.testing.assert_allclose(u, (cols + 0.5) * 10, atol=1e-2)
    np.testing.assert_allclose(v, (rows + 0.5) * 10, atol=1e-2)
    assert len(grid.quads) == 119 * 79 and len(grid.triangles) == 0


def test_resolution_counts_vertices_on_the_long_side_capped_at_one_per_pixel():
    assert grid_size((4000, 3000), 512) == (512, 384)
    assert grid_size((3000, 4000), 512) == (384, 512)
    assert grid_size((741, 500), 10_000) == (741, 500)


def test_faces_face_the_camera():
    camera = Intrinsics(40, 30, 40.0)
    grid = depth_to_grid_mesh(np.full((30, 40), 2.0, np.float32), camera)
    p = grid.vertices[grid.quads]
    normals = np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    assert (normals[:, 2] > 0).all()  # towards +z, where the camera is


def ground_plane(rows=240, cols=320, focal=300.0, height=1.5, far=20.0):
    """Depth of a floor 1.5 m below a level camera, out to `far` metres, NaN above the horizon."""
    v = np.arange(rows) + 0.5 - rows / 2
    z = np.where(v > 0, focal * height / np.maximum(v, 1e-9), np.inf)
    depth = np.repeat(z[:, None], cols, axis=1).astype(np.float32)
    depth[depth > far] = np.nan
    return depth, Intrinsics(cols, rows, focal)


def test_floor_at_a_grazing_angle_stays_whole():
    depth, camera = ground_plane(far=20.0)  # slant up to atan(20 / 1.5) = 85.7 degrees
    grid = depth_to_grid_mesh(depth, camera, resolution=320)
    valid = np.isfinite(depth)
    full_cells = valid[:-1, :-1] & valid[1:, :-1] & valid[1:, 1:] & valid[:-1, 1:]
    assert len(grid.quads) == full_cells.sum()
    assert len(grid.triangles) == 0


def step_scene(ramp_px=0, near=2.0, far=5.0, size=(200, 300)):
    """A near plane on the left half and a far one on the right, optionally joined by a smooth ramp in
    disparity over `ramp_px` pixels: the "flying pixels" a depth network puts at object edges."""
    rows, cols = size
    x = np.arange(cols) + 0.5 - cols / 2
    t = np.clip(x / max(ramp_px, 1e-9) + 0.5, 0, 1) if ramp_px else (x > 0).astype(float)
    disparity = (1 - t) / near + t / far
    return np.repeat((1 / disparity)[None, :], rows, axis=0).astype(np.float32)


@pytest.mark.parametrize("ramp_px", [0, 2, 6])
def test_no_face_bridges_a_depth_jump_or_its_flying_pixel_ramp(ramp_px):
    # A 6-pixel ramp at this focal length is ~1 degree of view: steeper than any real surface. Nothing of it
    # may stay but a lip of at most one allowed step at either end, while both planes stay whole up to it.
    depth = step_scene(ramp_px)
    camera = Intrinsics(300, 200, 320.0)
    grid = depth_to_grid_mesh(depth, camera, resolution=300)
    front = slice(0, grid.fill_start)
    z = -grid.vertices[front, 2]
    one_step = math.exp(math.sqrt(2) / 320 * math.tan(math.radians(87)))
    assert not ((z > 2.0 * one_step) & (z < 5.0 / one_step)).any()
    assert max_depth_ratio(grid) < one_step
    cols = grid.grid_index[front] % 300
    ramp_start, ramp_end = 150 - ramp_px / 2, 150 + ramp_px / 2
    assert (z[cols < ramp_start] < 2.001).all() and (z[cols > ramp_end] > 4.99).all()
    kept_columns = np.unique(cols)
    assert np.isin(np.arange(int(ramp_start) - 1), kept_columns).all()
    assert np.isin(np.arange(int(ramp_end) + 1, 300), kept_columns).all()
    assert len(grid.quads) >= 199 * (299 - ramp_px - 3)
    # The far plane continues behind the near one's edge (the occlusion fill), on the far plane; beyond the
    # near side's lip, the first point of the ramp the mesh dropped is closed over by the lip's own depth (a
    # skirt, grid_mesh._closures): nothing in the fill lies at the ramp's depths either.
    fill_z = -grid.vertices[grid.fill_start :, 2]
    far = np.isclose(fill_z, 5.0, rtol=1e-3)
    assert far.sum() >= 199 and (far | (fill_z < 2.0 * one_step)).all()
    assert (grid.grid_index[grid.fill_start :] % 300 <= ramp_end).all()


def test_edge_threshold_of_90_degrees_keeps_every_face():
    grid = depth_to_grid_mesh(step_scene(0), Intrinsics(300, 200, 320.0), resolution=300, edge_threshold_deg=90)
    assert len(grid.quads) == 299 * 199


def test_invalid_depth_means_no_surface():
    depth = np.full((20, 30), 2.0, dtype=np.float32)
    depth[5, 5], depth[6, 6], depth[7, 7], depth[8, 8] = np.nan, np.inf, 0.0, -1.0
    metric = to_metric_depth(depth, "metric")
    grid = depth_to_grid_mesh(metric, Intrinsics(30, 20, 30.0), resolution=30)
    assert not np.isin([5 * 30 + 5, 6 * 30 + 6, 7 * 30 + 7, 8 * 30 + 8], grid.grid_index).any()
    assert np.isfinite(grid.vertices).all()


def test_every_vertex_is_used_by_a_face():
    depth = np.full((20, 30), 2.0, dtype=np.float32)
    depth[10, 10] = 50.0  # an isolated spike: its faces go, and so must the vertex
    grid = depth_to_grid_mesh(depth, Intrinsics(30, 20, 30.0), resolution=30)
    used = np.zeros(len(grid.vertices), bool)
    for faces in faces_of(grid):
        used[faces.ravel()] = True
    assert used.all()
    assert 10 * 30 + 10 not in grid.grid_index


def test_mask_keeps_only_faces_inside_and_diagonal_borders_keep_triangles():
    depth = np.full((40, 40), 2.0, dtype=np.float32)
    rows, cols = np.mgrid[:40, :40]
    mask = rows + cols < 40  # a diagonal border
    grid = depth_to_grid_mesh(depth, Intrinsics(40, 40, 40.0), resolution=40, mask=mask)
    r, c = np.divmod(grid.grid_index, 40)
    assert mask[r, c].all()
    assert len(grid.triangles) > 0  # the staircase's half-cells are filled
    assert len(grid.quads) + len(grid.triangles) / 2 > (mask[:-1, :-1] & mask[1:, 1:] & mask[1:, :-1] & mask[:-1, 1:]).sum()


def test_relative_disparity_is_inverted_so_planes_stay_planar():
    # A slanted plane's true disparity is affine in the pixel coordinates; a relative model returns it up
    # to scale and shift. Converted as disparity the plane must come out planar; read as depth it would not.
    rows, cols = np.mgrid[:60, :80]
    disparity = (0.3 + 0.004 * cols + 0.002 * rows).astype(np.float32) * 7.0 + 1.0
    camera = Intrinsics(80, 60, 90.0)

    def planarity(kind):
        metric = to_metric_depth(disparity, kind, near=1.0, far=4.0)
        p = depth_to_grid_mesh(metric, camera, resolution=80, edge_threshold_deg=90).vertices.astype(np.float64)
        centred = p - p.mean(axis=0)
        return np.linalg.svd(centred, compute_uv=False)[-1] / np.linalg.norm(centred, axis=1).max()

    assert planarity("relative-disparity") < 1e-5
    assert planarity("relative-depth") > 1e-3


def test_relative_kinds_span_near_to_far():
    values = np.array([[1.0, 2.0], [3.0, 5.0]], dtype=np.float32)
    depth = to_metric_depth(values, "relative-depth", near=2.0, far=8.0)
    assert depth.min() == pytest.approx(2.0) and depth.max() == pytest.approx(8.0)
    disparity = to_metric_depth(values, "relative-disparity", near=2.0, far=8.0)
    assert disparity[1, 1] == pytest.approx(2.0) and disparity[0, 0] == pytest.approx(8.0)  # large = near
    assert to_metric_depth(values, "metric", scale=0.001)[1, 1] == pytest.approx(0.005)


def test_camera_from_fov_exif_or_the_documented_default():
    cam, _ = photo_intrinsics((1000, 500), fov_deg=90.0)
    assert cam.focal_px == pytest.approx(500.0)
    cam, source = photo_intrinsics((1000, 500), focal_px=800.0, fov_deg=90.0)
    assert cam.focal_px == 800.0 and "given" in source
    # 35 mm-equivalent focal length: defined against the 43.27 mm full-frame diagonal.
    cam, source = photo_intrinsics((4000, 3000), focal_35mm=26.0)
    assert cam.focal_px == pytest.approx(26.0 * 5000 / math.hypot(36, 24)) and "EXIF" in source
    cam, source = photo_intrinsics((3000, 4000))  # portrait: 55 degrees across the long (vertical) side
    assert 2 * math.degrees(math.atan(2000 / cam.focal_px)) == pytest.approx(55.0)
    assert "assumed" in source
