"""How models are found, fetched and run on this machine: handed to the pipeline by Blender or the CLI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .cache import ResultCache
from .cards import ModelCard
from .jobs import CancelToken
from .store import ModelStore, Progress

if TYPE_CHECKING:
    from ..generate.worker_client import WorkerPool

Stage = Callable[[str, int, int], None]  # (what runs, e.g. "Generating: diffusion", step done, steps)


@dataclass
class ModelAccess:
    store: ModelStore
    device: str = "cpu"
    threads: int = 0
    license_accepted: bool = False  # the user accepted non-commercial licences for downloads
    progress: Progress | None = None  # downloads
    stage: Stage | None = None  # long model runs (object generation)
    cancel: CancelToken = field(default_factory=CancelToken)
    # The subject-mask model the extension carries (None: not carried), and how to get it back when missing:
    # where it lies is the extension's business (a checkout, an installed zip), not inference's.
    u2netp: Path | None = None
    u2netp_hint: str = "reinstall Image to Mesh"
    # Object generation: its Python environment's folder (None: not available here), and the warm workers that
    # run it (Blender keeps one pool for its session, the CLI one per run; whoever made the pool closes it).
    generator_folder: Path | None = None
    workers: WorkerPool | None = None
    # Model outputs (depth, masks, generated shapes) kept for meshing the same photo again without its model.
    cache: ResultCache = field(default_factory=ResultCache)

    def fetch(self, card: ModelCard) -> list[Path]:
        """The card's files, downloaded if they are missing and downloads are allowed."""
        return self.store.fetch(card, self.progress, self.cancel, self.license_accepted)
