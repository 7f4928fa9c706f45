"""Hunyuan3D-2 shape generation with hy3dgen 2.0.2: imported only inside the generator's worker process.

Photo (RGBA, alpha = the subject) -> hy3dgen's ImageProcessorV2 (the subject centred on white, 512 px) -> DINOv2
conditioning -> flow-matching diffusion (steps, guidance, seed) -> ShapeVAE decoding on an octree grid -> marching
cubes -> hy3dgen's FloaterRemover and DegenerateFaceRemover (and FaceReducer for a face budget) -> an xatlas UV
atlas. The mesh stays in hy3dgen's output frame: about [-1.01, 1.01]^3, +X right, +Y up, +Z towards the viewer of
the photo, faces counter-clockwise seen from outside.

hy3dgen's traps, and what this module does about each:
- It imports torchvision at import time (undeclared) for four tensor transforms: torchvision_stand_in provides them
  while hy3dgen is imported (PyPI's Linux torchvision is a CUDA build that fails beside a CPU torch).
- Its defaults are CUDA and float16: float32 on the CPU, float16 on CUDA and MPS.
- from_pretrained looks in $HY3DGEN_MODELS and calls the hub when a folder is missing: models are loaded with
  from_single_file from folders the caller already has (the worker also runs with HF_HUB_OFFLINE=1).
- config.yaml's `target` strings are imported and called: only hy3dgen.shapegen classes are accepted, and a DiT
  `ckpt_path` (an unrestricted torch.load) or an image encoder without an inline config (a hub download) is refused.
- The turbo scheduler builds float64 sigmas, which MPS cannot hold: cast to float32 there.
- enable_flashvdm(replace_vae=True) reloads a VAE by repo id (a download, in float16) and FlashVDM decodes another
  grid than asked (384 -> 380) while marching cubes still scales by the requested size: the card's turbo VAE is
  loaded here, FlashVDM is enabled on it directly, and the grid it really decodes is what marching cubes is told.
- enable_model_cpu_offload is broken: not used.
- The pipeline returns a list whose entries may be None (marching cubes found no surface): one sentence.
- 'dmc' surface extraction needs CUDA-only diso: 'mc' (scikit-image's marching cubes) everywhere.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import trimesh
import yaml
from PIL import Image

from shape_output import GenerationError, Progress, Shape, finished_shape, load_subject
from shape_settings import ShapeSettings  # sibling modules: the worker runs from this folder
from torchvision_stand_in import import_hy3dgen

import_hy3dgen()  # first: hy3dgen needs torchvision's transforms at import time
from hy3dgen.shapegen import (  # noqa: E402
    DegenerateFaceRemover,
    FaceReducer,
    FloaterRemover,
    Hunyuan3DDiTFlowMatchingPipeline,
)
from hy3dgen.shapegen.models.autoencoders import MCSurfaceExtractor, ShapeVAE  # noqa: E402
from hy3dgen.shapegen.preprocessors import MVImageProcessorV2  # noqa: E402

CONFIG = "config.yaml"
CHECKPOINT = "model.fp16.safetensors"
BOX = 1.01  # hy3dgen decodes the cube [-1.01, 1.01]^3
MC_LEVEL = 0.0  # the flow-matching pipeline's iso-level


def dtype_for(device: str) -> torch.dtype:
    return torch.float32 if device == "cpu" else torch.float16


def flashvdm_resolution(octree_resolution: int) -> int:
    """The grid FlashVDM really decodes for a requested resolution (hy3dgen's rule: 384 -> 380, 256 -> 252)."""
    levels, resolution = [], octree_resolution
    while resolution >= 63 or not levels:  # halvings down to its 63 minimum, coarsest first
        levels.insert(0, resolution)
        resolution //= 2
    return (round(levels[0] / 4) * 4 - 1) * 2 ** (len(levels) - 1)


# --- loading ---------------------------------------------------------------------------------------------------


@dataclass
class ShapeModel:
    pipeline: Hunyuan3DDiTFlowMatchingPipeline
    device: str
    flashvdm: bool


def load_model(dit_folder: str | Path, device: str = "cpu", vae_folder: str | Path | None = None,
               flashvdm: bool = False) -> ShapeModel:
    """A pipeline from an official-layout folder (config.yaml + model.fp16.safetensors with model./vae./
    conditioner. keys), optionally with another VAE folder (the turbo VAE) and the FlashVDM decoder."""
    dit_folder = Path(dit_folder)
    _checked_config(dit_folder, pipeline=True)
    dtype = dtype_for(device)
    pipeline = Hunyuan3DDiTFlowMatchingPipeline.from_single_file(
        str(dit_folder / CHECKPOINT), str(dit_folder / CONFIG), device=device, dtype=dtype, use_safetensors=True)
    if vae_folder:
        vae_folder = Path(vae_folder)
        _checked_config(vae_folder, pipeline=False)
        pipeline.vae = ShapeVAE.from_single_file(str(vae_folder / CHECKPOINT), str(vae_folder / CONFIG),
                                                 device=device, dtype=dtype, use_safetensors=True)
    if flashvdm:
        pipeline.vae.enable_flashvdm_decoder(enabled=True, adaptive_kv_selection=True, topk_mode="mean", mc_algo="mc")
    else:
        pipeline.vae.surface_extractor = MCSurfaceExtractor()
    if device == "mps":
        pipeline.scheduler.sigmas = pipeline.scheduler.sigmas.to(torch.float32)
    return ShapeModel(pipeline, device, flashvdm)


def _checked_config(folder: Path, pipeline: bool) -> dict:
    for name in (CONFIG, CHECKPOINT):
        if not (folder / name).is_file():
            raise GenerationError(f"The model folder {folder} has no {name}: it needs Hunyuan3D-2's layout "
                                  f"({CONFIG} and {CHECKPOINT}).")
    try:
        config = yaml.safe_load((folder / CONFIG).read_text(encoding="utf-8"))
        parts = [config[s] for s in ("model", "vae", "conditioner", "scheduler", "image_processor")] if pipeline \
            else [config]
        targets = [part.get("target", "hy3dgen.shapegen.") for part in parts]
        encoders = config["conditioner"].get("params", {}).values() if pipeline else []
        hub_encoder = any(not encoder["kwargs"].get("config") for encoder in encoders)
        checkpoint_path = pipeline and "ckpt_path" in config["model"].get("params", {})
    except (OSError, UnicodeError, yaml.YAMLError, KeyError, TypeError, AttributeError):
        raise GenerationError(f"{folder / CONFIG} is not a Hunyuan3D-2 configuration.") from None
    if not all(isinstance(t, str) and t.startswith("hy3dgen.shapegen.") for t in targets):
        raise GenerationError(f"{folder / CONFIG} names classes outside hy3dgen.shapegen: it was refused.")
    if hub_encoder or checkpoint_path:
        raise GenerationError(f"{folder / CONFIG} asks to load weights from elsewhere (a checkpoint path or a hub "
                              "download): it was refused.")
    return config


# --- generating ------------------------------------------------------------------------------------------------


def conditioning_images(model: ShapeModel, front: str | Path, views: dict[str, str | Path]):
    """What the pipeline is conditioned on: the front photo, or for a multi-view model {view tag: photo}."""
    multiview = isinstance(model.pipeline.image_processor, MVImageProcessorV2)
    if multiview and not views:
        raise GenerationError("This is a multi-view model: give it the front photo and at least one more (left, back "
                              "or right).")
    if views and not multiview:
        raise GenerationError("This model takes one photo: use a multi-view model (Hunyuan3D-2mv) for several.")
    image = load_subject(front)
    return {"front": image, **{tag: load_subject(path) for tag, path in views.items()}} if views else image


def generate_shape(model: ShapeModel, image: Image.Image | dict[str, Image.Image], settings: ShapeSettings,
                   progress: Progress = lambda stage, done, total: None) -> Shape:
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(stage: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[stage] = round(seconds.get(stage, 0.0) + now - clock, 3)
        clock = now

    pipeline = model.pipeline
    octree = flashvdm_resolution(settings.octree_resolution) if model.flashvdm else settings.octree_resolution
    progress("diffusion", 0, settings.steps)
    latents = pipeline(
        image=image, num_inference_steps=settings.steps, guidance_scale=settings.guidance,
        generator=torch.Generator("cpu").manual_seed(settings.seed),  # the same noise on every device
        octree_resolution=octree, num_chunks=settings.num_chunks, output_type="latent", enable_pbar=False,
        callback=lambda step, _t, _out: progress("diffusion", step + 1, settings.steps), callback_steps=1,
    )
    lap("diffusion")
    vae = pipeline.vae
    with torch.inference_mode():  # hy3dgen's _export, stage by stage so each reports its progress
        progress("decode", 0, 3)
        latents = vae(latents / vae.scale_factor)
        progress("decode", 1, 3)
        grid = vae.volume_decoder(latents, vae.geo_decoder, bounds=BOX, num_chunks=settings.num_chunks,
                                  octree_resolution=octree, mc_level=MC_LEVEL, enable_pbar=False)
        lap("volume")
        progress("decode", 2, 3)
        (surface,) = vae.surface_extractor(grid, bounds=BOX, octree_resolution=octree, mc_level=MC_LEVEL)
        del grid
        progress("decode", 3, 3)
    lap("surface")
    if surface is None:
        raise GenerationError("Hunyuan3D-2 found no surface for this photo: try another seed, more steps, or a photo "
                              "where the subject stands out clearly.")
    mesh = mesh_from_surface(surface)
    report = {"octree_resolution": octree, "raw_vertices": len(mesh.vertices), "raw_faces": len(mesh.faces)}

    progress("cleanup", 0, 2)
    if settings.remove_floaters:
        mesh = FloaterRemover()(mesh)
    progress("cleanup", 1, 2)
    mesh = DegenerateFaceRemover()(mesh)
    progress("cleanup", 2, 2)
    lap("cleanup")
    if settings.target_faces and len(mesh.faces) > settings.target_faces:
        progress("reduce", 0, 1)
        mesh = FaceReducer()(mesh, max_facenum=settings.target_faces)
        progress("reduce", 1, 1)
        lap("reduce")
    if len(mesh.faces) == 0:
        raise GenerationError("Nothing was left of the generated shape after removing floating bits: try another "
                              "seed or photo.")
    report["seconds"] = seconds
    return finished_shape(np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int32), settings.uv, report,
                          progress)


def mesh_from_surface(surface) -> trimesh.Trimesh:
    """hy3dgen's export: marching cubes' triangles reversed, which makes them counter-clockwise from outside (the
    field is positive inside), and duplicate vertices merged."""
    return trimesh.Trimesh(surface.mesh_v, np.ascontiguousarray(surface.mesh_f[:, ::-1]))


def environment_report(device: str) -> dict:
    """What the worker can run on: torch's version and whether the asked-for accelerator answers."""
    seen = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}.get(device, lambda: True)()
    return {"torch": torch.__version__, "device": device, "available": bool(seen)}
