"""Running a depth model on a photo: its card's input contract in, depth (and maybe a camera) out."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime as ort

from .affine_points import recover_focal_shift
from ..errors import InputError
from ..runtime.cards import ModelCard
from ..runtime.jobs import CancelToken
from ..runtime.onnx_session import run_session
from ..runtime.preprocess import image_tensor
from ..photo.photo import Photo
from .upsample import upsample_depth



@dataclass
class DepthPrediction:
    values: np.ndarray  # (h, w) float32 at the requested size; NaN = no surface
    kind: str  # "relative-disparity" or "metric" (a depth kind of depth_kinds)
    focal_px: float | None  # the model's focal length in the photo's original pixels, if it predicts one
    mask: np.ndarray | None  # (h, w) bool: where the model sees a surface, if it says
    normals: np.ndarray | None  # (h, w, 3) unit normals in the camera frame (x right, y up, z back), if predicted


def model_input_size(card: ModelCard, photo_size: tuple[int, int], static: tuple | None = None) -> tuple[int, int]:
    """(width, height) the model is fed for a photo of `photo_size`, by its card's size rule.

    A graph whose input has fixed spatial dimensions always gets exactly those.
    """
    if static is not None:
        return static[1], static[0]
    w, h = photo_size
    side = card.input.side
    if card.input.size_rule == "fixed":
        return side, side
    if card.input.size_rule == "max-side":
        scale = min(1.0, side / max(w, h))
        return max(14, round(w * scale)), max(14, round(h * scale))
    # Depth Anything's own rule: scale so both sides reach `side`, keep the aspect, multiples of 14 (never below).
    scale = side / min(w, h)
    return _multiple_of_14(w * scale, side), _multiple_of_14(h * scale, side)


def model_outputs(session: ort.InferenceSession, card: ModelCard, photo: Photo,
                  cancel: CancelToken | None = None) -> dict[str, np.ndarray]:
    """The model's raw outputs for `photo`, by output name, and "input_size": the (width, height) it was fed.
    What depends on the model alone: a cache keeps these, so meshing at another size runs no model."""
    inputs = session.get_inputs()
    static = _static_spatial(inputs[0].shape)
    width, height = model_input_size(card, photo.size, static)
    feeds = {inputs[0].name: image_tensor(photo.rgb, (width, height), card.input.normalise)}
    if card.input.num_tokens:
        feeds[inputs[1].name] = np.array(card.input.num_tokens, dtype=np.int64)
    names = list(card.output_names) or [o.name for o in session.get_outputs()]
    try:
        outputs = dict(zip(names, run_session(session, names, feeds, cancel)))
    except InputError:  # cancelled
        raise
    except Exception as err:  # ONNX Runtime's own error types: a graph that does not match its card
        raise InputError(f"The model '{card.name}' could not run on this photo ({str(err).splitlines()[0][:200]}).") from err
    return {**outputs, "input_size": np.array([width, height])}


def prediction_from(outputs: dict[str, np.ndarray], card: ModelCard, photo: Photo, size: tuple[int, int],
                    fov_x_deg: float | None = None) -> DepthPrediction:
    """The depth at `size` (width, height), edge-aware upsampled, from the model's outputs (model_outputs)."""
    if card.output_kind == "affine-points":
        return _from_affine_points(outputs, photo, size, fov_x_deg)
    names = [name for name in outputs if name != "input_size"]
    depth = np.squeeze(outputs[names[0]]).astype(np.float32)
    if depth.ndim != 2:
        raise InputError(f"The model '{card.name}' returned depth of shape {depth.shape}, not an image.")
    depth[~np.isfinite(depth) | (depth <= 0)] = np.nan
    if card.output_kind == "relative-disparity":
        return DepthPrediction(upsample_depth(depth, photo.rgb, size), "relative-disparity", None, None, None)
    # Metric depth: upsample its logarithm, so a step from 1 m to 10 m is halfway at 3.2 m, not 5.5 m.
    metric = np.exp(upsample_depth(np.log(depth), photo.rgb, size))
    focal = None
    if card.output_kind == "metric-depth-focal":
        # The focal length is in pixels of the model's input, which spans the photo's full width.
        focal = float(np.ravel(outputs[names[1]])[0]) * photo.source_size[0] / float(outputs["input_size"][0])
    return DepthPrediction(metric, "metric", focal, None, None)


def _from_affine_points(outputs: dict, photo: Photo, size: tuple[int, int], fov_x_deg: float | None) -> DepthPrediction:
    points = np.squeeze(outputs["points"], axis=0).astype(np.float32)
    mask = np.squeeze(outputs["mask"], axis=0) > 0.5
    scale = float(np.ravel(outputs["metric_scale"])[0])
    focal, shift = recover_focal_shift(points, mask, fov_x_deg)
    z = points[..., 2] + shift
    mask &= np.isfinite(z) & (z > 0)
    depth = np.where(mask, z * scale, np.nan).astype(np.float32)
    metric = np.exp(upsample_depth(np.log(depth), photo.rgb, size))
    # Normals: OpenCV frame (y down, z forward) -> camera frame of this project (y up, z back).
    normals = np.squeeze(outputs["normal"], axis=0).astype(np.float32) * np.array([1, -1, -1], np.float32)
    normals = cv2.resize(normals, size, interpolation=cv2.INTER_NEAREST)
    grid_mask = cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
    # The focal length is in pixels of the point map, which spans the photo: rescale to the photo's pixels.
    focal_px = focal * photo.source_size[0] / points.shape[1]
    return DepthPrediction(metric, "metric", focal_px, grid_mask, normals)


def _static_spatial(shape) -> tuple[int, int] | None:
    if len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int):
        return shape[2], shape[3]
    return None


def _multiple_of_14(length: float, minimum: int) -> int:
    n = round(length / 14) * 14
    return n if n >= minimum else math.ceil(length / 14) * 14
