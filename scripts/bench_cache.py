"""Benchmark: meshing a photo again from the cache of its model's outputs, beside meshing it from scratch.

What Update and Adjust Last Operation do when only meshing settings change (resolution, edge threshold, near/far,
closure, size): the depth model's outputs come from runtime/cache.py and only the meshing runs. Photo: a 1024 x 768
JPEG; model: the given ONNX depth model (`make bench`: Depth Anything V2 Small's real architecture with random
weights); grid: 512 vertices along the long side. Both columns include building the Blender objects.
  uncached  photo -> model (session + inference) -> mesh -> Blender objects, a fresh cache each time;
  cached    the same photo, another edge threshold, near and far: cache -> mesh -> Blender objects.
Target: cached <= 0.3 s. Medians of alternating repetitions (this machine is noisy).
Usage: python scripts/bench_cache.py MODEL.onnx [REPEATS]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import cli  # noqa: E402

cli.load_package()
import bpy  # noqa: E402
from image_to_mesh.inference.pipeline import image_to_mesh  # noqa: E402
from image_to_mesh.inference.runtime.access import ModelAccess  # noqa: E402
from image_to_mesh.inference.runtime.cache import ResultCache  # noqa: E402
from image_to_mesh.inference.runtime.store import ModelStore  # noqa: E402
from image_to_mesh.inference.settings import MeshSettings  # noqa: E402
from image_to_mesh.operators.builders.objects import build_objects  # noqa: E402
from PIL import Image  # noqa: E402


def mesh_and_build(photo: Path, settings: MeshSettings, access: ModelAccess) -> float:
    bpy.ops.wm.read_homefile(use_empty=True)
    start = time.perf_counter()
    record = image_to_mesh(photo, None, settings, access)
    scene = bpy.context.scene
    build_objects(record, scene.collection, scene, release=True)
    return time.perf_counter() - start


def main() -> None:
    model, repeats = Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 5
    with tempfile.TemporaryDirectory() as tmp:
        v, u = np.mgrid[:768, :1024]
        rgb = np.stack([u * 255 // 1024, v * 255 // 768, (u + v) % 256], axis=-1).astype(np.uint8)
        photo = Path(tmp) / "photo.jpg"
        Image.fromarray(rgb).save(photo, quality=92)
        store = ModelStore(Path(tmp) / "store", allow_download=False)
        first = MeshSettings(method="model", model_file=str(model), resolution=512)
        again = MeshSettings(method="model", model_file=str(model), resolution=512, edge_threshold=80.0, near=2.0,
                             far=8.0)
        uncached, cached = [], []
        for _ in range(repeats):
            access = ModelAccess(store, cache=ResultCache())
            uncached.append(mesh_and_build(photo, first, access))
            cached.append(mesh_and_build(photo, again, access))
            assert access.cache.hits == 1, "the second run did not come from the cache"
    print(f"re-meshing from the cache (1024 x 768 photo, 512-vertex grid, model {model.name}, medians of {repeats})")
    print(f"  uncached  {statistics.median(uncached):6.3f} s   (model + mesh + Blender objects)")
    print(f"  cached    {statistics.median(cached):6.3f} s   (mesh + Blender objects; target <= 0.3 s)")


if __name__ == "__main__":
    main()
