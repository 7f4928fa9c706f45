"""Placing a generated object on its photo: the rasteriser agrees with Blender, and the camera fit recovers
known views of known meshes (an asymmetric toy built from primitives, Blender's Suzanne) from their
silhouettes alone, from one photo or from a product shoot with known turns."""

import math

import bpy
import cv2
import mathutils
import numpy as np
import object_meshes
import pytest
from bpy_extras.object_utils import world_to_camera_view
from PIL import Image

from image_to_mesh.inference.errors import InputError
from image_to_mesh.inference.objects.camera_fit import fit_camera, fit_views, generator_view, refine_camera
from image_to_mesh.inference.objects.rasterise import coverage, rasterise, render_depth, render_silhouette
from image_to_mesh.inference.geometry.view import intrinsics_from_fov, look_at, orbit_view, view_from_fov


def suzanne(subdivisions: int = 1, keep: bool = False):
    """Blender's Suzanne in the generator's frame (verts, faces); with keep, also the Blender object."""
    bpy.ops.mesh.primitive_monkey_add()
    obj = bpy.context.active_object
    if subdivisions:
        modifier = obj.modifiers.new("subdivide", "SUBSURF")
        modifier.levels = subdivisions
    verts, faces, _ = object_meshes.blender_mesh(obj)
    if keep:
        return verts, faces, obj
    bpy.data.objects.remove(obj)
    return verts, faces


def box_centre(verts):
    return (verts.min(0) + verts.max(0)) / 2


def blender_camera_for(view, scene):
    """A Blender camera that is `view`, for the mesh as it sits in Blender's +Z-up world."""
    data = bpy.data.cameras.new("fit")
    camera = bpy.data.objects.new("fit", data)
    scene.collection.objects.link(camera)
    camera.matrix_world = mathutils.Matrix(view.matrix_world_blender.tolist())
    data.sensor_fit = "HORIZONTAL"
    data.sensor_width = 36.0
    data.lens = view.intrinsics.focal_px * 36.0 / view.intrinsics.width
    scene.camera = camera
    scene.render.resolution_x, scene.render.resolution_y = view.size
    scene.render.resolution_percentage = 100
    return camera


def test_rasterised_silhouette_matches_cycles_rendering_the_same_mesh(empty_scene, tmp_path):
    # Blender renders its own Suzanne in its own +Z-up world; we rasterise the same mesh read back into the
    # generator's +Y-up frame. The camera is one View, handed to Blender through matrix_world_blender.
    verts, faces, obj = suzanne(1, keep=True)
    view = view_from_fov(200, 150, 40.0, 25.0, 15.0, 4.0, offset_px=(10, -5))
    camera = blender_camera_for(view, empty_scene)
    empty_scene.render.engine = "CYCLES"
    empty_scene.cycles.samples = 16
    empty_scene.cycles.device = "CPU"
    empty_scene.cycles.use_denoising = False
    empty_scene.cycles.filter_width = 0.01  # one ray through each pixel's centre: a binary silhouette
    empty_scene.render.film_transparent = True
    empty_scene.render.image_settings.file_format = "PNG"
    empty_scene.render.image_settings.color_mode = "RGBA"
    empty_scene.render.filepath = str(tmp_path / "cycles.png")
    bpy.ops.render.render(write_still=True)
    cycles = np.asarray(Image.open(tmp_path / "cycles.png"))[..., 3] > 127

    ours = render_silhouette(view, verts, faces)
    assert cycles.sum() > 5000
    assert (ours & cycles).sum() / (ours | cycles).sum() > 0.995

    # And every vertex projects where Blender projects it (normalised camera coordinates x image size).
    world = [obj.matrix_world @ mathutils.Vector((x, -z, y)) for x, y, z in verts.tolist()]  # back to +Z up
    blender = np.array([world_to_camera_view(empty_scene, camera, p) for p in world])
    xy, depth = view.project(verts)
    np.testing.assert_allclose(xy[:, 0], blender[:, 0] * 200, atol=1e-3)
    np.testing.assert_allclose(xy[:, 1], (1 - blender[:, 1]) * 150, atol=1e-3)
    np.testing.assert_allclose(depth, blender[:, 2], atol=1e-5)


def test_depth_buffer_holds_the_nearest_surface_at_its_true_depth():
    # Two tilted planes crossing each other: per pixel, the nearer one wins, at the depth a ray-plane
    # intersection gives; the covered area of each square is its projected area.
    view = look_at(intrinsics_from_fov(160, 120, 50.0), (0.3, 0.2, 3.0), (0, 0, 0))
    quad = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], float)
    tilt = lambda deg: np.array([[math.cos(math.radians(deg)), 0, math.sin(math.radians(deg))], [0, 1, 0],
                                 [-math.sin(math.radians(deg)), 0, math.cos(math.radians(deg))]])
    verts = np.concatenate([quad @ tilt(30).T, quad @ tilt(-30).T * 0.8])
    faces = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7]])
    raster, _, _ = render_depth(view, verts, faces)

    rows, cols = np.nonzero(raster.mask)
    rays = view.rays(np.stack([cols + 0.5, rows + 0.5], axis=1))
    normals = [tilt(30)[:, 2], tilt(-30)[:, 2]]
    hits = [((0 - view.position) @ n) / (rays @ n) for n in normals]  # ray parameter to each plane
    inside = []
    for k, t in enumerate(hits):
        p = view.position + rays * t[:, None]
        local = p @ (tilt(30) if k == 0 else tilt(-30))  # back into each quad's own frame
        scale = 1.0 if k == 0 else 0.8
        inside.append((np.abs(local[:, :2]) <= scale + 1e-6).all(axis=1) & (t > 0))
    t_near = np.where(inside[0] & inside[1], np.minimum(hits[0], hits[1]), np.where(inside[0], hits[0], hits[1]))
    depth_true = t_near * (rays @ view.forward)
    np.testing.assert_allclose(raster.depth[rows, cols], depth_true, rtol=1e-5)
    expected_face_pair = np.where(inside[0] & inside[1], np.where(hits[0] < hits[1], 0, 1), np.where(inside[0], 0, 1))
    assert (raster.face[rows, cols] // 2 == expected_face_pair).mean() > 0.998  # ties only along the crossing
    assert raster.mask.sum() == coverage(*view.project(verts)[:1], faces, (120, 160)).sum()


def test_coverage_area_is_the_triangle_area():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 400, (300, 2))
    faces = np.arange(300).reshape(100, 3)
    for f in faces:
        mask = coverage(xy, f[None], (400, 400))
        a, b, c = xy[f]
        area = abs((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])) / 2
        perimeter = sum(np.linalg.norm(xy[f[i]] - xy[f[(i + 1) % 3]]) for i in range(3))
        assert abs(mask.sum() - area) <= perimeter + 2  # pixel-centre sampling: off by under a pixel a side
    raster = rasterise(xy, np.ones(300), faces, (400, 400), perspective=False)
    assert (raster.mask == coverage(xy, faces, (400, 400))).all()


def test_orbit_yaw_90_is_the_left_product_shot():
    # "left" = the object turned 90 degrees clockwise seen from above: the camera sees the object's +X side.
    view = orbit_view(intrinsics_from_fov(100, 100, 40), 90.0, 0.0, 5.0)
    np.testing.assert_allclose(view.position, [5, 0, 0], atol=1e-12)
    _, depth = view.project(np.array([[1.0, 0, 0], [-1.0, 0, 0], [0, 0, 1.0]]))
    assert depth[0] < depth[1]
    xy, _ = view.project(np.array([[0, 0, 1.0]]))  # the object's front is on the image's left
    assert xy[0, 0] < 50
    back = view_from_fov(100, 100, 40, 30.0, 20.0, 5.0)
    assert back.yaw_deg == pytest.approx(30.0) and back.elevation_deg == pytest.approx(20.0)
    np.testing.assert_allclose(back.to_object(back.to_camera(np.eye(3))), np.eye(3), atol=1e-12)


def photo_mask(verts, faces, width, height, fov, yaw, elevation, distance, offset=(0, 0)):
    view = view_from_fov(width, height, fov, yaw, elevation, distance, box_centre(verts), offset)
    return view, render_silhouette(view, verts, faces)


def assert_recovered(view, true, iou, verts, angles=True):
    assert iou >= 0.98
    if angles:
        assert abs(view.yaw_deg - true.yaw_deg) < 2.0
    assert abs(view.elevation_deg - true.elevation_deg) < 2.0
    assert abs(view.fov_deg - true.fov_deg) < 4.0  # only perspective tells the fov: the loosest parameter
    # The mesh lands where the true camera put it: vertices reproject within a small part of its size.
    xy, _ = view.project(verts)
    xy_true, _ = true.project(verts)
    extent = np.ptp(xy_true, axis=0).max()
    assert np.median(np.linalg.norm(xy - xy_true, axis=1)) < 0.01 * extent


@pytest.mark.parametrize("yaw, elevation, fov, distance, offset", [
    (20.0, 12.0, 35.0, 4.0, (30, -15)),
    (-35.0, -5.0, 50.0, 3.0, (-20, 10)),
])
def test_fit_recovers_an_oblique_view_of_an_asymmetric_object(yaw, elevation, fov, distance, offset):
    verts, faces = object_meshes.toy()
    true, mask = photo_mask(verts, faces, 480, 360, fov, yaw, elevation, distance, offset)
    view, iou, report = fit_camera(verts, faces, mask)
    assert_recovered(view, true, iou, verts)
    assert report["iou"] == iou and report["initial_iou"] < iou
    assert view.size == (480, 360)


def test_fit_recovers_suzanne_from_its_silhouette():
    verts, faces = suzanne(2)
    true, mask = photo_mask(verts, faces, 400, 500, 30.0, -15.0, 10.0, 5.0, (12, 25))
    view, iou, report = fit_camera(verts, faces, mask)
    assert_recovered(view, true, iou, verts)


def test_fit_starts_from_the_view_the_preprocessor_implies():
    # The generator's input: a square photo, the subject's long side at 85 %, seen from the front.
    verts, faces = object_meshes.toy()
    intr = intrinsics_from_fov(512, 512, 30.0)
    extent = np.ptp(verts, axis=0)[:2].max()
    distance = intr.focal_px * extent / (0.85 * 512) + verts[:, 2].max()
    true = orbit_view(intr, 0.0, 0.0, distance, box_centre(verts))
    # Given as the preprocessor's alpha: 8-bit, soft-edged (a background remover's matte).
    alpha = cv2.GaussianBlur(render_silhouette(true, verts, faces).astype(np.uint8) * 255, (5, 5), 1.0)
    view, iou, report = fit_camera(verts, faces, alpha)
    assert report["initial_iou"] > 0.9  # the front view matched to the mask's box is already close
    assert_recovered(view, true, iou, verts)


def test_a_silhouette_that_cannot_tell_the_yaw_keeps_the_front_view():
    # A vase turned on its axis looks the same: the fit must not wander off to an arbitrary yaw.
    vase = object_meshes.normalised(object_meshes.merge(
        object_meshes.cylinder(0.5, 1.2, segments=64),
        object_meshes.cylinder(0.2, 0.6, (0, 0.9, 0), segments=64),
        object_meshes.sphere(0.6, (0, 0.1, 0), rings=24, segments=64)))
    true, mask = photo_mask(*vase, 400, 400, 35.0, 0.0, 15.0, 4.0)
    view, iou, report = fit_camera(*vase, mask)
    assert iou >= 0.98 and "yaw_deg" in report["snapped_to_start"]
    assert view.yaw_deg == pytest.approx(0.0, abs=1e-9)
    assert abs(view.elevation_deg - 15.0) < 2.0  # the top's ellipse tells the elevation


def test_fit_views_recovers_every_camera_of_a_product_shoot():
    verts, faces = object_meshes.toy()
    shots = {  # name: (width, height, fov, elevation, distance, offset)
        "front": (480, 360, 40.0, 8.0, 3.5, (0, 0)),
        "left": (360, 480, 30.0, 20.0, 5.0, (15, -20)),
        "back": (400, 400, 45.0, -4.0, 3.2, (-25, 5)),
        "right": (500, 300, 35.0, 14.0, 4.5, (10, 10)),
    }
    yaws = {"front": 0.0, "left": 90.0, "back": 180.0, "right": 270.0}
    truth, masks = {}, {}
    for name, (w, h, fov, elevation, distance, offset) in shots.items():
        truth[name], masks[name] = photo_mask(verts, faces, w, h, fov, yaws[name], elevation, distance, offset)
    views, ious, reports = fit_views(verts, faces, masks, yaws)
    assert set(views) == set(shots)
    for name in shots:
        assert views[name].yaw_deg % 360 == pytest.approx(yaws[name] % 360, abs=1e-6)  # known: kept
        assert_recovered(views[name], truth[name], ious[name], verts, angles=False)
        assert reports[name]["iou"] == ious[name]
    assert views["left"].position[0] > 0  # the left shot is taken from the object's +X side


@pytest.mark.parametrize("square, before, after", [((270, 120, 360), 0.97, 0.98), ((330, 150, 360), 0.95, 0.97)])
def test_triposr_input_view_puts_the_object_on_the_photo_before_any_fit(square, before, after):
    # An object reconstructed in TripoSR's frame, its photo taken with the camera TripoSR assumes (a subject in the
    # middle of the photo, then one off-centre): the input view alone lines it up; the refinement improves it.
    verts, faces = suzanne(2)
    verts = verts - box_centre(verts)
    verts, mask, square = object_meshes.triposr_photo(verts, faces, (900, 600), square)
    start = generator_view(square, 1.9, 40.0, (900, 600))
    assert start.project(np.zeros((1, 3)))[0][0] == pytest.approx(np.add(square[:2], square[2] / 2), abs=0.01)
    view, iou, report = refine_camera(verts, faces, mask, start, turn_deg=10.0)
    assert report["initial_iou"] > before and iou >= report["initial_iou"] and iou > after
    assert abs(view.yaw_deg - start.yaw_deg) < 5 and abs(view.elevation_deg - start.elevation_deg) < 5
    assert view.fov_deg == pytest.approx(start.fov_deg) and abs(report["moved_from_start"]["scale"] - 1) < 0.02


def test_refining_a_generator_view_moves_only_scale_and_offset():
    # A start 12 % too small and 20 px off: the fit finds the photo's camera; pose and field of view stay.
    verts, faces = object_meshes.toy()
    true, mask = photo_mask(verts, faces, 480, 360, 40.0, 0.0, 0.0, 3.0, (25, -10))
    off = orbit_view(true.intrinsics, 0.0, 0.0, 3.0 / 0.88, box_centre(verts), (45, -25))
    view, iou, report = refine_camera(verts, faces, mask, off)
    assert report["initial_iou"] < 0.8 and iou > 0.98
    assert abs(report["moved_from_start"]["scale"] - 1 / 0.88) < 0.01
    assert_recovered(view, true, iou, verts)
    # A known field of view replaces the start's; the apparent size is kept, the perspective changes.
    wide, _, wide_report = refine_camera(verts, faces, mask, off, fov_deg=60.0)
    assert wide.fov_deg == pytest.approx(60.0) and wide_report["initial_iou"] < 0.8


def test_fit_explains_unusable_input_in_one_sentence():
    verts, faces = object_meshes.toy()
    with pytest.raises(InputError, match="empty"):
        fit_camera(verts, faces, np.zeros((100, 100), bool))
    with pytest.raises(InputError, match="2-D"):
        fit_camera(verts, faces, np.ones((10, 10, 3), bool))
    with pytest.raises(InputError, match="outside"):
        fit_camera(verts, faces + len(verts), np.ones((100, 100), bool))
    with pytest.raises(InputError, match="yaw of the view 'top'"):
        fit_views(verts, faces, {"top": np.ones((50, 50), bool)})
