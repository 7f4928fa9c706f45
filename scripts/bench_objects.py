"""`make bench`: placing a generated object on its photo and texturing it, at a generator's mesh size.

Meshes (numpy only, tests/object_meshes.py, fixed sizes):
- fit:  a closed figure of ~48 k triangles (a dense sphere head, a box body, an arm), and the same with its
        triangles' winding made inconsistent, so no face can be culled (what an open mesh costs);
        each photographed at 640 x 480 from a known oblique view; fit_camera from the front view.
- bake: a bumpy cube of ~49 k triangles, each side its own UV chart, photographed by 4 cameras (front, left,
        back, right, 1024 x 768); bake at 1024^2 and 2048^2.
Figures are medians of --repeat runs, in seconds, with the rasteriser's own speeds beside them (a 256^2
silhouette of the 48 k mesh, a 1024^2 depth + face buffer). Benchmarks report; tests assert.

Usage: python scripts/bench_objects.py [--repeat N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
import cli  # noqa: E402

cli.load_package()
import object_meshes as meshes  # noqa: E402

from image_to_mesh.inference.objects.camera_fit import fit_camera  # noqa: E402
from image_to_mesh.inference.objects.rasterise import render_depth, render_silhouette  # noqa: E402
from image_to_mesh.inference.objects.texture_bake import bake  # noqa: E402
from image_to_mesh.inference.geometry.view import view_from_fov  # noqa: E402


def figure():
    head = meshes.sphere(0.6, rings=110, segments=220)
    body = meshes.box((1.2, 0.9, 0.6), (0, -0.8, 0))
    arm = meshes.translate(meshes.rotate(meshes.cylinder(0.12, 1.0, segments=16), "z", 70), (-0.9, -0.5, -0.2))
    return meshes.normalised(meshes.merge(head, body, arm))


def bumpy_cube():
    verts, faces, uvs, _ = meshes.chart_cube(cells=64)
    radius = np.linalg.norm(verts, axis=1, keepdims=True)
    bumps = 1.0 + 0.06 * np.sin(9 * verts[:, :1]) * np.sin(9 * verts[:, 1:2]) * np.cos(7 * verts[:, 2:])
    return (verts / radius * 0.9 * bumps).astype(np.float32), faces, uvs


def median_seconds(run, repeat):
    """Median wall-clock seconds of `repeat` runs (CPU seconds of this process are in CPU_SECONDS: on a
    shared machine they move less than wall-clock time) and the last result."""
    times, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = run()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    CPU_SECONDS.append(statistics.median(cpu))
    return statistics.median(times), result


CPU_SECONDS: list[float] = []


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    repeat = parser.parse_args().repeat

    verts, faces = figure()
    centre = (verts.min(0) + verts.max(0)) / 2
    true = view_from_fov(640, 480, 40.0, -25.0, 15.0, 3.5, centre, (40, 20))
    mask = render_silhouette(true, verts, faces)
    small = true.resized(256, 192)
    t, _ = median_seconds(lambda: render_silhouette(small, verts, faces), max(repeat, 5))
    print(f"silhouette 256 x 192, {len(faces)} triangles: {t * 1000:.1f} ms (CPU {CPU_SECONDS[-1] * 1000:.1f} ms)")
    big = true.resized(1024, 768)
    t, _ = median_seconds(lambda: render_depth(big, verts, faces), repeat)
    print(f"depth + face buffer 1024 x 768, {len(faces)} triangles: {t:.2f} s (CPU {CPU_SECONDS[-1]:.2f} s)")

    for name, tris in (("closed", faces), ("open (no culling)", faces.copy())):
        if name.startswith("open"):
            tris[::2] = tris[::2, ::-1]  # flip every other triangle: the mesh is no longer consistently closed
        t, (view, iou, report) = median_seconds(lambda: fit_camera(verts, tris, mask), repeat)
        print(f"fit_camera, {len(tris)} triangles, {name}: {t:.2f} s (CPU {CPU_SECONDS[-1]:.2f} s), IoU {iou:.4f}, "
              f"yaw {view.yaw_deg:.2f} (true -25), elevation {view.elevation_deg:.2f} (true 15), "
              f"fov {view.fov_deg:.2f} (true 40), {report['evaluations']} silhouettes")

    verts, faces, uvs = bumpy_cube()
    shots = []
    rng = np.random.default_rng(0)
    for yaw in (0.0, 90.0, 180.0, 270.0):
        view = view_from_fov(1024, 768, 40.0, yaw, 10.0, 3.5)
        shot_mask = render_silhouette(view, verts, faces)
        photo = rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8)
        shots.append((view, photo, shot_mask))
    for size in (1024, 2048):
        t, result = median_seconds(lambda: bake(verts, faces, uvs, shots, size), repeat)
        print(f"bake {size}^2, {len(faces)} triangles, 4 photos of 1024 x 768: {t:.2f} s (CPU {CPU_SECONDS[-1]:.2f} s) "
              f"(seen {result.report['seen_fraction']:.0%} of {result.report['chart_texels']} chart texels)")


if __name__ == "__main__":
    main()
