"""The object generator: its own environment (real pip, real torch 2.13 CPU, real hy3dgen 2.0.2), the real worker
process over JSON lines, and tiny Hunyuan3D-2 models with random weights built by hy3dgen's own classes in the
official folder layout (scripts/make_tiny_hunyuan.py) at test time.

The environment is CI's .cache/generator-env (`make test` builds it); missing, it is built here. It is never
skipped: if it cannot be built, these tests fail with the set-up's sentence.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import FAST, GENERATOR_ENV, ROOT
from image_to_mesh.inference.errors import InputError
from image_to_mesh.inference.generate.shape_models import local_model_folders, model_folders, shape_request
from image_to_mesh.inference.generate.worker_client import GenerationCancelled, GeneratorWorker, ShapeRequest
from image_to_mesh.inference.generate.worker_env import (
    MARKER,
    SetupCancelled,
    WorkerEnvironment,
    check_environment,
    create_environment,
    ensure_environment,
    lock_for,
    probe_base_python,
    remove_environment,
    setup_plan,
)
from image_to_mesh.inference.runtime.store import ModelStore
from image_to_mesh.inference.runtime.cards import model_card, task_cards
from PIL import Image

# The worker runs in its own Python, whatever Blender line the suite runs in: .ci/run runs these once.
pytestmark = pytest.mark.generator

def run_in_env(env: WorkerEnvironment, code: str, *args) -> str:
    """A script run by the generator environment's Python, with the worker's folder importable."""
    run = subprocess.run([str(env.python), "-I", "-c", code, str(ROOT / "inference" / "generate"), *map(str, args)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout


@pytest.fixture(scope="module")
def worker(generator_env):
    with GeneratorWorker(generator_env, idle_timeout_s=600) as running:
        yield running


def assert_sane_mesh(mesh, uvs=True):
    v, f = mesh.vertices, mesh.faces
    assert v.dtype == np.float32 and v.ndim == 2 and v.shape[1] == 3 and len(v) > 100
    assert f.dtype == np.int32 and f.ndim == 2 and f.shape[1] == 3 and len(f) > 100
    assert np.isfinite(v).all() and np.abs(v).max() <= 1.0101  # hy3dgen's decoding box
    assert f.min() >= 0 and f.max() < len(v)
    assert (f[:, 0] != f[:, 1]).all() and (f[:, 1] != f[:, 2]).all() and (f[:, 0] != f[:, 2]).all()
    assert len(np.unique(f)) == len(v)  # every vertex is used
    if uvs:
        assert mesh.uvs.dtype == np.float32 and mesh.uvs.shape == (len(v), 2)
        assert mesh.uvs.min() >= 0 and mesh.uvs.max() <= 1 and np.ptp(mesh.uvs, axis=0).min() > 0.5
    else:
        assert mesh.uvs is None


# --- end to end ---------------------------------------------------------------------------------------------------


def test_a_hand_placed_model_runs_through_the_real_worker_and_stays_warm(worker, tiny_models, subject_png, tmp_path):
    # The tiny model put by hand where the store looks for hunyuan3d-2 (its repository layout), found, run.
    card = model_card("hunyuan3d-2", task="object")
    store = ModelStore(tmp_path / "models", allow_download=False, use_user_cache=False)
    shutil.copytree(tiny_models / "hunyuan3d-dit-v2-mini-tiny", store.manual_folder(card) / "hunyuan3d-dit-v2-0")
    dit, vae = model_folders(card, store.fetch(card))
    assert dit == store.manual_folder(card) / "hunyuan3d-dit-v2-0" and vae is None
    events = []
    request = shape_request(card, subject_png, dit, vae, **FAST)
    assert request.flashvdm  # the card's default: FlashVDM with the model's own VAE
    mesh = worker.generate(request, progress=events.append)
    assert_sane_mesh(mesh)
    # FlashVDM decodes 4k-1 cells per side at its coarsest level: 64 asked, 63 decoded, and marching cubes scaled
    # by 63 (hy3dgen itself would scale by 64 and shrink the mesh).
    assert mesh.report["octree_resolution"] == 63 and mesh.report["faces"] == len(mesh.faces)

    stages = [(e.stage, e.step, e.steps) for e in events]
    assert stages[:2] == [("load", 0, 1), ("load", 1, 1)]
    assert [s for s in stages if s[0] == "diffusion"] == [("diffusion", i, 2) for i in range(3)]
    assert [s for s in stages if s[0] == "decode"] == [("decode", i, 3) for i in range(4)]
    assert stages[-1] == ("uv", 1, 1)
    assert all(a.seconds <= b.seconds for a, b in zip(events, events[1:]))

    # Warm: the same process answers the next request without loading again, and the same seed gives the same mesh.
    pid, again = worker.pid, []
    second = worker.generate(request, progress=again.append)
    assert worker.pid == pid and "load" not in {e.stage for e in again}
    np.testing.assert_array_equal(second.vertices, mesh.vertices)
    np.testing.assert_array_equal(second.faces, mesh.faces)
    assert not list(worker.log_path.parent.glob("*.npz"))  # each mesh file is deleted once read


def test_turbo_model_decodes_with_flashvdm_and_its_own_vae_from_a_local_folder(worker, tiny_models, subject_png,
                                                                               tmp_path):
    # --model-file: a local folder in the repository's layout, with the turbo DiT and the turbo VAE beside it.
    card = model_card("hunyuan3d-2mini-turbo", task="object")
    shutil.copytree(tiny_models / "hunyuan3d-dit-v2-mini-tiny-turbo", tmp_path / "hunyuan3d-dit-v2-mini-turbo")
    shutil.copytree(tiny_models / "hunyuan3d-vae-v2-mini-tiny", tmp_path / "hunyuan3d-vae-v2-mini-turbo")
    dit, vae = local_model_folders(card, tmp_path)
    assert (dit, vae) == (tmp_path / "hunyuan3d-dit-v2-mini-turbo", tmp_path / "hunyuan3d-vae-v2-mini-turbo")
    request = shape_request(card, subject_png, dit, vae, steps=2, octree_resolution=64, target_faces=1000)
    assert request.flashvdm and request.guidance == card.generator.guidance
    mesh = worker.generate(request)
    assert_sane_mesh(mesh)
    assert mesh.report["octree_resolution"] == 63
    assert mesh.report["faces"] <= 1000 < mesh.report["raw_faces"]  # FaceReducer met the budget


def test_plain_decoding_without_uvs_and_with_a_face_budget(worker, tiny_models, subject_png):
    request = ShapeRequest(image=subject_png, dit_folder=tiny_models / "hunyuan3d-dit-v2-mini-tiny", uv=False,
                           target_faces=2000, **FAST)
    assert not request.flashvdm
    mesh = worker.generate(request)
    assert_sane_mesh(mesh, uvs=False)
    assert mesh.report["octree_resolution"] == 64  # every grid point decoded
    assert len(mesh.faces) <= 2000 < mesh.report["raw_faces"]  # FaceReducer met the budget


# --- cancel, crashes, bad input: one sentence, never a hang -------------------------------------------------------


def test_cancel_kills_the_worker_tree_at_once_and_leaves_nothing(generator_env, tiny_models, subject_png):
    worker = GeneratorWorker(generator_env)
    worker.start()
    group, folder = worker.pid, worker.log_path.parent
    decoding = threading.Event()
    seen_alive_after_cancel = []

    def press_escape():  # what Blender's modal operator does on Esc, from its own thread
        decoding.wait(timeout=300)
        worker.cancel()
        seen_alive_after_cancel.append(_group_alive(group))

    escape = threading.Thread(target=press_escape)
    escape.start()
    request = ShapeRequest(image=subject_png, dit_folder=tiny_models / "hunyuan3d-dit-v2-mini-tiny", **FAST)
    with pytest.raises(GenerationCancelled) as cancelled:
        worker.generate(request, progress=lambda p: p.stage == "decode" and decoding.set())
    escape.join()
    assert decoding.is_set() and str(cancelled.value) == "Object generation was cancelled."
    assert seen_alive_after_cancel == [False]  # cancel() returns only once the whole process group is gone
    assert not _group_alive(group) and not worker.running
    assert not folder.exists()  # the private folder, and anything half-written in it, is gone
    worker.close()


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_killed_worker_is_one_sentence_and_the_next_request_starts_a_new_one(generator_env, tiny_models,
                                                                               subject_png):
    worker = GeneratorWorker(generator_env)
    request = ShapeRequest(image=subject_png, dit_folder=tiny_models / "hunyuan3d-dit-v2-mini-tiny", **FAST)

    def out_of_memory(progress):  # the kernel's out-of-memory killer sends SIGKILL
        if progress.stage == "diffusion" and worker.running:
            os.kill(worker.pid, signal.SIGKILL)

    with pytest.raises(InputError) as killed:
        worker.generate(request, progress=out_of_memory)
    message = str(killed.value)
    assert not isinstance(killed.value, GenerationCancelled)
    assert "\n" not in message and "Traceback" not in message
    assert "killed" in message and "memory" in message and "octree resolution" in message
    assert not worker.running
    worker.close()


def test_photo_without_alpha_and_a_foreign_config_are_refused_in_one_sentence(worker, tiny_models, subject_png,
                                                                              tmp_path):
    rgb = tmp_path / "no-alpha.jpg"
    Image.open(subject_png).convert("RGB").save(rgb)
    with pytest.raises(InputError, match=r"has no alpha channel: object generation needs the subject cut out"):
        worker.generate(ShapeRequest(image=rgb, dit_folder=tiny_models / "hunyuan3d-dit-v2-mini-tiny", **FAST))

    # config.yaml's targets are imported and called by hy3dgen: anything outside hy3dgen.shapegen is refused.
    hostile = tmp_path / "hostile"
    shutil.copytree(tiny_models / "hunyuan3d-dit-v2-mini-tiny", hostile)
    config = (hostile / "config.yaml").read_text()
    (hostile / "config.yaml").write_text(config.replace("hy3dgen.shapegen.preprocessors.ImageProcessorV2", "os.system"))
    with pytest.raises(InputError, match="names classes outside hy3dgen.shapegen: it was refused"):
        worker.generate(ShapeRequest(image=subject_png, dit_folder=hostile, **FAST))
    assert worker.running  # a refused request leaves the worker serving


def test_idle_worker_exits_and_the_next_request_restarts_it(generator_env, tiny_models, subject_png):
    worker = GeneratorWorker(generator_env, idle_timeout_s=1)
    request = ShapeRequest(image=subject_png, dit_folder=tiny_models / "hunyuan3d-dit-v2-mini-tiny", uv=False, **FAST)
    worker.generate(request)
    first = worker.pid
    deadline = time.monotonic() + 120
    while worker.running and time.monotonic() < deadline:  # it leaves by itself, model and all, once idle
        time.sleep(0.1)
    assert not worker.running
    assert_sane_mesh(worker.generate(request), uvs=False)
    assert worker.pid != first
    worker.close()


# --- the environment ----------------------------------------------------------------------------------------------


def test_missing_broken_or_outdated_environment_names_the_fix(generator_env, tmp_path):
    fix = 'press "Set up object generation" (command line: --setup-generator)'
    with pytest.raises(InputError) as missing:
        check_environment(tmp_path / "nothing")
    assert str(missing.value) == f"Object generation is not set up: {fix}."

    broken = tmp_path / "broken"
    shutil.copytree(generator_env.folder, broken, symlinks=True,
                    ignore=lambda folder, names: [n for n in names if n == "lib"])  # no packages: quick copy
    (broken / "bin" / "python").unlink()
    with pytest.raises(InputError, match=r"is broken \(its Python is gone\): press \"Set up object generation\""):
        check_environment(broken)
    gone = WorkerEnvironment(broken, broken / "bin" / "python", "cpu", "x", "", True)
    with pytest.raises(InputError, match="--setup-generator"):
        GeneratorWorker(gone).generate(ShapeRequest(image=Path("x.png"), dit_folder=broken))

    outdated = tmp_path / "outdated"
    shutil.copytree(broken, outdated, symlinks=True)
    (outdated / "bin" / "python").symlink_to(sys.executable)
    marker = json.loads((outdated / MARKER).read_text())
    (outdated / MARKER).write_text(json.dumps({**marker, "lock_sha256": "0" * 64}))
    with pytest.raises(InputError, match=r"out of date for this version of Image to Mesh: press"):
        check_environment(outdated)

    # "Remove" deletes it all.
    assert remove_environment(outdated) > 0 and not outdated.exists()
    assert remove_environment(outdated) == 0


def test_a_cancelled_set_up_leaves_nothing(generator_env, tmp_path):
    folder = tmp_path / "generator-env"
    cancel = threading.Event()
    cancel.set()  # Esc at once: the virtual environment's creation is killed, then everything is removed
    base = probe_base_python(generator_env.python).path
    if shutil.disk_usage(tmp_path).free / 1e6 < setup_plan(folder, "cpu", base).installed_mb * 1.5:
        # A disk too small for the environment (CI's /tmp can be) is refused first, before anything is made.
        with pytest.raises(InputError, match=r"^Object generation needs about \d+\.\d GB free next to .*, and "):
            create_environment(folder, "cpu", base, cancel=cancel)
    else:
        with pytest.raises(SetupCancelled, match="cancelled; nothing was kept"):
            create_environment(folder, "cpu", base, cancel=cancel)
    assert not folder.exists()


def test_set_up_plan_states_what_downloads_how_big_and_where(generator_env, tmp_path):
    plan = setup_plan(tmp_path / "generator-env", "cpu", probe_base_python(generator_env.python).path)
    text = plan.describe()
    assert plan.lock.name == "cpu-linux-x64-py311.txt" and plan.wheels > 40 and 300 < plan.download_mb < 1000
    assert f"{plan.download_mb:.0f} MB" in text and str(tmp_path / "generator-env") in text and "GB on disk" in text
    assert generator_env.torch_version.startswith("2.13.0") and generator_env.lock == plan.lock.name
    # Every wheel is pinned by hash, torch is the CPU build, and torchvision is never installed.
    lines = [line for line in plan.lock.read_text().splitlines() if line and not line.startswith("#")]
    assert all(" --hash=sha256:" in line for line in lines)
    assert any(line.startswith("torch===2.13.0+cpu ") for line in lines)
    assert not any(line.startswith(("torchvision", "gradio", "rembg")) for line in lines)
    assert any(line.startswith("xatlas==") for line in lines)
    assert any(line.startswith("hy3dgen==2.0.2") for line in lines)

    cuda = setup_plan(tmp_path / "generator-env", "cuda", probe_base_python(generator_env.python).path)
    assert cuda.lock.name == "cuda-linux-x64-py311.txt" and cuda.download_mb > 2000  # NVIDIA's libraries

    base = probe_base_python(generator_env.python)
    with pytest.raises(InputError, match=r"no locked packages for Python 3\.99 on linux-x64: give a Python 3\.11"):
        lock_for("cpu", type(base)(base.path, "3.99", base.platform))
    with pytest.raises(InputError, match="MPS device is not available on linux-x64"):
        lock_for("mps", base)


def test_blender_side_modules_never_import_torch():
    code = f"""
import sys
sys.path.insert(0, {str(ROOT)!r})
import cli
cli.load_package()
from image_to_mesh.inference.generate import shape_models, worker_client, worker_env
print(sorted(m for m in ("torch", "hy3dgen", "transformers", "diffusers") if m in sys.modules))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


# --- what the worker relies on, checked in its own environment ----------------------------------------------------


def test_torchvision_stand_in_gives_torchvisions_tensor_results_and_then_disappears(generator_env):
    code = """
import sys
sys.path.insert(0, sys.argv[1])
import torch, torch.nn.functional as F
import torchvision_stand_in as T
shapegen = T.import_hy3dgen()
from hy3dgen.shapegen.models import conditioner
assert conditioner.transforms is T and "torchvision" not in sys.modules
import importlib.util
assert importlib.util.find_spec("torchvision") is None  # transformers and diffusers see no torchvision
x = torch.rand(1, 3, 100, 200)
r = T.Resize(518, T.InterpolationMode.BILINEAR, antialias=True)(x)
assert r.shape == (1, 3, 518, 1036)
assert torch.equal(r, F.interpolate(x, size=(518, 1036), mode="bilinear", align_corners=False, antialias=True))
assert T.Resize(50)(x).shape == (1, 3, 50, 100)  # downscaling: antialiased like torchvision
c = T.CenterCrop(80)(x)
assert torch.equal(c, x[..., 10:90, 60:140])
padded = T.CenterCrop(120)(x[..., :, :90])
assert padded.shape == (1, 3, 120, 120) and torch.equal(padded[..., 10:110, 15:105], x[..., :, :90])
n = T.Normalize([0.5, 0.25, 0.0], [0.5, 0.5, 2.0])(torch.ones(1, 3, 2, 2))
assert torch.allclose(n[0, :, 0, 0], torch.tensor([1.0, 1.5, 0.5]))
print("ok")
"""
    assert run_in_env(generator_env, code).strip().endswith("ok")


def test_surface_faces_are_counter_clockwise_from_outside(generator_env):
    # A sphere through hy3dgen's own marching cubes and this worker's export: positive signed volume.
    code = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, torch
import hunyuan
from hy3dgen.shapegen.models.autoencoders import MCSurfaceExtractor

x = np.linspace(-1.01, 1.01, 65)
X, Y, Z = np.meshgrid(x, x, x, indexing="ij")
field = 0.5 - np.sqrt((X - 0.3) ** 2 + Y ** 2 + Z ** 2)  # occupancy logits: positive inside
grid = torch.from_numpy(field)[None].float()
(surface,) = MCSurfaceExtractor()(grid, mc_level=0.0, bounds=1.01, octree_resolution=64)
mesh = hunyuan.mesh_from_surface(surface)
v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
print(float(np.einsum("ij,ij->i", v[f[:, 0]], np.cross(v[f[:, 1]], v[f[:, 2]])).sum() / 6), float(v[:, 0].mean()))
"""
    volume, centre_x = map(float, run_in_env(generator_env, code).split())
    assert 0.9 * (4 / 3 * np.pi * 0.5**3) < volume < 1.01 * (4 / 3 * np.pi * 0.5**3)
    assert 0.25 < centre_x < 0.32  # +X stays +X


# --- the cards ----------------------------------------------------------------------------------------------------


def test_object_cards_describe_hunyuan3d_2_models():
    cards = {key: card for key, card in task_cards("object").items() if card.generator.family == "hunyuan3d-2"}
    assert list(cards) == ["hunyuan3d-2mini", "hunyuan3d-2mini-turbo", "hunyuan3d-2mini-fast", "hunyuan3d-2",
                           "hunyuan3d-2mv", "hunyuan3d-2mv-turbo", "hunyuan3d-2mv-fast"]
    assert [c.generator.multiview for c in cards.values()] == [False] * 4 + [True] * 3
    for card in cards.values():
        spec = card.generator
        assert card.runtime == "torch-worker" and card.output_kind == "mesh" and card.input is None
        assert not card.commercial and "EU, UK or South Korea" in card.license_terms
        assert card.source.kind == "hub" and card.source.layout == "repo" and card.source.revision
        assert f"{spec.subfolder}/config.yaml" in card.source.files
        assert f"{spec.subfolder}/model.fp16.safetensors" in card.source.files
        assert not spec.vae_subfolder or f"{spec.vae_subfolder}/model.fp16.safetensors" in card.source.files
        assert len(card.source.sha256) == len(card.source.files)
    turbo = cards["hunyuan3d-2mini-turbo"].generator
    assert turbo.steps == 5 and turbo.vae_subfolder == "hunyuan3d-vae-v2-mini-turbo"
    assert all(card.generator.flashvdm for card in cards.values())  # plain decoding takes hours on a CPU
    assert len(cards["hunyuan3d-2mini"].source.revision) == 40
    # Downloading asks for the licence first, with its terms in the sentence.
    store = ModelStore(Path("/nonexistent"), use_user_cache=False)
    with pytest.raises(InputError, match=r"licensed Tencent Hunyuan 3D 2\.0 Community License \(not in the EU"):
        store.fetch(cards["hunyuan3d-2mini"])
    assert model_card("depth-anything-v2-small").runtime == "onnx"  # depth cards unchanged
