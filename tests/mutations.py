"""Break one line at a time and check that the tests notice (issue #17's measure of the suite's blind spots).

    python tests/mutations.py [ID ...]      (the venv's Python, from the repository root; NODE_PATH as for pytest)

Each mutation replaces one exact line fragment in one source file (it must occur exactly once), runs the test
files that cover that behaviour with `pytest -x`, and puts the file back, whatever happens. A mutation is
"caught" when pytest fails. Prints one line per mutation and the tally; exit status 1 if any survived.
Not collected by pytest (no test_ prefix): it runs the suite, so it is not part of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (id, blind spot, file, old, new, test files)
MUTATIONS = [
    # Texture content and orientation
    ("T1", "texture", "inference/photo/photo.py", 'Image.fromarray(texture.rgb).save(buf, "JPEG"',
     'Image.fromarray(texture.rgb[::-1]).save(buf, "JPEG"', ["test_cli.py"]),
    ("T2", "texture", "inference/geometry/grid_mesh.py",
     "uvs[:, 1] = np.broadcast_to(1.0 - (np.arange(rows)[:, None] + 0.5) / rows, (rows, cols))[used]",
     "uvs[:, 1] = np.broadcast_to((np.arange(rows)[:, None] + 0.5) / rows, (rows, cols))[used]", ["test_cli.py"]),
    ("T3", "texture", "inference/depth/backend.py", "rows = np.clip(((1.0 - uvs[:, 1]) * h).astype(np.int64), 0, h - 1)",
     "rows = np.clip((uvs[:, 1] * h).astype(np.int64), 0, h - 1)", ["test_inputs.py"]),
    ("T4", "texture", "operators/builders/export.py", 'export_uv=True, export_colors="SRGB"',
     'export_uv=True, export_colors="NONE"', ["test_cli.py"]),
    ("T5", "texture", "operators/builders/mesh.py", 'colors.data.foreach_set("color_srgb"',
     'colors.data.foreach_set("color"', ["test_cli.py"]),
    ("T6", "texture", "inference/photo/photo.py", 'Image.fromarray(texture.rgb).save(buf, "JPEG"',
     'Image.fromarray(np.roll(texture.rgb, 1, axis=1)).save(buf, "JPEG"', ["test_cli.py"]),
    ("T7", "texture", "operators/builders/export.py", "path.write_bytes(image.packed_file.data)",
     "path.write_bytes(_flipped(image.packed_file.data))", ["test_cli.py"]),
    ("T8", "texture", "inference/geometry/grid_mesh.py",
     "uvs[:, 0] = np.broadcast_to((np.arange(cols) + 0.5) / cols, (rows, cols))[used]",
     "uvs[:, 0] = np.broadcast_to((np.arange(cols) + 1.0) / cols, (rows, cols))[used]", ["test_cli.py"]),
    # The sidebar's run (modal)
    ("M1", "modal", "operators/generate.py", "        return self._build(context, job.result)\n",
     "        return {\"FINISHED\"}\n", ["test_operator_run.py"]),
    ("M2", "modal", "operators/generate.py", "            job.cancel()  #", "            pass  #", ["test_operator_run.py"]),
    ("M3", "modal", "operators/generate.py",
     "models.progress, models.cancel = self._job.progress, self._job.cancel_token",
     "models.progress = self._job.progress", ["test_operator_run.py"]),
    ("M4", "modal", "operators/generate.py", "        if not job.done:\n            return {\"PASS_THROUGH\"}",
     "        if False:\n            return {\"PASS_THROUGH\"}", ["test_operator_run.py"]),
    ("M5", "modal", "operators/generate.py", "        if job.error:\n", "        if False:\n", ["test_operator_run.py"]),
    ("M6", "modal", "operators/generate.py", '            self.report({"WARNING"}, "Image to Mesh was cancelled.")\n            return {"CANCELLED"}',
     '            self.report({"WARNING"}, "Image to Mesh was cancelled.")\n            return {"PASS_THROUGH"}',
     ["test_operator_run.py"]),
    ("M7", "modal", "operators/generate.py", "        return self._build(context, job.result)\n",
     "        return self._build(context, job.result) and {\"PASS_THROUGH\"}\n", ["test_operator_run.py"]),
    # Adjust Last Operation
    ("R1", "redo", "operators/generate.py", "            if not self.properties.is_property_set(name):",
     "            if True:", ["test_operator_run.py"]),
    ("R2", "redo", "operators/properties.py", "return IntProperty(default=blender_value(default, default, opt), **limits,",
     'return IntProperty(options={"HIDDEN"}, default=blender_value(default, default, opt), **limits,',
     ["test_operator_run.py"]),
    # EXIF focal length
    ("E1", "exif", "inference/photo/photo.py", "photo.focal_35mm = float(focal) if focal else None",
     "photo.focal_35mm = None", ["test_inputs.py"]),
    ("E2", "exif", "inference/photo/photo.py", "_FOCAL_35MM = 0xA405", "_FOCAL_35MM = 0xA404", ["test_inputs.py"]),
    ("E3", "exif", "inference/depth/backend.py",
     "return photo_intrinsics(photo.source_size, settings.fov, settings.focal_px, photo.focal_35mm)",
     "return photo_intrinsics(photo.source_size, settings.fov, settings.focal_px)", ["test_inputs.py"]),
    ("E4", "exif", "inference/geometry/camera.py", "f = focal_35mm * math.hypot(w, h) / _FULL_FRAME_DIAGONAL_MM",
     "f = focal_35mm * w / 36.0", ["test_inputs.py"]),
    # MoGe on a large photo
    ("G1", "moge", "inference/depth/predict.py", "focal_px = focal * photo.source_size[0] / points.shape[1]",
     "focal_px = focal", ["test_models.py"]),
    ("G2", "moge", "inference/depth/predict.py", "focal_px = focal * photo.source_size[0] / points.shape[1]",
     "focal_px = focal * photo.size[0] / points.shape[1]", ["test_models.py"]),
    # Edge-aware upsampling
    ("U1", "upsampling", "inference/depth/upsample.py", '    """`low` (h, w) resampled to `size` (width, height); NaN samples never contribute."""\n',
     '    """`low` (h, w) resampled to `size` (width, height); NaN samples never contribute."""\n'
     "    return cv2.resize(low, size, interpolation=cv2.INTER_LINEAR)\n", ["test_models.py"]),
    ("U2", "upsampling", "inference/depth/upsample.py", "SIGMA_COLOUR = 12.0", "SIGMA_COLOUR = 1e4", ["test_models.py"]),
    ("U3", "upsampling", "inference/depth/upsample.py",
     "colour = np.sum((guide_low[rows[:, None], cols[None, :]] - guide_out) ** 2, axis=2)",
     "colour = np.sum((guide_low[rows[:, None], cols[None, :]] - guide_low[rows[:, None], cols[None, :]]) ** 2, axis=2)",
     ["test_models.py"]),
    # The scene's own camera; the sidebar against Blender's own enums
    ("S1", "scene camera", "operators/builders/objects.py", "    if scene.camera is None:\n", "    if True:\n",
     ["test_blender.py"]),
    ("S2", "scene camera", "operators/builders/objects.py",
     "        scene.camera = camera_object\n        match_render_size(scene, intrinsics.width, intrinsics.height)\n",
     "        scene.camera = camera_object\n    match_render_size(scene, intrinsics.width, intrinsics.height)\n",
     ["test_blender.py"]),
    ("P1", "sidebar", "panels/sidebar.py", 'icon="CAMERA_DATA"', 'icon="CAMERA_DAT"', ["test_blender.py"]),
    ("P2", "sidebar", "panels/sidebar.py", 'layout.operator("image_to_mesh.generate", icon="MESH_GRID")',
     'layout.operator("image_to_mesh.generate", icon="MESH_GRIDS")', ["test_blender.py"]),
    ("P3", "sidebar", "panels/sidebar.py", 'layout.row().prop(settings, "photo_source", expand=True)',
     'layout.row().prop(settings, "photo_source", expanded=True)', ["test_blender.py"]),
    ("P4", "sidebar", "panels/sidebar.py", 'layout.template_ID(settings, "image", open="image.open")',
     'layout.template_ID(settings, "image", open="image.opn")', ["test_blender.py"]),
    ("P5", "sidebar", "panels/sidebar.py", 'icon="FILE_3D")', 'icon="FILE_3DS")', ["test_blender.py"]),
    ("P6", "sidebar", "panels/sidebar.py", 'depth = layout.column(heading="Depth")',
     'depth = layout.column(header="Depth")', ["test_blender.py"]),
    # The folded checks still catch what they covered
    ("F1", "folded", "inference/depth/kinds.py", "    if not valid.any():\n", "    if False:\n", ["test_inputs.py"]),
    ("F2", "folded", "cli.py", 'sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv',
     'sys.argv[sys.argv.index("--"):] if "--" in sys.argv', ["test_cli.py"]),
    # Nothing half-written
    ("N1", "staging", "operators/builders/export.py", "_write(suffix, staging / path.name, image)",
     "_write(suffix, path, image)", ["test_cli.py"]),
    ("N2", "staging", "operators/builders/export.py", "        shutil.rmtree(staging, ignore_errors=True)\n",
     "        pass\n", ["test_cli.py"]),
]

# Helpers some mutations call, appended to the mutated file (not a change of behaviour by themselves).
HELPERS = {
    "T7": "\n\ndef _flipped(data):\n    import io\n    from PIL import Image\n    buf = io.BytesIO()\n"
          "    Image.open(io.BytesIO(data)).transpose(Image.Transpose.FLIP_TOP_BOTTOM).save(buf, 'JPEG', quality=95)\n"
          "    return buf.getvalue()\n",
}


def run(mutation) -> tuple[bool, float, str]:
    ident, _spot, file, old, new, tests = mutation
    path = ROOT / file
    original = path.read_text()
    assert original.count(old) == 1, f"{ident}: the fragment is not in {file} exactly once"
    try:
        path.write_text(original.replace(old, new) + HELPERS.get(ident, ""))
        start = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", *[f"tests/{t}" for t in tests], "-x", "-q", "-p", "no:cacheprovider"],
            cwd=ROOT, capture_output=True, text=True,
        )
        seconds = time.monotonic() - start
    finally:
        path.write_text(original)
    failed = [line.split(" ")[1] for line in result.stdout.splitlines() if line.startswith("FAILED ")]
    return result.returncode != 0, seconds, (failed[0] if failed else result.stdout.strip().splitlines()[-1])


def main(selected: list[str]) -> int:
    chosen = [m for m in MUTATIONS if not selected or m[0] in selected]
    survived = 0
    for mutation in chosen:
        caught, seconds, detail = run(mutation)
        survived += not caught
        print(f"{mutation[0]:4} {mutation[1]:13} {'caught  ' if caught else 'SURVIVED'} {seconds:5.0f} s  {detail}",
              flush=True)
    print(f"{len(chosen) - survived} of {len(chosen)} caught")
    return 1 if survived else 0


if __name__ == "__main__":
    os.environ.setdefault("NODE_PATH", str(ROOT / ".cache" / "node" / "node_modules"))
    sys.exit(main(sys.argv[1:]))
