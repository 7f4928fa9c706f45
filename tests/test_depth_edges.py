"""Depth edges and occlusion fill, against ground truth nobody here wrote: scenes built and rendered in this
Blender with exact depth from ray casts (scripts/edge_scenes.py), and the Middlebury motorcycle with its true
disparity. Small versions of `make bench`'s scripts/bench_edges.py, scored the same way: the mesh the CLI
writes with default settings, read back into Blender through the camera it created.
"""

import json
import sys

import cv2
import numpy as np
import pytest
from conftest import ROOT, run_cli

sys.path.insert(0, str(ROOT / "scripts"))
import edge_scenes  # noqa: E402
from bench_edges import cli_mesh, rule_mesh, write_depth  # noqa: E402
from image_to_mesh.inference.geometry.camera import Intrinsics  # noqa: E402
from image_to_mesh.inference.geometry import reconvolution  # noqa: E402
from image_to_mesh.inference.geometry.depth_edges import disparity, find_depth_edges, snap_ramps  # noqa: E402
from image_to_mesh.inference.geometry.grid_mesh import depth_to_grid_mesh, grid_size, sample_nearest  # noqa: E402
from image_to_mesh.inference.geometry.occlusion_fill import default_occlusion_fill_px  # noqa: E402

SIZE = edge_scenes.SIZE  # 512 x 384: the default resolution's grid, one vertex per pixel, as in the benchmark


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Each scene rendered once: photo, exact depth (NaN = none), true surface (camera frame), focal, folder."""
    folder = tmp_path_factory.mktemp("edge-scenes")
    out = {}
    for name in edge_scenes.SCENES:
        paths = edge_scenes.render_scene(name, folder, SIZE, samples=8)
        depth = cv2.imread(str(paths["depth"]), cv2.IMREAD_UNCHANGED)
        depth[depth <= 0] = np.nan
        surface = np.load(paths["surface"])
        out[name] = (paths["photo"], depth, (surface["vertices"], surface["triangles"]), edge_scenes.focal_px(SIZE[0]),
                     folder)
    return out


def cli_score(scene, sigma, samples=30_000, pixels=40_000):
    """The CLI's default mesh of a scene's photo and (blurred) depth, scored against the truth."""
    photo, exact, truth, focal, folder = scene
    depth = exact if sigma == 0 else edge_scenes.network_like(exact, sigma)
    depth_file = write_depth(folder / f"{photo.stem}_{sigma:g}.exr", depth)
    vertices, triangles = cli_mesh(photo, depth_file, focal, folder / f"{photo.stem}_{sigma:g}.blend")
    return edge_scenes.score(vertices, triangles, exact, focal, truth, samples=samples, pixels=pixels)


def rule_score(scene, sigma, rule, samples=30_000, pixels=40_000):
    photo, exact, truth, focal, _ = scene
    depth = exact if sigma == 0 else edge_scenes.network_like(exact, sigma)
    v, quads, tris = rule_mesh(rule, depth, Intrinsics(exact.shape[1], exact.shape[0], focal))
    return edge_scenes.score(v.astype(np.float64), edge_scenes.triangulated(quads, tris), exact, focal, truth,
                             samples=samples, pixels=pixels)


@pytest.mark.parametrize("name", edge_scenes.SCENES)
def test_exact_depth_gives_the_true_surface_and_no_see_through_seam(scenes, name):
    # The targets for exact depth, on the mesh a user gets: 99.9 % of its surface within 1 % of the
    # true surface, 99.5 % of the true visible surface within 1 % of it, and from the photo's camera every
    # pixel with depth covered (today's cut leaves a one-cell gap along every silhouette).
    figures = cli_score(scenes[name], 0)
    assert figures["precision"] >= 0.999 and figures["recall"] >= 0.995 and figures["coverage"] >= 0.999, figures


@pytest.mark.parametrize("name", edge_scenes.SCENES)
def test_network_like_depth_loses_its_curtains_but_not_the_surfaces(scenes, name):
    # Disparity blurred the way depth networks blur it (sigma = 2 px). The slope rule keeps part of the curtain
    # and MoGe's edge mask cuts real surface away; ours must beat the first's precision and the second's
    # recall, come near the targets (precision 0.99, recall 0.98; this 8-sample render's noisier photo
    # gives the interior 0.985 where the benchmark's gives 0.99) and still leave no see-through seam: the
    # issue's 99.9 % coverage, junctions of three surfaces within the blur included.
    ours = cli_score(scenes[name], 2)
    slope = rule_score(scenes[name], 2, "slope-87")
    moge = rule_score(scenes[name], 2, "moge-0.04")
    assert ours["precision"] > slope["precision"] and ours["precision"] >= 0.98, (ours, slope)
    assert ours["recall"] > moge["recall"] and ours["recall"] >= 0.98, (ours, moge)
    assert ours["coverage"] >= 0.999 and ours["coverage"] > moge["coverage"], (ours, moge)


def test_blur_is_measured_from_the_depth_itself(scenes):
    # Sharp depth is recognised as sharp and passes through unchanged; blurred depth's blur is read back.
    _photo, exact, _truth, focal, _ = scenes["interior"]
    camera = Intrinsics(exact.shape[1], exact.shape[0], focal)
    sharp = depth_to_grid_mesh(exact, camera, occlusion_fill_px=0)
    assert sharp.depth_blur < 0.6
    np.testing.assert_array_equal(-sharp.vertices[:, 2], exact.ravel()[sharp.grid_index])
    for sigma in (1.0, 2.0):
        blurred = depth_to_grid_mesh(edge_scenes.network_like(exact, sigma), camera, occlusion_fill_px=0)
        assert blurred.depth_blur == pytest.approx(sigma, rel=0.25)


def test_a_faint_crease_beside_a_tall_silhouette_keeps_its_surfaces():
    # A far wall meets a floor seen at a grazing angle (a faint crease in disparity), and a near box stands a
    # few pixels to the side: blurred, the box's ramp is a hundred times the crease's curvature. Beyond the
    # box's own ramp (3 sigma), wall and floor must stay on their surfaces, not be read across the box and
    # snapped onto the wall.
    rows, cols = np.mgrid[0:120, 0:160]
    q = np.where(rows < 40, 1 / 13.0, 1 / 13.0 + 0.0019 * (rows - 40))
    box = (cols >= 90) & (rows >= 48)
    exact = (1 / np.where(box, 1 / 2.6, q)).astype(np.float32)
    edges = find_depth_edges(edge_scenes.network_like(exact, 2.0))
    assert edges.blur == pytest.approx(2.0, rel=0.1)
    beside = (rows >= 30) & (rows < 56) & (cols >= 50) & (cols < 84)
    np.testing.assert_allclose(edges.depth[beside], exact[beside], rtol=0.003)


def test_structures_closer_than_the_blur_come_back_by_reconvolution(monkeypatch):
    # Two 3-pixel posts 1 m in front of a wall with 5 pixels of wall between them: blurred by 2 px, no profile
    # across them sees clean wall between the posts, so depth_edges alone (the reconvolution over its work
    # budget) leaves posts and strip at depths neither has. Reconvolved against the blur, with the photo
    # telling where colours change, posts and strip come back within 1 % of their depths.
    exact = np.full((96, 128), 5.0, np.float32)
    exact[:, 90:] = 3.0  # a box, whose edge measures the blur
    exact[10:86, 40:43] = exact[10:86, 48:51] = 4.0
    photo = np.full((96, 128, 3), 200, np.uint8)
    photo[exact == 4.0], photo[exact == 3.0] = (150, 110, 70), (60, 90, 160)
    blurred = edge_scenes.network_like(exact, 2.0)
    region = (slice(20, 76), slice(36, 56))

    refined = find_depth_edges(blurred, photo)
    error = np.abs(refined.depth - exact) / exact
    assert error[region].max() < 0.01, error[region].max()
    assert np.isnan(refined.behind[20:76, 44:47]).all()  # the strip of wall hides nothing behind it

    monkeypatch.setattr(reconvolution, "MAX_WORK", 0)
    alone = find_depth_edges(blurred, photo)
    assert (np.abs(alone.depth - exact)[region] / exact[region] > 0.01).mean() > 0.5


def test_reconvolution_fits_the_blur_of_depth_resampled_onto_the_grid(monkeypatch):
    # Depth blurred by 2 px at the photo's resolution and sampled onto a grid of 0.69 of its pixels (as the
    # motorcycle's 741 onto 512) is blurred by 1.38 grid steps, but single steps read it sharper; the blur
    # reconvolution models is the one that best turns the snapped depth back into the map.
    rows, cols = np.mgrid[0:300, 0:400]
    exact = np.where((rows // 60 + cols // 80) % 2 == 0, 3.0, 5.0).astype(np.float32)
    grid = sample_nearest(edge_scenes.network_like(exact, 2.0), (276, 207))
    monkeypatch.setattr(reconvolution, "MAX_WORK", 0)  # the snapped depth alone
    snapped, steps, _ = snap_ramps(grid)
    assert steps < 1.15
    assert reconvolution._fitted_blur(disparity(grid), disparity(snapped), steps) == pytest.approx(1.38, rel=0.05)


def test_fill_continues_the_background_behind_silhouettes_and_is_textured_from_it(scenes):
    photo, exact, truth, focal, _ = scenes["object"]
    camera = Intrinsics(exact.shape[1], exact.shape[0], focal)
    grid = depth_to_grid_mesh(exact, camera, guide=cv2.imread(str(photo))[..., ::-1])
    fill = slice(grid.fill_start, None)
    z = -grid.vertices[fill, 2]
    assert len(z) > 0
    # Behind the surface the camera sees at its own pixel: hidden from the photo's point of view; only where
    # no background could be continued, a skirt: the foreground one step over the background, in front of it.
    seen = exact.ravel()[grid.grid_index[fill]]
    hidden, skirt = z > seen, z < seen
    assert (hidden | skirt).all() and hidden.mean() >= 0.95
    # On the true surface hidden there (the wall and floor behind the monkey and its pedestal), or for a skirt
    # within a step of the foreground's edge.
    tau = 0.01 * np.nanmedian(exact)
    distance = np.array([edge_scenes._bvh(*truth).find_nearest(tuple(p))[3] for p in grid.vertices[fill]])
    assert (distance <= tau).mean() >= 0.99
    # Textured from the surface it continues: its UV's pixel shows a surface at its own depth.
    uv_rows = ((1 - grid.uvs[fill, 1]) * exact.shape[0]).astype(int)
    uv_cols = (grid.uvs[fill, 0] * exact.shape[1]).astype(int)
    np.testing.assert_allclose(exact[uv_rows, uv_cols], z, rtol=0.02)


def test_a_seam_with_no_background_to_continue_is_closed_by_the_foreground(scenes):
    # Blurred, the table's background is often a sliver (floor between a prop and the horizon, between the
    # legs) whose slope cannot be measured beyond the blur: no background is guessed there, and the seam is
    # closed by the foreground's one-step skirt instead, textured from the foreground and on its surface.
    photo, exact, truth, focal, _ = scenes["table"]
    camera = Intrinsics(exact.shape[1], exact.shape[0], focal)
    grid = depth_to_grid_mesh(edge_scenes.network_like(exact, 2.0), camera, guide=cv2.imread(str(photo))[..., ::-1])
    fill = slice(grid.fill_start, None)
    z = -grid.vertices[fill, 2]
    # A skirt vertex continues the front vertex that textures it, at that vertex's depth, in front of the
    # surface the camera sees at its own pixel.
    front = np.full(grid.grid_size[0] * grid.grid_size[1], -1)
    front[grid.grid_index[: grid.fill_start]] = np.arange(grid.fill_start)
    source = front[grid.source_index[fill]]
    skirt = (source >= 0) & (z < exact.ravel()[grid.grid_index[fill]])
    skirt[skirt] = np.isclose(z[skirt], -grid.vertices[source[skirt], 2], rtol=1e-6)
    assert skirt.sum() > 100
    source = source[skirt]
    tau = 0.01 * np.nanmedian(exact)
    bvh = edge_scenes._bvh(*truth)
    near_truth = np.array([bvh.find_nearest(tuple(p))[3] <= tau for p in grid.vertices[fill][skirt]])
    good_front = np.array([bvh.find_nearest(tuple(p))[3] <= tau for p in grid.vertices[source]])
    # Where the foreground vertex it continues is on the true surface, so is the skirt, a step beyond it (but
    # where that vertex lies near the tolerance and the step takes it over).
    assert near_truth[good_front].mean() >= 0.9, near_truth[good_front].mean()


def test_cells_left_open_at_junctions_are_closed_on_their_farthest_surface():
    # The fill's last resort, on a grid whose every cell is still open: a background plane (columns 0 - 3), a
    # foreground (columns 4 - 7) and, in its lower rows, a nearer one (columns 4 - 5); one point the front mesh
    # dropped, at a depth no surface has (a ramp's leftover, here beyond the background). Cells within one
    # surface stay open (the front cut them: nothing hides behind so small a step); every other cell gets a
    # quad on its farthest surface the front keeps, its corners there keeping their front vertices, the others
    # (the dropped point too) taking the depth and texture of a neighbour there.
    from image_to_mesh.inference.geometry.grid_mesh import _closures

    rows, cols = 6, 8
    i, j = np.mgrid[:rows, :cols]
    q = 0.2 + 0.002 * i + 0.001 * j
    q[:, 4:] = 0.4
    q[3:, 4:6] = 0.6
    q[1, 4] = 0.1
    front = np.arange(rows * cols).reshape(rows, cols)  # front vertex number = grid point
    front[1, 4] = -1
    first_new = rows * cols
    vertices, points, texture, quads = _closures(q, np.zeros((rows - 1, cols - 1), bool), front, first_new,
                                                 np.arange(cols, dtype=float), np.arange(rows, dtype=float))
    # The background's edge (5 cells), the two foregrounds' edge (3), the junction's cell (1) and the two
    # foreground cells at the dropped point.
    assert len(quads) == 11
    new = quads >= first_new
    corner_points = np.where(new, points[np.where(new, quads - first_new, 0)], quads)
    assert (~new).any(axis=1).all() and not np.isin(1 * cols + 4, corner_points[~new])
    disparity = np.where(new, 1.0 / -vertices[np.where(new, quads - first_new, 0), 2], q.ravel()[quads * ~new])
    kept = q.ravel()[corner_points] * np.where(front.ravel()[corner_points] >= 0, 1, np.inf)
    far = kept.min(axis=1)
    # On the farthest kept surface: its corners there keep their front vertices, ...
    np.testing.assert_allclose(disparity.min(axis=1), far, rtol=1e-6)
    assert (disparity <= far[:, None] * 1.02).all()
    assert (~new == (kept <= far[:, None] * 1.02)).all()
    # ... and each new vertex copies a neighbour there (along a side of the cell where one is), textured from it.
    cell, corner = np.nonzero(new)
    np.testing.assert_allclose(disparity[new], q.ravel()[texture], rtol=1e-6)
    for t, m, points_of_cell, new_of_cell in zip(texture, corner, corner_points[cell], new[cell]):
        assert t in points_of_cell[~new_of_cell]
        side = ~new_of_cell[[(m + 1) % 4, (m + 3) % 4]]
        steps = np.abs(np.subtract(divmod(t, cols), divmod(points_of_cell[m], cols))).sum()
        assert steps == (1 if side.any() else 2)
    assert (q.ravel()[texture] <= far[cell] * 1.02).all()


def test_fill_band_scales_with_the_photo_and_can_be_turned_off(scenes):
    _photo, exact, _truth, focal, _ = scenes["object"]
    assert default_occlusion_fill_px((4000, 3000)) == pytest.approx(4 * default_occlusion_fill_px((1000, 750)))
    camera = Intrinsics(exact.shape[1], exact.shape[0], focal)
    off = depth_to_grid_mesh(exact, camera, occlusion_fill_px=0)
    assert off.fill_start == len(off.vertices)
    narrow = depth_to_grid_mesh(exact, camera, occlusion_fill_px=1)
    wide = depth_to_grid_mesh(exact, camera, occlusion_fill_px=4)
    assert 0 < len(narrow.vertices) - narrow.fill_start < len(wide.vertices) - wide.fill_start
    np.testing.assert_array_equal(wide.vertices[: wide.fill_start], off.vertices)  # the front is untouched


@pytest.fixture(scope="module")
def middlebury(motorcycle, tmp_path_factory):
    photo_rgb, depth, focal = motorcycle
    folder = tmp_path_factory.mktemp("middlebury")
    photo = folder / "motorcycle.png"
    cv2.imwrite(str(photo), cv2.cvtColor(photo_rgb, cv2.COLOR_RGB2BGR))
    return photo, depth, focal, folder


@pytest.mark.parametrize("sigma", [0, 2])
def test_middlebury_motorcycle(middlebury, sigma):
    # A real photo with true depth, at the default resolution (512 vertices across 741 pixels): exact depth is
    # meshed faithfully, and blurred depth loses the slope rule's curtain without losing MoGe's surface.
    photo, exact, focal, folder = middlebury
    depth = exact if sigma == 0 else edge_scenes.network_like(exact, sigma)
    depth_file = write_depth(folder / f"depth_{sigma}.exr", depth)
    grid = grid_size((exact.shape[1], exact.shape[0]), 512)
    vertices, triangles = cli_mesh(photo, depth_file, focal, folder / f"motorcycle_{sigma}.blend")
    ours = edge_scenes.score(vertices, triangles, exact, focal, grid=grid, samples=30_000, pixels=30_000)
    camera = Intrinsics(exact.shape[1], exact.shape[0], focal)
    others = {}
    for rule in ("slope-87", "moge-0.04"):
        v, quads, tris = rule_mesh(rule, depth, camera)
        others[rule] = edge_scenes.score(v.astype(np.float64), edge_scenes.triangulated(quads, tris), exact, focal,
                                         grid=grid, samples=30_000, pixels=30_000)
    if sigma == 0:
        assert ours["precision"] >= 0.99 and ours["recall"] >= 0.99 and ours["coverage"] >= 0.99, ours
    else:
        assert ours["precision"] > others["slope-87"]["precision"], (ours, others)
        assert ours["recall"] > others["moge-0.04"]["recall"], (ours, others)


def test_mesh_with_fill_is_valid_and_its_edges_are_blenders_own(empty_scene, motorcycle):
    # The fill's edges are numbered by the grid mesh too (not by Blender): they must be exactly the edges
    # Blender derives from the same faces, and validate() must find nothing to fix.
    from image_to_mesh.inference.photo.photo import Photo
    from image_to_mesh.inference.pipeline import MeshSettings, image_to_mesh
    from image_to_mesh.operators.builders.objects import build_objects
    from test_blender import assert_edges_are_blenders_own

    photo_rgb, depth, focal = motorcycle
    photo = Photo("motorcycle", photo_rgb, None, (741, 500))
    record = image_to_mesh(photo, edge_scenes.network_like(depth, 2.0), MeshSettings(focal_px=focal, resolution=741))
    assert record.report.depth_edges.fill_vertices > 1000
    mesh_object, _camera, _image = build_objects(record, empty_scene.collection, empty_scene)
    assert_edges_are_blenders_own(mesh_object.data)


def test_occlusion_fill_is_a_setting_and_the_json_reports_it(tmp_path):
    # A near plane beside a far one, meshed by the CLI: the default band fills under the cut, --occlusion-fill 0
    # turns it off and a wider band adds more; --json reports the fill and the (sharp) depth's blur.
    photo = tmp_path / "step.png"
    cv2.imwrite(str(photo), np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8))
    near, far = np.full((200, 300), 2.0, np.float32), np.full((200, 300), 5.0, np.float32)
    depth = write_depth(tmp_path / "step.exr", np.where(np.arange(300) < 150, near, far))
    fill = {}
    for band in (None, 0, 2):
        args = [] if band is None else ["--occlusion-fill", band]
        run = run_cli(photo, "--depth-map", depth, "--focal-px", 320, "--resolution", 300, *args,
                      "-o", tmp_path / "step.glb", "--json")
        assert run.returncode == 0, run.stderr
        (result,) = json.loads(run.stdout)["results"]
        fill[band] = result["depth_edges"]["fill_vertices"]
        assert result["depth_edges"]["blur_px"] < 0.6
    assert fill[0] == 0 and 0 < fill[None] < fill[2]
