"""TripoSR, our own implementation (inference/generate/triposr.py), against numbers the authors' code computed
(tests/fixtures/triposr, made by scripts/make_triposr_fixture.py from their checkout), run by the generator
environment's Python and through the real worker."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from conftest import ROOT
from image_to_mesh.inference.errors import InputError
from image_to_mesh.inference.generate.shape_models import local_model_folders, model_folders, shape_request
from image_to_mesh.inference.runtime.cards import model_card, task_cards
from test_generator_worker import assert_sane_mesh, run_in_env, worker  # noqa: F401  (a fixture)

pytestmark = pytest.mark.generator

FIXTURE = ROOT / "tests" / "fixtures" / "triposr"


def tiny_model(generator_env, out: Path, *form: str) -> Path:
    """The fixture's tiny model folder (config.yaml + model.ckpt, or model.safetensors with form "--safetensors"),
    its weights made from their recorded names and shapes by tests/triposr_weights.py with the generator
    environment's torch: the authors' run used the same."""
    import subprocess

    run = subprocess.run([str(generator_env.python), str(ROOT / "tests" / "triposr_weights.py"), str(FIXTURE),
                          str(out), *form], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def tiny(generator_env, tmp_path_factory) -> Path:
    return tiny_model(generator_env, tmp_path_factory.mktemp("triposr"))


def sha256_of(folder: Path) -> str:
    import hashlib

    return hashlib.sha256((folder / "model.ckpt").read_bytes()).hexdigest()


def test_tiny_model_gives_the_authors_tokens_triplanes_density_mesh_and_colours(generator_env, tiny):
    # The authors' code ran this checkpoint on this photo (chunks of 4096 points); ours runs chunks of 5000.
    code = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import numpy as np, torch, triposr
from shape_output import load_subject

folder = Path(sys.argv[2])
ref = np.load(folder / "reference.npz")
model = triposr.load_model(Path(sys.argv[4]), sys.argv[3])
with torch.inference_mode():
    pixels, _square = triposr.conditioning_image(load_subject(folder / "subject.png"), 512)
    tokens = model.network.image_tokens(pixels)
    planes = model.network.triplanes(tokens)
    grid = triposr.density_grid(model, planes[0], int(ref["resolution"]), 5000, lambda *a: None)
vertices, faces = triposr.surface(grid, model.network.config.radius)
colours = triposr.vertex_colours(model, planes[0], ref["vertices"], 3000)  # at the authors' vertices
relative = lambda ours, theirs: float(np.abs(np.asarray(ours) - theirs).max() / np.abs(theirs).max())
print(json.dumps({
    "tokens": relative(tokens, ref["image_tokens"]), "triplanes": relative(planes, ref["triplanes"]),
    "density": float(np.abs(grid / ref["density"] - 1).max()), "colours": relative(colours, ref["colours"]),
    "same_topology": faces.shape == ref["faces"].shape and bool((faces[:, ::-1] == ref["faces"]).all()),
    "vertices": float(np.abs(vertices - ref["vertices"]).max()) if vertices.shape == ref["vertices"].shape else 1.0,
    "faces": len(faces), "threshold": float(ref["threshold"]), "ours": triposr.THRESHOLD}))
"""
    result = json.loads(run_in_env(generator_env, code, FIXTURE, sha256_of(tiny), tiny))
    assert result["tokens"] < 1e-5 and result["triplanes"] < 1e-5 and result["density"] < 1e-5, result
    assert result["colours"] < 1e-5, result
    # The same triangles (ours reversed: counter-clockwise from outside) on the same vertices; a vertex moves by
    # at most 1e-4 of the 1.74-wide cube where the density is nearly flat along an edge.
    assert result["same_topology"] and result["faces"] > 1000, result
    assert result["vertices"] < 1e-4, result
    assert result["threshold"] == result["ours"] == 25.0


def test_real_configuration_has_the_authors_549_parameters_and_loads_strictly(generator_env):
    # The real architecture built on the meta device; the authors' names and shapes (recorded from their model),
    # converted as a real checkpoint is, must load with strict=True, and ours must hold exactly those values.
    code = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import torch, triposr

folder = Path(sys.argv[2])
config = triposr.TripoSRConfig.from_yaml((folder / "authors_config.yaml").read_text())
lines = [line.split() for line in (folder / "authors_parameters.txt").read_text().splitlines()]
theirs = {name: torch.empty(tuple(map(int, shape.split("x"))), device="meta") for name, shape in lines}
with torch.device("meta"):
    model = triposr.TripoSR(config)
converted = triposr.checkpoint_to_model(theirs, config)
model.load_state_dict(converted, strict=True, assign=True)
ours = model.state_dict()
print(json.dumps({"tensors": len(theirs), "values": sum(t.numel() for t in theirs.values()),
                  "ours": sum(t.numel() for t in ours.values()), "converted": len(converted),
                  "pooler": any("pooler" in name for name in ours),
                  "positions": list(ours[triposr.POSITIONS].shape),
                  "same": {k: list(v.shape) for k, v in converted.items()} == {k: list(v.shape) for k, v in ours.items()}}))
"""
    result = json.loads(run_in_env(generator_env, code, FIXTURE))
    assert result["tensors"] == 549 and round(result["values"] / 1e6, 1) == 419.3
    assert result["same"]
    assert result["converted"] == 549 - 2 and not result["pooler"]  # the ViT's pooler: unused by TripoSR
    assert result["positions"] == [1, 1 + 32 * 32, 768]  # resampled for 512-pixel inputs
    assert result["values"] - 768 * 769 - 196 * 768 + 32 * 32 * 768 == result["ours"]


def test_faces_are_counter_clockwise_from_outside_in_our_frame(generator_env):
    # A ball of density above the threshold, off-centre up (+Z, TripoSR) and towards the viewer (+X): in our frame
    # it is up (+Y) and towards the viewer (+Z), and its faces enclose a positive volume.
    code = """
import sys
sys.path.insert(0, sys.argv[1])
import numpy as np, triposr

axis = np.linspace(-0.87, 0.87, 64)
x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
grid = 50.0 * np.exp(-((x - 0.2) ** 2 + y ** 2 + (z - 0.3) ** 2) / 0.1)
vertices, faces = triposr.surface(grid, 0.87)
v = triposr.to_our_frame(vertices)
volume = np.einsum("ij,ij->i", v[faces[:, 0]], np.cross(v[faces[:, 1]], v[faces[:, 2]])).sum() / 6
print(volume, *v.mean(axis=0))
"""
    volume, cx, cy, cz = map(float, run_in_env(generator_env, code).split())
    radius = np.sqrt(0.1 * np.log(2))  # where 50 exp(-r^2 / 0.1) = 25
    assert 0.95 < volume / (4 / 3 * np.pi * radius**3) < 1.01
    assert abs(cx) < 0.01 and abs(cy - 0.3) < 0.01 and abs(cz - 0.2) < 0.01


def test_checkpoint_is_hashed_before_it_is_read_and_never_unpickled(generator_env, tiny, tmp_path):
    import shutil

    for name in ("config.yaml", "model.ckpt"):
        shutil.copy(tiny / name, tmp_path / name)
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    shutil.copy(FIXTURE / "config.yaml", hostile / "config.yaml")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    shutil.copy(tiny / "model.ckpt", foreign / "model.ckpt")
    (foreign / "config.yaml").write_text((FIXTURE / "config.yaml").read_text().replace(
        "tsr.models.network_utils.NeRFMLP", "os.system"))
    code = """
import sys, hashlib
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import torch, triposr

class Payload:
    def __reduce__(self):
        return (print, ("UNPICKLED",))

folder = Path(sys.argv[2])
torch.save({"x": Payload()}, folder / "hostile" / "model.ckpt")  # a pickle that runs code when loaded
right = sys.argv[3]
for where, sha in ((folder, "0" * 64), (folder, ""), (folder / "hostile", None), (folder / "foreign", right)):
    sha = sha if sha is not None else hashlib.sha256((where / "model.ckpt").read_bytes()).hexdigest()
    try:
        triposr.load_model(where, sha)
        print("loaded")
    except triposr.GenerationError as err:
        print(str(err).replace(str(where), "F"))
"""
    lines = run_in_env(generator_env, code, tmp_path, sha256_of(tiny)).strip().splitlines()
    assert "UNPICKLED" not in lines and "loaded" not in lines
    assert len(lines) == 4, lines
    assert lines[0] == "F/model.ckpt is not the expected file (its SHA-256 differs): download it again."
    assert lines[1] == "No SHA-256 was given for F/model.ckpt: it is not loaded unchecked."
    assert lines[2].startswith("F/model.ckpt is not a TripoSR checkpoint for its config.yaml (Weights only load")
    assert lines[3].startswith("F/config.yaml is not a TripoSR configuration (it names other classes")


def test_safetensors_weights_load_without_a_pinned_hash_and_give_the_same_numbers(generator_env, tiny, tmp_path):
    # The same state dict without a pickle: nothing in it can run code, so a converted or fine-tuned copy loads
    # unpinned; the checkpoint still needs its hash. A damaged file is one sentence.
    converted = tiny_model(generator_env, tmp_path / "converted", "--safetensors")
    assert not (converted / "model.ckpt").exists()
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "config.yaml").write_bytes((converted / "config.yaml").read_bytes())
    (damaged / "model.safetensors").write_bytes((converted / "model.safetensors").read_bytes()[:5000])
    code = """
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import torch, triposr
from shape_output import load_subject

planes = []
for folder, sha in ((Path(sys.argv[3]), sys.argv[4]), (Path(sys.argv[5]), "")):
    model = triposr.load_model(folder, sha)
    with torch.inference_mode():
        pixels, _square = triposr.conditioning_image(load_subject(Path(sys.argv[2]) / "subject.png"), 512)
        planes.append(model.network.triplanes(model.network.image_tokens(pixels)))
try:
    triposr.load_model(Path(sys.argv[6]), "")
    damaged = "loaded"
except triposr.GenerationError as err:
    damaged = str(err).replace(sys.argv[6], "F")
print(json.dumps({"same": bool(torch.equal(*planes)), "damaged": damaged}))
"""
    result = json.loads(run_in_env(generator_env, code, FIXTURE, tiny, sha256_of(tiny), converted, damaged))
    assert result["same"]
    assert result["damaged"].startswith("F/model.safetensors is not a TripoSR checkpoint for its config.yaml (")


def test_the_worker_runs_triposr_by_its_request_family(worker, tiny):
    # The card's request (family, defaults, hash) for a hand-placed folder, with the fixture's own checkpoint.
    card = model_card("triposr", task="object")
    folder, vae = local_model_folders(card, tiny)
    assert folder == tiny and vae is None
    request = shape_request(card, FIXTURE / "subject.png", folder, octree_resolution=48, target_faces=3000)
    assert request.family == "triposr" and request.num_chunks == 65536
    assert request.checkpoint_sha256 == card.source.sha256[1]  # the real checkpoint's: this one is refused
    with pytest.raises(InputError, match="is not the expected file"):
        worker.generate(request)
    events = []
    mesh = worker.generate(replace(request, checkpoint_sha256=sha256_of(tiny)), progress=events.append)
    assert_sane_mesh(mesh, uvs=True)
    # Inside TripoSR's box, give or take one marching-cubes cell: the face budget's decimation may move a vertex
    # of a surface cut by the box's side by less than that.
    assert np.abs(mesh.vertices).max() <= 0.87 + 2 * 0.87 / 48
    assert len(mesh.faces) <= 3000 and mesh.report["mc_resolution"] == 48
    assert set(mesh.report["seconds"]) == {"tokenizer", "backbone", "density", "surface", "cleanup", "uv", "colour"}
    assert mesh.colours.dtype == np.float32 and mesh.colours.shape == (len(mesh.vertices), 3)
    assert 0 <= mesh.colours.min() and mesh.colours.max() <= 1 and mesh.colours.std() > 0
    # The input view sees the square the preprocessing cropped: the subject's box (its last row and column cut, as
    # the authors do) centred at 85 % of the side.
    alpha = np.asarray(Image.open(FIXTURE / "subject.png"))[..., 3]
    ys, xs = np.nonzero(alpha)
    box = max(xs.max() - xs.min(), ys.max() - ys.min())
    x, y, side = mesh.report["input_view"]["square"]
    assert side == int(box / 0.85)
    assert abs(x + side / 2 - (xs.min() + xs.max()) / 2) <= 1 and abs(y + side / 2 - (ys.min() + ys.max()) / 2) <= 1
    assert mesh.report["input_view"]["camera_distance"] == 1.9 and mesh.report["input_view"]["fov_y_degrees"] == 40
    stages = [event.stage for event in events]
    assert stages[0] == "load" and {"triplane", "density", "surface", "uv"} <= set(stages) and stages[-1] == "colour"
    density = [(e.step, e.steps) for e in events if e.stage == "density"]
    assert density == [(1, 2), (2, 2)]  # 48^3 points in chunks of 65536
    # An unknown family is one sentence, the worker stays usable.
    with pytest.raises(InputError, match="does not know the model family 'nerf'"):
        worker.generate(replace(request, family="nerf"))


def test_triposr_card_is_mit_and_pinned():
    card = task_cards("object")["triposr"]
    assert card.license == "MIT" and card.commercial and not card.license_terms
    assert card.runtime == "torch-worker" and card.generator.family == "triposr" and card.generator.subfolder == ""
    assert card.source.files == ("config.yaml", "model.ckpt") and len(card.source.revision) == 40
    assert all(len(sha) == 64 for sha in card.source.sha256)
    assert card.generator.octree_resolution == 256
    # Fetched files keep the repository's layout: the model folder is their common parent.
    fetched = [Path("/store/triposr/config.yaml"), Path("/store/triposr/model.ckpt")]
    assert model_folders(card, fetched) == (Path("/store/triposr"), None)
