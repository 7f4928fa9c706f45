"""One Blender per pytest process: an isolated user folder, and this checkout loaded as a real extension.

The extension is enabled as `bl_ext.dev.image_to_mesh` (what Blender does for an installed extension), so
operators and panels are the registered ones. Tests that call Python functions directly import the same
code as `image_to_mesh`, the way cli.py loads it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

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
    import cv2

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
