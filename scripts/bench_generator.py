"""Benchmark: Hunyuan3D-2mini's real architectures (random weights, float32) on this machine's CPU, stage by stage.

No model hub is reachable, so the networks are hy3dgen's own classes with the published configurations
(scripts/make_tiny_hunyuan.py: MINI; their parameter counts match the published files to the byte) and random
weights. Timing does not depend on the weights; what the decoder queries and what marching cubes meets does, and a
random field is noise, not an object: those stages use a smooth analytic object instead (a ball with a handle,
occupancy logits in [-1.05, 1.05] like the real VAE's, turning over about two cells of the finest grid).

Each network is built alone and freed before the next (peak memory is the largest one, DINOv2-giant's 4.5 GB,
not the 7.6 GB of a whole float32 pipeline: this machine is shared).
Measured (real networks):
  conditioning   hy3dgen's preprocessing and DINOv2-giant on the photo (518 px, 1370 tokens), once per photo
  step           one diffusion step = one DiT forward (the scheduler's update is negligible): 2mini runs on a
                 batch of 2 (classifier-free guidance); -turbo and -fast are guidance-distilled, a batch of 1
  vae            the latent transformer, once per photo
  per point      the geometry decoder's cost per query point (chunks of --chunks points)
  check          a real decode of a small grid, to hold the per-point estimate against
  surface        marching cubes + hy3dgen's clean-up on the analytic object, per grid size (the same surface
                 either way: FlashVDM's grid matches the plain one wherever it decodes)
  budget + UV    FaceReducer down to --faces, then xatlas (xatlas on a whole 380 mesh, ~450 k faces, ran for
                 over 50 minutes here: UVs want a face budget)
  peak RAM       the process's maximum resident memory (a whole pipeline holds all three networks: 7.6 GB)
Derived:
  decode         plain: (r+1)^3 points x per point; FlashVDM: the points its hierarchy really queries for the
                 analytic object (hy3dgen's FlashVDMVolumeDecoding, counted) x per point — an upper bound, its
                 top-k attention being cheaper than the plain attention measured; then surface, budget and UV
  photo -> mesh  conditioning + steps x step + vae + decode, at each model's default settings

    .cache/generator-env/bin/python scripts/bench_generator.py [--steps 2] [--chunks 8000] [--faces 50000]
        [--skip-networks]
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "inference" / "generate"))
sys.path.insert(0, str(ROOT / "scripts"))

import hunyuan  # noqa: E402  (imports hy3dgen with the torchvision stand-in)
import numpy as np  # noqa: E402
import torch  # noqa: E402
from hy3dgen.shapegen.models.autoencoders import FlashVDMVolumeDecoding, MCSurfaceExtractor  # noqa: E402
from hy3dgen.shapegen.pipelines import instantiate_from_config  # noqa: E402
from make_tiny_hunyuan import MINI, pipeline_config  # noqa: E402
from PIL import Image  # noqa: E402
from shape_output import uv_atlas  # noqa: E402
from shape_settings import ShapeSettings  # noqa: E402

RESOLUTIONS = (128, 256, 380)


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kilobytes on Linux


def photo() -> Image.Image:
    from skimage import data

    rgb = data.coffee()
    h, w = rgb.shape[:2]
    yy, xx = np.mgrid[:h, :w]
    alpha = ((((xx - 0.45 * w) / (0.3 * w)) ** 2 + ((yy - 0.45 * h) / (0.35 * h)) ** 2) < 1) * 255
    return Image.fromarray(np.dstack([rgb, alpha]).astype(np.uint8), "RGBA")


def build(part: str, distilled: bool = False, turbo: bool = False) -> torch.nn.Module:
    """One network of the real architecture with PyTorch's default random initialisation."""
    torch.manual_seed(0)
    return instantiate_from_config(pipeline_config(MINI, distilled=distilled, turbo=turbo)[part]).eval()


def time_conditioning(image) -> tuple[float, dict]:
    """Seconds for hy3dgen's preprocessing + DINOv2-giant, and the condition it makes."""
    config = pipeline_config(MINI)
    processor, conditioner = instantiate_from_config(config["image_processor"]), build("conditioner")
    with torch.inference_mode():
        start = time.perf_counter()
        inputs = processor(image)
        cond = conditioner(image=inputs["image"], mask=inputs["mask"])
        seconds = time.perf_counter() - start
    del conditioner
    gc.collect()
    return seconds, cond


def seconds_per_step(dit, cond: dict, batch: int, steps: int) -> float:
    """One DiT forward on `batch` latents, as a diffusion step runs it (guidance embedded when distilled)."""
    latents = torch.randn(batch, 512, 64)
    contexts = {"main": torch.cat([cond["main"]] * batch)}
    guidance = torch.full((batch,), 5.0) if dit.guidance_embed else None
    with torch.inference_mode():
        start = time.perf_counter()
        for step in range(steps):
            dit(latents, torch.full((batch,), step / steps), contexts, guidance=guidance)
    return (time.perf_counter() - start) / steps


def seconds_per_point(vae, latents, chunks: int, repeats: int = 3) -> float:
    queries = torch.rand(1, chunks, 3) * 2.02 - 1.01
    with torch.inference_mode():
        vae.geo_decoder(queries=queries[:, :256], latents=latents)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            vae.geo_decoder(queries=queries, latents=latents)
    return (time.perf_counter() - start) / (repeats * chunks)


def object_logits(points: torch.Tensor, finest: int) -> torch.Tensor:
    """A ball with a handle, as occupancy logits (positive inside) turning over about two cells of the grid."""
    p = points
    ball = 0.55 - p.norm(dim=-1)
    ring = torch.stack([(p[..., [0, 1]] - torch.tensor([0.62, 0.0])).norm(dim=-1) - 0.22, p[..., 2]], -1)
    handle = 0.07 - ring.norm(dim=-1)
    distance = torch.maximum(ball, handle)
    return (distance * (0.95 / (2.0 * 2.02 / finest))).clamp(-1.05, 1.05)


class AnalyticDecoder:
    """Stands in for the geometry decoder inside hy3dgen's volume decoders: answers with object_logits, counts."""

    def __init__(self, finest: int):
        self.finest, self.queried = finest, 0

    def set_cross_attention_processor(self, processor):
        pass

    def __call__(self, queries, latents):
        self.queried += queries.shape[0] * queries.shape[1]
        return object_logits(queries, self.finest)[..., None]


def flashvdm_points(resolution: int, chunks: int) -> int:
    """How many points FlashVDM queries for the analytic object at a requested resolution."""
    decoded = hunyuan.flashvdm_resolution(resolution)
    decoder = AnalyticDecoder(decoded)
    FlashVDMVolumeDecoding()(torch.zeros(1, 512, 64), decoder, bounds=hunyuan.BOX, num_chunks=chunks,
                             octree_resolution=decoded, mc_level=0.0, enable_pbar=False)
    return decoder.queried


def plain_grid(resolution: int) -> torch.Tensor:
    axis = torch.linspace(-hunyuan.BOX, hunyuan.BOX, resolution + 1)
    return object_logits(torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1), resolution)[None]


def surface_seconds(grid: torch.Tensor, resolution: int, budget: int) -> tuple[float, int, float]:
    """(marching cubes + clean-up seconds, faces, face budget + UV seconds) on a decoded grid."""
    from hy3dgen.shapegen import DegenerateFaceRemover, FaceReducer, FloaterRemover

    start = time.perf_counter()
    (surface,) = MCSurfaceExtractor()(grid, mc_level=0.0, bounds=hunyuan.BOX, octree_resolution=resolution)
    mesh = DegenerateFaceRemover()(FloaterRemover()(hunyuan.mesh_from_surface(surface)))
    cleaned, faces = time.perf_counter(), len(mesh.faces)
    mesh = FaceReducer()(mesh, max_facenum=budget)
    uv_atlas(np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int32))
    return cleaned - start, faces, time.perf_counter() - cleaned


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2, help="diffusion steps to time (per model)")
    parser.add_argument("--chunks", type=int, default=8000, help="query points per decoder call (num_chunks)")
    parser.add_argument("--faces", type=int, default=ShapeSettings.target_faces,
                        help="face budget before UVs (the default of --method generate)")
    parser.add_argument("--skip-networks", action="store_true", help="only the surface stages (no network timing)")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; Hunyuan3D-2mini architecture, random "
          "weights, float32, CPU", flush=True)

    def row(name: str, value, unit: str) -> None:
        print(f"{name:<78} {value if isinstance(value, str) else f'{value:,.2f}':>12} {unit}", flush=True)

    decode = {}
    for resolution in RESOLUTIONS:
        surface, faces, uv = surface_seconds(plain_grid(resolution), resolution, args.faces)
        points = flashvdm_points(resolution, args.chunks)
        decode[resolution] = ((resolution + 1) ** 3, points, surface + uv)
        row(f"octree {resolution}: marching cubes + clean-up ({faces:,} faces)", surface, "s")
        row(f"octree {resolution}: budget of {args.faces:,} faces + UV atlas", uv, "s")
        row(f"octree {resolution}: FlashVDM queries {points / 1e6:.2f} M points (plain: "
            f"{(resolution + 1) ** 3 / 1e6:.1f} M), grid {hunyuan.flashvdm_resolution(resolution)}", "", "")
    if args.skip_networks:
        return

    conditioning, cond = time_conditioning(photo())
    row("conditioning (preprocessing + DINOv2-giant, 518 px)", conditioning, "s")
    dit = build("model")
    step_mini = seconds_per_step(dit, cond, 2, args.steps)
    row("2mini diffusion step (CFG: batch 2)", step_mini, "s")
    del dit
    gc.collect()
    dit = build("model", distilled=True, turbo=True)
    step_distilled = seconds_per_step(dit, cond, 1, args.steps)
    row("2mini-turbo / -fast diffusion step (guidance-distilled: batch 1)", step_distilled, "s")
    del dit
    gc.collect()

    vae = build("vae")
    with torch.inference_mode():
        start = time.perf_counter()
        latents = vae(torch.randn(1, 512, 64) / vae.scale_factor)
        vae_seconds = time.perf_counter() - start
    row("VAE latent transformer", vae_seconds, "s")
    per_point = seconds_per_point(vae, latents, args.chunks)
    row(f"geometry decoder per query point (chunks of {args.chunks})", per_point * 1e6, "µs")
    with torch.inference_mode():  # the estimate against a real decode: octree 32, every point decoded
        start = time.perf_counter()
        vae.volume_decoder(latents, vae.geo_decoder, bounds=hunyuan.BOX, num_chunks=args.chunks,
                           octree_resolution=32, enable_pbar=False)
    row("check: plain decode at octree 32, measured / predicted", (time.perf_counter() - start) / (33**3 * per_point),
        "x")
    del vae, latents
    gc.collect()

    seconds = {r: (plain * per_point + after, fast * per_point + after) for r, (plain, fast, after) in decode.items()}
    for resolution, (plain, fast) in seconds.items():
        row(f"octree {resolution}: decode + surface + UV, plain / FlashVDM", f"{plain:,.0f} / {fast:,.0f}", "s")
    fixed = conditioning + vae_seconds
    row("photo -> mesh, 2mini (30 steps, octree 256, plain)", fixed + 30 * step_mini + seconds[256][0], "s")
    row("photo -> mesh, 2mini-fast (30 steps, octree 256, plain)", fixed + 30 * step_distilled + seconds[256][0], "s")
    row("photo -> mesh, 2mini-turbo (5 steps, octree 256, FlashVDM)", fixed + 5 * step_distilled + seconds[256][1], "s")
    row("photo -> mesh, 2mini-turbo (5 steps, octree 380, FlashVDM)", fixed + 5 * step_distilled + seconds[380][1], "s")
    row("peak RAM of this process (one network at a time)", peak_gb(), "GB")


if __name__ == "__main__":
    main()
