"""The repository is a valid Blender extension: layering, Blender's validator and builder, a zip that installs."""

import ast
import json
import subprocess
import sys
import zipfile

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
from build_extension import blender_ext_tool, build  # noqa: E402

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
from image_to_mesh.inference.photo import Photo
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


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory):
    return build(tmp_path_factory.mktemp("dist"))


def test_built_zip_holds_the_extension_and_nothing_of_the_workshop(extension_zip):
    names = zipfile.ZipFile(extension_zip).namelist()
    for required in ("blender_manifest.toml", "__init__.py", "cli.py", "inference/grid_mesh.py",
                     "operators/generate.py", "panels/sidebar.py"):
        assert required in names
    for name in names:
        assert not name.startswith(("tests/", "scripts/", ".", "requirements/", "samples/", "out/", "dist/"))
        assert "__pycache__" not in name


def test_zip_installs_into_a_fresh_blender_and_converts_a_photo(extension_zip, motorcycle_files, tmp_path):
    photo, depth, _focal = motorcycle_files
    run = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "install_zip.py"), str(extension_zip), str(photo), str(depth), str(tmp_path)],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["enabled"] and result["operator"] == ["FINISHED"]
    assert result["mesh_vertices"][0] > 100_000 and result["cameras"] == ["motorcycle camera"]

    # The installed folder's own cli.py works too (what `blender -b --python <installed>/cli.py` runs).
    glb = tmp_path / "from installed cli.glb"
    run = subprocess.run(
        [sys.executable, str(result["installed"]) + "/cli.py", str(photo), "--depth-map", str(depth), "-o", str(glb)],
        capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stderr
    assert glb.read_bytes()[:4] == b"glTF"
