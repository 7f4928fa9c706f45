"""Model outputs kept for re-meshing: a photo's depth, subject mask or generated mesh, computed once.

Changing how a result is meshed (resolution, edge threshold, near/far, closure, size...) should not run its model
again. A key names everything an output depends on — the photo's pixels (a hash), the model (its card and its
file: path, size, modification time), the size it ran at and the model's own settings — and the value is a few
numpy arrays plus JSON-able metadata.

In memory: least recently used first out, capped in megabytes. On disk (optional, `folder` and `disk_mb`): one
.npz per entry, read back without pickle, the oldest (by last use) removed beyond the cap; written to a temporary
name and renamed, so a reader never sees half an entry. A damaged file is a miss, never an error.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

Entry = tuple[dict[str, np.ndarray], dict]  # (arrays, metadata)


def content_hash(*arrays: np.ndarray) -> str:
    """A digest of arrays' shapes, types and bytes (a photo's pixels: what its outputs depend on)."""
    digest = hashlib.blake2b(digest_size=20)
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def file_key(path: str | Path) -> list:
    """A model file as a key part: its path, size and modification time (a replaced file is another model)."""
    stat = Path(path).stat()
    return [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns]


class ResultCache:
    def __init__(self, memory_mb: float = 1024.0, folder: str | Path | None = None, disk_mb: float = 0.0):
        self.memory_bytes = int(memory_mb * 1e6)
        self.use_disk(folder, disk_mb)
        self._memory: OrderedDict[str, tuple[Entry, int]] = OrderedDict()
        self._held = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: list | tuple) -> Entry | None:
        name = _name(key)
        with self._lock:
            found = self._memory.get(name)
            if found is not None:
                self._memory.move_to_end(name)
                self.hits += 1
                return found[0]
        entry = self._read(name)
        with self._lock:
            if entry is None:
                self.misses += 1
                return None
            self.hits += 1
        self._remember(name, entry)
        return entry

    def put(self, key: list | tuple, arrays: dict[str, np.ndarray | None], meta: dict) -> None:
        name = _name(key)
        entry = ({k: v for k, v in arrays.items() if v is not None}, meta)
        self._remember(name, entry)
        self._write(name, entry)

    def use_disk(self, folder: str | Path | None, disk_mb: float) -> None:
        """Keep entries on disk too, in `folder`, up to `disk_mb` (0: memory only)."""
        self.folder = Path(folder) if folder and disk_mb > 0 else None
        self.disk_bytes = int(disk_mb * 1e6)

    def clear(self, folder: str | Path | None = None) -> float:
        """Forget everything (on disk: in `folder`, default the cache's own); the megabytes freed on disk."""
        with self._lock:
            self._memory.clear()
            self._held = 0
        freed = 0
        for path in self._files(Path(folder) if folder else self.folder):
            try:
                freed += path.stat().st_size
                path.unlink()
            except OSError:
                pass
        return freed / 1e6

    def disk_mb(self, folder: str | Path | None = None) -> float:
        return sum(_size(path) for path in self._files(Path(folder) if folder else self.folder)) / 1e6

    # --- memory ----------------------------------------------------------------------------------------------

    def _remember(self, name: str, entry: Entry) -> None:
        size = sum(a.nbytes for a in entry[0].values())
        if size > self.memory_bytes:
            return
        with self._lock:
            if name in self._memory:
                self._held -= self._memory.pop(name)[1]
            self._memory[name] = (entry, size)
            self._held += size
            while self._held > self.memory_bytes:
                self._held -= self._memory.popitem(last=False)[1][1]

    # --- disk ------------------------------------------------------------------------------------------------

    def _files(self, folder: Path | None = None) -> list[Path]:
        folder = folder or self.folder
        return sorted(folder.glob("*.npz")) if folder and folder.is_dir() else []

    def _read(self, name: str) -> Entry | None:
        if self.folder is None:
            return None
        path = self.folder / f"{name}.npz"
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
            meta = json.loads(str(arrays.pop("__meta__")))
            os.utime(path)  # last use: what the cap removes last
        except (OSError, ValueError, KeyError):
            return None
        return arrays, meta

    def _write(self, name: str, entry: Entry) -> None:
        if self.folder is None:
            return
        arrays, meta = entry
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            partial = self.folder / f"{name}.partial"
            with open(partial, "wb") as f:
                np.savez(f, __meta__=np.array(json.dumps(meta, default=_plain)), **arrays)
            os.replace(partial, self.folder / f"{name}.npz")
        except OSError:
            return  # a full or read-only disk: the memory copy serves this session
        files = sorted(self._files(), key=lambda p: _mtime(p))
        total = sum(_size(p) for p in files)
        for path in files:
            if total <= self.disk_bytes:
                break
            total -= _size(path)
            path.unlink(missing_ok=True)


def _name(key) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=_plain).encode()).hexdigest()[:40]


def _plain(value):
    """numpy scalars as Python numbers, anything else as its text (paths)."""
    return value.item() if isinstance(value, np.generic) else str(value)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0
