"""Validate and build the extension zip with Blender's own tool (it ships inside the bpy wheel).

Usage: python scripts/build_extension.py OUT_FOLDER   (make build: dist/)
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def blender_ext_tool() -> Path:
    """The blender_ext.py command-line tool of the installed bpy, found without importing bpy."""
    bpy_dir = Path(importlib.util.find_spec("bpy").submodule_search_locations[0])
    return next(bpy_dir.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))


def build(out: Path) -> Path:
    tool = str(blender_ext_tool())
    subprocess.run([sys.executable, tool, "validate", str(ROOT)], check=True)
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, tool, "build", "--source-dir", str(ROOT), "--output-dir", str(out)], check=True)
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    return out / f"{manifest['id']}-{manifest['version']}.zip"


if __name__ == "__main__":
    zip_path = build(Path(sys.argv[1]))
    print(f"{zip_path}  {zip_path.stat().st_size / 1e6:.2f} MB")
