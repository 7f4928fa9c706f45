"""A batch's photos: a folder, a glob, or a manifest (CSV with a header row, or JSON lines) naming each photo, its
depth map if any, and settings of its own (any setting with a CLI option, by its name: height, width, resolution, method,
...)."""

from __future__ import annotations

import csv
import glob
import json
from dataclasses import dataclass, field
from pathlib import Path

from ..inference.depth.files import DEPTH_MAP_SUFFIXES
from ..inference.errors import InputError
from ..inference.settings import MeshSettings, options

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".exr")
MANIFEST_SUFFIXES = (".csv", ".jsonl")
DEPTH_STEMS = ("_depth", "-depth")


@dataclass(frozen=True)
class BatchPhoto:
    photo: Path
    depth_map: Path | None = None
    settings: dict = field(default_factory=dict)  # this photo's own settings: MeshSettings field -> value
    where: str = ""  # the manifest's row, for a sentence about it


def read_source(source: str) -> list[BatchPhoto]:
    """The photos of `source`, in a stable order; InputError when there are none or the manifest is wrong."""
    path = Path(source)
    if path.is_file() and path.suffix.lower() in MANIFEST_SUFFIXES:
        photos = _read_manifest(path)
    elif path.is_file():
        raise InputError(f"'{source}' is neither a folder, a glob, nor a manifest (.csv or .jsonl).")
    else:
        files = sorted(path.iterdir()) if path.is_dir() else sorted(map(Path, glob.glob(source)))
        photos = [BatchPhoto(p, _depth_map_beside(p)) for p in files
                  if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file() and not _is_depth_map(p)]
    if not photos:
        raise InputError(f"No photos in '{source}'.")
    return photos


def _is_depth_map(path: Path) -> bool:
    """A depth map kept beside its photo (<photo name>_depth.*) is not a photo of its own."""
    return path.stem.endswith(DEPTH_STEMS)


def _depth_map_beside(photo: Path) -> Path | None:
    """<photo name>_depth.* (or -depth.*) beside the photo: its depth map."""
    for stem in DEPTH_STEMS:
        for suffix in DEPTH_MAP_SUFFIXES:
            candidate = photo.with_name(f"{photo.stem}{stem}{suffix}")
            if candidate.is_file():
                return candidate
    return None


def _read_manifest(path: Path) -> list[BatchPhoto]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            if path.suffix.lower() == ".csv":
                rows = [(f"row {n}", row) for n, row in enumerate(csv.DictReader(f), start=2)]
            else:
                rows = [(f"line {n}", json.loads(line)) for n, line in enumerate(f, start=1) if line.strip()]
    except (OSError, UnicodeDecodeError, csv.Error, json.JSONDecodeError) as err:
        raise InputError(f"Cannot read the manifest '{path}': {err}.") from err
    return [_manifest_photo(path, where, row) for where, row in rows]


def _manifest_photo(manifest: Path, where: str, row) -> BatchPhoto:
    """One row: photo (relative to the manifest's folder), depth_map, and settings; empty cells are not given."""
    if not isinstance(row, dict) or not row.get("photo"):
        raise InputError(f"The manifest '{manifest.name}' has no photo on its {where}.")
    known = _setting_names()
    settings, depth_map = {}, None
    for key, value in row.items():
        if key in ("photo", None) or value in ("", None):
            continue
        name = known.get(str(key).strip().lower().replace("-", "_"))
        if key == "depth_map":
            depth_map = manifest.parent / str(value)
        elif name is None:
            raise InputError(f"The manifest '{manifest.name}' has an unknown column '{key}' ({where}).")
        else:
            settings[name] = _typed(name, value, manifest, where)
    return BatchPhoto(manifest.parent / str(row["photo"]), depth_map, settings, f"{manifest.name}, {where}")


def _setting_names() -> dict[str, str]:
    """The settings a photo may have of its own, by their CLI names (target-faces or target_faces)."""
    return {name: name for name, _, opt in options(MeshSettings) if "cli" in opt.shown_in}


def _typed(name: str, value, manifest: Path, where: str):
    """A CSV cell as its setting's type (JSON values keep their own)."""
    from ..inference.settings import value_kind

    default, opt = next((d, o) for n, d, o in options(MeshSettings) if n == name)
    kind = value_kind(default, opt)
    if not isinstance(value, str) or kind is str:
        return value
    try:
        return value.strip().lower() in ("1", "true", "yes", "on") if kind is bool else kind(value)
    except ValueError as err:
        raise InputError(f"The manifest '{manifest.name}' has '{value}' for {name} ({where}): not a number.") from err
