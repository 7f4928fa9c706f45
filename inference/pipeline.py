"""Photo + depth -> MeshRecord: the one pipeline that the Blender operator and the CLI both call."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .camera import photo_intrinsics
from .depth_kinds import to_metric_depth
from .depth_map import load_depth_map, size_notice
from .errors import InputError
from .grid_mesh import DEFAULT_EDGE_THRESHOLD_DEG, DEFAULT_RESOLUTION, depth_to_grid_mesh, sample_nearest
from .mesh_record import MeshRecord
from .photo import Photo, load_photo

MASK_MODES = ("none", "alpha")


@dataclass
class MeshSettings:
    depth_kind: str = "metric"
    depth_scale: float = 1.0
    near: float = 1.0  # metres; relative depth kinds only
    far: float = 5.0
    fov_deg: float | None = None  # horizontal; None = from EXIF or the default
    focal_px: float | None = None  # in the photo's pixels; wins over fov_deg
    resolution: int = DEFAULT_RESOLUTION  # vertices along the long side
    edge_threshold: float = DEFAULT_EDGE_THRESHOLD_DEG  # degrees, see grid_mesh
    mask: str = "none"
    texture_size: int = 4096  # long side of the texture, pixels

    def check(self) -> None:
        """Raise InputError for settings no photo could satisfy."""
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
    photo: Photo | str | Path, depth: np.ndarray | str | Path, settings: MeshSettings | None = None
) -> MeshRecord:
    """Read the photo and its depth map (files or arrays) and mesh them. Raises InputError on bad input."""
    settings = settings or MeshSettings()
    settings.check()
    timings = {}
    start = time.perf_counter()
    if not isinstance(photo, Photo):
        photo = load_photo(photo, max_side=max(settings.texture_size, settings.resolution))
    raw = depth if isinstance(depth, np.ndarray) else load_depth_map(depth)
    timings["load"] = time.perf_counter() - start

    start = time.perf_counter()
    notices = [n for n in [size_notice(raw, photo.source_size)] if n]
    if settings.depth_kind != "metric":
        notices.append("Relative depth carries no true scale: Near and Far set the size; measure or rescale it.")
    metric = to_metric_depth(raw, settings.depth_kind, settings.depth_scale, settings.near, settings.far)
    camera, camera_source = photo_intrinsics(photo.source_size, settings.fov_deg, settings.focal_px, photo.focal_35mm)
    if camera_source.startswith("field of view unknown"):
        notices.append(f"The camera is a guess: {camera_source}.")
    mask = _mask(photo, settings.mask)
    timings["depth"] = time.perf_counter() - start

    start = time.perf_counter()
    grid = depth_to_grid_mesh(metric, camera, settings.resolution, settings.edge_threshold, mask)
    if len(grid.quads) + len(grid.triangles) == 0:
        raise InputError(
            f"No surface is left in '{photo.name}': the depth map or mask leaves no connected faces "
            f"(try a higher edge threshold than {settings.edge_threshold:g} degrees)."
        )
    colors = sample_nearest(photo.rgb, grid.grid_size).reshape(-1, 3)[grid.grid_index]
    vertex_colors = np.empty((len(colors), 4), dtype=np.float32)
    vertex_colors[:, :3] = colors / np.float32(255.0)
    vertex_colors[:, 3] = 1.0
    timings["mesh"] = time.perf_counter() - start

    report = {
        "method": "depth-map",
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
        "timings": timings,
    }
    return MeshRecord(photo.name, grid.vertices, grid.quads, grid.triangles, grid.uvs, vertex_colors, photo, camera, report)


def _mask(photo: Photo, mode: str) -> np.ndarray | None:
    if mode == "none":
        return None
    if photo.alpha is None:
        raise InputError(f"The photo '{photo.name}' has no alpha channel to use as a mask (--mask alpha).")
    return photo.alpha >= 128
