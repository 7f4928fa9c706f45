"""What every object generator in the worker returns, and the steps they share (worker side: numpy, PIL, xatlas).

The contract: a Shape about the unit cube, +X right, +Y up, +Z towards the viewer of the photo (glTF's frame;
Blender's (x, -z, y)), faces counter-clockwise seen from outside, optional per-vertex UVs from an xatlas atlas and
optional per-vertex colours (TripoSR's colour field).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xatlas
from PIL import Image, UnidentifiedImageError

Progress = Callable[[str, int, int], None]  # (stage, step done, steps)


class GenerationError(Exception):
    """Something the user can act on, as one sentence."""


@dataclass
class Shape:
    vertices: np.ndarray  # (N, 3) float32
    faces: np.ndarray  # (F, 3) int32
    uvs: np.ndarray | None  # (N, 2) float32 in [0, 1], per vertex (after xatlas's seam splits)
    report: dict
    colours: np.ndarray | None = None  # (N, 3) float32 in [0, 1]: the model's own colour field, where it has one


def load_subject(path: str | Path) -> Image.Image:
    """The photo as RGBA; its alpha channel must mark the subject (background removed)."""
    try:
        with Image.open(path) as image:
            image.load()
            has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            image = image.convert("RGBA")
    except (OSError, UnidentifiedImageError, ValueError):
        raise GenerationError(f"Could not read the photo {path} as an image.") from None
    if not has_alpha:
        raise GenerationError(f"The photo {path} has no alpha channel: object generation needs the subject cut out "
                              "(alpha = subject mask).")
    ys, xs = np.nonzero(np.asarray(image)[..., 3])
    if len(xs) == 0 or xs.max() == xs.min() or ys.max() == ys.min():
        raise GenerationError(f"The subject mask (alpha channel) of {path} is empty: nothing to turn into an object.")
    return image


def uv_atlas(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xatlas's charts and packing: vertices split along seams, one UV per vertex in [0, 1].

    The atlas has no up or down of its own; its coordinates are used as they come, (0, 0) at the bottom-left, and
    whoever bakes a texture into it uses the same convention."""
    mapping, new_faces, uvs = xatlas.parametrize(vertices, faces.astype(np.uint32))
    return vertices[mapping], new_faces.astype(np.int32), uvs.astype(np.float32)


def finished_shape(vertices: np.ndarray, faces: np.ndarray, uv: bool, report: dict, progress: Progress) -> Shape:
    """The generator's last step: an xatlas atlas when asked for (its seconds in report["seconds"]["uv"]), the
    final counts in the report."""
    uvs = None
    if uv:
        progress("uv", 0, 1)
        start = time.perf_counter()
        vertices, faces, uvs = uv_atlas(vertices, faces)
        report["seconds"]["uv"] = round(time.perf_counter() - start, 3)
        progress("uv", 1, 1)
    report.update(vertices=len(vertices), faces=len(faces))
    return Shape(vertices, faces, uvs, report)
