"""Where model files live, and getting them there: verified, cancelable downloads that never leave a partial file.

A model's files are looked for, in order:
  1. <models folder>/<model id>/<file name>   — put there by hand (offline machines), or by a "url" download;
  2. <models folder>/hub/                    — this tool's Hugging Face cache;
  3. the user's own Hugging Face cache        — a model another tool already downloaded is reused.
Every file is checked against its card's SHA-256, or, where the card has none, against the hash recorded the
first time it was seen (<models folder>/hashes.json): a file that later changes is refused.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from .cards import ModelCard

Progress = Callable[[str, int, int], None]  # (file name, bytes done, bytes total)
_CHUNK = 1 << 20


class DownloadCancelled(InputError):
    """The user cancelled a download; nothing partial is kept."""


@dataclass
class ModelStore:
    folder: Path
    allow_download: bool = True
    endpoint: str | None = None  # Hugging Face endpoint; None = HF_ENDPOINT or the Hub
    use_user_cache: bool = True  # look in the user's own Hugging Face cache too
    offline_reason: str = "downloads are off"
    _hash_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self):
        self.folder = Path(self.folder)

    # --- finding -------------------------------------------------------------------------------------

    def find(self, card: ModelCard, verify: bool = True) -> list[Path] | None:
        """The card's files if all are present (and verified, unless a quick look is enough), else None."""
        for paths in (self._manual_paths(card), self._hub_paths(card, self.folder / "hub"),
                      self._hub_paths(card, None) if self.use_user_cache else None):
            if paths and all(p.is_file() for p in paths):
                for name, path in zip(card.source.files, paths):
                    if verify:
                        self.verify(card, name, path)
                return paths
        return None

    def is_present(self, card: ModelCard) -> bool:
        try:
            return self.find(card) is not None
        except InputError:
            return False

    def manual_folder(self, card: ModelCard) -> Path:
        return self.folder / card.id

    def _manual_paths(self, card: ModelCard) -> list[Path]:
        keep = card.source.layout == "repo"
        return [self.manual_folder(card) / (name if keep else Path(name).name) for name in card.source.files]

    def _hub_paths(self, card: ModelCard, cache_dir: Path | None) -> list[Path] | None:
        if card.source.kind != "hub":
            return None
        from huggingface_hub import try_to_load_from_cache

        paths = []
        for name in card.source.files:
            found = try_to_load_from_cache(card.source.repo, name, cache_dir=cache_dir, revision=card.source.revision)
            if not isinstance(found, str):
                return None
            paths.append(Path(found))
        return paths

    # --- getting -------------------------------------------------------------------------------------

    def fetch(
        self,
        card: ModelCard,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        license_accepted: bool = False,
    ) -> list[Path]:
        """The card's files: found on disk, or downloaded (when allowed and the licence is accepted)."""
        found = self.find(card)
        if found:
            return found
        self._check_downloadable(card, license_accepted)
        fetch_one = self._fetch_hub if card.source.kind == "hub" else self._fetch_url
        paths = []
        for name in card.source.files:
            path = fetch_one(card, name, progress, cancel or threading.Event())
            try:
                self.verify(card, name, path)
            except InputError:
                _remove_download(path)
                raise
            paths.append(path)
        return paths

    def check_obtainable(self, card: ModelCard, license_accepted: bool) -> None:
        """InputError now, before any work, if `fetch` would refuse the card: not here and not downloadable."""
        if not self.find(card, verify=False):
            self._check_downloadable(card, license_accepted)

    def _check_downloadable(self, card: ModelCard, license_accepted: bool) -> None:
        if not self.allow_download:
            raise InputError(self.offline_message(card))
        if not card.commercial and not license_accepted:
            raise InputError(
                f"{card.name} is licensed {card.license} ({card.license_terms or 'not for commercial use'}): "
                "accept its licence to download it."
            )

    def offline_message(self, card: ModelCard) -> str:
        urls = " and ".join(card.source.file_url(name) for name in card.source.files)
        where = " with their folders" if card.source.layout == "repo" else ""
        return (
            f"{card.name} is not downloaded and {self.offline_reason}. To use it offline, download {urls} "
            f"and put it in {self.manual_folder(card)}{where}."
        )

    def _fetch_hub(self, card: ModelCard, name: str, progress: Progress | None, cancel: threading.Event) -> Path:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.utils import logging as hub_logging

        hub_logging.set_verbosity_error()  # its retry chatter is not for the user: the outcome is one sentence
        try:
            return Path(hf_hub_download(
                card.source.repo, name, revision=card.source.revision, cache_dir=self.folder / "hub",
                endpoint=self.endpoint, tqdm_class=_progress_bar(name, progress, cancel),
            ))
        except DownloadCancelled:
            raise
        except Exception as err:  # huggingface_hub raises many kinds; the user needs one sentence
            raise InputError(self._failure(card, name, err)) from err

    def _fetch_url(self, card: ModelCard, name: str, progress: Progress | None, cancel: threading.Event) -> Path:
        """A plain HTTPS file, resumed from its .part file if an earlier download was interrupted."""
        target = self.manual_folder(card) / Path(name).name
        part = target.with_name(target.name + ".part")
        target.parent.mkdir(parents=True, exist_ok=True)
        done = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(card.source.url, headers={"Range": f"bytes={done}-"} if done else {})
        try:
            with urllib.request.urlopen(request, timeout=30) as response, open(part, "ab") as out:
                if done and response.status != 206:  # the server ignored the range: start over
                    out.truncate(0)
                    done = 0
                total = done + int(response.headers.get("Content-Length", 0))
                while chunk := response.read(_CHUNK):
                    if cancel.is_set():
                        raise DownloadCancelled(f"The download of {card.name} was cancelled.")
                    out.write(chunk)
                    done += len(chunk)
                    if progress:
                        progress(name, done, total)
                if done < total:
                    raise http.client.IncompleteRead(b"", total - done)
        except DownloadCancelled:
            part.unlink(missing_ok=True)
            raise
        except (urllib.error.URLError, OSError, http.client.HTTPException) as err:
            raise InputError(self._failure(card, name, err) + " Run it again to resume.") from err
        os.replace(part, target)
        return target

    def _failure(self, card: ModelCard, name: str, err: Exception) -> str:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0].split(". ")[0][:160]
        return (
            f"Could not download {card.name} from {card.source.file_url(name, self.endpoint or 'https://huggingface.co')} "
            f"({reason}); check the connection, or download it yourself into {self.manual_folder(card)}."
        )

    # --- verifying -----------------------------------------------------------------------------------

    def verify(self, card: ModelCard, name: str, path: Path) -> None:
        """Refuse a file whose SHA-256 differs from the card's, or from the one recorded when first seen."""
        expected = card.source.sha256[card.source.files.index(name)]
        key = f"{card.id}/{name}"
        with self._hash_lock:
            record = self._hashes()
            stat = path.stat()
            stamp = [stat.st_size, stat.st_mtime_ns]
            known = record["verified"].get(str(path))
            actual = known["sha256"] if known and known["stamp"] == stamp else _sha256(path)
            expected = expected or record["first_seen"].get(key, "")
            if expected and actual != expected:
                raise InputError(
                    f"The file {path} does not match the SHA-256 recorded for {card.name} "
                    f"({actual[:12]}... instead of {expected[:12]}...): it was refused."
                )
            record["first_seen"].setdefault(key, actual)
            record["verified"][str(path)] = {"sha256": actual, "stamp": stamp}
            self._save_hashes(record)

    def _hashes(self) -> dict:
        try:
            record = json.loads((self.folder / "hashes.json").read_text())
        except (OSError, ValueError):
            record = {}
        return {"first_seen": record.get("first_seen", {}), "verified": record.get("verified", {})}

    def _save_hashes(self, record: dict) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.folder / "hashes.json.tmp"
        temporary.write_text(json.dumps(record, indent=1, sort_keys=True))
        os.replace(temporary, self.folder / "hashes.json")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _remove_download(path: Path) -> None:
    """Delete a refused download: a Hugging Face cache link and the blob behind it, or a plain file."""
    blob = path.resolve()
    path.unlink(missing_ok=True)
    blob.unlink(missing_ok=True)


def _progress_bar(name: str, progress: Progress | None, cancel: threading.Event):
    """A tqdm class for huggingface_hub that reports to `progress` and stops when `cancel` is set."""
    from huggingface_hub.utils import tqdm

    class Bar(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True  # the caller shows progress its own way
            super().__init__(*args, **kwargs)
            self.done, self.size = kwargs.get("initial", 0), kwargs.get("total") or 0

        def update(self, n=1):
            if cancel.is_set():
                raise DownloadCancelled(f"The download of {name} was cancelled.")
            self.done += n or 0
            if progress:
                progress(name, self.done, self.size)
            return super().update(n)

    return Bar
