"""Preparing the photo before reconstruction (issue #15): upscaling by tiles, exposure and white balance, lens
distortion, cropping to the subject; each step reported, applied to the texture and to what models see, and
the created camera still lining the mesh up with the photo."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnxruntime as ort
import pytest
from conftest import run_cli, seen_at
from image_to_mesh.inference.errors import InputError
from image_to_mesh.inference.geometry.camera import Window
from image_to_mesh.inference.photo.exposure import auto_exposure, grey_world, linear_to_srgb, srgb_to_linear_table
from image_to_mesh.inference.photo.lens import parse_lens, undistort
from image_to_mesh.inference.photo.photo import Photo
from image_to_mesh.inference.photo.upscale import run_tiled, upscaled_size
from image_to_mesh.inference.pipeline import image_to_mesh
from image_to_mesh.inference.record_files import load_record, save_record
from image_to_mesh.inference.runtime.access import ModelAccess
from image_to_mesh.inference.runtime.cards import model_card
from image_to_mesh.inference.runtime.store import ModelStore
from image_to_mesh.inference.settings import MeshSettings
from image_to_mesh.operators.builders.objects import build_objects
from skimage import data
from tiny_models import compact_upscaler


def gradient(width=517, height=301) -> np.ndarray:
    """A smooth colour gradient: any seam between tiles would show on it."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    return np.stack([20 + 200 * x / width, 30 + 180 * y / height, 50 + 150 * (x + y) / (width + height)],
                    axis=-1).astype(np.uint8)


def store_with_upscaler(tmp_path, card_id="realesr-general-x4v3", static_side=None) -> ModelAccess:
    """A models folder holding a tiny model of the card's contract, put there by hand (models/<id>/<file>)."""
    card = model_card(card_id, task="upscale")
    compact_upscaler(tmp_path / "models" / card.id / card.source.files[0], static_side=static_side)
    return ModelAccess(ModelStore(tmp_path / "models", allow_download=False, use_user_cache=False))


# --- upscaling ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("static_side, tile", [(None, 96), (None, 200), (128, 0)])
def test_tiles_join_without_seams_on_a_smooth_gradient(tmp_path, static_side, tile):
    rgb = gradient()
    whole = run_tiled(ort.InferenceSession(str(compact_upscaler(tmp_path / "whole.onnx"))), rgb, "unit", 4096)
    path = compact_upscaler(tmp_path / "tiled.onnx", static_side=static_side)
    tiled = run_tiled(ort.InferenceSession(str(path)), rgb, "unit", tile)
    assert tiled.shape == whole.shape == (4 * 301, 4 * 517, 3)
    assert np.abs(tiled.astype(int) - whole).max() <= 1  # the tiles together are the network's whole-image answer
    # And no step at any tile border: neighbouring columns and rows differ no more there than anywhere else.
    steps_x = np.abs(np.diff(tiled.astype(int), axis=1)).max(axis=(0, 2))
    steps_y = np.abs(np.diff(tiled.astype(int), axis=0)).max(axis=(1, 2))
    reference_x = np.abs(np.diff(whole.astype(int), axis=1)).max(axis=(0, 2))
    reference_y = np.abs(np.diff(whole.astype(int), axis=0)).max(axis=(1, 2))
    assert (steps_x <= reference_x + 1).all() and (steps_y <= reference_y + 1).all()


def test_upscale_sizes():
    assert upscaled_size((600, 400), "auto", 4096) == (2048, 1365)
    assert upscaled_size((3000, 2000), "auto", 4096) == (3000, 2000)  # large enough already
    assert upscaled_size((600, 400), "4", 4096) == (2400, 1600)
    assert upscaled_size((600, 400), "2", 4096) == (1200, 800)
    assert upscaled_size((1500, 1000), "4", 4096) == (4096, 2731)  # no larger than the texture or mesh can use
    assert upscaled_size((600, 400), "off", 4096) == (600, 400)


def test_a_small_photo_is_upscaled_by_the_model_for_texture_and_models_and_checked_before_and_after(tmp_path, motorcycle):
    rgb = cv2.resize(motorcycle[0], (600, 400), interpolation=cv2.INTER_AREA)
    access = store_with_upscaler(tmp_path, static_side=128)
    record = image_to_mesh(Photo("small", rgb, None, (600, 400)), np.full((400, 600), 2.0, np.float32),
                           MeshSettings(upscale="auto", resolution=64), access)
    step = record.report.preparation[0]
    assert step.name == "upscale" and step.details["method"] == "Real-ESRGAN general x4v3"
    assert step.details["to"] == [2048, 1365] and record.texture.rgb.shape == (1365, 2048, 3)
    assert record.report.quality_before["resolution"]["value"] == 600
    assert record.report.quality["resolution"] == {**record.report.quality["resolution"], "value": 2048, "verdict": "good"}
    # The same camera as without upscaling: the field of view of the photo, a pixel grid over the same rays.
    plain = image_to_mesh(Photo("small", rgb, None, (600, 400)), np.full((400, 600), 2.0, np.float32),
                          MeshSettings(resolution=64))
    assert record.camera.intrinsics == plain.camera.intrinsics and record.photo is None
    np.testing.assert_allclose(record.vertices, plain.vertices, atol=1e-6)
    # The texture is the network's, not a resampling: it differs from bicubic where the photo has detail.
    bicubic = cv2.resize(rgb, (2048, 1365), interpolation=cv2.INTER_CUBIC)
    assert np.abs(record.texture.rgb.astype(int) - bicubic).mean() > 2


def test_without_the_model_the_photo_is_resampled_bicubic_with_a_notice(tmp_path):
    access = ModelAccess(ModelStore(tmp_path / "models", allow_download=False, use_user_cache=False))
    record = image_to_mesh(Photo("grad", gradient(300, 200), None, (300, 200)), np.full((200, 300), 2.0, np.float32),
                           MeshSettings(upscale="2", resolution=32), access)
    assert record.report.preparation[0].details["method"] == "bicubic"
    assert record.texture.rgb.shape == (400, 600, 3)
    assert any("bicubic" in n and "Real-ESRGAN general x4v3" in n for n in record.report.notices)


# --- exposure and colour ------------------------------------------------------------------------------------


def test_auto_exposure_brings_a_darkened_real_photo_back_to_the_original():
    photo = data.coffee()  # CC0
    darker = linear_to_srgb(srgb_to_linear_table()[photo] * 0.25)  # two stops under, in linear light
    fixed, details = auto_exposure(darker)
    before, after = np.abs(darker.astype(int) - photo).mean(), np.abs(fixed.astype(int) - photo).mean()
    assert after < 4 and after < before / 10, (before, after)
    assert details["changed"] and 1.9 < details["stops"] < 2.2
    assert not auto_exposure(data.astronaut())[1]["changed"]  # a well exposed photo is left as it is


def test_white_balance_removes_a_colour_cast_from_a_real_photo():
    photo = data.stereo_motorcycle()[0]
    linear = srgb_to_linear_table()[photo]
    tinted = linear_to_srgb(linear * np.array([0.95, 0.8, 0.55], np.float32))  # a warm light's cast
    balanced, details = grey_world(tinted)
    means = srgb_to_linear_table()[balanced].reshape(-1, 3).mean(axis=0)
    assert np.abs(means / means.mean() - 1).max() < 0.03  # neutral on average
    # The colours (chromaticity) are those of the untinted photo balanced alike: the cast, not the scene, is gone.
    def chroma(rgb):
        lin = srgb_to_linear_table()[rgb] + 1e-3
        return lin / lin.sum(axis=-1, keepdims=True)
    assert np.median(np.abs(chroma(balanced) - chroma(grey_world(photo)[0]))) < 0.01
    assert np.median(np.abs(chroma(tinted) - chroma(grey_world(photo)[0]))) > 0.03


def test_corrections_reach_the_texture_and_the_photo_check(tmp_path):
    photo = data.coffee()
    darker = linear_to_srgb(srgb_to_linear_table()[photo] * 0.2)
    record = image_to_mesh(Photo("dark", darker, None, (600, 400)), np.full((400, 600), 1.0, np.float32),
                           MeshSettings(auto_exposure=True, white_balance="auto", resolution=32))
    assert [s.name for s in record.report.preparation] == ["white-balance", "exposure"]
    assert record.texture.rgb.mean() > darker.mean() + 40
    assert record.report.quality["exposure"]["mean_luma"] > record.report.quality_before["exposure"]["mean_luma"] + 40


# --- lens distortion ---------------------------------------------------------------------------------------

SQUARE, CORNERS = 40, (11, 7)  # a checkerboard of 12 x 8 squares of 40 px: 11 x 7 inner corners
K = np.array([[520.0, 0, 319.5], [0, 520.0, 239.5], [0, 0, 1]])  # a 640 x 480 camera, centred
DISTORTION = (-0.28, 0.09, 0.0008, -0.0005)  # barrel, as a wide lens


def checkerboard_corners() -> np.ndarray:
    """Inner corners of the ideal board in OpenCV pixel coordinates (pixel centres at integers)."""
    x0, y0 = 320 - 6 * SQUARE - 0.5, 240 - 4 * SQUARE - 0.5
    return np.array([[x0 + (i + 1) * SQUARE, y0 + (j + 1) * SQUARE] for j in range(CORNERS[1])
                     for i in range(CORNERS[0])])


def distorted_checkerboard(k=K, distortion=DISTORTION, size=(640, 480)) -> np.ndarray:
    """The ideal board as the distorting lens photographs it, 4x4 supersampled (anti-aliased)."""
    w, h = size
    sub = (np.arange(4) + 0.5) / 4 - 0.5
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    total = np.zeros((h, w))
    for dy in sub:
        for dx in sub:
            points = np.stack([xs + dx, ys + dy], axis=-1).reshape(-1, 1, 2)
            ideal = cv2.undistortPoints(points, k, np.array(distortion), P=k).reshape(h, w, 2)
            ideal = (ideal - [320 - 6 * SQUARE - 0.5, 240 - 4 * SQUARE - 0.5]) / SQUARE
            inside = (ideal >= 0).all(-1) & (ideal[..., 0] < 12) & (ideal[..., 1] < 8)
            white = (np.floor(ideal).astype(int).sum(-1) % 2 == 0) | ~inside
            total += np.where(inside, white * 220 + 20, 240)
    return np.repeat((total / 16 + 0.5).astype(np.uint8)[..., None], 3, axis=-1)


def found_corners(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    found, corners = cv2.findChessboardCorners(grey, CORNERS)
    assert found
    corners = cv2.cornerSubPix(grey, corners, (5, 5), (-1, -1),
                               (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)).reshape(-1, 2)
    if np.linalg.norm(corners[0] - checkerboard_corners()[0]) > np.linalg.norm(corners[-1] - checkerboard_corners()[0]):
        corners = corners[::-1]  # OpenCV may list them from either end
    return corners


@pytest.mark.parametrize("how", ["coefficients", "yaml", "json"])
def test_undistort_round_trips_a_distorted_checkerboard(tmp_path, how):
    photo = distorted_checkerboard()
    before = np.abs(found_corners(photo) - checkerboard_corners()).max()
    if how == "coefficients":  # the photo's own camera: its focal length, the principal point at the centre
        lens = parse_lens(",".join(str(c) for c in DISTORTION))
    else:  # calibrated at twice the photo's size: the matrix is scaled to the photo
        matrix = K.copy()
        matrix[:2] = matrix[:2] * 2 + [[0, 0, 0.5], [0, 0, 0.5]]
        path = tmp_path / f"camera.{how}"
        if how == "yaml":
            storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
            storage.write("image_width", 1280)
            storage.write("image_height", 960)
            storage.write("camera_matrix", matrix)
            storage.write("distortion_coefficients", np.array([DISTORTION]))
            storage.release()
        else:
            path.write_text(json.dumps({"camera_matrix": matrix.tolist(), "dist_coeffs": list(DISTORTION),
                                        "image_width": 1280, "image_height": 960}))
        lens = parse_lens(str(path))
        assert lens.focal_px(640) == pytest.approx(520.0)
    fixed, _, focal, details = undistort(photo, lens, 520.0, (640, 480))
    error = np.abs(found_corners(fixed) - checkerboard_corners()).max()
    assert before > 5 and error <= 0.5, (before, error)
    assert focal == pytest.approx(520.0) and details["max_shift_px"] > 10


def test_an_undistorted_photo_gets_the_calibrated_camera(tmp_path):
    path = tmp_path / "camera.json"
    path.write_text(json.dumps({"camera_matrix": K.tolist(), "dist_coeffs": list(DISTORTION)}))
    record = image_to_mesh(Photo("board", distorted_checkerboard(), None, (640, 480)),
                           np.full((480, 640), 2.0, np.float32), MeshSettings(undistort=str(path), resolution=64))
    assert record.report.camera.focal_px == pytest.approx(520.0)
    assert "calibration" in record.report.camera.source
    assert record.report.preparation[0].name == "undistort"
    with pytest.raises(InputError, match="calibration file gives the focal length"):
        MeshSettings(undistort=str(path), focal_px=500.0).check()


@pytest.mark.parametrize("value", ["0.1,0.2,0.3", "nan", "no-such-file.yaml"])
def test_a_bad_undistort_value_is_one_sentence(value):
    with pytest.raises(InputError, match="undistort|calibration file"):
        MeshSettings(undistort=value).check()


# --- framing -----------------------------------------------------------------------------------------------


def subject_photo(motorcycle) -> tuple[Photo, np.ndarray, float]:
    """The Middlebury motorcycle (741 x 500) with its alpha marking a subject in the left half, and its true depth."""
    rgb, depth, focal = motorcycle
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[110:390, 60:380] = 255
    alpha[~np.isfinite(depth)] = 0
    h, w = alpha.shape
    return Photo("motorcycle", rgb, alpha, (w, h)), depth, focal


def test_crop_to_subject_keeps_every_vertex_on_its_pixel_of_the_whole_photo(motorcycle, empty_scene):
    photo, depth, focal = subject_photo(motorcycle)
    settings = MeshSettings(crop_subject=True, mask="alpha", focal_px=focal, resolution=741)
    record = image_to_mesh(photo, depth, settings)
    step = record.report.preparation[0]
    assert step.name == "crop" and step.details["coverage"] >= 0.6 > step.details["coverage_before"]
    assert record.report.quality["coverage"]["value"] >= 0.6
    x, y, w, h = step.details["box"]
    assert record.texture.rgb.shape[:2] == (round(h), round(w)) < photo.rgb.shape[:2]
    # The created camera is the whole photo's: every vertex of the surface it sees, seen through it, lands on
    # the pixel of the whole photo whose colour it carries; the occlusion fill (the last vertices) lies mostly
    # behind it.
    camera = record.camera
    assert (camera.intrinsics.width, camera.intrinsics.height, camera.intrinsics.focal_px) == (741, 500, focal)
    assert record.photo.rgb.shape == photo.rgb.shape
    xy, _ = camera.project(record.vertices)
    cols, rows = np.floor(xy[:, 0] + 1e-3).astype(int), np.floor(xy[:, 1] + 1e-3).astype(int)
    assert ((cols >= x) & (cols < x + w) & (rows >= y) & (rows < y + h)).all()
    n_seen = len(record.vertices) - record.report.depth_edges.fill_vertices
    seen, fill = slice(None, n_seen), slice(n_seen, None)
    np.testing.assert_array_equal(np.round(record.vertex_colors[seen, :3] * 255).astype(int),
                                  photo.rgb[rows[seen], cols[seen]])
    # The depth map, cropped alike.
    np.testing.assert_allclose(-record.vertices[seen, 2], depth[rows[seen], cols[seen]], rtol=1e-6)
    # The fill: behind the surface seen at its own pixel, or the foreground's one-step skirt, at the depth of
    # the foreground pixel that textures it (its UV's, in the crop); skirts also close the cells beside points
    # the mesh dropped (the ground truth's mixed pixels, frequent along this crop's silhouettes).
    z_fill = -record.vertices[fill, 2]
    uv_cols = np.floor(x + record.uvs[fill, 0] * w).astype(int)
    uv_rows = np.floor(y + (1 - record.uvs[fill, 1]) * h).astype(int)
    behind = z_fill > depth[rows[fill], cols[fill]]
    skirt = np.isclose(z_fill, depth[uv_rows, uv_cols], rtol=1e-6)
    assert n_seen < len(record.vertices) and (behind | skirt).all() and behind.mean() > 0.5
    # The same through Blender's own camera, with the whole photo behind it.
    mesh_object, camera_object, _ = build_objects(record, empty_scene.collection, empty_scene)
    world = np.array(mesh_object.matrix_world)
    co = np.empty(len(mesh_object.data.vertices) * 3, np.float32)
    mesh_object.data.vertices.foreach_get("co", co)
    points = co.reshape(-1, 3) @ world[:3, :3].T + world[:3, 3]
    u, v = seen_at(camera_object, points, 741, 500)
    np.testing.assert_allclose(np.c_[u, v], xy, atol=2e-3)
    assert tuple(camera_object.data.background_images[0].image.size) == (741, 500)
    # The models saw the crop: its principal point is off-centre and its field of view narrower (in the report).
    window = Window(x, y, w, h, record.texture.rgb.shape[1::-1])
    assert record.report.camera.crop_fov_x_deg == window.fov_x_deg(camera.intrinsics) < camera.intrinsics.fov_x_deg
    cx, cy = record.report.camera.crop_principal_point
    assert (cx, cy) == pytest.approx((741 / 2 - x, 500 / 2 - y)) and cx > w / 2  # the subject is left of centre


def test_crop_then_upscale_keeps_the_vertices_on_their_pixels(motorcycle, tmp_path):
    photo, depth, focal = subject_photo(motorcycle)
    settings = MeshSettings(crop_subject=True, upscale="2", mask="alpha", focal_px=focal, resolution=4096)
    record = image_to_mesh(photo, depth, settings)
    assert [s.name for s in record.report.preparation] == ["crop", "upscale"]
    xy, _ = record.camera.project(record.vertices)
    cols, rows = np.floor(xy[:, 0] + 1e-3).astype(int), np.floor(xy[:, 1] + 1e-3).astype(int)
    error = np.abs(np.round(record.vertex_colors[:, :3] * 255) - photo.rgb[rows, cols]).max(axis=1)
    assert np.median(error) <= 6  # bicubic 2x: each vertex's colour is its own pixel's, smoothed a little
    plain = image_to_mesh(photo, depth, MeshSettings(crop_subject=True, mask="alpha", focal_px=focal,
                                                     resolution=4096))
    assert record.report.grid == tuple(2 * n for n in plain.report.grid)  # twice the pixels each way: the grid too
    # What the sidebar's run gets back from its worker process: the same steps, and the whole photo.
    loaded = load_record(save_record(record, tmp_path / "record.npz"))
    assert loaded.report.preparation == record.report.preparation and loaded.report.camera == record.report.camera
    np.testing.assert_array_equal(loaded.photo.rgb, photo.rgb)


def test_preparation_on_the_command_line(tmp_path, motorcycle_files):
    photo, depth, focal = motorcycle_files
    result = run_cli(str(photo), "--depth-map", str(depth), "--focal-px", str(focal), "--white-balance", "auto",
                     "--auto-exposure", "--undistort", "-0.05", "--crop-subject", "--mask", "u2netp",
                     "--upscale", "2", "--resolution", "128", "-o", str(tmp_path / "out.glb"), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)["results"][0]
    assert [s["name"] for s in summary["preparation"]] == ["undistort", "white-balance", "exposure", "crop", "upscale"]
    assert summary["quality_before"] and summary["quality"]
