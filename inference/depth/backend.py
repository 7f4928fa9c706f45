"""The depth backend: a photo's depth (a depth map, a depth model, or its subject's silhouette inflated)
-> the grid mesh seen by the photo's camera, closed into an object when asked.

Methods:
  depth-map  the user's depth map, of the kind they say (depth.kinds);
  model      a depth model's prediction (depth.sources picks, fetches and runs it; a model may predict the
             field of view, a mask and normals too);
  inflate    no depth at all: the subject's silhouette rounded into a balloon (geometry.closure).
"""

from __future__ import annotations

import time

import numpy as np

from ..errors import InputError
from ..geometry.camera import Intrinsics, photo_intrinsics
from ..geometry.view import View
from ..geometry.closure import close_surface, inflate_depth
from ..geometry.grid_mesh import depth_to_grid_mesh, grid_size, sample_nearest
from ..photo.prepared import PreparedPhoto
from ..record import CameraReport, DepthEdgesReport, MeshRecord, Report
from ..runtime.access import ModelAccess
from .files import load_depth_map, size_notice
from .kinds import to_metric_depth
from .sources import run_depth_model

# A photo holds no scale: without --height/--width an inflated object's silhouette is placed this far away.
INFLATE_DISTANCE_M = 1.0
# Wider than this, a pinhole camera's rays at the photo's edges are parallel to its image plane.
MAX_FOV_DEG = 179.0


def depth_mesh(method: str, prepared: PreparedPhoto, depth, settings, models: ModelAccess | None) -> MeshRecord:
    """The mesh of `method` ("depth-map" with `depth` a file or an array, "model", or "inflate")."""
    photo = prepared.photo
    start = time.perf_counter()
    size = grid_size(photo.source_size, settings.resolution)
    report = Report(method, settings={}, closure=settings.closure_mode, notices=list(prepared.notices))
    normals = model_mask = model_focal = None
    if method == "model":
        prediction, report.model, report.timings, notices = run_depth_model(
            photo, settings.model, settings.method, settings.model_file, models, size, _known_fov(prepared, settings)
        )
        report.notices += notices
        kind, raw, normals, model_mask, model_focal = (
            prediction.kind, prediction.values, prediction.normals, prediction.mask, prediction.focal_px
        )
    elif method == "depth-map":
        raw = depth if isinstance(depth, np.ndarray) else load_depth_map(depth)
        kind = settings.depth_kind
        report.notices += [n for n in [size_notice(raw, prepared.camera_size)] if n]
        raw = prepared.aligned(raw)  # the depth map is the photo's as given: prepared alike
        if kind != "metric":
            report.notices.append("Relative depth carries no true scale: Near and Far set the size; measure or rescale it.")
    intrinsics, camera_source = _intrinsics(prepared, settings, model_focal, report.model)
    window = prepared.window
    if not intrinsics.fov_x_deg < MAX_FOV_DEG:  # also NaN: a focal length of a millionth of a pixel, say
        raise InputError(
            f"A focal length of {intrinsics.focal_px:g} px gives this {intrinsics.width} px wide photo a field of "
            f"view of {intrinsics.fov_x_deg:.1f} degrees: give one under {MAX_FOV_DEG:g} degrees."
        )
    if camera_source.startswith("field of view unknown"):
        report.notices.append(f"The camera is a guess: {camera_source}.")
    grid_mask = _combine(prepared.mask, model_mask, size)
    if method == "inflate" or settings.closure_mode == "inflate":
        if grid_mask is None or not grid_mask.any():
            raise InputError(f"No subject was found in '{photo.name}' to inflate: try another mask mode.")
        detail = None if method == "inflate" else sample_nearest(
            to_metric_depth(raw, kind, settings.depth_scale, settings.near, settings.far), size)
        distance = INFLATE_DISTANCE_M if detail is None else float(np.nanmedian(np.where(grid_mask, detail, np.nan)))
        metric = inflate_depth(grid_mask, intrinsics.focal_px * size[0] / window.width, distance, detail=detail)
        edge_threshold = 90.0  # an inflated surface is continuous by construction
    else:
        metric = to_metric_depth(raw, kind, settings.depth_scale, settings.near, settings.far)
        edge_threshold = settings.edge_threshold
    report.timings["depth"] = time.perf_counter() - start

    start = time.perf_counter()
    # Depth edges and occlusion fill (geometry/depth_edges.py, occlusion_fill.py): the photo guides which side
    # of a blurred edge a vertex belongs to; the background continues under every cut, by a band in percent of
    # the meshed window's long side, except on closed objects, whose back stands in for it.
    fill_px = settings.occlusion_fill / 100 * max(window.width, window.height)
    if settings.closure_mode != "none":
        fill_px = 0.0
    grid = depth_to_grid_mesh(metric, intrinsics, settings.resolution, edge_threshold, grid_mask, window,
                              guide=photo.rgb, occlusion_fill_px=fill_px)
    if len(grid.quads) + len(grid.triangles) == 0:
        raise InputError(
            f"No surface is left in '{photo.name}': the depth or mask leaves no connected faces "
            f"(try a higher edge threshold than {settings.edge_threshold:g} degrees)."
        )
    vertices, quads, triangles, uvs = grid.vertices, grid.quads, grid.triangles, grid.uvs
    edges, corner_edges = grid.edges, grid.corner_edges
    vertex_normals = None if normals is None else normals.reshape(-1, 3)[grid.source_index]
    if settings.closure_mode != "none":
        try:
            closed = close_surface(vertices, quads, triangles, uvs, settings.closure_mode, settings.thickness)
        except ValueError as err:
            raise InputError(f"Cannot close '{photo.name}': {err}") from err
        vertices, quads, triangles, uvs = closed.vertices, closed.quads, closed.triangles, closed.uvs
        vertex_normals = closed.carry_normals(vertex_normals, settings.closure_mode)
        edges = corner_edges = None  # the closed mesh has new edges; Blender computes them
    if method == "inflate" and settings.height is None and settings.width is None:
        report.notices.append(
            f"A photo has no scale: the object was placed {INFLATE_DISTANCE_M:g} m away; give its real height "
            "or width for true size."
        )
    report.camera = CameraReport(intrinsics.width, intrinsics.height, intrinsics.focal_px, intrinsics.fov_x_deg,
                                 camera_source)
    if prepared.whole is not None:  # the models saw a crop: its principal point and field of view follow it
        report.camera.crop_principal_point = window.principal_point(intrinsics)
        report.camera.crop_fov_x_deg = window.fov_x_deg(intrinsics)
    report.grid = grid.grid_size
    report.depth_edges = DepthEdgesReport(
        round(grid.depth_blur * window.width / grid.grid_size[0], 2), len(grid.vertices) - grid.fill_start
    )
    report.timings["mesh"] = time.perf_counter() - start
    return MeshRecord(
        photo.name, vertices, quads, triangles, uvs, None, _colors_at(photo.rgb, uvs), photo.texture,
        View(intrinsics, np.eye(3), np.zeros(3)), prepared.whole, settings.closure_mode != "none", report, vertex_normals,
        edges, corner_edges,
    )


def _intrinsics(prepared: PreparedPhoto, settings, model_focal: float | None, model) -> tuple[Intrinsics, str]:
    """The camera of the whole photo: the user's first, then a calibration file's, then the model's (which saw
    the prepared photo: its focal length is brought back to the whole photo's pixels), then EXIF or the default."""
    size, window = prepared.camera_size, prepared.window
    given = settings.fov is not None or settings.focal_px is not None
    if prepared.focal_px and not given:
        return Intrinsics(*size, prepared.focal_px), f"focal length {prepared.focal_px:.1f} px (from the calibration file)"
    if model_focal and not given:
        intrinsics = Intrinsics(*size, model_focal * window.width / window.pixels[0])
        return intrinsics, f"horizontal field of view {intrinsics.fov_x_deg:.1f} deg (predicted by {model.name})"
    return photo_intrinsics(size, settings.fov, settings.focal_px, prepared.photo.focal_35mm)


def _known_fov(prepared: PreparedPhoto, settings) -> float | None:
    """The horizontal field of view of the prepared photo, when the user or a calibration knows it (a model
    that predicts the camera then only solves for the rest)."""
    focal = settings.focal_px or (None if settings.fov is not None else prepared.focal_px)
    if settings.fov is None and focal is None:
        return None
    whole, _ = photo_intrinsics(prepared.camera_size, settings.fov, focal)
    return prepared.window.fov_x_deg(whole)


def _combine(user_mask: np.ndarray | None, model_mask: np.ndarray | None, size: tuple[int, int]) -> np.ndarray | None:
    """Both masks at the grid's size (either may be None)."""
    masks = [sample_nearest(m, size) for m in (user_mask, model_mask) if m is not None]
    return np.logical_and.reduce(masks) if masks else None


def _colors_at(rgb: np.ndarray, uvs: np.ndarray) -> np.ndarray:
    """The photo's colour under each vertex's UV, as float32 sRGB RGBA."""
    h, w = rgb.shape[:2]
    cols = np.clip((uvs[:, 0] * w).astype(np.int64), 0, w - 1)
    rows = np.clip(((1.0 - uvs[:, 1]) * h).astype(np.int64), 0, h - 1)
    colors = np.ones((len(uvs), 4), dtype=np.float32)
    np.divide(rgb[rows, cols], np.float32(255.0), out=colors[:, :3])
    return colors
