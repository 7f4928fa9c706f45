"""Build the extension zips with Blender's own tool (it ships inside the bpy wheel): one per platform, each
carrying the locked wheels that platform needs for both of Blender's Pythons.

The source manifest stays valid for development (no wheels); the build copies the extension into a staging
folder, adds the wheels and writes `wheels` and `platforms` into that copy's manifest, validates it, and lets
`blender_ext.py build --split-platforms` write one zip per platform.
Usage: python scripts/build_extension.py OUT_FOLDER [PLATFORM ...]   (make build: dist/, every platform)
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from extension_wheels import PLATFORMS, download
from fetch_u2netp import fetch_u2netp

ROOT = Path(__file__).resolve().parent.parent
# Never copied into the staging folder (the manifest's paths_exclude_pattern drops the rest of the workshop).
_HEAVY = shutil.ignore_patterns(".git", ".venv*", ".cache", "dist", "out", "samples", "node_modules", "__pycache__")


def blender_ext_tool() -> Path:
    """The blender_ext.py command-line tool of the installed bpy, found without importing bpy."""
    bpy_dir = Path(importlib.util.find_spec("bpy").submodule_search_locations[0])
    return next(bpy_dir.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))


def build(out: Path, platforms: list[str] | None = None) -> list[Path]:
    """The zips written into `out`, one per platform (all platforms by default)."""
    platforms = platforms or list(PLATFORMS)
    wheels = download(platforms)
    fetch_u2netp(ROOT / "models" / "u2netp.onnx")  # the offline subject-mask model travels in every zip
    tool = str(blender_ext_tool())
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "image_to_mesh"
        shutil.copytree(ROOT, staging, ignore=_HEAVY)
        for wheel in wheels:
            shutil.copy2(wheel, staging / "wheels" / wheel.name)
        manifest = staging / "blender_manifest.toml"
        text = manifest.read_text()
        table = text.index("\n[")  # top-level keys must come before the first table
        listed = ",\n  ".join(f'"./wheels/{w.name}"' for w in wheels)
        text = (text[:table] + f"\n\nplatforms = {platforms!r}\nwheels = [\n  {listed},\n]\n".replace("'", '"')
                + text[table:])
        manifest.write_text(text)
        subprocess.run([sys.executable, tool, "validate", str(staging)], check=True)
        subprocess.run([sys.executable, tool, "build", "--source-dir", str(staging), "--output-dir", str(out),
                        "--split-platforms"], check=True)
    meta = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    return [out / f"{meta['id']}-{meta['version']}-{p.replace('-', '_')}.zip" for p in platforms]


if __name__ == "__main__":
    for zip_path in build(Path(sys.argv[1]), sys.argv[2:] or None):
        size = zip_path.stat().st_size / 1e6
        note = "  (over the linux zip's 100 MB goal)" if "linux" in zip_path.name and size > 100 else ""
        print(f"{zip_path}  {size:.1f} MB{note}")
