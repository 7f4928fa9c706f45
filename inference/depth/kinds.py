"""Turning a depth map's raw values into metric depth along the camera axis.

Kinds:
  metric              metres (times the depth scale, e.g. 0.001 for a millimetre PNG).
  relative-depth      depth up to an unknown affine map, larger is farther: the valid range is mapped
                      linearly onto [near, far].
  relative-disparity  affine-invariant inverse depth, as MiDaS and Depth Anything's relative models output it
                      (larger is nearer). It is NOT depth: 1/z is affine in it, so the valid range is mapped
                      onto [1/far, 1/near] and inverted. Treating it as depth is what makes meshes flat or
                      funnel-shaped; the inverse keeps planes planar.
For every kind a raw value that is not finite or not positive means "no surface" (the sky of a disparity map
is 0), and the depth scale multiplies the result.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

# Each kind with its label and description, as the sidebar and --help show them.
DEPTH_KINDS = {
    "metric": ("Metric", "Depth in metres along the camera axis (times Depth Scale)"),
    "relative-depth": ("Relative Depth", "Depth up to an unknown scale and shift; mapped onto Near..Far"),
    "relative-disparity": (
        "Relative Disparity", "Inverse depth as MiDaS / Depth Anything output it; mapped onto Near..Far"
    ),
}


def to_metric_depth(
    values: np.ndarray, kind: str, scale: float = 1.0, near: float = 1.0, far: float = 5.0
) -> np.ndarray:
    """Depth in metres, float32, NaN where there is no surface (arguments checked by MeshSettings.check)."""
    values = values.astype(np.float32, copy=True)
    valid = np.isfinite(values) & (values > 0)
    if not valid.any():
        raise InputError("The depth map holds no usable depth: every value is zero, negative, NaN or infinite.")
    values[~valid] = np.nan
    if kind == "metric":
        return values * np.float32(scale)
    lo, hi = float(values[valid].min()), float(values[valid].max())
    t = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    if kind == "relative-depth":
        depth = near + t * (far - near)
    else:
        depth = 1.0 / (1.0 / far + t * (1.0 / near - 1.0 / far))
    return (depth * scale).astype(np.float32)
