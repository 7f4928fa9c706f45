"""Photo + depth -> MeshRecord: the one pipeline that the Blender operator and the CLI both call.

The depth comes from a depth map the user has (method "depth-map") or from a depth model (method "model";
"auto" picks a depth map when one is given, else a model: see depth_sources).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .camera import Intrinsics, photo_intrinsics
from .depth_kinds import DEPTH_KINDS, to_metric_depth
from .depth_map import load_depth_map, size_notice
from .depth_sources import ModelAccess, run_depth_model
from .errors import InputError
from .grid_mesh import DEFAULT_EDGE_THRESHOLD_DEG, DEFAULT_RESOLUTION, depth_to_grid_mesh, grid_size, sample_nearest
from .mesh_record import MeshRecord
from .models import DEFAULT_MODEL, model_card
from .photo import Photo, load_photo

MASK_MODES = ("none", "alpha")
METHODS = ("auto", "depth-map", "model")


@dataclass
class MeshSettings:
    method: str = "auto"
    model: str = DEFAULT_MODEL
    model_file: str | None = None  # local weights for `model`'s card
    depth_kind: str = "metric"  # of a depth map; a model's card says its own
    depth_scale: float = 1.0
    near: float = 1.0  # metres; relative depth only
    far: float = 5.0
    fov_deg: float | None = None  # horizontal; None = from the model, EXIF or the default
    focal_px: float | None = None  # in the photo's pixels; wins over fov_deg
    resolution: int = DEFAULT_RESOLUTION  # vertices along the long side
    edge_threshold: float = DEFAULT_EDGE_THRESHOLD_DEG  # degrees, see grid_mesh
    mask: str = "none"
    texture_size: int = 4096  # long side of the texture, pixels

    def check(self) -> None:
        """Raise InputError for settings no photo could satisfy (before any photo is read, so once per run)."""
        if self.method not in METHODS:
            raise InputError(f"Unknown method '{self.method}': use one of {', '.join(METHODS)}.")
        model_card(self.model)
        if self.depth_kind not in DEPTH_KINDS:
            raise InputError(f"Unknown depth kind '{self.depth_kind}': use one of {', '.join(DEPTH_KINDS)}.")
        if not self.depth_scale > 0:
            raise InputError(f"The depth scale must be positive, not {self.depth_scale:g}.")
        if not 0 < self.near < self.far:
            raise InputError(f"Near ({self.near:g}) and far ({self.far:g}) must satisfy 0 < near < far.")
        if self.resolution < 2:
            raise InputError(f"The resolution must be at least 2 vertices, not {self.resolution}.")
        if not 0 < self.edge_threshold <= 90:
            raise InputError(f"The edge threshold must be between 0 and 90 degrees, not {self.edge_threshold:g}.")
        if self.fov_deg is not None and not 0 < self.fov_deg < 180:
            raise InputError(f"The field of view must be between 0 and 180 degrees, not {self.fov_deg:g}.")
        if self.focal_px is not None and not self.focal_px > 0:
            raise InputError(f"The focal length must be positive, not {self.focal_px:g} px.")
        if self.mask not in MASK_MODES:
            raise InputError(f"Unknown mask '{self.mask}': use one of {', '.join(MASK_MODES)}.")
        if self.texture_size < 16:
            raise InputError(f"The texture size must be at least 16 pixels, not {self.texture_size}.")


def image_to_mesh(
    photo: Photo | str | Path,
    depth: np.ndarray | str | Path | None = None,
    settings: MeshSettings | None = None,
    models: ModelAccess | None = None,
) -> MeshRecord:
    """Mesh a photo (file or Photo) with its depth map (file or array) or a depth model. InputError on bad input."""
    settings = settings or MeshSettings()
    settings.check()
    if depth is not None and settings.method == "model":
        raise InputError("Choose one depth source: a depth map, or --method model, not both.")
    if depth is None and settings.method == "depth-map":
        raise InputError("No depth map given: pass --depth-map, or use a depth model (--method auto).")
    if depth is None and models is None:
        raise InputError("No depth source: give the photo's depth map, or a models folder for a depth model.")
    timings = {}
    start = time.perf_counter()
    if not isinstance(photo, Photo):
        photo = load_photo(photo, max_side=max(settings.texture_size, settings.resolution))
    timings["load"] = time.perf_counter() - start

    start = time.perf_counter()
    size = grid_size(photo.source_size, settings.resolution)
    notices, normals, model_mask, model_report = [], None, None, None
    if depth is None:
        prediction, model_report, notices = run_depth_model(
            photo, settings.model, settings.method, settings.model_file, models, size, settings.fov_deg
        )
        kind, raw, normals, model_mask = prediction.kind, prediction.values, prediction.normals, prediction.mask
        camera, camera_source = _camera(photo, settings, prediction.focal_px, model_report["name"])
    else:
        raw = depth if isinstance(depth, np.ndarray) else load_depth_map(depth)
        kind = settings.depth_kind
        notices += [n for n in [size_notice(raw, photo.source_size)] if n]
        if kind != "metric":
            notices.append("Relative depth carries no true scale: Near and Far set the size; measure or rescale it.")
        camera, camera_source = _camera(photo, settings, None, "")
    metric = to_metric_depth(raw, kind, settings.depth_scale, settings.near, settings.far)
    if camera_source.startswith("field of view unknown"):
        notices.append(f"The camera is a guess: {camera_source}.")
    mask = _combine(_mask(photo, settings.mask), model_mask, size)
    timings["depth"] = time.perf_counter() - start

    start = time.perf_counter()
    grid = depth_to_grid_mesh(metric, camera, settings.resolution, settings.edge_threshold, mask)
    if len(grid.quads) + len(grid.triangles) == 0:
        raise InputError(
            f"No surface is left in '{photo.name}': the depth or mask leaves no connected faces "
            f"(try a higher edge threshold than {settings.edge_threshold:g} degrees)."
        )
    colors = sample_nearest(photo.rgb, grid.grid_size).reshape(-1, 3)[grid.grid_index]
    vertex_colors = np.empty((len(colors), 4), dtype=np.float32)
    vertex_colors[:, :3] = colors / np.float32(255.0)
    vertex_colors[:, 3] = 1.0
    vertex_normals = None if normals is None else normals.reshape(-1, 3)[grid.grid_index]
    timings["mesh"] = time.perf_counter() - start

    report = {
        "method": "depth-map" if model_report is None else "model",
        "model": model_report,
        "settings": asdict(settings),
        "camera": {
            "width": camera.width,
            "height": camera.height,
            "focal_px": camera.focal_px,
            "fov_x_deg": camera.fov_x_deg,
            "source": camera_source,
        },
        "grid": list(grid.grid_size),
        "notices": notices,
        "timings": timings if model_report is None else {**model_report["timings"], **timings},
    }
    return MeshRecord(
        photo.name, grid.vertices, grid.quads, grid.triangles, grid.uvs, vertex_colors, photo, camera, report,
        vertex_normals, grid.edges, grid.corner_edges,
    )


def _camera(photo: Photo, settings: MeshSettings, model_focal: float | None, model_name: str) -> tuple[Intrinsics, str]:
    """The user's camera first, then the model's, then EXIF or the default."""
    if model_focal and settings.fov_deg is None and settings.focal_px is None:
        camera = Intrinsics(*photo.source_size, model_focal)
        return camera, f"horizontal field of view {camera.fov_x_deg:.1f} deg (predicted by {model_name})"
    return photo_intrinsics(photo.source_size, settings.fov_deg, settings.focal_px, photo.focal_35mm)


def _mask(photo: Photo, mode: str) -> np.ndarray | None:
    if mode == "none":
        return None
    if photo.alpha is None:
        raise InputError(f"The photo '{photo.name}' has no alpha channel to use as a mask (--mask alpha).")
    return photo.alpha >= 128


def _combine(user_mask: np.ndarray | None, model_mask: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """Both masks at the grid's size (either may be None)."""
    masks = [sample_nearest(m, size) for m in (user_mask, model_mask) if m is not None]
    return np.logical_and.reduce(masks) if masks else None
