"""The model registry: cards read from model_cards.toml, one per model the tool can run."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import InputError

CARDS_FILE = Path(__file__).with_name("model_cards.toml")
DEFAULT_MODEL = "depth-anything-v2-small"
DEFAULT_GENERATOR = "hunyuan3d-2mini-turbo"  # the quickest whole object: 5 steps
OUTPUT_KINDS = ("relative-disparity", "metric-depth", "metric-depth-focal", "affine-points", "mask", "image", "mesh")
RUNTIMES = ("onnx", "torch-worker")


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "hub" or "url"
    files: tuple[str, ...]
    sha256: tuple[str, ...]  # "" where unknown: recorded on first download
    repo: str = ""
    revision: str = ""
    url: str = ""
    # "flat": a hand-placed copy is <models>/<id>/<file name>; "repo": <models>/<id>/<path in the repository>, the
    # folder layout a generator loads (two subfolders may each hold a config.yaml).
    layout: str = "flat"

    def file_url(self, filename: str, endpoint: str = "https://huggingface.co") -> str:
        if self.kind == "url":
            return self.url
        return f"{endpoint}/{self.repo}/resolve/{self.revision}/{filename}"


@dataclass(frozen=True)
class InputContract:
    size_rule: str  # "multiple-of-14" | "fixed" | "max-side" | "tile" (upscaling: tiles of at most `side`)
    side: int
    normalise: str  # "imagenet" | "unit" | "symmetric"
    num_tokens: int = 0  # MoGe's resolution level


@dataclass(frozen=True)
class GeneratorSpec:
    """How an object generator's files are laid out and run (runtime "torch-worker": inference/generate/)."""

    family: str  # "hunyuan3d-2" or "triposr": the worker code that runs it (worker_main.FAMILIES)
    # Its model folder in the repository ("" = the top): Hunyuan3D-2's DiT folder (config.yaml +
    # model.fp16.safetensors), TripoSR's config.yaml + model.ckpt.
    subfolder: str = ""
    vae_subfolder: str = ""  # a VAE folder to decode with instead of the DiT file's own (the turbo VAE)
    flashvdm: bool = False  # FlashVDM's hierarchical decoding
    multiview: bool = False  # takes the front photo and 1 to 3 more (left, back, right), not one photo
    steps: int = 30
    guidance: float = 5.0
    octree_resolution: int = 256  # the density grid's side (TripoSR: its marching-cubes resolution)
    num_chunks: int = 8000  # points per decoder query
    cpu_minutes: float = 0.0  # one photo at these defaults on the project's 2-core CPU (model_cards.toml)


@dataclass(frozen=True)
class ModelCard:
    id: str
    name: str
    best_for: str
    license: str
    commercial: bool
    size_mb: float
    source: ModelSource
    input: InputContract | None  # None for object generators: the worker has its own preprocessing
    output_names: tuple[str, ...]
    output_kind: str
    task: str = "depth"  # "depth", "mask" (subject masks, inference/masks/), "upscale" (inference/photo/upscale.py)
    # or "object" (inference/generate/)
    runtime: str = "onnx"  # "onnx": ONNX Runtime in this process; "torch-worker": the generator's own process
    generator: GeneratorSpec | None = None
    license_terms: str = ""  # the restrictions to show before the licence is accepted


@cache
def model_cards() -> dict[str, ModelCard]:
    """Every card, by id, in the file's order."""
    cards = {}
    for raw in tomllib.loads(CARDS_FILE.read_text(encoding="utf-8"))["model"]:
        src, inp, out = raw["source"], raw.get("input"), raw.get("output", {"names": [], "kind": "mesh"})
        if raw.get("runtime", "onnx") not in RUNTIMES:
            raise ValueError(f"model card {raw['id']}: unknown runtime {raw['runtime']}")
        if out["kind"] not in OUTPUT_KINDS:
            raise ValueError(f"model card {raw['id']}: unknown output kind {out['kind']}")
        cards[raw["id"]] = ModelCard(
            id=raw["id"],
            name=raw["name"],
            best_for=raw["best_for"],
            license=raw["license"],
            commercial=raw["commercial"],
            size_mb=raw["size_mb"],
            source=ModelSource(
                kind=src["kind"], files=tuple(src["files"]), sha256=tuple(src["sha256"]),
                repo=src.get("repo", ""), revision=src.get("revision", ""), url=src.get("url", ""),
                layout=src.get("layout", "flat"),
            ),
            input=InputContract(
                size_rule=inp["size_rule"], side=inp["side"],
                normalise=inp["normalise"], num_tokens=inp.get("num_tokens", 0),
            ) if inp else None,
            output_names=tuple(out["names"]),
            output_kind=out["kind"],
            task=raw.get("task", "depth"),
            runtime=raw.get("runtime", "onnx"),
            generator=GeneratorSpec(**raw["generator"]) if "generator" in raw else None,
            license_terms=raw.get("license_terms", ""),
        )
    return cards


def model_card(model_id: str, task: str = "depth") -> ModelCard:
    """The card of a model for `task` ("depth", "mask", "upscale" or "object")."""
    cards = task_cards(task)
    if model_id not in cards:
        raise InputError(f"Unknown {task} model '{model_id}': use one of {', '.join(cards)} (see --list-models).")
    return cards[model_id]


def task_cards(task: str) -> dict[str, ModelCard]:
    return {card_id: card for card_id, card in model_cards().items() if card.task == task}
