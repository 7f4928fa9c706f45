"""Bad and unusual input: what a user gets from a broken, odd or huge file, or from impossible settings.

Every mistake is refused with one sentence (InputError from the pipeline; exit status 2 and one line on stderr
from the CLI, which leaves the output folder as it was). Unusual but valid input meshes as the user expects.
"""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, assert_cli_rejects, run_cli, write_depth
from image_to_mesh.inference.errors import InputError
from image_to_mesh.inference.pipeline import image_to_mesh
from image_to_mesh.inference.settings import MeshSettings
from PIL import Image

W, H = 80, 60  # the synthetic photos' size; at FULL resolution every pixel centre is a vertex
FULL = MeshSettings(resolution=max(W, H))


def flat_depth(size=(W, H), metres=2.0) -> np.ndarray:
    return np.full((size[1], size[0]), metres, dtype=np.float32)


def random_rgb(size=(W, H), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def write_jpeg(path, size=(W, H)):
    Image.fromarray(random_rgb(size)).save(path, quality=90)
    return path


def vertex_pixels(record) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) of the upright photo pixel each vertex is seen at through the record's camera, checked
    against the pixel its UV names ((0, 0) bottom-left): both routes must agree, so neither can hide an error in
    the other (a UV and a colour both read through the same wrong UV would agree with each other)."""
    camera = record.camera
    w, h, f = camera.intrinsics.width, camera.intrinsics.height, camera.intrinsics.focal_px
    local = (record.vertices.astype(np.float64) - camera.position) @ camera.rotation  # record -> camera frame
    depth = -local[:, 2]
    # A vertex exactly on a pixel border belongs to the pixel right/below it (+1e-3 px absorbs float32).
    cols = np.floor(f * local[:, 0] / depth + w / 2 + 1e-3).astype(int)
    rows = np.floor(h / 2 - f * local[:, 1] / depth + 1e-3).astype(int)
    assert ((cols >= 0) & (cols < w) & (rows >= 0) & (rows < h)).all()
    th, tw = record.texture.rgb.shape[:2]
    assert (th, tw) == (h, w), "these photos are small: the texture is the photo at full size"
    np.testing.assert_array_equal(np.floor(record.uvs[:, 0] * w + 1e-3).astype(int), cols)
    np.testing.assert_array_equal(np.floor((1.0 - record.uvs[:, 1]) * h + 1e-3).astype(int), rows)
    return rows, cols


def depths(record) -> np.ndarray:
    return -record.vertices[:, 2]


def assert_refused(tmp_path, photo, depth, match, settings=None, cli_options=()):
    """The pipeline raises InputError matching `match`, and the CLI exits 2 with one line, writing nothing."""
    with pytest.raises(InputError, match=match) as raised:
        image_to_mesh(photo, depth, settings or MeshSettings())
    assert str(raised.value).endswith("."), "one full sentence"
    (tmp_path / "out").mkdir(exist_ok=True)
    line = assert_cli_rejects(tmp_path, photo, "--depth-map", depth, *cli_options, "-o", tmp_path / "out" / "x.glb")
    assert str(raised.value) in line


# --- the photo ----------------------------------------------------------------------------------------------


def _truncated_jpeg(path):
    data = write_jpeg(path).read_bytes()
    path.write_bytes(data[: len(data) // 2])


BAD_PHOTOS = {
    "missing": (lambda path: None, "does not exist"),
    "empty": (lambda path: path.write_bytes(b""), "is an empty file"),
    "truncated JPEG": (_truncated_jpeg, "damaged or truncated"),
    "text file": (lambda path: path.write_text("Holiday photos, see attached.\n"), "is not a readable image"),
}


@pytest.mark.parametrize("case", BAD_PHOTOS, ids=list(BAD_PHOTOS))
def test_unusable_photo_is_refused_in_one_sentence(tmp_path, case):
    write, match = BAD_PHOTOS[case]
    photo = tmp_path / "photo.jpg"
    write(photo)
    depth = write_depth(tmp_path / "depth.exr", flat_depth())
    assert_refused(tmp_path, photo, depth, "photo.*" + match)


def test_8bit_png_photo_colours_reach_the_vertices_exactly(tmp_path):
    rgb = random_rgb()
    Image.fromarray(rgb).save(tmp_path / "photo.png")
    record = image_to_mesh(tmp_path / "photo.png", flat_depth(), FULL)
    rows, cols = vertex_pixels(record)
    assert len(record.vertices) == W * H
    np.testing.assert_array_equal(np.round(record.vertex_colors[:, :3] * 255), rgb[rows, cols])


def test_16bit_greyscale_photo_keeps_its_tones_in_8_bits(tmp_path):
    grey16 = np.tile(np.linspace(0, 65535, W).astype(np.uint16), (H, 1))
    Image.fromarray(grey16).save(tmp_path / "scan.png")
    with Image.open(tmp_path / "scan.png") as saved:
        assert saved.mode == "I;16"  # a true 16-bit file, not one Pillow turned into 8 bits on writing
    record = image_to_mesh(tmp_path / "scan.png", flat_depth(), FULL)
    rows, cols = vertex_pixels(record)
    colors = record.vertex_colors[:, :3]
    np.testing.assert_allclose(colors, np.repeat(grey16[rows, cols, None] / 65535.0, 3, axis=1), atol=0.6 / 255)


def test_greyscale_photo_gives_grey_vertices(tmp_path):
    grey = random_rgb()[..., 0]
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    record = image_to_mesh(tmp_path / "grey.png", flat_depth(), FULL)
    rows, cols = vertex_pixels(record)
    for channel in range(3):
        np.testing.assert_array_equal(np.round(record.vertex_colors[:, channel] * 255), grey[rows, cols])


def _rgba_photo(path):
    """A photo opaque only inside rows 10..49, columns 20..59, transparent around it."""
    alpha = np.zeros((H, W), dtype=np.uint8)
    alpha[10:50, 20:60] = 255
    Image.fromarray(np.dstack([random_rgb(), alpha])).save(path)
    return alpha


def test_alpha_mask_keeps_faces_on_opaque_pixels_only(tmp_path):
    alpha = _rgba_photo(tmp_path / "cutout.png")
    unmasked = image_to_mesh(tmp_path / "cutout.png", flat_depth(), FULL)
    record = image_to_mesh(tmp_path / "cutout.png", flat_depth(), MeshSettings(resolution=W, mask="alpha"))
    assert len(unmasked.vertices) == W * H  # without the mask the transparent border is meshed too
    rows, cols = vertex_pixels(record)
    assert (alpha[rows, cols] == 255).all()
    assert len(record.vertices) == 40 * 40 and record.face_count == 39 * 39
    assert record.texture.alpha is not None  # the texture keeps its transparency


def test_alpha_mask_on_a_photo_without_alpha_is_refused(tmp_path):
    photo = write_jpeg(tmp_path / "opaque.jpg")
    depth = write_depth(tmp_path / "depth.exr", flat_depth())
    assert_refused(
        tmp_path, photo, depth, "has no alpha channel", MeshSettings(mask="alpha"), cli_options=("--mask", "alpha")
    )


# EXIF orientation 6: the camera was held turned, and viewers turn the stored picture 90 degrees clockwise, so
# its top-left corner shows at the top right. Orientation 8 turns it counter-clockwise: top-left to bottom-left.
@pytest.mark.parametrize("orientation, corner", [(6, "top right"), (8, "bottom left")])
def test_exif_rotated_jpeg_meshes_upright(tmp_path, orientation, corner):
    stored = np.full((H, W, 3), 128, dtype=np.uint8)  # landscape as stored in the file
    stored[:20, :15] = (255, 0, 0)  # a red patch in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "turned.jpg", quality=95, exif=exif)

    record = image_to_mesh(tmp_path / "turned.jpg", flat_depth(size=(H, W)), MeshSettings(resolution=W))
    assert (record.camera.intrinsics.width, record.camera.intrinsics.height) == (H, W)  # portrait, as the user sees it
    assert record.texture.rgb.shape[:2] == (W, H)
    assert not any("resampled" in notice for notice in record.report.notices)  # the upright depth map fits
    red = (record.vertex_colors[:, 0] > 0.8) & (record.vertex_colors[:, 1] < 0.3)
    rows, cols = vertex_pixels(record)
    # Upright, the 15 x 20 patch is 20 pixels wide and 15 tall, in the corner named above.
    in_corner = (rows < 15 if corner.startswith("top") else rows >= W - 15) & (
        cols >= H - 20 if corner.endswith("right") else cols < 20
    )
    assert red.sum() == pytest.approx(20 * 15, abs=40)  # JPEG blurs the patch's border a little
    assert in_corner[red].all()
    texture_corner = record.texture.rgb[:15, -20:] if corner == "top right" else record.texture.rgb[-15:, :20]
    assert (texture_corner[2:-2, 2:-2, 0] > 200).all() and (texture_corner[2:-2, 2:-2, 1] < 60).all()


# A phone's main camera: 26 mm in 35 mm-equivalent terms, which are defined by the full-frame (36 x 24 mm)
# diagonal: the photo's diagonal spans the angle that a 26 mm lens gives that frame's diagonal. Written with
# Pillow's own names for the tag and its IFD (ExifTags), read back by the photo loader; the field of view is the
# created Blender camera's.
@pytest.mark.parametrize("orientation", [1, 6])
def test_exif_35mm_focal_length_gives_the_camera_its_field_of_view(tmp_path, empty_scene, orientation):
    import bpy
    from PIL import ExifTags

    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation  # 6: stored landscape, shown portrait
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.FocalLengthIn35mmFilm] = 26
    Image.fromarray(random_rgb((120, 90))).save(tmp_path / "phone.jpg", quality=90, exif=exif)
    upright = (120, 90) if orientation == 1 else (90, 120)
    np.save(tmp_path / "depth.npy", np.full(upright[::-1], 2.0, np.float32))

    assert bpy.ops.image_to_mesh.generate(photo_path=str(tmp_path / "phone.jpg"), depth_path=str(tmp_path / "depth.npy"),
                                          method="depth-map") == {"FINISHED"}
    half_diagonal_angle = math.atan(math.hypot(36, 24) / 2 / 26)
    focal_px = math.hypot(*upright) / 2 / math.tan(half_diagonal_angle)
    camera = empty_scene.camera.data
    assert math.degrees(camera.angle_x) == pytest.approx(math.degrees(2 * math.atan(upright[0] / 2 / focal_px)), abs=1e-3)
    assert (empty_scene.render.resolution_x, empty_scene.render.resolution_y) == upright


# A 50-megapixel photo must never be decoded at full size: the mesh and texture need at most 4096 pixels
# along the long side. Plain Python, no bpy, so the figure is the pipeline's alone. The peak is VmHWM, the
# process's own high-water mark since exec: ru_maxrss would start at the pytest process's size, which Linux
# carries over into a child it forks and execs.
PEAK_MEMORY_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import cli
cli.load_package()
from image_to_mesh.inference.pipeline import image_to_mesh
from image_to_mesh.inference.settings import MeshSettings

def peak_mib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024

before = peak_mib()
record = image_to_mesh(sys.argv[2], sys.argv[3], MeshSettings())
print(json.dumps({
    "growth_mib": peak_mib() - before,
    "texture": record.texture.rgb.shape[1::-1],
    "camera": [record.camera.intrinsics.width, record.camera.intrinsics.height],
    "faces": record.face_count,
    "bpy": "bpy" in sys.modules,
}))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc/self/status")
def test_50_megapixel_jpeg_meshes_without_a_full_size_decode(tmp_path):
    big = Image.new("RGB", (8660, 5773), (90, 120, 200))
    big.paste((250, 30, 30), (0, 0, 2000, 1500))
    big.save(tmp_path / "big.jpg", quality=80)
    del big
    depth = write_depth(tmp_path / "small_depth.npy", flat_depth(size=(90, 60), metres=3.0))

    run = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY_SCRIPT, str(ROOT), str(tmp_path / "big.jpg"), str(depth)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["texture"] == [4096, 2731] and result["camera"] == [8660, 5773] and result["faces"] > 0
    assert not result["bpy"]
    # Pillow holds RGB as 4 bytes a pixel, so decoding the whole photo alone takes 8660 x 5773 x 4 B = 191 MiB
    # (143 MiB as packed RGB), before any resampling. The reduced path holds the JPEG decoded at half scale
    # (4330 x 2887: 48 MiB), the resampler's intermediate (4096 x 2887: 45 MiB) and the 4096 x 2731 texture
    # (43 MiB) at once: about 136 MiB, measured 137. A full-size decode measured 325.
    assert result["growth_mib"] < 180


# --- the depth map ------------------------------------------------------------------------------------------


def test_depth_map_of_another_size_is_resampled_with_a_notice(tmp_path):
    photo = write_jpeg(tmp_path / "photo.jpg")
    half = flat_depth(size=(W // 2, H // 2))
    half[:, W // 4:] = 3.0  # the right half is farther
    record = image_to_mesh(photo, write_depth(tmp_path / "half.exr", half), FULL)
    assert any("resampled" in notice for notice in record.report.notices)
    assert len(record.vertices) == W * H  # the mesh still covers the whole photo
    _, cols = vertex_pixels(record)
    np.testing.assert_allclose(depths(record), np.where(cols < W // 2, 2.0, 3.0))


def _text_depth(path):
    path.write_text("depth: 2.0 m everywhere\n")


def _garbage_depth(path):
    path.write_bytes(np.random.default_rng(7).integers(0, 256, 4000, dtype=np.uint8).tobytes())


def _truncated_exr(path):
    data = write_depth(path, flat_depth()).read_bytes()
    path.write_bytes(data[: len(data) // 2])


UNREADABLE_DEPTH_MAPS = {
    "garbage bytes": ("garbage.exr", _garbage_depth),
    "truncated EXR": ("cut.exr", _truncated_exr),  # OpenCV logs its failure on stderr unless silenced
    "text file": ("notes.png", _text_depth),
}


@pytest.mark.parametrize("case", UNREADABLE_DEPTH_MAPS, ids=list(UNREADABLE_DEPTH_MAPS))
def test_unreadable_depth_map_is_refused_in_one_sentence(tmp_path, case):
    name, write = UNREADABLE_DEPTH_MAPS[case]
    write(tmp_path / name)
    photo = write_jpeg(tmp_path / "photo.jpg")
    assert_refused(tmp_path, photo, tmp_path / name, f"depth map .*{name}.* is not a readable")


def test_a_depth_map_without_usable_depth_is_refused_in_one_sentence(tmp_path, empty_scene):
    # NaN, infinite, zero or negative everywhere means no surface, whatever the file and the depth kind: the
    # pipeline refuses each; the CLI and the operator say so in one sentence and change nothing.
    photo = write_jpeg(tmp_path / "photo.jpg")
    files = [
        write_depth(tmp_path / "nan.exr", np.full((H, W), np.nan, np.float32)),
        write_depth(tmp_path / "inf.npy", np.full((H, W), np.inf, np.float32)),
        write_depth(tmp_path / "zero.png", np.zeros((H, W), np.uint16)),
        write_depth(tmp_path / "negative.npy", np.full((H, W), -1.0, np.float32)),
    ]
    for depth in files:
        for kind in ("metric", "relative-depth", "relative-disparity"):
            with pytest.raises(InputError, match="no usable depth"):
                image_to_mesh(photo, depth, MeshSettings(depth_kind=kind))
    assert_refused(tmp_path, photo, files[0], "no usable depth")

    import bpy

    before = {kind: len(getattr(bpy.data, kind)) for kind in ("objects", "meshes", "images", "materials")}
    with pytest.raises(RuntimeError, match="no usable depth"):
        bpy.ops.image_to_mesh.generate(photo_path=str(photo), depth_path=str(files[2]), method="depth-map")
    assert before == {kind: len(getattr(bpy.data, kind)) for kind in before}


def test_depth_holes_get_no_vertices(tmp_path):
    depth = flat_depth()
    depth[10:20, 10:30] = np.nan
    depth[30:40, 50:70] = np.inf
    photo = write_jpeg(tmp_path / "photo.jpg")
    record = image_to_mesh(photo, write_depth(tmp_path / "holes.exr", depth), FULL)
    assert np.isfinite(record.vertices).all()
    rows, cols = vertex_pixels(record)
    assert np.isfinite(depth[rows, cols]).all()
    assert len(record.vertices) == W * H - 2 * 200  # every other pixel still has its vertex


def test_16bit_png_depth_in_millimetres_with_a_depth_scale(tmp_path):
    millimetres = np.tile(2000 + 10 * np.arange(W, dtype=np.uint16), (H, 1))  # 2.00 m to 2.79 m, left to right
    depth = write_depth(tmp_path / "depth_mm.png", millimetres)
    photo = write_jpeg(tmp_path / "photo.jpg")
    record = image_to_mesh(photo, depth, MeshSettings(resolution=W, depth_scale=0.001))
    rows, cols = vertex_pixels(record)
    np.testing.assert_allclose(depths(record), millimetres[rows, cols] / 1000.0, rtol=1e-6)


@pytest.mark.parametrize("suffix", [".exr", ".npy"])
def test_float_depth_files_keep_their_values(tmp_path, suffix):
    metres = np.random.default_rng(3).uniform(1.5, 1.6, (H, W)).astype(np.float32)
    depth = write_depth(tmp_path / f"depth{suffix}", metres)
    photo = write_jpeg(tmp_path / "photo.jpg")
    record = image_to_mesh(photo, depth, FULL)
    rows, cols = vertex_pixels(record)
    assert len(record.vertices) == W * H
    np.testing.assert_allclose(depths(record), metres[rows, cols], rtol=1e-6)


# --- paths and settings -------------------------------------------------------------------------------------


def test_non_ascii_paths_for_photo_depth_map_and_outputs(tmp_path):
    folder = tmp_path / "données"
    folder.mkdir()
    photo = write_jpeg(folder / "фото é.jpg")
    depth = write_depth(folder / "глубина ü.exr", flat_depth())
    record = image_to_mesh(photo, depth, FULL)
    assert record.name == "фото é" and len(record.vertices) == W * H

    out = tmp_path / "sortie ñ"
    run = run_cli(photo, "--depth-map", depth, "-o", out / "模型.obj", "-o", out / "模型.glb")
    assert run.returncode == 0, run.stderr
    assert (out / "模型.glb").stat().st_size > 0
    mtl = (out / "模型.mtl").read_text(encoding="utf-8")
    texture = next(line.split(" ", 1)[1] for line in mtl.splitlines() if line.startswith("map_Kd"))
    assert (out / texture).is_file()


INVALID_SETTINGS = {
    "resolution 1": ({"resolution": 1}, ["--resolution", "1"], "resolution must be between 2 and"),
    "edge threshold 0": ({"edge_threshold": 0}, ["--edge-threshold", "0"], "edge threshold must be between"),
    "edge threshold 120": ({"edge_threshold": 120}, ["--edge-threshold", "120"], "edge threshold must be between"),
    "negative fov": ({"fov": -30}, ["--fov=-30"], "field of view must be between"),
    "near = far": ({"near": 5, "far": 5}, ["--near", "5", "--far", "5"], r"Near \(5\) and far \(5\)"),
    "near > far": ({"near": 6, "far": 2}, ["--near", "6", "--far", "2"], r"Near \(6\) and far \(2\)"),
}


@pytest.mark.parametrize("case", INVALID_SETTINGS, ids=list(INVALID_SETTINGS))
def test_impossible_settings_are_refused_in_one_sentence(tmp_path, case):
    settings, options, match = INVALID_SETTINGS[case]
    photo = write_jpeg(tmp_path / "photo.jpg")
    depth = write_depth(tmp_path / "depth.exr", flat_depth())
    assert_refused(tmp_path, photo, depth, match, MeshSettings(**settings), cli_options=options)
