"""The batch's journal: one JSON line per photo's outcome in the output folder, appended and fsync'd only once the
photo's outputs are all in place (or it failed), so that a run stopped at any point (SIGKILL included) is resumed
by running the same command again.

An entry: {"name", "photo", "key", "status": "done", "outputs": [{"path", "size", "sha256"}]} or {"name", "photo",
"key", "status": "failed", "error"}, by the photo's name (its outputs' names: unique in a batch), output paths
relative to the folder, so that the folder and the photos may move. `key` hashes the photo's and its depth map's bytes with the settings and formats, so a changed
photo or setting is redone. The last entry of a photo wins; a torn last line (a kill while appending) is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

from ..inference.errors import InputError

JOURNAL_NAME = "image_to_mesh-journal.jsonl"
STAGING_PREFIX = ".image_to_mesh-"  # builders/export.py's StagedOutputs: left behind only by a killed run


def input_key(photo: Path, depth_map: Path | None, settings: dict, formats: list[str]) -> str:
    digest = hashlib.sha256(json.dumps({"settings": settings, "formats": formats}, sort_keys=True).encode())
    for path in (photo, depth_map):
        digest.update(file_sha256(path).encode() if path is not None else b"-")
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class Journal:
    """The journal of the batch writing into `folder`; one batch at a time (a lock on the journal itself)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / JOURNAL_NAME
        self.entries: dict[str, dict] = {}

    def __enter__(self) -> Journal:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a+b")
        try:
            _lock(self._file)
        except OSError as err:
            self._file.close()
            raise InputError(f"Another batch is writing into '{self.folder}': wait for it, or give another -o.") from err
        self._file.seek(0)
        data = self._file.read()
        for line in data.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # torn by a kill while it was appended
            if isinstance(entry, dict) and "name" in entry:
                self.entries[entry["name"]] = entry
        if data and not data.endswith(b"\n"):
            self._append(b"\n")
        self._remove_staging()
        return self

    def __exit__(self, *_):
        self._remove_staging()
        self._file.close()  # and the lock with it

    def _remove_staging(self) -> None:
        """Staging folders of conversions that were killed (a run, a worker, a node), never moved into place."""
        for staging in self.folder.glob(STAGING_PREFIX + "*"):
            if staging.is_dir():
                shutil.rmtree(staging, ignore_errors=True)

    def is_done(self, name: str, key: str) -> bool:
        """Done before with these inputs, and every output still there as written."""
        entry = self.entries.get(name)
        return bool(entry and entry["key"] == key and entry["status"] == "done" and all(
            (self.folder / o["path"]).is_file() and (self.folder / o["path"]).stat().st_size == o["size"]
            for o in entry["outputs"]))

    def failed_before(self, name: str, key: str) -> dict | None:
        entry = self.entries.get(name)
        return entry if entry and entry["key"] == key and entry["status"] == "failed" else None

    def record_done(self, name: str, photo: str, key: str, outputs: list[str]) -> None:
        files = [Path(o) for o in outputs]
        self._record({"name": name, "photo": photo, "key": key, "status": "done", "outputs": [
            {"path": os.path.relpath(f, self.folder), "size": f.stat().st_size, "sha256": file_sha256(f)}
            for f in files]})

    def record_failed(self, name: str, photo: str, key: str, error: str) -> None:
        self._record({"name": name, "photo": photo, "key": key, "status": "failed", "error": error})

    def _record(self, entry: dict) -> None:
        self.entries[entry["name"]] = entry
        self._append((json.dumps(entry) + "\n").encode())

    def _append(self, data: bytes) -> None:
        self._file.write(data)
        self._file.flush()
        os.fsync(self._file.fileno())


def _lock(file) -> None:
    if os.name == "nt":
        import msvcrt

        msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
