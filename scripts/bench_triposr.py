"""Benchmark: TripoSR's real architecture (random weights, float32) through inference/generate/triposr.py on this
machine's CPU, stage by stage.

No model hub is reachable: the network is built from the authors' real configuration
(tests/fixtures/triposr/authors_config.yaml) and random weights in the authors' 549 names and shapes
(authors_parameters.txt: 419 M values), saved as a model.ckpt and loaded the way the worker loads the real one. Timing does not depend on the weights; what
marching cubes meets does, and a random field is noise, not an object: the surface stages run on a smooth analytic
object instead (a ball and a box, density crossing 25 like a real field).
Measured:
  load          SHA-256 of the 1.7 GB checkpoint + torch.load(weights_only=True) + key conversion + strict load
  tokenizer     the preprocessing and DINO ViT-B/16 on the 512 px photo (1025 tokens)
  backbone      the triplane transformer and the upsampler
  density       the decoder over the whole grid, per resolution (chunks of --chunks points)
  surface       marching cubes, per resolution (analytic object)
  cleanup, uv   floaters, the face budget (--faces) and xatlas, at 256 (analytic object)
  colour        the decoder's colour at every vertex of that mesh (the texture's fallback)
  place         the object put on a 1600 x 1200 photo of it (the subject off-centre, as TripoSR's camera would
                see it): its input view refined (ours) beside the full silhouette search the diffusion path uses
                (baseline, same run), with the IoU each reaches
  texture       the photo baked into a 2048 atlas, the model's colours where the photo cannot see
  peak RAM      the process's maximum resident memory
Derived: photo -> textured object at 256 = tokenizer + backbone + density + surface + cleanup + uv + colour +
place + texture (what the CLI adds around them, the subject mask and writing the file, is about a second).

    .cache/generator-env/bin/python scripts/bench_triposr.py [--chunks 65536] [--faces 40000] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "inference" / "generate"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import triposr  # noqa: E402
from PIL import Image  # noqa: E402
from shape_output import uv_atlas  # noqa: E402

import cli  # noqa: E402
import object_meshes  # noqa: E402

cli.load_package()
from image_to_mesh.inference.objects.camera_fit import fit_camera, generator_view, refine_camera  # noqa: E402
from image_to_mesh.inference.objects.rasterise import render_attribute  # noqa: E402
from image_to_mesh.inference.objects.texture_bake import bake  # noqa: E402

CONFIG = ROOT / "tests" / "fixtures" / "triposr" / "authors_config.yaml"
PARAMETERS = CONFIG.with_name("authors_parameters.txt")
RESOLUTIONS = (128, 256)


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kilobytes on Linux


def timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def authors_state_dict() -> dict:
    """Random tensors with the authors' names and shapes (the list recorded from their model)."""
    generator = torch.Generator().manual_seed(0)
    state = {}
    for line in PARAMETERS.read_text(encoding="utf-8").splitlines():
        name, shape = line.split()
        state[name] = torch.randn(tuple(map(int, shape.split("x"))), generator=generator) * 0.02
    return state


def analytic_grid(resolution: int, radius: float) -> np.ndarray:
    """A ball and a box, density 50 at their cores falling smoothly through 25 over about two cells."""
    axis = np.linspace(-radius, radius, resolution, dtype=np.float32)
    x, y, z = np.meshgrid(axis, axis, axis, indexing="ij")
    ball = 0.35 - np.sqrt((x + 0.15) ** 2 + y**2 + (z - 0.1) ** 2)
    box = 0.2 - np.maximum.reduce([np.abs(x - 0.25), np.abs(y - 0.1), np.abs(z + 0.2)])
    sharpness = resolution / (4 * radius)
    return (50.0 / (1 + np.exp(np.clip(-np.maximum(ball, box) * 2 * sharpness, -50, 50)))).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=65536)
    parser.add_argument("--faces", type=int, default=40000)
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = triposr.TripoSRConfig.from_yaml(CONFIG.read_text(encoding="utf-8"))
    print(f"TripoSR, real architecture, random weights, {torch.get_num_threads()} threads, chunks of {args.chunks}, "
          f"load average {os.getloadavg()[0]:.1f} (a shared machine: figures scale with it)")
    seconds = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        state = authors_state_dict()
        print(f"  checkpoint      {len(state)} tensors, {sum(v.numel() for v in state.values()) / 1e6:.1f} M values")
        torch.save(state, folder / triposr.CHECKPOINT)
        del state
        (folder / triposr.CONFIG).write_text(CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
        sha = triposr.sha256_of(folder / triposr.CHECKPOINT)
        model, seconds["load"] = timed(triposr.load_model, folder, sha)
    print(f"  load            {seconds['load']:7.2f} s   (peak so far {peak_gb():.2f} GB)")

    rgb = np.zeros((300, 400, 4), np.uint8)
    rgb[60:260, 100:330] = (200, 120, 60, 255)
    photo = Image.fromarray(rgb, "RGBA")
    network = model.network
    with torch.inference_mode():
        for _ in range(2):  # the first run pays for lazy initialisation: the second is the figure
            pixels, _square = triposr.conditioning_image(photo, config.cond_image_size)
            tokens, seconds["tokenizer"] = timed(network.image_tokens, pixels)
            planes, seconds["backbone"] = timed(network.triplanes, tokens)
        print(f"  tokenizer       {seconds['tokenizer']:7.2f} s")
        print(f"  backbone        {seconds['backbone']:7.2f} s")
        for resolution in RESOLUTIONS:
            _, seconds[f"density {resolution}"] = timed(
                triposr.density_grid, model, planes[0], resolution, args.chunks, lambda *a: None)
            print(f"  density {resolution:<7} {seconds[f'density {resolution}']:7.2f} s   "
                  f"({resolution**3 / 1e6:.1f} M points)")
    for resolution in RESOLUTIONS:
        grid = analytic_grid(resolution, config.radius)
        (vertices, faces), seconds[f"surface {resolution}"] = timed(triposr.surface, grid, config.radius)
        print(f"  surface {resolution:<7} {seconds[f'surface {resolution}']:7.2f} s   ({len(faces)} faces)")
    (vertices, faces), seconds["cleanup"] = timed(triposr.clean_and_reduce, triposr.to_our_frame(vertices), faces,
                                                  True, args.faces)
    print(f"  cleanup         {seconds['cleanup']:7.2f} s   (to {len(faces)} faces)")
    (vertices, faces, uvs), seconds["uv"] = timed(uv_atlas, vertices, faces)
    print(f"  uv              {seconds['uv']:7.2f} s")
    with torch.inference_mode():
        colours, seconds["colour"] = timed(triposr.vertex_colours, model, planes[0], vertices[:, [2, 0, 1]],
                                           args.chunks)
    print(f"  colour          {seconds['colour']:7.2f} s   ({len(vertices)} vertices)")
    seconds.update(place_and_texture(vertices, faces, uvs))
    total = sum(seconds[k] for k in ("tokenizer", "backbone", "density 256", "surface 256", "cleanup", "uv", "colour",
                                     "place", "texture"))
    print(f"  photo -> textured object at 256: {total:.1f} s (without load; target 60 s); peak RAM {peak_gb():.2f} GB "
          f"(target 6 GB); load average now {os.getloadavg()[0]:.1f}")


def place_and_texture(vertices, faces, uvs) -> dict:
    """The object on a photo taken the way TripoSR assumes (tests/object_meshes.triposr_photo: the subject off the
    photo's centre, which a View's turn only approximates, so the refinement has work to do), then baked."""
    size = (1600, 1200)
    vertices, mask, square = object_meshes.triposr_photo(vertices.astype(np.float64), faces, size, (560, 240, 600))
    start = generator_view(square, 1.9, 40.0, size)
    (view, iou, report), place = timed(lambda: refine_camera(vertices, faces, mask, start, turn_deg=10.0))
    print(f"  place           {place:7.2f} s   (input view refined: IoU {report['initial_iou']:.3f} -> {iou:.3f})")
    (_, base_iou, _), search = timed(lambda: fit_camera(vertices, faces, mask))
    print(f"    baseline      {search:7.2f} s   (silhouette search from the front, as for Hunyuan3D-2: IoU "
          f"{base_iou:.3f})")
    shade = np.clip(0.5 + 0.4 * vertices, 0, 1).astype(np.float32)  # any colours: the bake's cost is the same
    rgb, seen = render_attribute(view, vertices, faces, shade)
    photo = np.where(seen[..., None], rgb * 255, 255).astype(np.uint8)
    _, texture = timed(lambda: bake(vertices, faces, uvs, [(view, photo, mask)], 2048, fallback_colours=shade))
    print(f"  texture         {texture:7.2f} s   (2048 atlas, the model's colours where the photo cannot see)")
    return {"place": place, "texture": texture}


if __name__ == "__main__":
    main()
