"""`make bench`: building a 2048 x 2048 depth map's mesh the product's way, against Mesh.from_pydata.

Input: a synthetic but realistic metric depth map (a smooth slanted surface, a ball and a slanted box standing
in front of it, a patch of sky with no depth, 0.03 % noise; fixed seed) and a 2048 x 2048 photo for the texture.

- product:     inference.pipeline.image_to_mesh(Photo, depth, MeshSettings(resolution=2048, ...)) then
               operators.builders.objects.build_objects(record, scene.collection, scene): exactly what the
               operator and the CLI run (mesh, UVs, vertex colours, texture, material, camera).
- from_pydata: the same arrays (the same world-space vertices, faces and per-corner UVs) given to
               Mesh.from_pydata as Python lists, the common idiom, then a UV layer filled with
               uv_layer.data.foreach_set("uv", ...). The product also builds vertex colours, the texture, the
               material and the camera, so the comparison is conservative.

Each run of each path is its own process (this script with --path), so peak RSS (ru_maxrss) is per path; the
timings are taken inside it and leave out interpreter start, `import bpy` and loading the input. Runs of the
two paths alternate; figures are medians. Both processes check that they built the same mesh. Benchmarks
report and tests assert: nothing here fails on a missed target.

Usage: python scripts/bench_mesh.py [--repeat N]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SIZE = 2048
FOCAL_PX = SIZE / (2 * math.tan(math.radians(30)))  # a 60 degree field of view
PATHS = ("product", "from_pydata")
TARGET_SPEEDUP = 6.0  # x from_pydata
TARGET_SECONDS = 2.5  # depth map to finished objects, 4.2 M vertices
TARGET_RSS_GB = 2.0


def synthetic_scene(size: int = SIZE, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(depth in metres, float32 with NaN = no surface; photo, uint8 RGB), both size x size."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:size, 0:size].astype(np.float32)
    x, y = (u + 0.5) / size - 0.5, (v + 0.5) / size - 0.5  # -0.5 .. 0.5, y down
    # A wall-and-floor-like surface receding towards the top, gently rolling.
    depth = 4.0 + 0.8 * y + 0.15 * np.sin(2 * math.pi * 1.5 * x) * np.cos(2 * math.pi * y)
    # A ball 2 m away: a depth jump all round it, and a rim seen at grazing angles.
    r2 = ((x + 0.15) ** 2 + (y - 0.05) ** 2) / 0.2**2
    ball = r2 < 1
    depth[ball] = 2.0 - 0.4 * np.sqrt(1 - r2[ball])
    # A slanted box 3 m away: its left and right sides are diagonal steps, where quads split into triangles.
    box = (np.abs(x - 0.25 + 0.3 * (y - 0.2)) < 0.1) & (np.abs(y - 0.2) < 0.15)
    depth[box] = 3.0 + 0.2 * x[box]
    depth *= 1 + rng.normal(0, 3e-4, depth.shape).astype(np.float32)
    depth[(x > 0.38) & (y < x - 0.76)] = np.nan  # sky: no depth
    base = np.stack([128 + 100 * x, 128 + 100 * y, 128 + 60 * np.sin(12 * x * y)], axis=-1)
    photo = np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
    return depth.astype(np.float32), photo


# --- one path, in its own process ------------------------------------------------------------------------


def run_path(path: str, inputs: Path, result_file: Path) -> None:
    home = result_file.with_suffix(".home")  # in the driver's temporary folder, removed with it
    os.environ["BLENDER_USER_RESOURCES"] = str(home / "user")
    os.environ["XDG_CACHE_HOME"] = str(home / "cache")
    import bpy

    sys.path.insert(0, str(ROOT))
    import cli

    cli.load_package()
    from image_to_mesh.inference import pipeline
    from image_to_mesh.inference.depth import backend
    from image_to_mesh.inference.settings import MeshSettings
    from image_to_mesh.inference.photo.photo import Photo
    from image_to_mesh.operators.builders import objects as objects_module

    with np.load(inputs) as data:
        depth, rgb = data["depth"], data["photo"]
    photo = Photo("bench", rgb, None, (SIZE, SIZE))
    settings = MeshSettings(resolution=SIZE, focal_px=FOCAL_PX)
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    rss_before = _peak_rss()

    stages: dict[str, float] = {}

    def timed(name, fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                stages[name] = stages.get(name, 0.0) + time.perf_counter() - start

        return wrapper

    # Stage timings without touching the product: wrap the names its modules call.
    backend.depth_to_grid_mesh = timed("grid mesh", backend.depth_to_grid_mesh)
    for name in ("build_mesh", "encode_texture", "build_photo_image", "build_photo_material", "build_camera"):
        setattr(objects_module, name, timed(name, getattr(objects_module, name)))

    start = time.perf_counter()
    record = pipeline.image_to_mesh(photo, depth, settings)
    stages["image_to_mesh"] = time.perf_counter() - start
    start = time.perf_counter()
    if path == "product":
        mesh = objects_module.build_objects(record, scene.collection, scene)[0].data
    else:
        mesh = _build_with_from_pydata(record, scene, objects_module.CAMERA_TO_WORLD)
    stages["blender build"] = time.perf_counter() - start
    rss_peak = _peak_rss()  # before the checks below allocate their own copies

    result = {
        "path": path,
        "vertices": len(mesh.vertices),
        "quads": len(record.quads),
        "triangles": len(record.triangles),
        "stages": stages,
        "peak_rss": rss_peak,
        "rss_before": rss_before,
        "mesh_digest": _mesh_digest(mesh),
    }
    result_file.write_text(json.dumps(result))


def _build_with_from_pydata(record, scene, camera_to_world: np.ndarray):
    """The baseline: what a from_pydata user writes for the same vertices, faces and per-corner UVs."""
    import bpy

    world = record.vertices @ camera_to_world.T
    world -= np.array([(column.min() + column.max()) / 2 for column in world.T])  # centred as build_objects does
    faces = record.quads.tolist() + record.triangles.tolist()
    mesh = bpy.data.meshes.new(record.name)
    mesh.from_pydata(world.tolist(), [], faces)
    corner_uv = record.uvs[np.concatenate([record.quads.ravel(), record.triangles.ravel()])]
    mesh.uv_layers.new(name="UVMap").data.foreach_set("uv", corner_uv.ravel())
    mesh.update()
    scene.collection.objects.link(bpy.data.objects.new(record.name, mesh))
    return mesh


def _mesh_digest(mesh) -> dict[str, str]:
    """Hashes of what both paths must agree on: positions, faces, per-corner UVs, and the set of edges."""

    def get(collection, prop, dtype, width=1):
        out = np.empty(len(collection) * width, dtype=dtype)
        collection.foreach_get(prop, out)
        return out

    def digest(*arrays) -> str:
        h = hashlib.sha1()
        for a in arrays:
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]

    edges = get(mesh.edges, "vertices", np.int32, 2).reshape(-1, 2).astype(np.int64)
    edges.sort(axis=1)
    return {
        "positions": digest(get(mesh.vertices, "co", np.float32, 3)),
        "faces": digest(get(mesh.polygons, "loop_start", np.int32), get(mesh.loops, "vertex_index", np.int32)),
        "uvs": digest(get(mesh.uv_layers["UVMap"].uv, "vector", np.float32, 2)),
        "edges": digest(np.sort(edges[:, 0] * len(mesh.vertices) + edges[:, 1])),
    }


def _peak_rss() -> int:
    """This process's peak resident memory in bytes (Linux reports kilobytes)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# --- the driver ------------------------------------------------------------------------------------------


def main(repeat: int) -> None:
    runs: dict[str, list[dict]] = {p: [] for p in PATHS}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="image-to-mesh-bench-") as work:
        inputs = Path(work) / "scene.npz"
        depth, photo = synthetic_scene()
        np.savez(inputs, depth=depth, photo=photo)
        del depth, photo
        for i in range(repeat):
            for path in PATHS:
                print(f"run {i + 1}/{repeat}: {path} ...", file=sys.stderr, flush=True)
                out = Path(work) / f"{path}-{i}.json"
                command = [sys.executable, __file__, "--path", path, "--inputs", str(inputs), "--result", str(out)]
                subprocess.run(command, check=True, stdout=subprocess.DEVNULL)  # Blender's own chatter
                runs[path].append(json.loads(out.read_text()))
                load.append(os.getloadavg()[0])
    report(runs, repeat, load)


def report(runs: dict[str, list[dict]], repeat: int, load: list[float]) -> None:
    def stage(path: str, key: str) -> list[float]:
        return [r["stages"].get(key, math.nan) for r in runs[path]]

    def total(path: str) -> list[float]:
        return [r["stages"]["image_to_mesh"] + r["stages"]["blender build"] for r in runs[path]]

    def row(label: str, product: list[float] | None, baseline: list[float] | None, unit: str = "s") -> None:
        cells = [f"{statistics.median(v):.3f} {unit}" if v else "-" for v in (product, baseline)]
        spread = f"  ({min(product):.3f} to {max(product):.3f})" if product and len(product) > 1 else ""
        print(f"{label:44}{cells[0]:>12}{cells[1]:>14}{spread}")

    first = runs["product"][0]
    n = first["vertices"]
    same = all(r["mesh_digest"] == first["mesh_digest"] for path in PATHS for r in runs[path])
    build = {path: statistics.median(stage(path, "blender build")) for path in PATHS}
    seconds = statistics.median(total("product"))
    rss = {path: statistics.median(r["peak_rss"] for r in runs[path]) / 1e9 for path in PATHS}

    print(f"Mesh build from a {SIZE} x {SIZE} metric depth map: {n:,} vertices, {first['quads']:,} quads, "
          f"{first['triangles']:,} triangles")
    print(f"Medians of {repeat} runs per path (product range in brackets), each run its own process; times leave "
          "out interpreter start, `import bpy` and loading the input.")
    print(f"Both paths built the same vertices, faces, per-corner UVs and edges: {'yes' if same else 'NO'}")
    print(f"1-minute load average during the runs: {min(load):.1f} to {max(load):.1f} on {os.cpu_count()} CPUs "
          "(other work on the machine slows every figure)")
    print()
    print(f"{'':44}{'product':>12}{'from_pydata':>14}")
    row("image_to_mesh (numpy)", stage("product", "image_to_mesh"), stage("from_pydata", "image_to_mesh"))
    row("  of which grid mesh (depth_to_grid_mesh)", stage("product", "grid mesh"), stage("from_pydata", "grid mesh"))
    row("Blender build", stage("product", "blender build"), stage("from_pydata", "blender build"))
    for key, label in (("build_mesh", "mesh (build_mesh)"), ("encode_texture", "texture encode (JPEG)"),
                       ("build_photo_image", "image datablock"), ("build_photo_material", "material"),
                       ("build_camera", "camera")):
        row(f"  of which {label}", stage("product", key), None)
    row("depth map to objects (image_to_mesh + build)", total("product"), total("from_pydata"))
    row("Blender build, vertices per second", [n / t / 1e6 for t in stage("product", "blender build")],
        [n / t / 1e6 for t in stage("from_pydata", "blender build")], "M")
    row("peak RSS", [r["peak_rss"] / 1e9 for r in runs["product"]],
        [r["peak_rss"] / 1e9 for r in runs["from_pydata"]], "GB")
    row("  of which before the path ran", [r["rss_before"] / 1e9 for r in runs["product"]],
        [r["rss_before"] / 1e9 for r in runs["from_pydata"]], "GB")
    print()
    speedup = build["from_pydata"] / build["product"]
    targets = (
        (f"Blender build >= {TARGET_SPEEDUP:g}x faster than from_pydata", f"{speedup:.1f}x", speedup >= TARGET_SPEEDUP),
        (f"{n / 1e6:.1f} M-vertex mesh, depth map to objects <= {TARGET_SECONDS:g} s", f"{seconds:.2f} s",
         seconds <= TARGET_SECONDS),
        (f"product peak RSS <= {TARGET_RSS_GB:g} GB", f"{rss['product']:.2f} GB", rss["product"] <= TARGET_RSS_GB),
    )
    print("Targets")
    for name, value, met in targets:
        print(f"  {name:56}{value:>10}   {'met' if met else 'MISSED'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per path (default 3)")
    parser.add_argument("--path", choices=PATHS, help=argparse.SUPPRESS)
    parser.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.path:
        run_path(args.path, args.inputs, args.result)
    else:
        main(args.repeat)
