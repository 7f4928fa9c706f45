"""Photo + depth -> MeshRecord: the one pipeline that the Blender operator and the CLI both call.

The depth comes from a depth map the user has (method "depth-map"), from a depth model (method "model";
"auto" picks a depth map when one is given, else a model: see depth_sources), or from the subject's mask alone
(method "inflate": no model, no download). A subject mask can cut the photo down to its object, a closure
turns the front surface into a closed object, and --height/--width give it a real-world size.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .geometry.camera import Intrinsics, photo_intrinsics
from .geometry.closure import CLOSURES, close_surface, inflate_depth
from .depth.kinds import DEPTH_KINDS, to_metric_depth
from .depth.files import load_depth_map, size_notice
from .depth.sources import ModelAccess, run_depth_model
from .errors import InputError
from .geometry.grid_mesh import DEFAULT_EDGE_THRESHOLD_DEG, DEFAULT_RESOLUTION, depth_to_grid_mesh, grid_size, sample_nearest
from .masks.subject import BUNDLED_U2NETP, MASK_MODES, feather_alpha, subject_mask
from .record import MeshRecord
from .runtime.cards import DEFAULT_MODEL, model_card, task_cards
from .photo.photo import Photo, load_photo
from .photo.quality import assess_photo

METHODS = ("auto", "depth-map", "model", "inflate")
# A photo holds no scale: without --height/--width an inflated object's silhouette is placed this far away.
INFLATE_DISTANCE_M = 1.0


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
    mask: str | None = None  # None: "auto" when closing or inflating an object, else "none"
    closure: str = "none"
    feather: float = 0.0  # photo pixels: the texture fades out over this band inside the mask's edge
    thickness: float | None = None  # metres, for solidify (None: 10 % of the object's width)
    height: float | None = None  # metres: the subject's extent along the photo's vertical
    width: float | None = None  # metres: the subject's extent along the photo's horizontal
    texture_size: int = 4096  # long side of the texture, pixels

    @property
    def mask_mode(self) -> str:
        if self.mask:
            return self.mask
        return "auto" if self.closure_mode != "none" else "none"

    @property
    def closure_mode(self) -> str:
        """The closure that runs: an inflated object is closed by mirroring unless told otherwise."""
        return "inflate" if self.method == "inflate" and self.closure == "none" else self.closure

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
        if self.mask and self.mask not in MASK_MODES and self.mask not in task_cards("mask"):
            raise InputError(f"Unknown mask '{self.mask}': use one of {', '.join([*MASK_MODES, *task_cards('mask')])}.")
        if self.closure not in CLOSURES:
            raise InputError(f"Unknown closure '{self.closure}': use one of {', '.join(CLOSURES)}.")
        if self.method == "inflate" and self.mask_mode == "none":
            raise InputError("--method inflate shapes the subject from its mask: choose a mask other than 'none'.")
        if self.height is not None and self.width is not None:
            raise InputError("Give the subject's real height or its width, not both.")
        if not self.feather >= 0:
            raise InputError(f"The feather must be zero or a positive number of pixels, not {self.feather:g}.")
        for name in ("height", "width", "thickness"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise InputError(f"The {name} must be a positive number of metres, not {value:g}.")
        if self.texture_size < 16:
            raise InputError(f"The texture size must be at least 16 pixels, not {self.texture_size}.")


def image_to_mesh(
    photo: Photo | str | Path,
    depth: np.ndarray | str | Path | None = None,
    settings: MeshSettings | None = None,
    models: ModelAccess | None = None,
) -> MeshRecord:
    """Mesh a photo (file or Photo) with its depth map (file or array), a depth model, or its mask alone.

    Raises InputError on bad input.
    """
    settings = settings or MeshSettings()
    settings.check()
    method = _method(settings, depth, models)
    timings = {}
    start = time.perf_counter()
    if not isinstance(photo, Photo):
        photo = load_photo(photo, max_side=max(settings.texture_size, settings.resolution))
    timings["load"] = time.perf_counter() - start

    start = time.perf_counter()
    mask, mask_report = _subject(photo, settings, models)
    quality = assess_photo(photo, mask)
    if settings.feather and mask is not None:  # soft texture edges instead of a fringe of background colour
        alpha = feather_alpha(mask, settings.feather * photo.size[0] / photo.source_size[0])
        photo = replace(photo, alpha=(alpha * 255 + 0.5).astype(np.uint8))
    timings["mask"] = time.perf_counter() - start

    start = time.perf_counter()
    size = grid_size(photo.source_size, settings.resolution)
    notices, normals, model_mask, model_report = list(mask_report["notices"]), None, None, None
    if method == "model":
        prediction, model_report, model_notices = run_depth_model(
            photo, settings.model, settings.method, settings.model_file, models, size, settings.fov_deg
        )
        notices += model_notices
        kind, raw, normals, model_mask = prediction.kind, prediction.values, prediction.normals, prediction.mask
        camera, camera_source = _camera(photo, settings, prediction.focal_px, model_report["name"])
    else:
        camera, camera_source = _camera(photo, settings, None, "")
    if method == "depth-map":
        raw = depth if isinstance(depth, np.ndarray) else load_depth_map(depth)
        kind = settings.depth_kind
        notices += [n for n in [size_notice(raw, photo.source_size)] if n]
        if kind != "metric":
            notices.append("Relative depth carries no true scale: Near and Far set the size; measure or rescale it.")
    if camera_source.startswith("field of view unknown"):
        notices.append(f"The camera is a guess: {camera_source}.")
    grid_mask = _combine(mask, model_mask, size)
    if method == "inflate" or settings.closure_mode == "inflate":
        if grid_mask is None or not grid_mask.any():
            raise InputError(f"No subject was found in '{photo.name}' to inflate: try another mask mode.")
        detail = None if method == "inflate" else sample_nearest(
            to_metric_depth(raw, kind, settings.depth_scale, settings.near, settings.far), size)
        distance = INFLATE_DISTANCE_M if detail is None else float(np.nanmedian(np.where(grid_mask, detail, np.nan)))
        metric = inflate_depth(grid_mask, camera.focal_px * size[0] / camera.width, distance, detail=detail)
        edge_threshold = 90.0  # an inflated surface is continuous by construction
    else:
        metric = to_metric_depth(raw, kind, settings.depth_scale, settings.near, settings.far)
        edge_threshold = settings.edge_threshold
    timings["depth"] = time.perf_counter() - start

    start = time.perf_counter()
    grid = depth_to_grid_mesh(metric, camera, settings.resolution, edge_threshold, grid_mask)
    if len(grid.quads) + len(grid.triangles) == 0:
        raise InputError(
            f"No surface is left in '{photo.name}': the depth or mask leaves no connected faces "
            f"(try a higher edge threshold than {settings.edge_threshold:g} degrees)."
        )
    vertices, quads, triangles, uvs = grid.vertices, grid.quads, grid.triangles, grid.uvs
    edges, corner_edges = grid.edges, grid.corner_edges
    vertex_normals = None if normals is None else normals.reshape(-1, 3)[grid.grid_index]
    if settings.closure_mode != "none":
        try:
            closed = close_surface(vertices, quads, triangles, uvs, settings.closure_mode, settings.thickness)
        except ValueError as err:
            raise InputError(f"Cannot close '{photo.name}': {err}") from None
        vertices, quads, triangles, uvs = closed.vertices, closed.quads, closed.triangles, closed.uvs
        edges = corner_edges = vertex_normals = None  # the closed mesh has new edges; Blender computes them
    scale = _real_world_scale(vertices, settings)
    if scale != 1.0:
        vertices = vertices * np.float32(scale)
    elif method == "inflate":
        notices.append(
            f"A photo has no scale: the object was placed {INFLATE_DISTANCE_M:g} m away; give its real height "
            "or width for true size."
        )
    vertex_colors = _colors_at(photo.rgb, uvs)
    timings["mesh"] = time.perf_counter() - start

    report = {
        "method": method,
        "model": model_report,
        "mask": mask_report,
        "closure": settings.closure_mode,
        "scale": scale,
        "quality": quality,
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
        photo.name, vertices, quads, triangles, uvs, vertex_colors, photo, camera, report,
        vertex_normals, edges, corner_edges,
    )


PHOTO_CHECK_SIDE = 1024  # the photo check works at this long side: load photos for it no larger


def check_photo(photo: Photo) -> dict:
    """The photographer's checklist for a photo, its subject found the way an object's is (alpha or U²-Net-p)."""
    return assess_photo(photo, subject_mask(photo, "auto", BUNDLED_U2NETP)[0])


def _method(settings: MeshSettings, depth, models) -> str:
    """What gives the depth: "depth-map", "model" or "inflate"."""
    if settings.method == "inflate":
        return "inflate"
    if depth is not None and settings.method == "model":
        raise InputError("Choose one depth source: a depth map, or --method model, not both.")
    if depth is None and settings.method == "depth-map":
        raise InputError("No depth map given: pass --depth-map, or use a depth model (--method auto).")
    if depth is not None:
        return "depth-map"
    if models is None:
        raise InputError("No depth source: give the photo's depth map, or a models folder for a depth model.")
    return "model"


def _subject(photo: Photo, settings: MeshSettings, models: ModelAccess | None) -> tuple[np.ndarray | None, dict]:
    """The subject's mask at the photo's size (None = the whole photo) and its report."""
    mode = settings.mask_mode
    model_path = None
    if mode not in MASK_MODES:  # a downloadable mask model's card (U²-Net full is mode "u2net")
        card = model_card(mode, task="mask")
        if models is None:
            raise InputError(f"The mask model {card.name} needs a models folder.")
        model_path = models.store.fetch(card, models.progress, models.cancel, models.license_accepted)[0]
    elif mode == "u2net" and models is not None:
        card = model_card("u2net", task="mask")
        model_path = models.store.fetch(card, models.progress, models.cancel, models.license_accepted)[0]
    device, threads = (models.device, models.threads) if models else ("cpu", 0)
    return subject_mask(photo, mode, BUNDLED_U2NETP, model_path=model_path, device=device, threads=threads)


def _real_world_scale(vertices: np.ndarray, settings: MeshSettings) -> float:
    """The factor that gives the subject its real height or width (1 when neither is given).

    Vertices are in the camera frame, so scaling them about the camera keeps every vertex on its pixel.
    """
    if settings.height is None and settings.width is None:
        return 1.0
    axis, target = (1, settings.height) if settings.height is not None else (0, settings.width)
    extent = float(vertices[:, axis].max() - vertices[:, axis].min())
    if extent <= 0:
        raise InputError("The subject has no extent to scale.")
    return target / extent


def _colors_at(rgb: np.ndarray, uvs: np.ndarray) -> np.ndarray:
    """The photo's colour under each vertex's UV, as float32 sRGB RGBA."""
    h, w = rgb.shape[:2]
    cols = np.clip((uvs[:, 0] * w).astype(np.int64), 0, w - 1)
    rows = np.clip(((1.0 - uvs[:, 1]) * h).astype(np.int64), 0, h - 1)
    colors = np.ones((len(uvs), 4), dtype=np.float32)
    np.divide(rgb[rows, cols], np.float32(255.0), out=colors[:, :3])
    return colors


def _camera(photo: Photo, settings: MeshSettings, model_focal: float | None, model_name: str) -> tuple[Intrinsics, str]:
    """The user's camera first, then the model's, then EXIF or the default."""
    if model_focal and settings.fov_deg is None and settings.focal_px is None:
        camera = Intrinsics(*photo.source_size, model_focal)
        return camera, f"horizontal field of view {camera.fov_x_deg:.1f} deg (predicted by {model_name})"
    return photo_intrinsics(photo.source_size, settings.fov_deg, settings.focal_px, photo.focal_35mm)


def _combine(user_mask: np.ndarray | None, model_mask: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """Both masks at the grid's size (either may be None)."""
    masks = [sample_nearest(m, size) for m in (user_mask, model_mask) if m is not None]
    return np.logical_and.reduce(masks) if masks else None
