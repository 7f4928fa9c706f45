"""Find the camera that took a photo of a generated object: match the mesh's silhouette to the subject mask.

A generator returns its mesh in a canonical frame (+X right, +Y up, +Z towards the input image's viewer) and
no camera. The input view is close to the front: the preprocessor centred the subject's alpha box with its
long side at 85 % of a square frame, and the generator fills about [-1, 1]^3. So the search starts from the
front view scaled and shifted so that the mesh's projected box matches the mask's box, then refines

    yaw, elevation      orbit angles around the mesh's box centre (view.py: yaw 90 looks at the +X side)
    fov                 field of view across the photo's long side (weakly observable: only perspective)
    scale               pixels per object unit at the target's depth (log); distance = focal / scale
    offset (du, dv)     where the target lands, in photo pixels from the image centre

to maximise the intersection-over-union of silhouette and mask. Parametrising by scale rather than distance
keeps fov and size nearly independent (changing the fov at fixed scale only changes the perspective), and
the offset is a camera slide, so the principal point stays at the image centre.

Coarse to fine, all in a square window around the mask's box (1.5 x its long side, so the work does not
depend on the photo's size):
1. scan: a grid of yaw x elevation (15 degree steps) at 64 px; at each, scale and offset first put the
   mesh's projected box on the mask's box, then the silhouette's area and centroid on the mask's;
2. Hooke-Jeeves pattern search (coordinate polls plus pattern moves, bounded by clipping, step halving)
   from the two best scan points at 64 px, then from the winner at 128 and 256 px. At 64 and 128 px it
   moves yaw, elevation and fov only, scale and offset re-solved from the moments at every point (they
   couple strongly with the fov: a search over all six crawls along that valley); one render per point,
   the moment step applied by warping the rendered image. At 256 px all six move together, in small steps.
   The objective is a soft IoU: silhouettes are rendered at 2x and area-averaged into coverage fractions
   and the mask is area-resampled, so it changes smoothly with sub-pixel moves instead of in steps;
3. what the silhouette cannot tell, the front view decides: if the starting yaw (then a level camera)
   fits within SNAP_TOLERANCE of the best, the fit goes back to it (a vase turned on its axis);
4. the final IoU is binary, at up to 1024 px across the window (or the photo's own resolution if smaller).
Pixels outside the photo are ignored (a subject cut by the frame costs nothing where the photo is blind).
For a closed mesh (every edge in two faces), only front-facing triangles are drawn: the silhouette is the
same and the work is halved.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import InputError
from .rasterise import coverage
from ..geometry.camera import Intrinsics
from ..geometry.view import View, intrinsics_from_fov, look_at, orbit_view

# The view names of a product shoot and their yaw (view.py's convention: "left" = object turned 90 degrees
# clockwise seen from above, the camera on the object's +X side).
YAW_BY_NAME = {"front": 0.0, "left": 90.0, "back": 180.0, "right": 270.0}

WINDOW_MARGIN = 0.25  # the working window reaches this fraction of the mask box's long side beyond the box
SUPERSAMPLE = 2
PRIOR_WEIGHT = 0.001  # IoU traded for a 45 degree turn away from the starting yaw or a level camera
SNAP_TOLERANCE = 0.001  # IoU a view may lose by going back to the starting yaw / a level camera
MIN_MASK_PIXELS = 16

# Parameter order: yaw, elevation, fov (degrees), log scale, du, dv (photo pixels).
_NAMES = ("yaw_deg", "elevation_deg", "fov_deg", "log_scale", "offset_x_px", "offset_y_px")


@dataclass
class _Problem:
    """Everything an evaluation needs: the mesh, the photo size, the window, the bounds."""

    vertices: np.ndarray
    faces: np.ndarray
    normals: np.ndarray | None  # unit face normals when the mesh is closed (front faces suffice), else None
    centroids: np.ndarray | None
    target: np.ndarray
    radius: float
    size: tuple[int, int]  # photo (width, height)
    origin: np.ndarray  # window's top-left corner in photo coordinates
    side: int  # window side in photo pixels
    lower: np.ndarray
    upper: np.ndarray
    free: np.ndarray  # bool per parameter
    evaluations: int = 0

    def view(self, x: np.ndarray) -> View:
        x = self.clip(x)
        intr = intrinsics_from_fov(self.size[0], self.size[1], x[2])
        distance = intr.focal_px / math.exp(x[3])
        return orbit_view(intr, x[0], x[1], distance, self.target, (x[4], x[5]))

    def clip(self, x: np.ndarray) -> np.ndarray:
        x = np.clip(x, self.lower, self.upper)
        # The camera stays outside the mesh's bounding sphere: scale = focal / distance is bounded above.
        focal = max(self.size) / (2.0 * math.tan(math.radians(x[2]) / 2.0))
        x[3] = min(x[3], math.log(focal / (1.05 * self.radius)))
        return x

    def silhouette(self, x: np.ndarray, resolution: int, supersample: int = 1) -> np.ndarray:
        """Coverage fraction (float32) or bool (supersample 1) in the window at resolution x resolution."""
        view = self.view(x)
        faces = self.faces
        if self.normals is not None:
            faces = faces[np.einsum("ij,ij->i", self.normals, self.centroids - view.position) < 0]
        xy, depth = view.project(self.vertices)
        n = resolution * supersample
        xy = (xy - self.origin) * (n / self.side)
        self.evaluations += 1
        cov = coverage(xy, faces, (n, n), depth)
        if supersample == 1:
            return cov
        return cov.reshape(resolution, supersample, resolution, supersample).mean(axis=(1, 3), dtype=np.float32)


@dataclass
class _Level:
    """The mask resampled to one working resolution: target coverage and the in-photo weight."""

    resolution: int
    target: np.ndarray
    valid: np.ndarray

    def __post_init__(self):
        self._centres = np.arange(self.resolution) + 0.5
        self.target_moments = self.moments(self.target)

    def iou(self, rendered: np.ndarray) -> float:
        rendered = rendered.astype(np.float32)
        inter = (np.minimum(rendered, self.target) * self.valid).sum()
        union = (np.maximum(rendered, self.target) * self.valid).sum()
        return float(inter / union) if union > 0 else 0.0

    def moments(self, image: np.ndarray) -> tuple[float, np.ndarray]:
        """Area (window pixels) and centroid (x, y) of a coverage image inside the photo."""
        w = image.astype(np.float64) * self.valid
        area = w.sum()
        if area <= 0:
            return 0.0, np.array([self.resolution / 2.0, self.resolution / 2.0])
        return float(area), np.array([w.sum(axis=0) @ self._centres, w.sum(axis=1) @ self._centres]) / area


def _level(mask: np.ndarray, origin: np.ndarray, side: int, resolution: int) -> _Level:
    """Crop the window out of the mask (zero beyond the photo) and area-resample it to resolution^2."""
    h, w = mask.shape
    x0, y0 = int(origin[0]), int(origin[1])
    crop = np.zeros((side, side), np.uint8)
    inside = np.zeros((side, side), np.uint8)
    sx0, sy0 = max(x0, 0), max(y0, 0)
    sx1, sy1 = min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        crop[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = mask[sy0:sy1, sx0:sx1] * np.uint8(255)
        inside[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = 255
    size = (resolution, resolution)
    target = cv2.resize(crop, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    valid = cv2.resize(inside, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    return _Level(resolution, target, valid)


def _check_mesh(vertices, faces) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.asarray(vertices)
    faces = np.asarray(faces)
    if vertices.ndim != 2 or vertices.shape[1] != 3 or len(vertices) < 3:
        raise InputError(f"The mesh needs vertices as an N x 3 array, not an array of shape {vertices.shape}.")
    if faces.ndim != 2 or faces.shape[1] != 3 or len(faces) == 0:
        raise InputError(f"The mesh needs triangles as an F x 3 array, not an array of shape {faces.shape}.")
    if not np.isfinite(vertices).all():
        raise InputError("The mesh has vertices that are not finite numbers (NaN or infinity).")
    if not np.issubdtype(faces.dtype, np.integer) or faces.min() < 0 or faces.max() >= len(vertices):
        raise InputError(f"The mesh's triangles refer to vertices outside 0..{len(vertices) - 1}.")
    return vertices.astype(np.float64), faces.astype(np.int64)


def subject_mask(mask) -> np.ndarray:
    """A subject mask as bool (H, W): bool as is; an alpha matte thresholded at half (uint8 at 128, other
    integers above 0, floats at 0.5), so a soft edge's faint halo is not counted as subject."""
    mask = np.asarray(mask)
    if mask.dtype == bool:
        return mask
    if mask.dtype == np.uint8:
        return mask >= 128
    if np.issubdtype(mask.dtype, np.floating):
        return mask >= 0.5
    return mask > 0


def _check_mask(mask, name: str = "the photo") -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise InputError(f"The subject mask of {name} must be a 2-D image, not an array of shape {mask.shape}.")
    mask = subject_mask(mask)
    if mask.sum() < MIN_MASK_PIXELS:
        raise InputError(f"The subject mask of {name} is empty: there is no subject to fit the camera to.")
    return mask


def _is_closed(faces: np.ndarray) -> bool:
    """Every directed edge appears once and its reverse once: a closed, consistently oriented surface."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = edges[:, 0] * (faces.max() + 1) + edges[:, 1]
    rev = edges[:, 1] * (faces.max() + 1) + edges[:, 0]
    if len(np.unique(key)) != len(key):
        return False
    return bool(np.isin(rev, key, assume_unique=True).all())


def _problem(vertices, faces, mask, yaw_deg, yaw_range_deg, elevation_range_deg, fov_deg, fov_range_deg
             ) -> _Problem:
    h, w = mask.shape
    ys, xs = np.nonzero(mask)
    box_lo = np.array([xs.min(), ys.min()], np.float64)
    box_hi = np.array([xs.max() + 1, ys.max() + 1], np.float64)
    side = int(math.ceil((box_hi - box_lo).max() * (1.0 + 2.0 * WINDOW_MARGIN)))
    origin = np.floor((box_lo + box_hi) / 2.0 - side / 2.0)
    lo, hi = vertices.min(axis=0), vertices.max(axis=0)
    target = (lo + hi) / 2.0
    radius = float(np.linalg.norm(vertices - target, axis=1).max())
    normals = centroids = None
    if _is_closed(faces):
        tri = vertices[faces]
        n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normals = n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-30)
        centroids = tri.mean(axis=1)
    fov_lo, fov_hi = (fov_deg, fov_deg) if fov_deg is not None else fov_range_deg
    reach = float(max(w, h)) * 2.0
    lower = np.array([yaw_deg - yaw_range_deg, elevation_range_deg[0], fov_lo, -np.inf, -reach, -reach])
    upper = np.array([yaw_deg + yaw_range_deg, elevation_range_deg[1], fov_hi, np.inf, reach, reach])
    free = upper > lower
    return _Problem(vertices, faces, normals, centroids, target, radius, (w, h), origin, side, lower, upper,
                    free)


def _moment_step(problem: _Problem, level: _Level, x: np.ndarray, rendered: np.ndarray):
    """From a silhouette rendered at x: the scale and offset that move its area and centroid onto the
    mask's, and the 2x3 affine map (window pixels, OpenCV's centre-at-integer convention) that moves the
    rendered image the same way. None if nothing was drawn.

    A change of scale grows the picture about the target's image (where the offset puts it) and an offset
    shifts it, so the silhouette at the new x is, to first order, the old one scaled by `ratio` and shifted:
    p' = ratio * p + (wanted - ratio * current) whatever the pivot."""
    area, current = level.moments(rendered)
    target_area, wanted = level.target_moments
    if area <= 0:
        return None
    ratio = math.sqrt(target_area / area)
    x = _rescale(problem, level, x, ratio, current, wanted)
    shift = wanted - ratio * current + 0.5 * ratio - 0.5
    return x, np.array([[ratio, 0.0, shift[0]], [0.0, ratio, shift[1]]])


def _rescale(problem: _Problem, level: _Level, x: np.ndarray, ratio: float, current, wanted) -> np.ndarray:
    """x with the picture scaled by `ratio` about the target's image, then shifted so `current` (window
    pixels) lands on `wanted`."""
    to_photo = problem.side / level.resolution
    pivot = (np.array(problem.size, np.float64) / 2.0 + x[4:6] - problem.origin) / to_photo
    x = x.copy()
    x[3] += math.log(ratio)
    x[4:6] += (np.asarray(wanted) - (pivot + ratio * (np.asarray(current) - pivot))) * to_photo
    return problem.clip(x)


def _box_align(problem: _Problem, level: _Level, x: np.ndarray) -> np.ndarray:
    """Scale and offset that put the mesh's projected box onto the mask's box (vertices only: the box of a
    silhouette is the box of its vertices), iterated for perspective."""
    x = problem.clip(x.copy())
    ys, xs = np.nonzero(level.target > 0.5)
    if not len(xs):
        return x
    box_lo = np.array([xs.min(), ys.min()], np.float64)
    box_hi = np.array([xs.max() + 1, ys.max() + 1], np.float64)
    to_photo = problem.side / level.resolution
    for _ in range(3):
        xy = (problem.view(x).project(problem.vertices)[0] - problem.origin) / to_photo
        lo, hi = xy.min(axis=0), xy.max(axis=0)
        ratio = math.sqrt(np.prod(box_hi - box_lo) / max(float(np.prod(hi - lo)), 1e-9))
        x = _rescale(problem, level, x, ratio, (lo + hi) / 2.0, (box_lo + box_hi) / 2.0)
    return x


def _profiled_iou(problem: _Problem, level: _Level, x: np.ndarray) -> tuple[float, np.ndarray]:
    """IoU at x with scale and offset re-solved from the silhouette's moments, for one render: the
    rendered coverage is warped by the moment step's similarity instead of rendered again (exact for the
    shift, first order for the scale; fine for the coarse levels that use it)."""
    rendered = problem.silhouette(x, level.resolution, SUPERSAMPLE)
    step = _moment_step(problem, level, x, rendered)
    if step is None:
        return 0.0, problem.clip(x)
    x, affine = step
    warped = cv2.warpAffine(rendered, affine, (level.resolution, level.resolution), flags=cv2.INTER_LINEAR)
    return level.iou(warped), x


def _pattern_search(objective, x0: np.ndarray, steps: np.ndarray, min_steps: np.ndarray,
                    max_evaluations: int) -> tuple[np.ndarray, float, int]:
    """Hooke-Jeeves maximisation: poll +/- each coordinate with a step > 0, follow improvements with pattern
    moves (x + (x - x_previous)) while they pay, halve the steps when nothing improves, stop when every
    step is at its minimum. objective(x) -> (value, x'), where x' is the point actually evaluated (clipped
    to the bounds, or with dependent coordinates solved for), which is what the search keeps."""
    f_best, x_best = objective(x0.copy())
    evaluations = 1
    steps = steps.copy()

    def explore(base, f_base):
        nonlocal evaluations
        x, f = base, f_base
        for i in np.flatnonzero(steps > 0):
            for sign in (1.0, -1.0):
                trial = x.copy()
                trial[i] += sign * steps[i]
                value, trial = objective(trial)
                evaluations += 1
                if value > f:
                    x, f = trial, value
                    break
        return x, f

    while evaluations < max_evaluations:
        x_new, f_new = explore(x_best, f_best)
        if f_new > f_best:
            while evaluations < max_evaluations:
                x_prev, x_best, f_best = x_best, x_new, f_new
                f_leap, leap = objective(x_best + (x_best - x_prev))
                evaluations += 1
                x_new, f_new = explore(leap, f_leap)
                if f_new <= f_best:
                    break
            continue
        if np.all(steps <= min_steps):
            break
        steps = np.where(steps > min_steps, np.maximum(steps / 2.0, min_steps), steps)
    return x_best, f_best, evaluations


def _final_iou(problem: _Problem, mask: np.ndarray, x: np.ndarray, final_size: int) -> float:
    """Binary IoU in the window at min(final_size, the window's own pixels)."""
    resolution = int(min(final_size, problem.side))
    level = _level(mask, problem.origin, problem.side, resolution)
    rendered = problem.silhouette(x, resolution, 1)
    target = level.target > 0.5
    valid = level.valid > 0.5
    inter = (rendered & target & valid).sum()
    union = ((rendered | target) & valid).sum()
    return float(inter / union) if union else 0.0


def fit_camera(
    vertices: np.ndarray,
    faces: np.ndarray,
    mask: np.ndarray,
    *,
    yaw_deg: float = 0.0,
    yaw_range_deg: float = 60.0,
    elevation_range_deg: tuple[float, float] = (-40.0, 60.0),
    fov_deg: float | None = None,
    fov_range_deg: tuple[float, float] = (10.0, 75.0),
    initial_fov_deg: float = 40.0,
    working_size: int = 256,
    final_size: int = 1024,
) -> tuple[View, float, dict]:
    """The view whose silhouette of the mesh best matches `mask`, its IoU with the mask, and a report.

    vertices (N, 3) and faces (F, 3) in the object frame (any float / int dtype); mask (H, W) at the
    photo's size: bool, or an alpha matte (subject_mask thresholds it at half). yaw_deg is the starting yaw, searched within +/- yaw_range_deg (0 fixes
    it); elevation within elevation_range_deg; fov_deg fixes the field of view across the photo's long
    side (when EXIF tells it), else it is fitted within fov_range_deg from initial_fov_deg.
    Returns (View with intrinsics (W, H, focal) of the photo, final binary IoU in [0, 1] at up to
    final_size px across the subject's window, report dict: the fitted parameters, the IoU of the starting
    front view, per-level IoUs, evaluations, seconds).
    """
    start = time.perf_counter()
    vertices, faces = _check_mesh(vertices, faces)
    mask = _check_mask(mask)
    fov_start = fov_deg if fov_deg is not None else initial_fov_deg
    problem = _problem(vertices, faces, mask, yaw_deg, yaw_range_deg, elevation_range_deg, fov_deg,
                       fov_range_deg)
    coarse = _level(mask, problem.origin, problem.side, 64)
    x_front = _box_align(problem, coarse, np.array([yaw_deg, 0.0, fov_start, 0.0, 0.0, 0.0]))
    report = {"initial_iou": _final_iou(problem, mask, x_front, final_size), "levels": []}

    # 1. Scan yaw x elevation, scale and offset aligned at each point.
    turns = np.arange(0.0, yaw_range_deg + 1e-9, 15.0)
    yaws = yaw_deg + np.union1d(turns, -turns)
    elevations = np.arange(elevation_range_deg[0], elevation_range_deg[1] + 1e-9, 15.0)
    elevations = np.union1d(elevations, [np.clip(0.0, *elevation_range_deg)])

    def prior(x):
        """A whisper towards the starting yaw and a level camera, breaking near-ties in scan and search."""
        return PRIOR_WEIGHT * (((x[0] - yaw_deg) / 45.0) ** 2 + (x[1] / 45.0) ** 2)

    scored = []
    for yaw in yaws:
        for elevation in elevations:
            x = _box_align(problem, coarse, np.array([yaw, elevation, fov_start, x_front[3], *x_front[4:]]))
            iou, x = _profiled_iou(problem, coarse, x)
            scored.append((float(iou - prior(x)), x))
    scored.sort(key=lambda item: -item[0])
    report["levels"].append({"resolution": coarse.resolution, "score": scored[0][0], "candidates": len(scored)})

    # 2. Pattern search, coarse to fine. At 64 and 128 px over yaw, elevation and fov only, scale and offset
    #    re-solved from the silhouette's moments at every point (they couple strongly with the fov: a
    #    search over all six crawls along that valley); at 256 px all six together, in small steps.
    box_side = problem.side / (1.0 + 2.0 * WINDOW_MARGIN)
    starts = [x for _, x in scored[:2]]
    first_steps = np.array([6.0, 6.0, 8.0, 0.02, 0.01 * box_side, 0.01 * box_side])
    for resolution, step_scale, min_step_scale, profiled in ((64, 1.0, 5.0, True),
                                                              (working_size // 2, 0.5, 2.0, True),
                                                              (working_size, 0.1, 1.0, False)):
        level = coarse if resolution == coarse.resolution else _level(mask, problem.origin, problem.side,
                                                                      resolution)
        pixel = problem.side / resolution  # photo pixels per working pixel

        def objective(x, level=level, profiled=profiled):
            if profiled:
                iou, x = _profiled_iou(problem, level, x)
            else:
                x = problem.clip(x)
                iou = level.iou(problem.silhouette(x, level.resolution, SUPERSAMPLE))
            return float(iou - prior(x)), x

        min_steps = np.array([0.1, 0.1, 0.5, 0.001, 0.1 * pixel, 0.1 * pixel]) * min_step_scale
        steps = np.maximum(first_steps * step_scale, min_steps)
        steps = np.where(problem.free & (not profiled or np.arange(6) < 3), steps, 0.0)
        results = [_pattern_search(objective, x, steps, min_steps, 300) for x in starts]
        results.sort(key=lambda r: -r[1])
        starts = [results[0][0]]
        report["levels"].append({"resolution": resolution, "score": results[0][1],
                                 "evaluations": [r[2] for r in results]})
    # 3. What the silhouette cannot tell, the front view decides: a turned vase looks the same, so if going
    #    back to the starting yaw (then a level camera) costs no more than SNAP_TOLERANCE, go back.
    x = starts[0]
    snapped = []
    for i, home in ((0, yaw_deg), (1, float(np.clip(0.0, *elevation_range_deg)))):
        trial = x.copy()
        trial[i] = home
        if problem.free[i] and objective(trial)[0] + prior(trial) >= objective(x)[0] + prior(x) - SNAP_TOLERANCE:
            x = problem.clip(trial)
            snapped.append(_NAMES[i])
    report["snapped_to_start"] = snapped
    x = problem.clip(x)
    iou = _final_iou(problem, mask, x, final_size)
    return _fitted(problem, x, iou, report, start)


def _fitted(problem: _Problem, x: np.ndarray, iou: float, report: dict, start_time: float) -> tuple[View, float, dict]:
    """(view, IoU, report) of the parameters x a fit ends with, the report completed with them."""
    view = problem.view(x)
    report.update({
        "iou": iou,
        "yaw_deg": float(x[0]),
        "elevation_deg": float(x[1]),
        "fov_deg": float(x[2]),
        "distance": float(np.linalg.norm(view.position - problem.target)),
        "scale_px_per_unit": float(math.exp(x[3])),
        "offset_px": [float(x[4]), float(x[5])],
        "target": problem.target.tolist(),
        "closed_mesh": problem.normals is not None,
        "evaluations": problem.evaluations,
        "seconds": time.perf_counter() - start_time,
    })
    return view, iou, report


def generator_view(square, distance: float, fov_y_deg: float, size: tuple[int, int]) -> View:
    """The camera a generator assumed for its input (TripoSR's renderer: on the +Z axis at `distance`, looking at
    the origin, its field of view spanning the square (x, y, side) it cropped from the photo) as a camera of the
    whole photo of `size` (width, height): the same centre and focal length, turned (no roll) so the ray through
    the square's centre meets the origin. A crop is a shifted principal point, which a View (principal point at
    the photo's centre) cannot hold: turning is exact at the square's centre and close near it; refine_camera
    takes it the rest of the way."""
    x, y, side = (float(value) for value in square)
    intrinsics = Intrinsics(int(size[0]), int(size[1]), side / 2.0 / math.tan(math.radians(fov_y_deg) / 2.0))
    centre = np.array([x + side / 2.0, y + side / 2.0])
    position, aim = np.array([0.0, 0.0, distance]), np.zeros(3)
    for _ in range(8):  # move the aim point until the origin lands on the square's centre (converges in a few)
        view = look_at(intrinsics, position, aim)
        miss = view.project(np.zeros((1, 3)))[0][0] - centre
        aim = aim + np.array([miss[0], -miss[1], 0.0]) * distance / intrinsics.focal_px
    return view


def refine_camera(
    vertices: np.ndarray,
    faces: np.ndarray,
    mask: np.ndarray,
    start: View,
    *,
    fov_deg: float | None = None,
    turn_deg: float = 0.0,
    working_size: int = 256,
    final_size: int = 1024,
) -> tuple[View, float, dict]:
    """`start`, a camera the generator itself assumed (its input view, at the photo's size: generator_view), its
    scale and offset refined so the mesh's silhouette matches `mask`: for a generator that reconstructs in its
    input view's frame (TripoSR), the pose is known and mostly where and how large the object sits in the photo is
    left. turn_deg lets yaw and elevation move that far too (generator_view's turn only approximates the crop of
    an off-centre subject). fov_deg replaces the start's field of view when the user or EXIF tell it (the apparent
    size is kept).
    Returns as fit_camera; report["initial_iou"] is the start's own IoU. The start is kept if refining does not
    improve it (a refinement in soft IoU can lose a hair in binary IoU)."""
    start_time = time.perf_counter()
    vertices, faces = _check_mesh(vertices, faces)
    mask = _check_mask(mask)
    fov = start.fov_deg if fov_deg is None else float(fov_deg)
    elevation = start.elevation_deg
    problem = _problem(vertices, faces, mask, start.yaw_deg, turn_deg, (elevation - turn_deg, elevation + turn_deg),
                       fov, (fov, fov))
    xy, depth = start.project(problem.target[None])
    if depth[0] <= 0:
        raise InputError("The generator's input view does not see the object: it cannot be placed on the photo.")
    x_start = problem.clip(np.array([start.yaw_deg, elevation, fov, math.log(start.intrinsics.focal_px / depth[0]),
                                     *(xy[0] - np.array(problem.size) / 2.0)]))
    report = {"initial_iou": _final_iou(problem, mask, x_start, final_size), "levels": []}
    box_side = problem.side / (1.0 + 2.0 * WINDOW_MARGIN)
    x = x_start
    for resolution, step_scale in ((working_size // 2, 1.0), (working_size, 0.25)):
        level = _level(mask, problem.origin, problem.side, resolution)
        pixel = problem.side / resolution

        def objective(x, level=level):
            x = problem.clip(x)
            return level.iou(problem.silhouette(x, level.resolution, SUPERSAMPLE)), x

        angle = 2.0 if turn_deg else 0.0
        steps = np.array([angle, angle, 0.0, 0.05, 0.02 * box_side, 0.02 * box_side]) * step_scale
        min_steps = np.array([angle / 20, angle / 20, 0.0, 0.001, 0.1 * pixel, 0.1 * pixel])
        x, score, evaluations = _pattern_search(objective, x, np.maximum(steps, min_steps), min_steps, 300)
        report["levels"].append({"resolution": resolution, "score": score, "evaluations": [evaluations]})
    iou = _final_iou(problem, mask, x, final_size)
    if iou < report["initial_iou"]:
        x, iou = x_start, report["initial_iou"]
    report["moved_from_start"] = {"scale": float(math.exp(x[3] - x_start[3])),
                                  "offset_px": [float(x[4] - x_start[4]), float(x[5] - x_start[5])]}
    return _fitted(problem, x, iou, report, start_time)


def fit_views(
    vertices: np.ndarray,
    faces: np.ndarray,
    masks_by_view: dict,
    known_yaws: dict | None = None,
    *,
    yaw_tolerance_deg: float = 0.0,
    **settings,
) -> tuple[dict, dict, dict]:
    """One camera per photo of the same object, each photo's yaw known (a turntable or product shoot).

    masks_by_view: {name: mask (H, W) bool} at each photo's own size. known_yaws: {name: yaw in degrees}
    (view.py's convention: 0 front, 90 left = object turned 90 degrees clockwise seen from above, 180 back,
    270 right); missing names fall back to YAW_BY_NAME. The yaw stays fixed (or within +/-
    yaw_tolerance_deg); scale, offset, elevation and fov are fitted per view, with fit_camera's settings.
    Returns ({name: View}, {name: IoU}, {name: that view's report}).
    """
    known_yaws = dict(known_yaws or {})
    views, ious, reports = {}, {}, {}
    for name, mask in masks_by_view.items():
        yaw = known_yaws.get(name, YAW_BY_NAME.get(str(name).lower()))
        if yaw is None:
            raise InputError(f"The yaw of the view '{name}' is unknown: give it, or name the view "
                             "front, left, back or right.")
        _check_mask(mask, f"the view '{name}'")
        views[name], ious[name], reports[name] = fit_camera(
            vertices, faces, mask, yaw_deg=float(yaw), yaw_range_deg=yaw_tolerance_deg, **settings)
    return views, ious, reports
