"""Object generator cards -> the model folders and settings of a worker request (Blender side: no torch).

A card (task "object", runtime "torch-worker") lists its files by repository path; the store keeps that layout
(its Hugging Face cache, or <models folder>/<id>/ by hand), so the files' parent folders are exactly what the worker
loads: Hunyuan3D-2's DiT folder and, for FlashVDM models, the turbo VAE's folder; TripoSR's folder of config.yaml and
model.ckpt (the repository's top) or model.safetensors. `--model-file` may name either such a repository folder or the model folder
itself.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..runtime.cards import ModelCard
from .worker_client import ShapeRequest

# The files a model folder needs, each a choice of names (the first present is used): TripoSR's weights may be the
# authors' pickle (loaded only when its SHA-256 is the card's) or the same state dict as safetensors (nothing in it
# can run code: a converted or fine-tuned copy needs no pinned hash).
NEEDED = {"hunyuan3d-2": (("config.yaml",), ("model.fp16.safetensors",)),
          "triposr": (("config.yaml",), ("model.safetensors", "model.ckpt"))}


def model_files(family: str, folder: Path) -> list[Path] | None:
    """The files of `folder` the worker loads for a model of `family`, or None if one is missing."""
    found = [next((folder / name for name in names if (folder / name).is_file()), None) for names in NEEDED[family]]
    return None if None in found else found


def model_folders(card: ModelCard, paths: list[Path]) -> tuple[Path, Path | None]:
    """The DiT folder and the VAE folder (None = the DiT file's own VAE) of a card's fetched files."""
    spec = _spec(card)
    parent = {Path(name).parent.as_posix(): Path(path).parent for name, path in zip(card.source.files, paths)}
    return parent[Path(spec.subfolder).as_posix()], parent[spec.vae_subfolder] if spec.vae_subfolder else None


def local_model_folders(card: ModelCard, folder: str | Path) -> tuple[Path, Path | None]:
    """--model-file: a folder holding the card's subfolders, or the DiT folder itself (a VAE folder beside it is
    used when the card wants one; without it, FlashVDM decodes with the DiT file's own VAE)."""
    spec, folder = _spec(card), Path(folder)
    dit = folder / spec.subfolder if (folder / spec.subfolder).is_dir() else folder
    if model_files(spec.family, dit) is None:
        needed = " and ".join(" or ".join(names) for names in NEEDED[spec.family])
        inside = f" (or the repository's {spec.subfolder} folder holding them)" if spec.subfolder else ""
        raise InputError(f"{folder} is not a {card.name} model folder: it needs {needed}{inside}.")
    vae = None
    if spec.vae_subfolder:
        candidates = (dit.parent / spec.vae_subfolder, folder / spec.vae_subfolder)
        vae = next((c for c in candidates if model_files(spec.family, c) is not None), None)
    return dit, vae


def shape_request(card: ModelCard, image: str | Path, dit_folder: Path, vae_folder: Path | None = None,
                  **settings) -> ShapeRequest:
    """A request with the card's family and defaults (steps, guidance, octree resolution, chunk size, FlashVDM, the
    checkpoint's SHA-256), overridden by `settings` (device, seed, steps, guidance, octree_resolution, num_chunks,
    target_faces, remove_floaters, uv; views for a multi-view model)."""
    spec = _spec(card)
    hashes = dict(zip((Path(name).name for name in card.source.files), card.source.sha256))
    defaults = dict(steps=spec.steps, guidance=spec.guidance, octree_resolution=spec.octree_resolution,
                    num_chunks=spec.num_chunks, flashvdm=spec.flashvdm, family=spec.family,
                    checkpoint_sha256=hashes.get("model.ckpt", ""))
    return ShapeRequest(image=Path(image), dit_folder=dit_folder, vae_folder=vae_folder, **{**defaults, **settings})


def _spec(card: ModelCard):
    if card.task != "object" or card.generator is None:
        raise InputError(f"{card.name} is not an object generator.")
    return card.generator
