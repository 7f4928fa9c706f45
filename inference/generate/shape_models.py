"""Object generator cards -> the model folders and settings of a worker request (Blender side: no torch).

A card (task "object", runtime "torch-worker") lists its files by repository path; the store keeps that layout
(its Hugging Face cache, or <models folder>/<id>/ by hand), so the files' parent folders are exactly what hy3dgen
loads: the DiT folder and, for FlashVDM models, the turbo VAE's folder. `--model-file` may name either such a
repository folder or the DiT folder itself.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..runtime.cards import ModelCard
from .worker_client import ShapeRequest

NEEDED = ("config.yaml", "model.fp16.safetensors")


def model_folders(card: ModelCard, paths: list[Path]) -> tuple[Path, Path | None]:
    """The DiT folder and the VAE folder (None = the DiT file's own VAE) of a card's fetched files."""
    spec = _spec(card)
    parent = {Path(name).parent.as_posix(): Path(path).parent for name, path in zip(card.source.files, paths)}
    return parent[spec.subfolder], parent[spec.vae_subfolder] if spec.vae_subfolder else None


def local_model_folders(card: ModelCard, folder: str | Path) -> tuple[Path, Path | None]:
    """--model-file: a folder holding the card's subfolders, or the DiT folder itself (a VAE folder beside it is
    used when the card wants one; without it, FlashVDM decodes with the DiT file's own VAE)."""
    spec, folder = _spec(card), Path(folder)
    dit = folder / spec.subfolder if (folder / spec.subfolder).is_dir() else folder
    missing = [name for name in NEEDED if not (dit / name).is_file()]
    if missing:
        raise InputError(f"{folder} is not a {card.name} model folder: it needs {' and '.join(NEEDED)} (or the "
                         f"repository's {spec.subfolder} folder holding them).")
    vae = None
    if spec.vae_subfolder:
        candidates = (dit.parent / spec.vae_subfolder, folder / spec.vae_subfolder)
        vae = next((c for c in candidates if all((c / name).is_file() for name in NEEDED)), None)
    return dit, vae


def shape_request(card: ModelCard, image: str | Path, dit_folder: Path, vae_folder: Path | None = None,
                  **settings) -> ShapeRequest:
    """A request with the card's defaults (steps, guidance, octree resolution, FlashVDM), overridden by `settings`
    (device, seed, steps, guidance, octree_resolution, num_chunks, target_faces, remove_floaters, uv)."""
    spec = _spec(card)
    defaults = dict(steps=spec.steps, guidance=spec.guidance, octree_resolution=spec.octree_resolution,
                    flashvdm=spec.flashvdm)
    return ShapeRequest(image=Path(image), dit_folder=dit_folder, vae_folder=vae_folder, **{**defaults, **settings})


def _spec(card: ModelCard):
    if card.task != "object" or card.generator is None:
        raise InputError(f"{card.name} is not an object generator.")
    return card.generator
