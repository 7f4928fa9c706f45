"""The repository is a valid Blender extension: layering, Blender's validator and builder, a zip that installs."""

import ast
import hashlib
import importlib.metadata
import io
import json
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import numpy as np
import pytest
import tiny_models
from conftest import ROOT, seeded
from packaging.requirements import Requirement
from PIL import Image

sys.path.insert(0, str(ROOT / "scripts"))
from build_extension import blender_ext_tool, build  # noqa: E402
from extension_wheels import CACHE, locked  # noqa: E402
from fetch_u2netp import is_verified  # noqa: E402

BLENDER_MODULES = {"bpy", "bmesh", "mathutils", "bpy_extras", "addon_utils", "gpu", "blf"}


def test_inference_source_never_imports_blender():
    for path in (ROOT / "inference").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            assert not {n.split(".")[0] for n in names} & BLENDER_MODULES, f"{path.name} imports Blender"


def test_inference_runs_in_plain_python_with_blender_unimportable():
    # A fresh interpreter where importing bpy and friends fails: the whole pipeline must still run.
    script = f"""
import sys
class NoBlender:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {sorted(BLENDER_MODULES)!r}:
            raise ImportError("inference/ must not import " + name)
sys.meta_path.insert(0, NoBlender())
sys.path.insert(0, {str(ROOT)!r})
import cli
cli.load_package()
import numpy as np
from image_to_mesh.inference.photo.photo import Photo
from image_to_mesh.inference.pipeline import image_to_mesh
photo = Photo("plain", np.zeros((30, 40, 3), np.uint8), None, (40, 30))
record = image_to_mesh(photo, np.full((30, 40), 2.0, np.float32))
print(len(record.vertices), record.face_count)
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1200", str(39 * 29)]


def test_manifest_passes_blenders_own_validator():
    run = subprocess.run([sys.executable, str(blender_ext_tool()), "validate", str(ROOT)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def wheels_on_disk(platforms: list[str]) -> bool:
    """Every locked wheel of `platforms` in the build's download cache, with its hash, and U²-Net-p in models/."""
    return is_verified(ROOT / "models" / "u2netp.onnx") and all(
        (CACHE / name).is_file() and hashlib.sha256((CACHE / name).read_bytes()).hexdigest() == sha
        for _platform, _python, name, sha in locked(platforms)
    )


@pytest.fixture(scope="module")
def linux_zip(request, tmp_path_factory):
    """The linux-x64 zip exactly as `make build` writes it: the extension plus its locked wheels, from the
    wheels and the U²-Net-p that `make build` and `make setup` left on disk (offline: see conftest.seeded)."""
    with seeded(request, wheels_on_disk(["linux-x64"]), "The linux-x64 wheels (.cache/wheels) or U²-Net-p"):
        (zip_path,) = build(tmp_path_factory.mktemp("dist"), ["linux-x64"])
    return zip_path


@pytest.mark.network
def test_linux_zip_holds_the_extension_and_its_wheels_for_both_pythons_and_no_workshop(linux_zip):
    names = zipfile.ZipFile(linux_zip).namelist()
    for required in ("blender_manifest.toml", "__init__.py", "cli.py", "inference/geometry/grid_mesh.py",
                     "inference/runtime/model_cards.toml", "operators/generate.py", "panels/sidebar.py",
                     "models/u2netp.onnx"):
        assert required in names
    wheels = [n for n in names if n.startswith("wheels/") and n.endswith(".whl")]
    for project in ("onnxruntime", "opencv_python_headless", "pillow", "huggingface_hub"):
        for python in ("cp311", "cp313"):
            assert any(w.startswith(f"wheels/{project}-") and (python in w or "abi3" in w or "py3-none" in w)
                       for w in wheels), (project, python)
    assert not any(w.startswith("wheels/numpy-") for w in wheels)  # Blender's own numpy stays
    assert all("win_amd64" not in w and "macosx" not in w for w in wheels)
    for name in names:
        assert not name.startswith(("tests/", "scripts/", ".", "requirements/", "samples/", "out/", "dist/"))
        assert "__pycache__" not in name
    manifest = tomllib.loads(zipfile.ZipFile(linux_zip).read("blender_manifest.toml").decode())
    assert manifest["platforms"] == ["linux-x64"] and sorted(manifest["wheels"]) == sorted("./" + w for w in wheels)
    assert linux_zip.stat().st_size < 100e6


@pytest.mark.network
def test_no_cp311_wheel_in_the_zip_requires_numpy_2(linux_zip):
    # Blender 4.5 LTS runs Python 3.11 with numpy 1.26: every wheel it installs must accept that numpy.
    environment = {"python_version": "3.11", "python_full_version": "3.11.9", "platform_system": "Linux",
                   "platform_machine": "x86_64", "sys_platform": "linux", "extra": ""}
    outer = zipfile.ZipFile(linux_zip)
    checked = 0
    for name in outer.namelist():
        if not name.endswith(".whl") or "cp313" in name:
            continue
        wheel = zipfile.ZipFile(io.BytesIO(outer.read(name)))
        metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        for line in wheel.read(metadata).decode().splitlines():
            if line.startswith("Requires-Dist:"):
                requirement = Requirement(line.split(":", 1)[1].strip())
                if requirement.name == "numpy" and (requirement.marker is None or requirement.marker.evaluate(environment)):
                    assert requirement.specifier.contains("1.26.4"), f"{name} requires {requirement}"
                    checked += 1
    assert checked >= 2  # onnxruntime and OpenCV do declare numpy


@pytest.fixture(scope="module")
def bpy_only_python(tmp_path_factory):
    """A Python that has bpy and what bpy itself needs (what Blender bundles), and nothing else: no
    onnxruntime, no OpenCV, no Pillow, no huggingface_hub. It is what `blender -b --python` offers."""
    folder = tmp_path_factory.mktemp("bpy-only")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / "venv")], check=True)
    python = folder / "venv" / "bin" / "python"
    packages = folder / "packages"
    packages.mkdir()
    wanted, seen = ["bpy"], set()
    while wanted:
        dist = importlib.metadata.distribution(wanted.pop())
        if dist.metadata["Name"].lower() in seen:
            continue
        seen.add(dist.metadata["Name"].lower())
        for top in {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}:
            if not top.endswith(".dist-info") and not (packages / top).exists():
                (packages / top).symlink_to(dist.locate_file(top))
        needs = [Requirement(r) for r in dist.requires or []]
        wanted += [r.name for r in needs if r.marker is None or r.marker.evaluate({"extra": ""})]
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "bpy_only.pth").write_text(str(packages) + "\n")
    probe = "import importlib.util as u; print([m for m in ('onnxruntime', 'cv2', 'PIL', 'huggingface_hub', 'bpy') if u.find_spec(m)])"
    found = subprocess.run([str(python), "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert found == "['bpy']", found
    return python


@pytest.mark.network
def test_zip_installs_into_a_fresh_blender_and_runs_on_its_bundled_wheels(
    linux_zip, bpy_only_python, tmp_path
):
    photo = tmp_path / "halves.png"
    rgb = np.zeros((120, 160, 3), np.uint8)
    rgb[:, :80], rgb[:, 80:] = (0, 200, 0), (203, 0, 0)
    Image.fromarray(rgb).save(photo)
    models = tmp_path / "models"
    tiny_models.channel_mean_depth(models / "midas-v21-small" / "model-small.onnx", "input", "output", static_side=256)

    run = subprocess.run([str(bpy_only_python), str(ROOT / "tests" / "install_zip.py"), str(linux_zip), str(photo),
                          str(models), str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["enabled"] and result["operator"] == ["FINISHED"] and result["inflate"] == ["FINISHED"]
    assert result["mesh_vertices"][0] > 10_000 and result["cameras"] == ["halves camera"]
    wheels_site = str(Path(result["home"]) / "user" / "extensions" / ".local")
    assert all(path.startswith(wheels_site) for path in result["modules"].values()), result["modules"]

    # The installed folder's own cli.py, run by the same bpy-only Python (what `blender -b --python
    # <installed>/cli.py` does), converts with the bundled wheels too.
    glb = tmp_path / "from installed cli.glb"
    run = subprocess.run(
        [str(bpy_only_python), result["installed"] + "/cli.py", str(photo), "--model", "midas-v21-small",
         "--cache-dir", str(models), "-o", str(glb), "--json"],
        capture_output=True, text=True,
        env=dict(os.environ, BLENDER_USER_RESOURCES=str(Path(result["home"]) / "user")),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout)["results"][0]["model"]["id"] == "midas-v21-small"
    assert glb.read_bytes()[:4] == b"glTF"
