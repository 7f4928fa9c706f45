"""`make bench`: base meshes (--remesh), beside the plain build of the same record.

Record: scikit-image's coffee photo (CC0) inflated into a closed object 10 cm tall (GrabCut's mask: no model),
at --resolution 256 (about 40 k faces). Figures, in seconds, medians of --repeat runs (default 1):
- photo to record (the pipeline) and plain build (build_objects with no finish): what every conversion costs;
- quad remesh (QuadriFlow, its retries included) at 5 k and 20 k faces, and the UVs + Cycles bake of the
  result at 1024^2 and 2048^2;
- a voxel remesh at 5 k faces;
and first the peak memory of a fine voxel remesh (400 k faces), UVs and bake included, per face of its result
(the figure memory.VOXEL_BYTES_PER_FACE rounds up).

Then an open relief: Middlebury's motorcycle with its true depth (scikit-image), default settings at --resolution
256 (about 45 k faces, many pieces cut at depth steps), its plain build beside a quad and a voxel remesh at 2 k and
5 k faces (UVs projected, no bake). For each: seconds, faces and their quad share, pieces; the outline seen
through the camera against the relief's (photo pixels: the new outline's distance to the old, median / 95th
percentile / max, and the old's to the new: what the remesh left out, small pieces first); the surface's distance
to the relief (median / 95th percentile, % of the distance from the camera); the share of the area facing the
camera (the relief's own: 100 %).

Usage: python scripts/bench_remesh.py [--repeat N] [--relief-only]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import cli  # noqa: E402

cli.load_package()
import bpy  # noqa: E402
import bmesh  # noqa: E402  (bpy first: it makes bmesh importable)
import numpy as np  # noqa: E402
from mathutils import Vector  # noqa: E402
from mathutils.bvhtree import BVHTree  # noqa: E402
from scipy.sparse import coo_matrix  # noqa: E402
from scipy.sparse.csgraph import connected_components  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402
from skimage.data import coffee  # noqa: E402

from image_to_mesh.inference.geometry.remesh import surface_area, voxel_size_for  # noqa: E402
from image_to_mesh.inference.photo.photo import Photo  # noqa: E402
from image_to_mesh.inference.pipeline import image_to_mesh  # noqa: E402
from image_to_mesh.inference.settings import MeshSettings  # noqa: E402
from image_to_mesh.operators.builders.finish import MeshFinish  # noqa: E402
from image_to_mesh.operators.builders.objects import build_objects  # noqa: E402
from image_to_mesh.operators.builders.remesh import remesh_object  # noqa: E402


def coffee_record():
    rgb = coffee()
    photo = Photo("coffee", rgb, None, (rgb.shape[1], rgb.shape[0]))
    settings = MeshSettings(method="inflate", mask="grabcut", resolution=256, height=0.1)
    return image_to_mesh(photo, None, settings)


def plain_object(record):
    """The record built, nothing else in the scene; (seconds, object)."""
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    start = time.perf_counter()
    obj, _camera, _image = build_objects(record, scene.collection, scene)
    return time.perf_counter() - start, obj


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)  # QuadriFlow at 20 k faces: about a minute a run
    parser.add_argument("--relief-only", action="store_true")
    args = parser.parse_args()
    if not args.relief_only:
        closed_object(args.repeat)
    relief(args.repeat)


def closed_object(repeat: int):
    start = time.perf_counter()
    record = coffee_record()
    pipeline = time.perf_counter() - start
    print(f"remesh: coffee inflated, {len(record.vertices):,} vertices, {record.face_count:,} faces, photo to record "
          f"{pipeline:.2f} s")
    area = surface_area(record.vertices, record.quads, record.triangles)
    # First, while the process's peak is still the record's: a process's peak only grows.
    _, obj = plain_object(record)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    remesh_object(obj, "voxel", 0, voxel_size_for(area, 400_000), 256)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
    made = len(obj.data.polygons)
    print(f"voxel remesh peak memory: {peak / 2**20:.0f} MB above the process's peak before it, for {made:,} quads: "
          f"{peak / made:.0f} bytes per face")
    plain = statistics.median(plain_object(record)[0] for _ in range(repeat))
    print(f"plain build (no finish): {plain:.2f} s")
    for target in (5000, 20000):
        for side in (1024, 2048):
            runs = []
            for _ in range(repeat):
                _, obj = plain_object(record)
                timings = {}
                remesh_object(obj, "quad", target, None, side, timings)
                runs.append((timings["remesh"], timings["bake"], len(obj.data.polygons)))
            remesh, bake, made = (statistics.median(column) for column in zip(*runs))
            print(f"quad remesh {target:,} faces: {remesh:.2f} s ({made:,.0f} quads; {remesh / pipeline:.1f}x photo "
                  f"to record); UVs + bake {side}^2: {bake:.2f} s")
    _, obj = plain_object(record)
    timings = {}
    remesh_object(obj, "voxel", 0, voxel_size_for(area, 5000), 1024, timings)
    print(f"voxel remesh 5,000 faces: {timings['remesh']:.2f} s ({len(obj.data.polygons):,} quads); "
          f"UVs + bake 1024^2: {timings['bake']:.2f} s")



def motorcycle_record():
    sys.path.insert(0, str(ROOT / "scripts"))
    from middlebury_sample import FOCAL_PX, motorcycle

    rgb, depth = motorcycle()
    photo = Photo("motorcycle", rgb, None, (rgb.shape[1], rgb.shape[0]))
    settings = MeshSettings(method="depth-map", resolution=256, focal_px=FOCAL_PX)
    return image_to_mesh(photo, np.nan_to_num(depth, nan=0.0), settings)


def relief(repeat: int):
    record = motorcycle_record()
    width, height = record.camera.size
    print(f"relief: the motorcycle, {len(record.vertices):,} vertices, {record.face_count:,} faces")
    bpy.ops.wm.read_homefile(use_empty=True)
    scene = bpy.context.scene
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        plain, camera, _ = build_objects(record, scene.collection, scene)
        runs.append(time.perf_counter() - start)
    bpy.context.view_layer.update()
    before = shape(plain, camera, width, height)
    print(f"plain build: {statistics.median(runs):.2f} s; {before['pieces']} pieces")
    for remesh in ("quad", "voxel"):
        for target in (2000, 5000):
            runs = []
            for _ in range(repeat):
                start = time.perf_counter()
                obj, camera, _ = build_objects(record, scene.collection, scene, MeshFinish(target, remesh=remesh))
                runs.append(time.perf_counter() - start)
            bpy.context.view_layer.update()
            after = shape(obj, camera, width, height)
            out = cKDTree(before["outline"]).query(after["outline"])[0]
            left = cKDTree(after["outline"]).query(before["outline"])[0]
            off = surface_distance(plain, obj, camera)
            print(f"relief {remesh} {target:,} faces: {statistics.median(runs):.2f} s (build included); "
                  f"{after['faces']:,} faces, {after['quads']:.1%} quads, {after['pieces']} pieces; outline new to "
                  f"old {np.median(out):.1f} / {np.percentile(out, 95):.1f} / {out.max():.1f} px, old to new "
                  f"{np.median(left):.1f} / {np.percentile(left, 95):.1f} / {left.max():.1f} px; surface "
                  f"{np.median(off):.2%} / {np.percentile(off, 95):.2%} of the distance; "
                  f"facing the camera {after['facing']:.1%} of the area")


def shape(obj, camera, width: int, height: int) -> dict:
    """Faces, quad share, pieces, the share of the area facing `camera`, and the outline through it (pixels,
    sampled every quarter pixel)."""
    mesh = obj.data
    sizes = np.array([len(p.vertices) for p in mesh.polygons])
    co = np.array([v.co[:] for v in mesh.vertices])
    corner = np.array([v for p in mesh.polygons for v in p.vertices])
    face = np.repeat(np.arange(len(sizes)), sizes)
    links = coo_matrix((np.ones(len(face)), (face, len(sizes) + corner)), shape=(len(sizes) + len(co),) * 2)
    pieces = len(np.unique(connected_components(links, directed=False)[1][:len(sizes)]))
    normal, centre, area = (np.array([getattr(p, key) for p in mesh.polygons]) for key in ("normal", "center", "area"))
    facing = np.einsum("ij,ij->i", normal, np.array(camera.matrix_world.translation) - centre) > 0
    bm = bmesh.new()
    bm.from_mesh(mesh)
    ends = np.array([[e.verts[0].index, e.verts[1].index] for e in bm.edges if e.is_boundary])
    bm.free()
    projection = np.array(camera.calc_matrix_camera(bpy.context.evaluated_depsgraph_get(), x=width, y=height))
    clip = np.c_[co, np.ones(len(co))] @ (projection @ np.array(camera.matrix_world.inverted())).T
    xy = np.c_[(clip[:, 0] / clip[:, 3] + 1) / 2 * width, (1 - clip[:, 1] / clip[:, 3]) / 2 * height]
    a, b = xy[ends[:, 0]], xy[ends[:, 1]]
    steps = np.maximum(1, np.ceil(4 * np.linalg.norm(b - a, axis=1)).astype(int))
    edge = np.repeat(np.arange(len(ends)), steps)
    t = np.concatenate([np.arange(n) / n for n in steps])[:, None]
    return {"faces": len(sizes), "quads": float((sizes == 4).mean()), "pieces": pieces,
            "facing": float(area[facing].sum() / area.sum()), "outline": a[edge] + (b[edge] - a[edge]) * t}


def surface_distance(relief_object, remeshed, camera) -> np.ndarray:
    """Each new vertex's distance to the relief's surface, over its distance from the camera."""
    bm = bmesh.new()
    bm.from_mesh(relief_object.data)
    surface = BVHTree.FromBMesh(bm)
    bm.free()
    co = np.array([v.co[:] for v in remeshed.data.vertices])
    off = np.array([surface.find_nearest(Vector(p))[3] for p in co])
    return off / np.linalg.norm(co - np.array(camera.matrix_world.translation), axis=1)


if __name__ == "__main__":
    main()
