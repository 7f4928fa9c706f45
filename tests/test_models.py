"""Depth models: the registry, each family's contract end to end (tiny ONNX models with the published
input/output names, shapes and dtypes), MoGe's camera recovery, and verified downloads from a local hub."""

import hashlib
import json
import math
import os
import subprocess
import sys
import threading

import bpy
import numpy as np
import pytest
import tiny_models
from bpy_extras.object_utils import world_to_camera_view
from conftest import ROOT, evaluated_mesh_arrays, seen_at
from hub_server import HubServer
from image_to_mesh.inference.depth.affine_points import recover_focal_shift
from image_to_mesh.inference.depth.predict import model_input_size
from image_to_mesh.inference.runtime.access import ModelAccess
from image_to_mesh.inference.errors import InputError
from image_to_mesh.inference.runtime.store import DownloadCancelled, ModelStore
from image_to_mesh.inference.runtime.cards import InputContract, ModelCard, ModelSource, model_card, model_cards
from image_to_mesh.inference.runtime.onnx_session import onnx_session
from image_to_mesh.inference.photo.photo import Photo
from image_to_mesh.inference.pipeline import image_to_mesh
from image_to_mesh.inference.settings import MeshSettings
from image_to_mesh.operators.builders.objects import build_objects
from mathutils import Vector
from PIL import Image

# --- The registry ---------------------------------------------------------------------------------------


def test_registry_holds_every_family_with_licence_and_contract():
    cards = model_cards()
    for required in ("depth-anything-v2-small", "depth-anything-v2-base", "depth-anything-v2-large",
                     "depth-anything-v2-metric-indoor-large", "depth-anything-v2-metric-outdoor-large",
                     "moge-2-vits", "moge-2-vitb", "moge-2-vitl", "depth-pro", "midas-v21-small"):
        assert required in cards
    assert cards["depth-anything-v2-small"].commercial and cards["depth-anything-v2-small"].license == "Apache-2.0"
    assert not cards["depth-anything-v2-base"].commercial and not cards["depth-anything-v2-large"].commercial
    assert cards["moge-2-vits"].output_kind == "affine-points" and cards["moge-2-vits"].input.num_tokens > 0
    assert cards["depth-pro"].output_kind == "metric-depth-focal"
    for card in cards.values():
        assert card.best_for and card.license and card.size_mb > 0
        assert len(card.source.files) == len(card.source.sha256)
        assert card.source.revision if card.source.kind == "hub" else card.source.url.startswith("https://")
    # Where the hub showed a commit or a hash, the card pins it.
    assert len(cards["depth-anything-v2-small"].source.revision) == 40
    assert len(cards["depth-anything-v2-small"].source.sha256[0]) == 64


def test_input_sizes_follow_each_contract():
    da, midas, moge = model_card("depth-anything-v2-small"), model_card("midas-v21-small"), model_card("moge-2-vits")
    assert model_input_size(da, (1024, 768)) == (686, 518)  # keep aspect, short side 518, multiples of 14
    assert model_input_size(da, (768, 1024)) == (518, 686)
    assert model_input_size(da, (300, 200)) == (784, 518)
    assert model_input_size(midas, (1024, 768)) == (256, 256)
    assert model_input_size(moge, (4000, 3000)) == (1024, 768) and model_input_size(moge, (800, 600)) == (800, 600)
    assert model_input_size(da, (1024, 768), static=(392, 392)) == (392, 392)  # a static graph wins


# --- Each family's contract, end to end -------------------------------------------------------------------


def halves(left, right, size=(300, 200)):
    rgb = np.zeros((size[1], size[0], 3), np.uint8)
    rgb[:, : size[0] // 2], rgb[:, size[0] // 2:] = left, right
    return Photo("halves", rgb, None, size)


def uniform(colour, size=(400, 300)):
    return Photo("uniform", np.full((size[1], size[0], 3), colour, np.uint8), None, size)


def run_model(model_id, model_file, photo, **settings):
    """The pipeline with a local model file, then the Blender objects it builds."""
    access = ModelAccess(ModelStore(model_file.parent / "store", allow_download=False))
    record = image_to_mesh(photo, None, MeshSettings(method="model", model=model_id, model_file=str(model_file),
                                                     **settings), access)
    scene = bpy.context.scene
    mesh_object, camera_object, _ = build_objects(record, scene.collection, scene)
    bpy.context.view_layer.update()
    return record, mesh_object, camera_object


def depths_by_column(record):
    """Vertex depth along the camera axis and the photo column each vertex came from."""
    z = -record.vertices[:, 2]
    u = record.uvs[:, 0] * record.camera.intrinsics.width
    return z, u


def test_depth_anything_contract_rgb_imagenet_disparity(tmp_path):
    # Pure red vs pure blue: after ImageNet normalisation blue has the larger channel mean, so the tiny model
    # gives it the larger disparity: nearer. Without the normalisation both would tie; in BGR order red wins.
    model = tiny_models.channel_mean_depth(tmp_path / "da.onnx")
    record, _, _ = run_model("depth-anything-v2-small", model, halves((255, 0, 0), (0, 0, 255)), near=1.0, far=5.0)
    z, u = depths_by_column(record)
    np.testing.assert_allclose(z[u < 140], 5.0, rtol=1e-3)
    np.testing.assert_allclose(z[u > 160], 1.0, rtol=1e-3)
    assert record.report.method == "model" and record.report.model.id == "depth-anything-v2-small"
    assert any("relative depth" in n for n in record.report.notices)


def test_midas_contract_static_256_unit_range(tmp_path):
    # Green 200 vs red 203: on a 0..1 scale red is larger (nearer); ImageNet normalisation would flip it.
    model = tiny_models.channel_mean_depth(tmp_path / "midas.onnx", "input", "output", static_side=256)
    record, _, _ = run_model("midas-v21-small", model, halves((0, 200, 0), (203, 0, 0)), near=1.0, far=5.0)
    z, u = depths_by_column(record)
    np.testing.assert_allclose(z[u < 140], 5.0, rtol=1e-3)
    assert z[u > 160].max() < 0.6 * z[u < 140].min()


def test_depth_anything_metric_contract_gives_metres(tmp_path):
    model = tiny_models.channel_mean_depth(tmp_path / "metric.onnx", "input", "depth", offset=3.0)
    record, _, _ = run_model("depth-anything-v2-metric-indoor-large", model, uniform((51, 102, 153)))
    expected = 3.0 + np.mean((np.array([0.2, 0.4, 0.6]) - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225])
    np.testing.assert_allclose(-record.vertices[:, 2], expected, rtol=1e-4)


def test_depth_pro_contract_metric_depth_and_focal_length(tmp_path, empty_scene):
    model = tiny_models.depth_and_focal(tmp_path / "depth_pro.onnx", focal_px=1000.0)
    record, mesh_object, camera_object = run_model("depth-pro", model, uniform((51, 102, 153)))
    # [-1, 1] normalisation: (0.2, 0.4, 0.6) -> (-0.6, -0.2, 0.2), mean -0.2, plus the model's 2 m.
    np.testing.assert_allclose(-record.vertices[:, 2], 1.8, rtol=1e-4)
    # The focal length is in pixels of the 1536-wide input, which spans the 400-pixel photo.
    assert record.camera.intrinsics.focal_px == pytest.approx(1000.0 * 400 / 1536, rel=1e-6)
    assert "predicted by Apple Depth Pro" in record.report.camera.source
    assert camera_object.data.lens == pytest.approx(record.camera.intrinsics.focal_px * 36 / 400, rel=1e-5)


def ramp_photo():
    """256 x 192: red = u / 255, green = (v + 32) / 255, blue = v: see tiny_models.ramp_points."""
    v, u = np.mgrid[:192, :256]
    return Photo("ramp", np.stack([u, v + 32, v], axis=-1).astype(np.uint8), None, (256, 192))


def test_moge_contract_recovers_the_camera_scale_mask_and_normals(tmp_path, empty_scene):
    model = tiny_models.ramp_points(tmp_path / "moge.onnx", tokens_per_unit_scale=900.0)
    record, mesh_object, camera_object = run_model("moge-2-vits", model, ramp_photo())
    assert record.camera.intrinsics.focal_px == pytest.approx(255.0, rel=0.01)
    row = (1 - record.uvs[:, 1]) * 192 - 0.5
    # metric_scale = num_tokens / 900 = 2 with the card's 1800 tokens; depth = scale * (1 + blue).
    np.testing.assert_allclose(-record.vertices[:, 2], 2.0 * (1 + row / 255), rtol=0.01)
    # The predicted mask (red > 0.1, i.e. columns 26 and up) removes the left strip.
    assert (record.uvs[:, 0] * 256 > 25).all()
    np.testing.assert_allclose(np.linalg.norm(record.vertex_normals, axis=1), 1.0, atol=1e-3)
    # Seen through the created camera, vertices land on their pixels.
    scene = bpy.context.scene
    co = np.array(mesh_object.data.vertices[0].co)
    world = mesh_object.matrix_world @ Vector(co)
    x, y, _ = world_to_camera_view(scene, camera_object, world)
    assert abs(x * 256 - record.uvs[0, 0] * 256) < 0.5 and abs((1 - y) * 192 - (1 - record.uvs[0, 1]) * 192) < 0.5


def test_moge_on_a_photo_larger_than_its_input_gives_the_photos_camera_and_true_points(tmp_path, empty_scene):
    # A 1600 x 1200 photo of a known scene, seen by a camera of focal length 1600 px: with the tiny MoGe model
    # (tiny_models.ramp_points), red is x / z + 0.5 and green y / z + 0.5 (OpenCV frame), blue the depth. The
    # model sees it shrunk to its 1024 x 768 input (and the photo is loaded at 1024 px, the texture size), so
    # its focal length, found in point-map pixels, must be rescaled to the photo's own.
    width, height, focal = 1600, 1200, 1600.0
    def blue_at(u, v):  # the depth, smooth over the photo: z = 1 + blue / 255 before the metric scale
        return 60 + 40 * np.sin(u / 250) * np.cos(v / 300)

    v, u = np.mgrid[:height, :width] + 0.5  # pixel centres
    rgb = np.stack([np.round(255 * ((u - width / 2) / focal + 0.5)), np.round(255 * ((v - height / 2) / focal + 0.5)),
                    np.round(blue_at(u, v))], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "large.png")
    model = tiny_models.ramp_points(tmp_path / "moge.onnx", tokens_per_unit_scale=900.0)
    access = ModelAccess(ModelStore(tmp_path / "store", allow_download=False))
    record = image_to_mesh(tmp_path / "large.png", None, MeshSettings(
        method="model", model="moge-2-vits", model_file=str(model), resolution=160, texture_size=1024), access)
    assert (record.camera.intrinsics.width, record.camera.intrinsics.height) == (width, height)
    assert record.camera.intrinsics.focal_px == pytest.approx(focal, rel=0.005)

    # Every vertex, seen through the created Blender camera, lands on the pixel its UV names; and it is the
    # scene's true point there: on the true camera's ray through that pixel, at the true depth.
    scene = bpy.context.scene
    mesh_object, camera_object, _ = build_objects(record, scene.collection, scene)
    bpy.context.view_layer.update()
    assert math.degrees(camera_object.data.angle_x) == pytest.approx(2 * math.degrees(math.atan(800 / focal)), abs=0.2)
    arrays = evaluated_mesh_arrays(mesh_object)
    seen_u, seen_v = seen_at(camera_object, arrays["co"], width, height)
    corners, corner_uv = arrays["corner_vert"], arrays["corner_uv"]
    np.testing.assert_allclose(seen_u[corners], corner_uv[:, 0] * width, atol=0.01)
    np.testing.assert_allclose(seen_v[corners], (1 - corner_uv[:, 1]) * height, atol=0.01)
    # The grid: 160 x 120 points, 10 photo pixels apart, at ((j + 0.5) * 10, (i + 0.5) * 10).
    grid_u, grid_v = (np.round(seen_u / 10 - 0.5) + 0.5) * 10, (np.round(seen_v / 10 - 0.5) + 0.5) * 10
    np.testing.assert_allclose(seen_u, grid_u, atol=0.01)
    np.testing.assert_allclose(seen_v, grid_v, atol=0.01)
    camera_frame = -record.vertices[:, 2]
    np.testing.assert_allclose(camera_frame, 2.0 * (1 + blue_at(grid_u, grid_v) / 255), rtol=0.01)  # scale 1800 / 900
    np.testing.assert_allclose(record.vertices[:, 0] / camera_frame, (grid_u - width / 2) / focal, atol=2 / focal)
    np.testing.assert_allclose(record.vertices[:, 1] / camera_frame, (height / 2 - grid_v) / focal, atol=2 / focal)


def test_depth_edges_land_on_the_photos_edges_within_a_pixel(tmp_path):
    # MiDaS sees a 768 x 512 photo at 256 x 256, so its depth is upsampled three times over. The photo's edge
    # (dark left, bright right; between columns 300 and 301, off the model's grid) is a depth edge too: the
    # guided upsampling must put the depth step there, not smear it over the several pixels plain bilinear
    # interpolation spreads it across. Full resolution and no face cut: a vertex per pixel.
    rgb = np.full((512, 768, 3), 40, np.uint8)
    rgb[:, 301:] = 220
    model = tiny_models.channel_mean_depth(tmp_path / "midas.onnx", "input", "output", static_side=256)
    access = ModelAccess(ModelStore(tmp_path / "store", allow_download=False))
    record = image_to_mesh(Photo("edge", rgb, None, (768, 512)), None, MeshSettings(
        method="model", model="midas-v21-small", model_file=str(model), resolution=768, edge_threshold=90,
        near=1.0, far=5.0), access)
    assert len(record.vertices) == 768 * 512
    depth = (-record.vertices[:, 2]).reshape(512, 768)  # row-major on the pixel grid
    np.testing.assert_allclose(depth[:, :300], 5.0, rtol=1e-3)  # far: the dark side, up to a pixel from the edge
    np.testing.assert_allclose(depth[:, 302:], 1.0, rtol=1e-3)  # near: the bright side


def test_moge_focal_recovery_from_a_known_camera_within_one_percent():
    rng = np.random.default_rng(3)
    for width, height, focal in ((640, 480, 500.0), (480, 640, 900.0), (1000, 500, 350.0)):
        v, u = np.mgrid[:height, :width] + 0.5
        z = 2.0 + 0.003 * v + 0.4 * np.sin(u / 60) + rng.normal(0, 0.002, (height, width))
        points = np.stack([(u - width / 2) / focal * z, (v - height / 2) / focal * z, z], axis=-1)
        scale, shift = 0.37, 1.4  # MoGe's ambiguity: unknown scale, unknown shift along z
        affine = np.stack([points[..., 0], points[..., 1], points[..., 2] - shift], axis=-1) * scale
        found_focal, found_shift = recover_focal_shift(affine, np.ones((height, width), bool))
        assert found_focal == pytest.approx(focal, rel=0.01)
        assert found_shift == pytest.approx(scale * shift, rel=0.02)
        fov = math.degrees(2 * math.atan(width / 2 / focal))
        assert recover_focal_shift(affine, np.ones((height, width), bool), fov)[1] == pytest.approx(scale * shift, rel=0.02)


def test_a_model_file_that_is_not_onnx_is_one_sentence(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_text("not a model")
    with pytest.raises(InputError, match="not a valid ONNX model"):
        run_model("depth-anything-v2-small", bad, uniform((10, 20, 30)))


def test_unavailable_device_falls_back_to_the_cpu_with_a_notice(tmp_path):
    model = tiny_models.channel_mean_depth(tmp_path / "da.onnx")
    session, notices = onnx_session(model, "cuda")
    assert session.get_providers()[0] == "CPUExecutionProvider"
    assert notices and "running on the CPU" in notices[0]


# --- Downloads against a local hub ------------------------------------------------------------------------


@pytest.fixture
def hub():
    server = HubServer()
    yield server
    server.close()


BLOB = np.random.default_rng(7).integers(0, 256, 3 * 1024 * 1024, dtype=np.uint8).tobytes()  # 3 MiB


def served_card(hub, content=BLOB, sha=None, kind="hub", commercial=True, card_id="tiny-depth"):
    hub.files["tests/tiny-depth/onnx/model.onnx"] = content
    hub.files["files/model.onnx"] = content
    digest = hashlib.sha256(content).hexdigest() if sha is None else sha
    return ModelCard(
        id=card_id, name="Tiny Depth", best_for="tests", license="MIT" if commercial else "CC-BY-NC-4.0",
        commercial=commercial, size_mb=3,
        source=ModelSource(kind=kind, files=("onnx/model.onnx",), sha256=(digest,), repo="tests/tiny-depth",
                           revision="main", url=f"{hub.url}/files/model.onnx"),
        input=InputContract("multiple-of-14", 518, "imagenet"),
        output_names=("predicted_depth",), output_kind="relative-disparity",
    )


def store_in(tmp_path, hub, **kwargs):
    return ModelStore(tmp_path / "models", endpoint=hub.url, use_user_cache=False, **kwargs)


def kept_files(folder):
    """Model data left in a models folder (bookkeeping such as locks and the hash record aside)."""
    return [p for p in folder.rglob("*") if p.is_file() and p.stat().st_size > 0
            and p.name not in ("hashes.json", "CACHEDIR.TAG") and p.suffix != ".lock" and p.parent.name != "refs"]


def test_download_is_verified_and_then_reused_from_the_cache(tmp_path, hub):
    card = served_card(hub)
    seen = []
    (path,) = store_in(tmp_path, hub).fetch(card, progress=lambda name, done, total: seen.append((done, total)))
    assert path.read_bytes() == BLOB and seen[-1] == (len(BLOB), len(BLOB))
    requests = len(hub.requests)
    (again,) = store_in(tmp_path, hub).fetch(card)  # a new run: found on disk, nothing asked of the server
    assert again == path and len(hub.requests) == requests


def test_interrupted_transfer_is_resumed(tmp_path, hub):
    # huggingface_hub writes 10 MiB chunks: cut a 24 MiB transfer at 12 MiB so one chunk has landed.
    big = np.random.default_rng(8).integers(0, 256, 24 * 1024 * 1024, dtype=np.uint8).tobytes()
    card = served_card(hub, content=big)
    hub.cut_next_transfers = 1
    (path,) = store_in(tmp_path, hub).fetch(card)
    assert path.read_bytes() == big
    assert any(r[2] and int(r[2].split("=")[1].split("-")[0]) > 0 for r in hub.gets())  # continued, not restarted


def test_wrong_hash_is_rejected_and_the_file_not_kept(tmp_path, hub):
    card = served_card(hub, sha=hashlib.sha256(b"the real model").hexdigest())
    with pytest.raises(InputError, match="does not match the SHA-256"):
        store_in(tmp_path, hub).fetch(card)
    assert kept_files(tmp_path / "models") == []


def test_a_file_that_changes_after_its_first_download_is_refused(tmp_path, hub):
    card = served_card(hub, sha="")  # no published hash: recorded on first download
    store_in(tmp_path, hub).fetch(card)
    for file in (tmp_path / "models" / "hub").rglob("*"):
        if file.is_file() or file.is_symlink():
            file.unlink()
    served_card(hub, content=BLOB[::-1], sha="")
    with pytest.raises(InputError, match="does not match"):
        store_in(tmp_path, hub).fetch(card)


def test_offline_refusal_names_the_file_url_and_folder(tmp_path, hub):
    card = served_card(hub)
    store = store_in(tmp_path, hub, allow_download=False, offline_reason="Blender's online access is off")
    with pytest.raises(InputError) as refused:
        store.fetch(card)
    message = str(refused.value)
    assert "online access is off" in message and "tests/tiny-depth/resolve/main/onnx/model.onnx" in message
    assert str(store.manual_folder(card)) in message and hub.requests == []


def test_a_copy_put_in_the_models_folder_by_hand_is_used_offline(tmp_path, hub):
    card = served_card(hub)
    store = store_in(tmp_path, hub, allow_download=False)
    store.manual_folder(card).mkdir(parents=True)
    (store.manual_folder(card) / "model.onnx").write_bytes(BLOB)
    assert store.fetch(card)[0].read_bytes() == BLOB and hub.requests == []


def test_cancelled_download_keeps_nothing(tmp_path, hub):
    card = served_card(hub)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DownloadCancelled):
        store_in(tmp_path, hub).fetch(card, cancel=cancel)
    assert kept_files(tmp_path / "models") == []


def test_non_commercial_model_needs_the_licence_accepted(tmp_path, hub):
    card = served_card(hub, commercial=False)
    with pytest.raises(InputError, match="accept its licence"):
        store_in(tmp_path, hub).fetch(card)
    assert hub.requests == []
    assert store_in(tmp_path, hub).fetch(card, license_accepted=True)[0].read_bytes() == BLOB


def test_a_model_in_the_users_own_hugging_face_cache_is_reused(tmp_path, hub, monkeypatch):
    from huggingface_hub import constants, hf_hub_download

    user_cache = tmp_path / "user-hf-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(user_cache))
    card = served_card(hub)
    hf_hub_download("tests/tiny-depth", "onnx/model.onnx", revision="main", cache_dir=user_cache, endpoint=hub.url)
    requests = len(hub.requests)
    store = ModelStore(tmp_path / "models", allow_download=False, use_user_cache=True)
    (path,) = store.fetch(card)
    assert str(path).startswith(str(user_cache)) and len(hub.requests) == requests


def test_plain_url_download_resumes_across_runs(tmp_path, hub):
    card = served_card(hub, kind="url")
    hub.cut_next_transfers = 1
    with pytest.raises(InputError, match="Run it again to resume"):
        store_in(tmp_path, hub).fetch(card)
    part = store_in(tmp_path, hub).manual_folder(card) / "model.onnx.part"
    kept = part.stat().st_size
    assert 0 < kept < len(BLOB)
    (path,) = store_in(tmp_path, hub).fetch(card)
    assert path.read_bytes() == BLOB and not part.exists()
    assert hub.gets()[-1][2] == f"bytes={kept}-"  # continued where the first run stopped


# --- Choosing a model: --method auto, the CLI and the operator --------------------------------------------


@pytest.fixture
def models_folder_with_midas(tmp_path):
    """A models folder holding a (tiny) MiDaS Small, as if put there by hand."""
    folder = tmp_path / "models"
    tiny_models.channel_mean_depth(folder / "midas-v21-small" / "model-small.onnx", "input", "output", static_side=256)
    return folder


def test_auto_uses_a_model_already_present_and_reports_which(models_folder_with_midas):
    access = ModelAccess(ModelStore(models_folder_with_midas, allow_download=False, use_user_cache=False))
    record = image_to_mesh(halves((0, 200, 0), (203, 0, 0)), None, MeshSettings(), access)
    assert record.report.method == "model" and record.report.model.id == "midas-v21-small"


def cli(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=dict(os.environ, HF_HUB_OFFLINE="1"))


def test_cli_lists_models_and_what_is_downloaded(models_folder_with_midas, tmp_path):
    run = cli("--list-models", "--cache-dir", models_folder_with_midas, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    lines = {line.split()[0]: line for line in run.stdout.splitlines() if line.strip()}
    assert set(lines) == set(model_cards())
    assert "downloaded yes" in lines["midas-v21-small"] and "downloaded no" in lines["depth-anything-v2-small"]
    assert "commercial yes" in lines["depth-anything-v2-small"] and "commercial no" in lines["depth-anything-v2-base"]


def test_cli_auto_runs_the_present_model_and_offline_without_one_says_what_to_do(models_folder_with_midas, tmp_path):
    photo = tmp_path / "halves.png"
    from PIL import Image

    Image.fromarray(halves((0, 200, 0), (203, 0, 0)).rgb).save(photo)
    run = cli(photo, "-o", tmp_path / "out.glb", "--cache-dir", models_folder_with_midas, "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)["results"][0]
    assert result["method"] == "model" and result["model"]["id"] == "midas-v21-small"

    run = cli(photo, "-o", tmp_path / "none.glb", "--cache-dir", tmp_path / "empty", cwd=tmp_path)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    (line,) = [line for line in run.stderr.splitlines() if line.startswith("image_to_mesh:")]
    assert "not downloaded" in line and "--online" in line and not (tmp_path / "none.glb").exists()


def test_operator_runs_a_model_from_the_preferences_models_folder(empty_scene, models_folder_with_midas, tmp_path):
    photo = tmp_path / "halves.png"
    from PIL import Image

    Image.fromarray(halves((0, 200, 0), (203, 0, 0)).rgb).save(photo)
    prefs = bpy.context.preferences.addons["bl_ext.dev.image_to_mesh"].preferences
    prefs.models_folder = str(models_folder_with_midas)
    try:
        assert bpy.ops.image_to_mesh.generate(photo_path=str(photo), method="model",
                                              model="midas-v21-small") == {"FINISHED"}
        assert [o.name for o in empty_scene.objects if o.type == "MESH"] == ["halves"]
        with pytest.raises(RuntimeError, match="online access is off"):
            bpy.ops.image_to_mesh.generate(photo_path=str(photo), method="model", model="moge-2-vits")
        assert len([o for o in empty_scene.objects if o.type == "MESH"]) == 1
    finally:
        prefs.models_folder = ""


def test_background_job_runs_the_pipeline_off_the_main_thread(models_folder_with_midas):
    from image_to_mesh.inference.runtime.jobs import ThreadJob

    def run(settings):
        job = ThreadJob()
        access = ModelAccess(ModelStore(models_folder_with_midas, allow_download=False, use_user_cache=False),
                             progress=job.progress, cancel=job.cancel_token)
        job.start(image_to_mesh, halves((0, 200, 0), (203, 0, 0)), None, settings, access)
        assert job.wait(timeout=120)
        return job

    job = run(MeshSettings(method="model", model="midas-v21-small"))
    assert job.error is None and job.result.report.model.id == "midas-v21-small"
    job = run(MeshSettings(method="model", model="moge-2-vits"))
    assert job.result is None and "not downloaded" in job.error


@pytest.mark.parametrize("closure", ["solidify", "mirror"])
def test_moge_normals_survive_closing_the_object(tmp_path, empty_scene, closure):
    # The model's normals shade the front; a closed object keeps them there, and each back twin's normal is
    # its front's turned away: mirrored about the silhouette plane, or reversed behind a solidified shell.
    model = tiny_models.ramp_points(tmp_path / "moge.onnx", tokens_per_unit_scale=900.0)
    open_record, _, _ = run_model("moge-2-vits", model, ramp_photo())
    record, mesh_object, _ = run_model("moge-2-vits", model, ramp_photo(), closure=closure, mask="none")
    normals = record.vertex_normals
    assert normals is not None and len(normals) == len(record.vertices)
    front = len(open_record.vertices)
    np.testing.assert_allclose(normals[:front], open_record.vertex_normals, atol=1e-6)
    assert len(normals) == 2 * front  # no bow-ties on a full grid: the back twins follow in the same order
    turned = normals[:front] * ([-1, -1, -1] if closure == "solidify" else [1, 1, -1])
    np.testing.assert_allclose(normals[front:], turned, atol=1e-6)
    assert mesh_object.data.has_custom_normals
