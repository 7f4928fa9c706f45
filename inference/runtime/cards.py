"""The model registry: cards read from model_cards.toml, one per model the tool can run."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from ..errors import InputError

CARDS_FILE = Path(__file__).with_name("model_cards.toml")
DEFAULT_MODEL = "depth-anything-v2-small"
OUTPUT_KINDS = ("relative-disparity", "metric-depth", "metric-depth-focal", "affine-points", "mask")
RUNTIMES = ("onnx", "torch-worker")


@dataclass(frozen=True)
class ModelSource:
    kind: str  # "hub" or "url"
    files: tuple[str, ...]
    sha256: tuple[str, ...]  # "" where unknown: recorded on first download
    repo: str = ""
    revision: str = ""
    url: str = ""

    def file_url(self, filename: str, endpoint: str = "https://huggingface.co") -> str:
        if self.kind == "url":
            return self.url
        return f"{endpoint}/{self.repo}/resolve/{self.revision}/{filename}"


@dataclass(frozen=True)
class InputContract:
    size_rule: str  # "multiple-of-14" | "fixed" | "max-side"
    side: int
    normalise: str  # "imagenet" | "unit" | "symmetric"
    num_tokens: int = 0  # MoGe's resolution level


@dataclass(frozen=True)
class ModelCard:
    id: str
    name: str
    best_for: str
    license: str
    commercial: bool
    size_mb: float
    source: ModelSource
    input: InputContract
    output_names: tuple[str, ...]
    output_kind: str
    task: str = "depth"  # "depth" or "mask" (subject masks, inference/masks/)
    runtime: str = "onnx"  # "onnx": ONNX Runtime in this process; "torch-worker": the generator's own process


@cache
def model_cards() -> dict[str, ModelCard]:
    """Every card, by id, in the file's order."""
    cards = {}
    for raw in tomllib.loads(CARDS_FILE.read_text(encoding="utf-8"))["model"]:
        src, inp, out = raw["source"], raw["input"], raw["output"]
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
            ),
            input=InputContract(
                size_rule=inp["size_rule"], side=inp["side"],
                normalise=inp["normalise"], num_tokens=inp.get("num_tokens", 0),
            ),
            output_names=tuple(out["names"]),
            output_kind=out["kind"],
            task=raw.get("task", "depth"),
            runtime=raw.get("runtime", "onnx"),
        )
    return cards


def model_card(model_id: str, task: str = "depth") -> ModelCard:
    """The card of a model for `task` ("depth" or "mask")."""
    cards = task_cards(task)
    if model_id not in cards:
        raise InputError(f"Unknown {task} model '{model_id}': use one of {', '.join(cards)} (see --list-models).")
    return cards[model_id]


def task_cards(task: str) -> dict[str, ModelCard]:
    return {card_id: card for card_id, card in model_cards().items() if card.task == task}
