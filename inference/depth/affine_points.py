"""From an affine-invariant point map (MoGe) to a camera and metric depth.

MoGe predicts points up to an unknown scale and an unknown shift along the optical axis (OpenCV frame: x right,
y down, z forward). A pinhole camera with focal f projects a true point to (u, v) = f * (x, y) / (z + t), so the
shift t and focal f are the pair that best explains where each point appears in the image: minimise
sum |f * (x, y) / (z + t) - (u, v)|^2 over valid points (the MoGe paper's least-squares recovery). For a fixed t
the best f has a closed form; t is found by Levenberg-Marquardt on that one unknown. (u, v) are pixel
centres measured in half-diagonals of the image, so f is independent of the image size.
"""

from __future__ import annotations

import math

import numpy as np

_SAMPLES = 64  # the fit uses a 64 x 64 nearest-neighbour subsample: plenty for two unknowns


def recover_focal_shift(
    points: np.ndarray, mask: np.ndarray, fov_x_deg: float | None = None
) -> tuple[float, float]:
    """(focal in pixels of the point map's own size, z shift) for points (H, W, 3) and mask (H, W) bool.

    With fov_x_deg known, only the shift is solved for.
    """
    h, w = mask.shape
    rows = ((np.arange(min(h, _SAMPLES)) + 0.5) * h / min(h, _SAMPLES)).astype(int)
    cols = ((np.arange(min(w, _SAMPLES)) + 0.5) * w / min(w, _SAMPLES)).astype(int)
    half_diagonal = math.hypot(w, h) / 2
    uv = np.stack(np.meshgrid((cols + 0.5 - w / 2) / half_diagonal, (rows + 0.5 - h / 2) / half_diagonal), axis=-1)
    sample = points[rows[:, None], cols[None, :]].astype(np.float64)
    keep = mask[rows[:, None], cols[None, :]] & np.isfinite(sample).all(axis=-1)
    xy, z, uv = sample[keep][:, :2], sample[keep][:, 2], uv[keep]
    known_f = None if fov_x_deg is None else (w / 2) / math.tan(math.radians(fov_x_deg) / 2) / half_diagonal
    if len(z) < 2:
        return (known_f or 1.0) * half_diagonal, 0.0

    def focal(t: float) -> float:
        p = xy / (z + t)[:, None]
        return known_f if known_f is not None else float(np.sum(p * uv) / max(np.sum(p * p), 1e-12))

    def residual(t: float) -> np.ndarray:
        return (focal(t) * xy / (z + t)[:, None] - uv).ravel()

    # z + t must stay positive for every point the camera sees.
    lowest = -float(z.min()) + 1e-6 * max(float(np.abs(z).max()), 1e-6)
    t, damping = max(0.0, lowest), 1e-3
    cost = float(np.sum(residual(t) ** 2))
    step = 1e-6 * max(float(np.abs(z).mean()), 1e-6)
    for _ in range(100):
        r = residual(t)
        jac = (residual(t + step) - r) / step
        change = -float(jac @ r) / (float(jac @ jac) * (1 + damping) + 1e-30)
        candidate = max(t + change, lowest)
        new_cost = float(np.sum(residual(candidate) ** 2))
        if new_cost < cost:
            t, cost, damping = candidate, new_cost, damping / 10
            if abs(change) < 1e-9 * max(abs(t), 1.0):
                break
        else:
            damping *= 10
            if damping > 1e12:
                break
    return focal(t) * half_diagonal, t
