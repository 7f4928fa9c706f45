"""How models are found, fetched and run on this machine: handed to the pipeline by Blender or the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .cards import ModelCard
from .jobs import CancelToken
from .store import ModelStore, Progress


@dataclass
class ModelAccess:
    store: ModelStore
    device: str = "cpu"
    threads: int = 0
    license_accepted: bool = False  # the user accepted non-commercial licences for downloads
    progress: Progress | None = None
    cancel: CancelToken = field(default_factory=CancelToken)
    # The subject-mask model the extension carries (None: not carried), and how to get it back when missing:
    # where it lies is the extension's business (a checkout, an installed zip), not inference's.
    u2netp: Path | None = None
    u2netp_hint: str = "reinstall Image to Mesh"

    def fetch(self, card: ModelCard) -> list[Path]:
        """The card's files, downloaded if they are missing and downloads are allowed."""
        return self.store.fetch(card, self.progress, self.cancel, self.license_accepted)
